package cluster

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures an embedded NATS server.
type ServerConfig struct {
	Name    string // the node's name, the server's name in the cluster
	DataDir string // JetStream keeps its files under DataDir/nats
	// Cluster is where this server listens for routes from the others
	// (host:port); empty runs it alone.
	Cluster string
	// Routes are every node's route URLs (nats://host:port); this node's
	// own may be among them.
	Routes []string
	// Advertise, when set, is the route address (host:port) this server
	// tells the others about. NATS servers pass on each other's route
	// addresses and connect to those they have no route to yet ("implicit
	// routes"), by default at the Cluster address seen from the network.
	// Where nodes must reach each other through something in between (a
	// proxy, NAT), that address is the wrong one: Advertise names the
	// right one, or one that nobody answers when Routes already list
	// every node and gossip must not add routes around them.
	Advertise string
	// Listen, when set, serves NATS clients there (host:port), for tools
	// and other brokers; otherwise on a loopback port nobody is told.
	Listen string
	// Token, when set, is required of every client connection; the
	// broker's own connects in process with it (nats.Token).
	Token string
	// MaxMemory and MaxStore bound what JetStream keeps in memory and on
	// disk; the defaults would come from the host.
	MaxMemory, MaxStore int64
}

// clusterName names the NATS cluster all nodes' servers form.
const clusterName = "stampede"

// StartServer starts an embedded NATS server with JetStream and waits
// until it takes connections.
func StartServer(c ServerConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName:         c.Name,
		JetStream:          true,
		StoreDir:           filepath.Join(c.DataDir, "nats"),
		JetStreamMaxMemory: c.MaxMemory,
		JetStreamMaxStore:  c.MaxStore,
		NoSigs:             true,
		NoLog:              true,
		// Routing waits for a client listener, so there always is one:
		// on loopback, at a port of the system's choosing, unless asked.
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		Authorization: c.Token,
	}
	if opts.JetStreamMaxMemory == 0 {
		opts.JetStreamMaxMemory = 256 << 20
	}
	if opts.JetStreamMaxStore == 0 {
		opts.JetStreamMaxStore = 8 << 30
	}
	if c.Listen != "" {
		host, port, err := splitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address: %w", err)
		}
		opts.Host, opts.Port = host, port
	}
	if c.Cluster != "" {
		host, port, err := splitHostPort(c.Cluster)
		if err != nil {
			return nil, fmt.Errorf("nats cluster address: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: clusterName, Host: host, Port: port, Advertise: c.Advertise}
		for _, r := range c.Routes {
			opts.Routes = append(opts.Routes, server.RoutesFromStr(r)...)
		}
	} else if len(c.Routes) > 0 || c.Advertise != "" {
		return nil, errors.New("nats routes need a cluster address for this node")
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats server did not start")
	}
	return ns, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}
