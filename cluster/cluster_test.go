package cluster

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/stampede-mq/stampede/broker"
)

var _ broker.Cluster = (*Node)(nil)

// TestTopicsAcrossNodes: a SEND on one node reaches every matching
// subscription on every node exactly once, in the publisher's order,
// with wildcards as on one node.
func TestTopicsAcrossNodes(t *testing.T) {
	tc := startCluster(t, 3, broker.Options{})
	pub := tc.dial(t, 0)
	var subs []*gostomp.Subscription
	for i, dest := range []string{"/topic/a.b", "/topic/a.*", "/topic/a.#", "/topic/#"} {
		c := tc.dial(t, 1+i%2)
		s, err := c.Subscribe(dest, gostomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	local, _ := tc.dial(t, 0).Subscribe("/topic/a.#", gostomp.AckAuto)
	time.Sleep(200 * time.Millisecond) // subscriptions reach the other servers
	for i := range 20 {
		if err := pub.Send("/topic/a.b", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	pub.Send("/topic/a", "text/plain", []byte("zero words"), gostomp.SendOpt.Receipt)
	for si, s := range append(subs, local) {
		for i := range 20 {
			if m := recv(t, s); string(m.Body) != fmt.Sprint(i) {
				t.Fatalf("subscription %d: got %q, want %d", si, m.Body, i)
			}
		}
	}
	for _, s := range []*gostomp.Subscription{subs[2], subs[3], local} {
		if m := recv(t, s); string(m.Body) != "zero words" {
			t.Fatalf("%s: got %q", s.Destination(), m.Body)
		}
	}
	for _, s := range append(subs, local) {
		quiet(t, s, 300*time.Millisecond)
	}
}

// TestQueueAcrossNodes: consumers on two nodes share a queue fed from a
// third; each message goes to exactly one of them.
func TestQueueAcrossNodes(t *testing.T) {
	tc := startCluster(t, 3, broker.Options{})
	pub := tc.dial(t, 0)
	const n = 200
	for i := range n {
		if err := pub.Send("/queue/jobs", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Header("persistent", "true"), gostomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[string]int)
	got := make(chan string, n)
	for i := 1; i <= 2; i++ {
		s, err := tc.dial(t, i).Subscribe("/queue/jobs", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("prefetch-count", "10"))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for m := range s.C {
				if m.Err != nil {
					return
				}
				m.Conn.Ack(m)
				got <- string(m.Body) + "@" + fmt.Sprint(i)
			}
		}()
	}
	perNode := map[string]int{}
	for range n {
		select {
		case v := <-got:
			var body, node string
			fmt.Sscanf(v, "%s", &body)
			for j := len(v) - 1; j >= 0; j-- {
				if v[j] == '@' {
					body, node = v[:j], v[j+1:]
					break
				}
			}
			seen[body]++
			perNode[node]++
		case <-time.After(15 * time.Second):
			t.Fatalf("only %d of %d messages arrived", len(seen), n)
		}
	}
	for i := range n {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("message %d delivered %d times", i, seen[fmt.Sprint(i)])
		}
	}
	select {
	case v := <-got:
		t.Fatalf("extra delivery %s", v)
	case <-time.After(500 * time.Millisecond):
	}
	t.Logf("per node: %v", perNode)
}

// TestQueueRedeliveryAcrossNodes: what a consumer held unacknowledged
// when it left comes back on another node, marked redelivered.
func TestQueueRedeliveryAcrossNodes(t *testing.T) {
	tc := startCluster(t, 3, broker.Options{})
	pub := tc.dial(t, 0)
	for i := range 3 {
		pub.Send("/queue/work", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt)
	}
	client, srv := net.Pipe()
	go tc.brokers[1].Serve(newPipeTransport(srv))
	c1, err := gostomp.Connect(client, gostomp.ConnOpt.HeartBeat(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := c1.Subscribe("/queue/work", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Header("prefetch-count", "3"))
	for range 3 {
		recv(t, s1)
	}
	c1.Disconnect() // leaving with three messages unacknowledged
	s2, _ := tc.dial(t, 2).Subscribe("/queue/work", gostomp.AckClientIndividual)
	for i := range 3 {
		m := recv(t, s2)
		if string(m.Body) != fmt.Sprint(i) || m.Header.Get("redelivered") != "true" {
			t.Fatalf("got %q redelivered=%q", m.Body, m.Header.Get("redelivered"))
		}
		m.Conn.Ack(m)
	}
}

// TestDurableAcrossNodes: a durable subscription made on one node
// collects while offline and resumes on another.
func TestDurableAcrossNodes(t *testing.T) {
	tc := startCluster(t, 3, broker.Options{})
	c := tc.dial(t, 0, gostomp.ConnOpt.Header("client-id", "app"))
	s, err := c.Subscribe("/topic/news.#", gostomp.AckClient, gostomp.SubscribeOpt.Id("s1"), gostomp.SubscribeOpt.Header("durable", "true"))
	if err != nil {
		t.Fatal(err)
	}
	_ = s
	time.Sleep(100 * time.Millisecond)
	c.Disconnect()
	pub := tc.dial(t, 1)
	for i := range 5 {
		pub.Send("/topic/news.x", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Header("persistent", "true"), gostomp.SendOpt.Receipt)
	}
	pub.Send("/topic/other", "text/plain", []byte("no"), gostomp.SendOpt.Receipt)
	c2 := tc.dial(t, 2, gostomp.ConnOpt.Header("client-id", "app"))
	s2, err := c2.Subscribe("/topic/news.#", gostomp.AckClientIndividual, gostomp.SubscribeOpt.Id("s1"), gostomp.SubscribeOpt.Header("durable", "true"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m := recv(t, s2)
		if string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", m.Body, i)
		}
		m.Conn.Ack(m)
	}
	quiet(t, s2, 300*time.Millisecond)
}

// TestClientIDAcrossNodes: a client-id is held by one connection in the
// whole cluster.
func TestClientIDAcrossNodes(t *testing.T) {
	tc := startCluster(t, 3, broker.Options{})
	tc.dial(t, 0, gostomp.ConnOpt.Header("client-id", "only"))
	client, srv := net.Pipe()
	go tc.brokers[1].Serve(newPipeTransport(srv))
	if _, err := gostomp.Connect(client, gostomp.ConnOpt.Header("client-id", "only")); err == nil {
		t.Fatal("a second connection with the same client-id was accepted on another node")
	}
}

// TestReplyAcrossNodes: a reply to a temporary queue reaches the
// requester on another node.
func TestReplyAcrossNodes(t *testing.T) {
	tc := startCluster(t, 3, broker.Options{})
	svc, _ := tc.dial(t, 1).Subscribe("/queue/svc", gostomp.AckAuto)
	req := tc.dial(t, 0)
	replies, _ := req.Subscribe("/temp-queue/replies", gostomp.AckAuto)
	if err := req.Send("/queue/svc", "text/plain", []byte("ping"), gostomp.SendOpt.Header("reply-to", "/temp-queue/replies"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	m := recv(t, svc)
	to := m.Header.Get("reply-to")
	if to == "" {
		t.Fatal("no reply-to")
	}
	if err := m.Conn.Send(to, "text/plain", []byte("pong"), gostomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, replies); string(r.Body) != "pong" {
		t.Fatalf("got %q", r.Body)
	}
}

// TestOperatorViewsAcrossNodes: any node answers for the cluster: its
// nodes, every node's connections (and kicks them), queue depths.
func TestOperatorViewsAcrossNodes(t *testing.T) {
	tc := startCluster(t, 3, broker.Options{})
	waitFor(t, func() bool { return len(tc.brokers[0].Nodes()) == 3 })
	c := tc.dial(t, 2, gostomp.ConnOpt.Header("client-id", "far"))
	var far broker.ConnectionInfo
	for _, ci := range tc.brokers[0].Connections() {
		if ci.ClientID == "far" {
			far = ci
		}
	}
	if far.Node != "n3" {
		t.Fatalf("node 1 lists the connection on node 3 as %+v", far)
	}
	pub := tc.dial(t, 1)
	for range 5 {
		pub.Send("/queue/depth", "text/plain", []byte("x"), gostomp.SendOpt.Receipt)
	}
	d, err := tc.brokers[0].Destination("/queue/depth")
	if err != nil || d.Depth != 5 {
		t.Fatalf("node 1 sees /queue/depth as %+v, %v; want depth 5", d, err)
	}
	if err := tc.brokers[0].CloseConnection(far.ID, "bye"); err != nil {
		t.Fatalf("kicking a connection on another node: %v", err)
	}
	waitFor(t, func() bool { return c.Send("/topic/x", "", nil) != nil })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// TestPeekAndPurgeAcrossNodes: an operator on any node peeks at and
// purges a queue whose messages wait in the cluster.
func TestPeekAndPurgeAcrossNodes(t *testing.T) {
	tc := startCluster(t, 2, broker.Options{})
	pub := tc.dial(t, 1)
	for i := range 3 {
		pub.Send("/queue/ops", "text/plain", []byte(fmt.Sprint(i)), gostomp.SendOpt.Receipt)
	}
	ms, err := tc.brokers[0].Peek("/queue/ops", 2)
	if err != nil || len(ms) != 2 || string(ms[0].Body) != "0" || string(ms[1].Body) != "1" {
		t.Fatalf("peek gave %d messages, %v", len(ms), err)
	}
	if n, err := tc.brokers[0].Purge("/queue/ops"); err != nil || n != 3 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if d, err := tc.brokers[1].Destination("/queue/ops"); err == nil && d.Depth != 0 {
		t.Fatalf("after the purge node 2 sees %+v", d)
	}
}

// TestWatchReportsLoss: a node that cannot keep up with another node's
// topic messages is told it lost some, rather than missing them unawares.
func TestWatchReportsLoss(t *testing.T) {
	tc := startCluster(t, 2, broker.Options{})
	lost := make(chan struct{}, 1)
	slow := func(*broker.Envelope) { time.Sleep(time.Millisecond) }
	stop, err := tc.nodes[1].WatchTopics("/topic/flood", slow, func() {
		select {
		case lost <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	time.Sleep(200 * time.Millisecond) // the interest reaches the other server
	m := &broker.Envelope{ID: "x", Destination: "/topic/flood", Body: make([]byte, 16)}
	for range watchBuffer + 1000 {
		if err := tc.nodes[0].PublishTopics([]*broker.Envelope{m}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the loss was not reported")
	}
}

// TestTopicsWithoutDurablesStoreNothing: a topic no durable subscription
// matches costs no JetStream write; one that a durable subscription
// matches is stored once for it.
func TestTopicsWithoutDurablesStoreNothing(t *testing.T) {
	tc := startCluster(t, 2, broker.Options{})
	pub := tc.dial(t, 0)
	pub.Send("/topic/plain", "text/plain", []byte("x"), gostomp.SendOpt.Receipt)
	stored := func() uint64 {
		s, err := tc.nodes[0].js.Stream(context.Background(), topicStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	if n := stored(); n != 0 {
		t.Fatalf("a topic without durable subscriptions stored %d messages", n)
	}
	c := tc.dial(t, 1, gostomp.ConnOpt.Header("client-id", "keeper"))
	if _, err := c.Subscribe("/topic/kept.*", gostomp.AckAuto, gostomp.SubscribeOpt.Id("k"), gostomp.SubscribeOpt.Header("durable", "true")); err != nil {
		t.Fatal(err)
	}
	// Frames are handled in order: once this is receipted, so is the
	// SUBSCRIBE, and every node knows of the subscription.
	c.Send("/topic/elsewhere", "text/plain", nil, gostomp.SendOpt.Receipt)
	pub.Send("/topic/kept.a", "text/plain", []byte("x"), gostomp.SendOpt.Receipt)
	pub.Send("/topic/plain", "text/plain", []byte("x"), gostomp.SendOpt.Receipt)
	if n := stored(); n != 1 {
		t.Fatalf("stored %d messages, want the one a durable subscription matches", n)
	}
}

// TestQueueNamesAcrossNodes: every character a queue name may hold, and
// empty words, travel through JetStream.
func TestQueueNamesAcrossNodes(t *testing.T) {
	tc := startCluster(t, 2, broker.Options{})
	pub := tc.dial(t, 0)
	for _, name := range []string{"/queue/a/b", "/queue/x..y", "/queue/.lead", "/queue/A-Z_0-9"} {
		s, err := tc.dial(t, 1).Subscribe(name, gostomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Send(name, "text/plain", []byte(name), gostomp.SendOpt.Receipt); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m := recv(t, s); string(m.Body) != name || m.Destination != name {
			t.Fatalf("%s: got %q at %s", name, m.Body, m.Destination)
		}
	}
}

// TestHistoryAcrossNodes: a subscriber that hops from node to node,
// resuming each time from the last message-id it saw, gets every message
// exactly once and in order while a publisher on another node goes on;
// on a wildcard over two topics, in publication order.
func TestHistoryAcrossNodes(t *testing.T) {
	tc := startCluster(t, 3, broker.Options{TopicHistory: 1000})
	pub := tc.dial(t, 0)
	const total = 600
	published := make(chan error, 1)
	go func() {
		for i := range total {
			dest := "/topic/hist.a"
			if i%2 == 1 {
				dest = "/topic/hist.b"
			}
			var opts []func(*frame.Frame) error
			if i%50 == 49 {
				opts = append(opts, gostomp.SendOpt.Receipt) // a steady pace
			}
			if err := pub.Send(dest, "text/plain", []byte(fmt.Sprint(i)), opts...); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	next, last := 0, ""
	for hop := 0; next < total; hop++ {
		c := tc.dial(t, hop%3)
		opt := gostomp.SubscribeOpt.Header("x-history", "1000")
		if last != "" {
			opt = gostomp.SubscribeOpt.Header("x-resume-after", last)
		}
		sub, err := c.Subscribe("/topic/hist.*", gostomp.AckAuto, opt)
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if next == total {
				break
			}
			m := recv(t, sub)
			if string(m.Body) != fmt.Sprint(next) || m.Header.Get("x-resume-gap") != "" {
				t.Fatalf("hop %d on node %d: got %q %v, want %d without a gap", hop, hop%3, m.Body, m.Header, next)
			}
			if m.Header.Get("message-id") != m.Header.Get("x-stream-offset") {
				t.Fatalf("message-id %q is not its position %q", m.Header.Get("message-id"), m.Header.Get("x-stream-offset"))
			}
			next++
			last = m.Header.Get("message-id")
		}
		sub.Unsubscribe()
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// Any node peeks the same history.
	for i := range 3 {
		ms, err := tc.brokers[i].Peek("/topic/hist.b", 2)
		if err != nil || len(ms) != 2 || string(ms[1].Body) != fmt.Sprint(total-1) {
			t.Fatalf("node %d peeks %v %v", i, ms, err)
		}
	}
}
