package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stampede-mq/stampede/cluster"
)

// clusterConfig is how this broker joins a cluster; with no NATS flag it
// is a single node.
type clusterConfig struct {
	Node      string
	NATS      string // URLs of an existing NATS deployment
	Creds     string // its credentials file
	Embedded  bool
	Cluster   string // the embedded server's route listener
	Routes    string
	Advertise string
	Listen    string
	Replicas  int
	AckWait   time.Duration
	JoinWait  time.Duration
}

func (c *clusterConfig) flags(fs *flag.FlagSet) {
	host, _ := os.Hostname()
	fs.StringVar(&c.Node, "node", host, "this node's name, unique in the cluster (default: the host name)")
	fs.StringVar(&c.NATS, "nats", "", "join the cluster through this NATS deployment with JetStream: nats://host:port[,…]")
	fs.StringVar(&c.Creds, "nats-creds", "", "credentials file for --nats")
	fs.BoolVar(&c.Embedded, "nats-embedded", false, "run a NATS server with JetStream in this process, its data under <data>/nats")
	fs.StringVar(&c.Cluster, "nats-cluster", "", "with --nats-embedded: HOST:PORT where this node's NATS listens for routes from the other nodes")
	fs.StringVar(&c.Routes, "nats-routes", "", "with --nats-embedded: every node's route URL, nats://host:port,… (this node's own may be among them)")
	fs.StringVar(&c.Advertise, "nats-cluster-advertise", "", "with --nats-embedded: the route address HOST:PORT other nodes are told to reach this node's NATS at, when --nats-cluster is not reachable as such (behind a proxy or NAT); default: --nats-cluster as seen from the network")
	fs.StringVar(&c.Listen, "nats-listen", "", "with --nats-embedded: also serve NATS clients (tools, other brokers) at HOST:PORT")
	fs.IntVar(&c.Replicas, "nats-replicas", 0, "JetStream copies of what is stored (default 3, or the number of nodes when fewer)")
	fs.DurationVar(&c.AckWait, "nats-ack-wait", 30*time.Second, "how long a queue message a node took may go without news before another node gets it (a node that died)")
	fs.DurationVar(&c.JoinWait, "nats-join-timeout", 60*time.Second, "how long to wait at start for the cluster to elect its leaders")
}

func (c *clusterConfig) enabled() bool { return c.NATS != "" || c.Embedded }

func (c *clusterConfig) check() error {
	switch {
	case c.NATS != "" && c.Embedded:
		return errors.New("--nats and --nats-embedded exclude each other")
	case !c.Embedded && (c.Cluster != "" || c.Routes != "" || c.Advertise != "" || c.Listen != ""):
		return errors.New("--nats-cluster, --nats-routes, --nats-cluster-advertise and --nats-listen need --nats-embedded")
	case (c.Routes != "" || c.Advertise != "") && c.Cluster == "":
		return errors.New("--nats-routes and --nats-cluster-advertise need --nats-cluster")
	case c.enabled() && c.Node == "":
		return errors.New("--node must name this node")
	}
	return nil
}

// joinCluster starts the embedded NATS server if asked, connects and
// joins; the broker then shares everything through the node.
func (in *instance) joinCluster(ctx context.Context) error {
	c := &in.cfg.Cluster
	if !c.enabled() {
		return nil
	}
	conn, replicas, err := in.connectNATS()
	if err != nil {
		in.log.Error("cannot reach NATS", "err", err)
		fmt.Fprintln(in.stderr, "broker: cannot reach NATS:", err)
		return err
	}
	if c.Replicas > 0 {
		replicas = c.Replicas
	}
	jctx, cancel := context.WithTimeout(ctx, c.JoinWait)
	defer cancel()
	cfg := cluster.Config{Node: c.Node, Conn: conn, Replicas: replicas, AckWait: c.AckWait,
		History: historyLimits(&in.cfg.Broker), Logger: in.log}
	if ns := in.nats; ns != nil && replicas > 1 {
		cfg.Isolated = func() bool { return ns.NumRoutes() == 0 }
	}
	node, err := cluster.Open(jctx, cfg)
	if err != nil {
		conn.Close()
		in.log.Error("cannot join the cluster", "err", err)
		fmt.Fprintln(in.stderr, "broker:", err)
		return err
	}
	in.node = node
	in.cfg.Broker.Cluster = node
	in.log.Info("joined the cluster", "node", c.Node, "replicas", replicas)
	return nil
}

// connectNATS connects to the NATS deployment or to an embedded server,
// and says how many replicas the cluster can hold by default.
func (in *instance) connectNATS() (*nats.Conn, int, error) {
	c := &in.cfg.Cluster
	opts := cluster.Options(c.Node)
	if !c.Embedded {
		if c.Creds != "" {
			opts = append(opts, nats.UserCredentials(c.Creds))
		}
		nc, err := nats.Connect(c.NATS, opts...)
		if err != nil {
			return nil, 0, err
		}
		return nc, min(3, len(nc.Servers())), nil
	}
	token := make([]byte, 16)
	rand.Read(token)
	cfg := cluster.ServerConfig{
		Name: c.Node, DataDir: in.cfg.DataDir, Cluster: c.Cluster, Advertise: c.Advertise, Listen: c.Listen,
		Token: hex.EncodeToString(token),
	}
	others := 0
	for _, r := range strings.Split(c.Routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			cfg.Routes = append(cfg.Routes, r)
			if !sameAddr(r, c.Cluster) {
				others++
			}
		}
	}
	if c.Listen != "" {
		cfg.Token = "" // tools and other brokers connect there
	}
	ns, err := cluster.StartServer(cfg)
	if err != nil {
		return nil, 0, err
	}
	in.nats = ns
	nc, err := nats.Connect("", append(opts, nats.InProcessServer(ns), nats.Token(cfg.Token))...)
	if err != nil {
		ns.Shutdown()
		return nil, 0, err
	}
	return nc, min(3, 1+others), nil
}

// sameAddr reports whether route URL u names the address addr
// (host:port), so that a node counts itself once whether or not its own
// route is listed.
func sameAddr(u, addr string) bool {
	parsed, err := url.Parse(u)
	if err != nil || addr == "" {
		return false
	}
	h1, p1, err1 := net.SplitHostPort(parsed.Host)
	h2, p2, err2 := net.SplitHostPort(addr)
	if err1 != nil || err2 != nil || p1 != p2 {
		return false
	}
	same := func(a, b string) bool {
		ia, ib := net.ParseIP(a), net.ParseIP(b)
		// A wildcard listen address (0.0.0.0) cannot be told from
		// another machine's: it counts as another node, and
		// --nats-replicas corrects the count where that is wrong.
		return a == b || (ia != nil && ib != nil && ia.Equal(ib)) ||
			(a == "localhost" && ib != nil && ib.IsLoopback()) || (b == "localhost" && ia != nil && ia.IsLoopback())
	}
	return same(h1, h2)
}

// leaveCluster closes the node and the embedded server, after the broker.
func (in *instance) leaveCluster() {
	if in.node != nil {
		in.node.Close()
	}
	if in.nats != nil {
		in.nats.Shutdown()
		in.nats.WaitForShutdown()
	}
}
