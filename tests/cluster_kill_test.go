package tests

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// A node SIGKILLed under persistent load loses nothing receipted. Each
// test has a cluster of its own, with a short ack wait: what a dead node
// held comes back that soon.

// killAckWait is --nats-ack-wait for these tests: how long what a dead
// node held waits before another node may have it.
const killAckWait = "3s"

// TestClusterKillConsumerNode kills the node of a client-individual
// consumer while it holds messages unacknowledged and producers on the
// other nodes go on sending. What it held comes back, marked redelivered,
// to a consumer that reconnects on another node; every receipted message
// is consumed; none arrives twice without the redelivered flag.
func TestClusterKillConsumerNode(t *testing.T) {
	c := startCluster(t, "--nats-ack-wait", killAckWait)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	const queue, perProducer, ackFirst = "/queue/cl.kill.consumer", 150, 40
	l := newClusterLedger()

	// The consumer on n3 acks the first ackFirst messages, then holds what
	// it gets without acking, up to its prefetch: those must come back.
	conn, err := dialGoStomp(n3)
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, conn, queue, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "16"))
	var heldMu sync.Mutex
	held := map[string]bool{}
	enoughHeld := make(chan struct{})
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		for m := range sub.C {
			if m.Err != nil {
				return
			}
			body := string(m.Body)
			l.delivered(body, m.Header.Get("redelivered") == "true", "n3")
			if l.deliveredCount() <= ackFirst {
				conn.Ack(m)
				continue
			}
			heldMu.Lock()
			held[body] = true
			if len(held) == 8 {
				close(enoughHeld)
			}
			heldMu.Unlock()
		}
	}()

	producers := runClusterProducers(l, queue, perProducer,
		clusterProducerSpec{"p1", []*brokerProc{n1, n2}},
		clusterProducerSpec{"p2", []*brokerProc{n2, n1}})

	select {
	case <-enoughHeld:
	case <-time.After(60 * time.Second):
		t.Fatalf("the consumer on n3 got only %d messages in 60s", l.deliveredCount())
	}
	receiptedAtKill := l.receiptedCount()
	survivors := watchReadiness(n1, n2)
	n3.kill(t)
	<-consumerDone
	heldMu.Lock()
	heldAtKill := slices.Sorted(maps.Keys(held))
	heldMu.Unlock()
	t.Logf("killed n3 holding %d messages unacknowledged, %d receipted so far", len(heldAtKill), receiptedAtKill)
	if receiptedAtKill >= 2*perProducer {
		t.Fatalf("the producers had finished before n3 was killed: not under load")
	}

	// The consumer reconnects on another node and acks everything.
	redelivered := make(map[string]bool)
	var redMu sync.Mutex
	stopConsumer := clusterConsumer(t, l, n1, queue, "n1", func(body string, red bool) {
		if red {
			redMu.Lock()
			redelivered[body] = true
			redMu.Unlock()
		}
	})

	stats := producers.wait(t)
	waitAllConsumed(t, l, 90*time.Second)
	// What n3 held comes back after the ack wait, marked redelivered.
	deadline := time.Now().Add(60 * time.Second)
	for _, b := range heldAtKill {
		for {
			redMu.Lock()
			back := redelivered[b]
			redMu.Unlock()
			if back {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s, held by the consumer on n3 when it died, did not come back marked redelivered within 60s (deliveries %v)", b, l.deliveriesOf(b))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	l.check(t)
	t.Logf("the consumer on n1 connected again %d times; /readyz after the kill: %s", stopConsumer(), survivors())
	t.Logf("producers: %s; %s", stats, l.summary())
	c.crash(t)
}

// TestClusterKillProducerNode kills the node both producers are connected
// to; they reconnect to another node and go on, and a consumer on a third
// node gets every message that was receipted.
func TestClusterKillProducerNode(t *testing.T) {
	c := startCluster(t, "--nats-ack-wait", killAckWait)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	const queue, perProducer = "/queue/cl.kill.producer", 150
	l := newClusterLedger()
	stopConsumer := clusterConsumer(t, l, n3, queue, "n3", nil)

	producers := runClusterProducers(l, queue, perProducer,
		clusterProducerSpec{"p1", []*brokerProc{n1, n2}},
		clusterProducerSpec{"p2", []*brokerProc{n1, n2}})
	waitUntil(t, 60*time.Second, "40 messages receipted through n1", func() bool { return l.receiptedCount() >= 40 })
	survivors := watchReadiness(n2, n3)
	n1.kill(t)
	t.Logf("killed n1 with %d messages receipted", l.receiptedCount())

	stats := producers.wait(t)
	for _, s := range stats {
		if s.moved == 0 {
			t.Errorf("producer %s never reconnected elsewhere: was it using n1?", s.name)
		}
	}
	waitAllConsumed(t, l, 90*time.Second)
	l.check(t)
	t.Logf("the consumer on n3 connected again %d times; /readyz after the kill: %s", stopConsumer(), survivors())
	t.Logf("producers: %s; %s", stats, l.summary())
	c.crash(t)
}

// crash ends every node with SIGKILL. A SEND that was waiting on a
// JetStream leader when its node died may never be answered, and its
// node then does not stop on SIGTERM (TestClusterSendAsNodeCutOff shows
// it); the kill tests check what clients get, not how nodes stop, so
// they end this way.
func (c *testCluster) crash(t *testing.T) {
	for _, p := range c.Nodes {
		p.kill(t)
	}
}

// watchReadiness polls the nodes' /readyz until the returned function is
// called, which says for how long each answered anything but 200. It
// reports, for the log: the cluster elects new leaders for what a dead
// node led, and meanwhile the others may say they are not ready.
func watchReadiness(nodes ...*brokerProc) (stop func() string) {
	quit := make(chan struct{})
	done := make(chan string)
	go func() {
		notReady := make([]time.Duration, len(nodes))
		last := time.Now()
		for {
			select {
			case <-quit:
				var parts []string
				for i, p := range nodes {
					parts = append(parts, fmt.Sprintf("%s not ready for %v", p.Name, notReady[i].Round(100*time.Millisecond)))
				}
				done <- strings.Join(parts, ", ")
				return
			case <-time.After(100 * time.Millisecond):
			}
			now := time.Now()
			for i, p := range nodes {
				if code, _ := readyz(p); code != 200 {
					notReady[i] += now.Sub(last)
				}
			}
			last = now
		}
	}()
	return func() string {
		close(quit)
		return <-done
	}
}
