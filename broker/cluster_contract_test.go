package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/cluster"
	"github.com/stampede-mq/stampede/store"
)

// TestClusterRouterContract runs the routing contract through a cluster
// of one real embedded NATS server: every queue, durable subscription
// and reply then travels through JetStream, as it does across nodes
// (cluster/ tests those across three).
func TestClusterRouterContract(t *testing.T) {
	broker.RunRouterContract(t, func(t testing.TB, opts broker.Options) *broker.Broker {
		t.Helper()
		ns, err := cluster.StartServer(cluster.ServerConfig{Name: "solo", DataDir: t.TempDir(), MaxMemory: 32 << 20, MaxStore: 256 << 20})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect("", append(cluster.Options("solo"), nats.InProcessServer(ns))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		node, err := cluster.Open(ctx, cluster.Config{Node: "solo", Conn: nc, AckWait: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		opts.Cluster = node
		b, err := broker.New(opts, store.NewMemory())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b.Shutdown(ctx)
			node.Close()
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		return b
	})
}
