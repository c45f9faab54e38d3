package tests

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// The cluster tests run three broker processes as one cluster
// (startCluster) and check, with real clients, what the README promises
// across nodes. The tests that kill a node have a cluster each; the
// others share one, and the one that cuts a node off runs last on it.

// TestCluster shares one cluster among clients of both kinds, then cuts a
// node off and links it again.
func TestCluster(t *testing.T) {
	c := startCluster(t)
	t.Run("GoStompTopic", func(t *testing.T) { clusterGoStompTopic(t, c) })
	t.Run("GoStompQueue", func(t *testing.T) { clusterGoStompQueue(t, c) })
	t.Run("STOMPJS", func(t *testing.T) {
		node := requireNode(t)
		runNodeScript(t, node, 90*time.Second, "cluster", c.Nodes[0].WSURL, c.Nodes[1].WSURL, c.Nodes[2].WSURL)
	})
	// Last: it leaves the cluster whole again, but it is the one that
	// may not.
	t.Run("CutOff", func(t *testing.T) { clusterCutOff(t, c) })
}

// clusterGoStompTopic: a publisher on node 1 reaches subscribers on nodes
// 2 and 3, wildcards included, each message exactly once and in order.
func clusterGoStompTopic(t *testing.T, c *testCluster) {
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	type want struct {
		name   string
		sub    *stomp.Subscription
		bodies []string // what it must get, in this order
		ends   int      // end markers it sees
	}
	subscriber := func(p *brokerProc, tr stompTransport, dest string) *stomp.Subscription {
		return subscribe(t, goConnect(t, p, tr), dest, stomp.AckAuto)
	}
	subs := []*want{
		{name: "n2 /topic/cl.px.* (ws)", sub: subscriber(n2, wsTransport, "/topic/cl.px.*"), ends: 2},
		{name: "n2 /topic/cl.px.nyse", sub: subscriber(n2, tcpTransport, "/topic/cl.px.nyse"), ends: 1},
		{name: "n3 /topic/cl.px.#", sub: subscriber(n3, tcpTransport, "/topic/cl.px.#"), ends: 3},
		{name: "n3 /topic/cl.px.lse (ws)", sub: subscriber(n3, wsTransport, "/topic/cl.px.lse"), ends: 1},
	}
	pub := goConnect(t, n1, tcpTransport)
	warmTopics(t, pub, []string{"/topic/cl.px.nyse", "/topic/cl.px.lse"}, subsOf(subs, func(w *want) *stomp.Subscription { return w.sub }))

	const n = 100
	for i := range n {
		dest := "/topic/cl.px.nyse"
		if i%2 == 1 {
			dest = "/topic/cl.px.lse"
		}
		body := fmt.Sprintf("%s-%03d", dest[len("/topic/cl.px."):], i)
		send(t, pub, dest, body)
		for _, w := range subs {
			if topicMatches(w.sub.Destination(), dest) {
				w.bodies = append(w.bodies, body)
			}
		}
	}
	// "#" also matches no word at all.
	send(t, pub, "/topic/cl.px", "none")
	subs[2].bodies = append(subs[2].bodies, "none")
	// An end marker per destination, after everything else: in publisher
	// order, anything missing or repeated shows before them.
	for _, dest := range []string{"/topic/cl.px.nyse", "/topic/cl.px.lse", "/topic/cl.px"} {
		send(t, pub, dest, "end", stomp.SendOpt.Header("x-end", "true"))
	}
	for _, w := range subs {
		var got []string
		for ends := 0; ends < w.ends; {
			m := recv(t, w.sub)
			switch {
			case m.Header.Get("x-probe") != "":
			case m.Header.Get("x-end") != "":
				ends++
			default:
				got = append(got, string(m.Body))
			}
		}
		if !slices.Equal(got, w.bodies) {
			t.Errorf("%s got %d messages, want %d in order:\n got %v\nwant %v", w.name, len(got), len(w.bodies), got, w.bodies)
		}
	}
}

