package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

func TestDurableSubscription(t *testing.T) {
	st := store.NewMemory()
	b, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	pub := connect(t, b)
	c := connect(t, b, "accept-version", "1.2", "client-id", "app")
	subscribe(c, "id", "news", "destination", "/topic/news.*", "durable", "true", "ack", "client-individual")
	publish(pub, "/topic/news.a", "live")
	m := c.expect(stomp.MESSAGE)
	if string(m.Body) != "live" || m.Value("destination") != "/topic/news.a" || m.Value("subscription") != "news" {
		t.Fatalf("got %q %v", m.Body, m.Headers)
	}
	c.send(stomp.ACK, "id", m.Value("ack"), "receipt", "a")
	c.expectReceipt()
	c.close()

	// Offline: messages wait, persistent or not.
	publish(pub, "/topic/news.b", "while away 1", "persistent", "true")
	publish(pub, "/topic/news.c", "while away 2")
	publish(pub, "/topic/other", "not matching")
	if ds := b.Durables(); len(ds) != 1 || ds[0].Pending != 2 || ds[0].Active || ds[0].Name != "app.news" {
		t.Fatalf("durables %+v", ds)
	}

	c2 := connect(t, b, "accept-version", "1.2", "client-id", "app")
	subscribe(c2, "id", "news", "destination", "/topic/news.*", "durable", "true")
	got := drain(c2)
	if strings.Join(got, ",") != "while away 1,while away 2" {
		t.Fatalf("resumed with %v", got)
	}
	// A second live subscriber to the same durable is refused.
	c3 := connect(t, b, "accept-version", "1.2", "client-id", "other")
	c3.send(stomp.SUBSCRIBE, "id", "x", "destination", "/topic/news.*", "x-queue-name", "app.news", "durable", "true")
	c3.expectError("already active")
	c2.close()

	// The persistent one survives a restart; the other does not.
	publish(pub, "/topic/news.d", "before restart", "persistent", "true")
	b2, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	c4 := connect(t, b2, "accept-version", "1.2", "client-id", "app")
	subscribe(c4, "id", "news", "destination", "/topic/news.*", "durable", "true")
	m = c4.expect(stomp.MESSAGE)
	if string(m.Body) != "before restart" || m.Value("destination") != "/topic/news.d" {
		t.Fatalf("after restart got %q %v", m.Body, m.Headers)
	}
	// UNSUBSCRIBE with durable:true deletes it and what it holds.
	c4.send(stomp.UNSUBSCRIBE, "id", "news", "durable", "true", "receipt", "u")
	c4.expectReceipt()
	if len(b2.Durables()) != 0 {
		t.Fatal("durable subscription survived UNSUBSCRIBE durable:true")
	}
	subs, _ := st.Subscriptions()
	qs, _ := st.Queues()
	if len(subs) != 0 || len(qs) != 0 {
		t.Fatalf("store still holds %v %v", subs, qs)
	}
}

func TestDurableNeedsAName(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	c.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/x", "durable", "true")
	c.expectError("client-id")
}

func TestQueuePagesBeyondItsWindow(t *testing.T) {
	st := store.NewMemory()
	b, err := New(Options{QueueMemoryBytes: 64 << 10}, st)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, b)
	body := strings.Repeat("z", 1000)
	const n = 500 // ~500 KB, eight windows
	for i := range n {
		publish(c, "/queue/big", fmt.Sprintf("%d:%s", i, body), "persistent", "true")
	}
	q := b.local.queue("/queue/big", false)
	q.mu.Lock()
	mem, paged := q.memBytes, q.paged
	q.mu.Unlock()
	if mem > 64<<10 || paged < n/2 {
		t.Fatalf("queue holds %d bytes in memory with %d paged out", mem, paged)
	}
	if d, _ := b.Destination("/queue/big"); d.Depth != n {
		t.Fatalf("depth %d, want %d", d.Depth, n)
	}
	// A restart reads back only a window, and drains in order.
	b2, err := New(Options{QueueMemoryBytes: 64 << 10}, st)
	if err != nil {
		t.Fatal(err)
	}
	d := connect(t, b2)
	subscribe(d, "id", "s", "destination", "/queue/big", "ack", "client", "prefetch-count", "50")
	for i := range n {
		m := d.expect(stomp.MESSAGE)
		if !strings.HasPrefix(string(m.Body), fmt.Sprintf("%d:", i)) {
			t.Fatalf("message %d is %.10q", i, m.Body)
		}
		if i%50 == 49 {
			d.send(stomp.ACK, "id", m.Value("ack"))
		}
	}
	d.expectNothing(50 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		qs, _ := st.Queues()
		if len(qs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store still holds %+v after every message was acked", qs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStoreFullRefusesPersistentSends(t *testing.T) {
	b := newBroker(t, Options{MaxStoreBytes: 100})
	c := connect(t, b)
	publish(c, "/queue/s", strings.Repeat("a", 200), "persistent", "true")
	publish(c, "/queue/s", "memory is fine")
	c.sendBody(stomp.SEND, "one too many", "destination", "/queue/s", "persistent", "true", "receipt", "r9")
	f := c.expectError("store is full")
	if f.Value("receipt-id") != "r9" {
		t.Fatalf("ERROR without receipt-id: %v", f.Headers)
	}
}
