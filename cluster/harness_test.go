package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/store"
)

// testCluster is three nodes in this process: three embedded NATS
// servers routed to each other, a cluster Node and a broker on each.
type testCluster struct {
	servers []*server.Server
	nodes   []*Node
	brokers []*broker.Broker
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func startCluster(t *testing.T, size int, opts broker.Options) *testCluster {
	t.Helper()
	ports := freePorts(t, size)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	tc := &testCluster{}
	dirs := make([]string, size)
	for i := range dirs {
		dirs[i] = t.TempDir() // removed after tc.stop, which runs first
	}
	t.Cleanup(tc.stop)
	for i := range size {
		name := fmt.Sprintf("n%d", i+1)
		cfg := ServerConfig{Name: name, DataDir: dirs[i], Routes: routes, MaxMemory: 64 << 20, MaxStore: 1 << 30}
		if size > 1 {
			cfg.Cluster = fmt.Sprintf("127.0.0.1:%d", ports[i])
		} else {
			cfg.Routes = nil
		}
		ns, err := StartServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		tc.servers = append(tc.servers, ns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, ns := range tc.servers {
		nc, err := nats.Connect("", append(Options(ns.Name()), nats.InProcessServer(ns))...)
		if err != nil {
			t.Fatal(err)
		}
		node, err := Open(ctx, Config{Node: ns.Name(), Conn: nc, Replicas: min(size, 3), AckWait: 3 * time.Second,
			History: HistoryLimits{Msgs: opts.TopicHistory, Bytes: 16 << 20}})
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		tc.nodes = append(tc.nodes, node)
		o := opts
		o.Cluster = node
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", node.Node())
		}
		b, err := broker.New(o, store.NewMemory())
		if err != nil {
			t.Fatal(err)
		}
		tc.brokers = append(tc.brokers, b)
	}
	return tc
}

func (tc *testCluster) stop() {
	for _, b := range tc.brokers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b.Shutdown(ctx)
		cancel()
	}
	for _, n := range tc.nodes {
		n.Close()
	}
	for _, s := range tc.servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// dial connects a go-stomp client to node i over an in-memory pipe.
func (tc *testCluster) dial(t *testing.T, i int, opts ...func(*gostomp.Conn) error) *gostomp.Conn {
	t.Helper()
	client, srv := net.Pipe()
	go tc.brokers[i].Serve(newPipeTransport(srv))
	c, err := gostomp.Connect(client, append([]func(*gostomp.Conn) error{gostomp.ConnOpt.HeartBeat(0, 0)}, opts...)...)
	if err != nil {
		t.Fatalf("connecting to node %d: %v", i, err)
	}
	t.Cleanup(func() { c.MustDisconnect() })
	return c
}

// pipeTransport carries a broker connection over a net.Conn.
type pipeTransport struct{ c net.Conn }

func newPipeTransport(c net.Conn) *pipeTransport { return &pipeTransport{c: c} }

func (p *pipeTransport) Read(b []byte) (int, error) { return p.c.Read(b) }
func (p *pipeTransport) Close() error               { return p.c.Close() }
func (p *pipeTransport) Info() broker.ConnInfo {
	return broker.ConnInfo{Transport: "pipe", RemoteAddr: "127.0.0.1:1"}
}
func (p *pipeTransport) WriteFrames(fs []broker.Outbound) error {
	for _, f := range fs {
		if _, err := p.c.Write(f.Head); err != nil {
			return err
		}
		if _, err := p.c.Write(f.Body); err != nil {
			return err
		}
	}
	return nil
}

// recv waits for the next MESSAGE of sub.
func recv(t *testing.T, sub *gostomp.Subscription) *gostomp.Message {
	t.Helper()
	select {
	case m := <-sub.C:
		if m.Err != nil {
			t.Fatalf("subscription %s: %v", sub.Destination(), m.Err)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("subscription %s: nothing arrived", sub.Destination())
		return nil
	}
}

// quiet checks nothing more arrives on sub for a moment.
func quiet(t *testing.T, sub *gostomp.Subscription, d time.Duration) {
	t.Helper()
	select {
	case m := <-sub.C:
		t.Fatalf("subscription %s: unexpected %v %q", sub.Destination(), m.Err, m.Body)
	case <-time.After(d):
	}
}
