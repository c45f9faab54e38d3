package broker

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

func TestAdminView(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b, "accept-version", "1.2", "login", "alice", "client-id", "app-1")
	subscribe(c, "id", "t", "destination", "/topic/news")
	publish(c, "/queue/orders", "o1")
	publish(c, "/queue/orders", "o2", "priority", "9")
	publish(c, "/topic/news", "n1")
	c.expect(stomp.MESSAGE)

	conns := b.Connections()
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	ci := conns[0]
	if ci.User != "alice" || ci.ClientID != "app-1" || ci.Version != "1.2" || ci.Subscriptions != 1 ||
		ci.MessagesIn != 3 || ci.MessagesOut != 1 || ci.Transport != "fake" {
		t.Fatalf("connection %+v", ci)
	}

	q, err := b.Destination("/queue/orders")
	if err != nil || q.Depth != 2 || q.Type != "queue" || q.Enqueued != 2 {
		t.Fatalf("queue %+v %v", q, err)
	}
	tp, err := b.Destination("/topic/news")
	if err != nil || tp.Type != "topic" || tp.Consumers != 1 || tp.Enqueued != 1 || tp.Dequeued != 1 {
		t.Fatalf("topic %+v %v", tp, err)
	}
	if _, err := b.Destination("/queue/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing destination: %v", err)
	}
	if n := len(b.Destinations()); n != 2 {
		t.Fatalf("%d destinations", n)
	}

	peek, err := b.Peek("/queue/orders", 10)
	if err != nil || len(peek) != 2 || string(peek[0].Body) != "o2" || string(peek[1].Body) != "o1" {
		t.Fatalf("peek %+v %v", peek, err)
	}
	if q, _ := b.Destination("/queue/orders"); q.Depth != 2 {
		t.Fatal("peek consumed messages")
	}
	if n, err := b.Purge("/queue/orders"); n != 2 || err != nil {
		t.Fatalf("purge %d %v", n, err)
	}
	subscribe(c, "id", "q", "destination", "/queue/orders")
	c.expectNothing(50 * time.Millisecond)

	// Publishing from the API reaches consumers like any SEND.
	if err := b.Publish("/queue/orders", []stomp.Header{{Key: "x", Value: "y"}}, []byte("api")); err != nil {
		t.Fatal(err)
	}
	if m := c.expect(stomp.MESSAGE); string(m.Body) != "api" || m.Value("x") != "y" {
		t.Fatalf("got %q %v", m.Body, m.Headers)
	}
	if err := b.Publish("/nowhere/x", nil, nil); err == nil {
		t.Fatal("publish to an unknown prefix succeeded")
	}

	if err := b.CloseConnection(ci.ID, "closed by operator"); err != nil {
		t.Fatal(err)
	}
	c.expectError("closed by operator")
	if err := b.CloseConnection("nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestTapSeesWithoutConsuming(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	subscribe(c, "id", "q", "destination", "/queue/jobs")
	var mu sync.Mutex
	var seen []string
	stop := b.Tap("/queue/jobs", func(m Message) {
		mu.Lock()
		seen = append(seen, string(m.Body))
		mu.Unlock()
	})
	publish(c, "/queue/jobs", "a")
	publish(c, "/queue/jobs", "b")
	stop()
	publish(c, "/queue/jobs", "c")
	if got := strings.Join(drain(c), ","); got != "a,b,c" {
		t.Fatalf("consumer got %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "a,b" {
		t.Fatalf("tap saw %v", seen)
	}
}

func TestDeleteQueueDisconnectsConsumers(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	subscribe(c, "id", "q", "destination", "/queue/gone")
	publish(connect(t, b), "/topic/x", "")
	if err := b.DeleteDestination("/queue/gone"); err != nil {
		t.Fatal(err)
	}
	c.expectError("deleted")
	if _, err := b.Destination("/queue/gone"); !errors.Is(err, ErrNotFound) {
		t.Fatal("queue still there")
	}
}

func TestCounters(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	publish(c, "/queue/cnt", "a")
	publish(c, "/queue/cnt", "b")
	subscribe(c, "id", "s", "destination", "/queue/cnt", "ack", "client-individual")
	m1, m2 := c.expect(stomp.MESSAGE), c.expect(stomp.MESSAGE)
	c.send(stomp.ACK, "id", m1.Value("ack"))
	c.send(stomp.NACK, "id", m2.Value("ack"))
	r := c.expect(stomp.MESSAGE)
	c.send(stomp.ACK, "id", r.Value("ack"), "receipt", "done")
	c.expectReceipt()
	st := b.Stats()
	if st.Acked != 2 || st.Nacked != 1 || st.Redelivered != 1 {
		t.Fatalf("acked %d nacked %d redelivered %d", st.Acked, st.Nacked, st.Redelivered)
	}
	if st.FramesIn["SEND"] != 2 || st.FramesIn["ACK"] != 2 || st.FramesIn["CONNECT"] != 1 ||
		st.FramesOut["MESSAGE"] != 3 || st.FramesOut["RECEIPT"] < 4 || st.FramesOut["CONNECTED"] != 1 {
		t.Fatalf("frames in %v out %v", st.FramesIn, st.FramesOut)
	}
}