// clusterGoStompQueue: competing consumers on nodes 2 and 3 share what a
// producer on node 1 sends to a queue, each message exactly once.
func clusterGoStompQueue(t *testing.T, c *testCluster) {
	const queue, n = "/queue/cl.jobs", 200
	got := make(chan [2]string, n)
	for _, p := range c.Nodes[1:] {
		conn := goConnect(t, p, tcpTransport)
		sub := subscribe(t, conn, queue, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "10"))
		go func() {
			for m := range sub.C {
				if m.Err != nil {
					return
				}
				conn.Ack(m)
				got <- [2]string{p.Name, string(m.Body)}
			}
		}()
	}
	pub := goConnect(t, c.Nodes[0], tcpTransport)
	for i := range n {
		persistent := "false"
		if i%2 == 0 {
			persistent = "true"
		}
		send(t, pub, queue, fmt.Sprintf("job-%03d", i), stomp.SendOpt.Header("persistent", persistent))
	}
	seen := map[string][]string{}
	perNode := map[string]int{}
	for range n {
		select {
		case d := <-got:
			seen[d[1]] = append(seen[d[1]], d[0])
			perNode[d[0]]++
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d messages consumed within 30s; per node %v", len(seen), n, perNode)
		}
	}
	// Whatever came twice would have come by now: a message held by a
	// consumer goes elsewhere only after the ack wait, and these are acked
	// at once.
	select {
	case d := <-got:
		t.Fatalf("extra delivery of %s on %s (first on %v)", d[1], d[0], seen[d[1]])
	case <-time.After(time.Second):
	}
	for i := range n {
		if b := fmt.Sprintf("job-%03d", i); len(seen[b]) != 1 {
			t.Errorf("%s consumed %d times (%v)", b, len(seen[b]), seen[b])
		}
	}
	if perNode["n2"] == 0 || perNode["n3"] == 0 {
		t.Errorf("the consumers did not share the queue: %v", perNode)
	}
	t.Logf("consumed per node: %v", perNode)
}

func subsOf[T any](xs []T, f func(T) *stomp.Subscription) []*stomp.Subscription {
	var out []*stomp.Subscription
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// warmTopics publishes probes (x-probe:true) to dests in turn until every
// subscription has had one. A subscription made on one node reaches the
// other nodes' NATS servers a little after its RECEIPT; once a probe from
// pub has arrived, everything pub sends later arrives too, in order. The
// subscriptions' readers skip later probes.
func warmTopics(t *testing.T, pub *stomp.Conn, dests []string, subs []*stomp.Subscription) {
	t.Helper()
	warm := make([]bool, len(subs))
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; slices.Contains(warm, false); round++ {
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions on other nodes still got no probe after 30s: warm %v", warm)
		}
		send(t, pub, dests[round%len(dests)], "probe", stomp.SendOpt.Header("x-probe", "true"))
		wait := time.After(100 * time.Millisecond)
	poll:
		for {
			for i, s := range subs {
				select {
				case m := <-s.C:
					if m == nil || m.Err != nil {
						t.Fatalf("subscription %s ended while warming up: %v", s.Destination(), m)
					}
					if m.Header.Get("x-probe") == "" {
						t.Fatalf("%s: unexpected message while warming up: %q", s.Destination(), m.Body)
					}
					warm[i] = true
				default:
				}
			}
			select {
			case <-wait:
				break poll
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// topicMatches tells whether a SUBSCRIBE pattern (with "*" for one word
// and "#" for any number) matches destination dest.
func topicMatches(pattern, dest string) bool {
	var match func(p, d []string) bool
	match = func(p, d []string) bool {
		switch {
		case len(p) == 0:
			return len(d) == 0
		case p[0] == "#":
			for k := 0; k <= len(d); k++ {
				if match(p[1:], d[k:]) {
					return true
				}
			}
			return false
		case len(d) == 0:
			return false
		case p[0] == "*" || p[0] == d[0]:
			return match(p[1:], d[1:])
		}
		return false
	}
	return match(strings.Split(strings.TrimPrefix(pattern, "/topic/"), "."), strings.Split(strings.TrimPrefix(dest, "/topic/"), "."))
}

// clusterCutOff cuts node 3 off from the other two: with no JetStream
// majority it refuses a persistent SEND to a queue with an ERROR and
// answers 503 on /readyz, while nodes 1 and 2 go on. Linked again, it is
// ready again, serves what was sent meanwhile and sends to the others.
func clusterCutOff(t *testing.T, c *testCluster) {
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	const queue, back, n = "/queue/cl.cut", "/queue/cl.cut.back", 20
	// Connected before the cut, as clients of a node that loses the
	// others would be.
	raw := dialRaw(t, n3, tcpTransport)
	raw.connect()
	topicRaw := dialRaw(t, n3, tcpTransport)
	topicRaw.connect()

	cutAt := time.Now()
	c.links.isolate(2, true)
	defer c.links.isolate(2, false)
	d := waitReady(t, n3, 503, 30*time.Second)
	_, why := readyz(n3)
	t.Logf("n3 cut off: /readyz 503 after %v (%s)", d.Round(time.Millisecond), why)
	// The other two keep the majority; /readyz may dip while they elect
	// new leaders for what n3 led.
	for _, p := range []*brokerProc{n1, n2} {
		waitReady(t, p, 200, 30*time.Second)
	}

	// What n3 cannot store, it refuses. An ERROR closes the connection.
	start := time.Now()
	raw.send("SEND", "refused", "destination", queue, "persistent", "true", "receipt", "cut-1")
	f := raw.nextWithin(30 * time.Second)
	took := time.Since(start).Round(time.Millisecond)
	if f.Command != "ERROR" {
		t.Fatalf("persistent SEND on the cut-off node answered with %v after %v, want ERROR", f, took)
	}
	t.Logf("persistent SEND to a queue on n3 once /readyz says 503: ERROR %q after %v", f.Value("message"), took)
	if took > 10*time.Second {
		t.Errorf("the ERROR took %v: a client waits that long on a node that cannot store", took)
	}
	topicRaw.send("SEND", "refused", "destination", "/topic/cl.cut", "receipt", "cut-2")
	f = topicRaw.nextWithin(30 * time.Second)
	t.Logf("plain SEND to a topic on n3: %s", f.Command)

	// Meanwhile the majority takes messages for the queue. Its nodes too
	// may refuse for a moment while they elect new leaders for what n3
	// led: the producer sends again what was not receipted.
	l := newClusterLedger()
	producer := runClusterProducers(l, queue, n, clusterProducerSpec{"cut", []*brokerProc{n1, n2}})
	t.Logf("producer on n1 while n3 was cut off: %s", producer.wait(t))

	c.links.isolate(2, false)
	d = waitReady(t, n3, 200, 90*time.Second)
	t.Logf("n3 linked again: /readyz 200 after %v (cut off for %v in all)", d.Round(time.Millisecond), time.Since(cutAt).Round(time.Millisecond))

	// n3's consumer gets what was sent while it was cut off, in order,
	// and not what it refused.
	var orderMu sync.Mutex
	last := -1
	stop := clusterConsumer(t, l, n3, queue, "n3", func(body string, redelivered bool) {
		orderMu.Lock()
		defer orderMu.Unlock()
		var seq, attempt int
		if _, err := fmt.Sscanf(body, "cut-%04d-a%d", &seq, &attempt); err != nil {
			t.Errorf("n3 consumed %q, which nobody sent to %s", body, queue)
			return
		}
		// A SEND that got no RECEIPT may have been stored as well as
		// the one sent again after it: equal numbers may come twice.
		if !redelivered && seq < last {
			t.Errorf("n3 consumed %s after cut-%04d: out of send order", body, last)
		}
		last = max(last, seq)
	})
	waitAllConsumed(t, l, 60*time.Second)
	stop()
	l.check(t)

	// And what is sent on n3 reaches a consumer on another node.
	lb := newClusterLedger()
	stop = clusterConsumer(t, lb, n2, back, "n2", nil)
	runClusterProducers(lb, back, 1, clusterProducerSpec{"back", []*brokerProc{n3}}).wait(t)
	waitAllConsumed(t, lb, 30*time.Second)
	stop()
}
