package broker

import (
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

func storedCount(t *testing.T, st Store, queue string) int {
	n := 0
	if err := st.Scan(queue, 0, 0, func(*store.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPersistentMessagesUseTheStore(t *testing.T) {
	st := store.NewMemory()
	b, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, b)
	publish(c, "/queue/p", "kept", "persistent", "true")
	publish(c, "/queue/p", "kept too", "persistent", "true", "x-h", "v")
	publish(c, "/queue/p", "memory only")
	if n := storedCount(t, st, "/queue/p"); n != 2 {
		t.Fatalf("store holds %d messages after two persistent sends", n)
	}
	subscribe(c, "id", "s", "destination", "/queue/p", "ack", "client-individual")
	m := c.expect(stomp.MESSAGE)
	c.expect(stomp.MESSAGE) // delivered, not acked
	c.send(stomp.ACK, "id", m.Value("ack"), "receipt", "a")
	c.expectReceipt()
	b.local.writer.flush() // deletes are written in the background
	if n := storedCount(t, st, "/queue/p"); n != 1 {
		t.Fatalf("store holds %d messages after an ACK, want 1", n)
	}

	// A broker started on the same store brings the unacked one back,
	// marked as delivered before.
	b2, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	d := connect(t, b2)
	subscribe(d, "id", "s", "destination", "/queue/p")
	r := d.expect(stomp.MESSAGE)
	if string(r.Body) != "kept too" || r.Value("redelivered") != "true" || r.Value("x-h") != "v" {
		t.Fatalf("recovered %q %v", r.Body, r.Headers)
	}
	d.expectNothing(50 * time.Millisecond)
}

// lostCounts is a store whose delivery-count writes never land, as when
// the broker is killed before its background writes are made.
type lostCounts struct{ Store }

func (lostCounts) SetDeliveries([]store.DeliveryCount) error { return nil }

func TestDeliveredBeforeACrashComesBackRedelivered(t *testing.T) {
	st := store.NewMemory()
	b, err := New(Options{}, lostCounts{st})
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, b)
	publish(c, "/queue/crash", "in flight", "persistent", "true")
	subscribe(c, "id", "s", "destination", "/queue/crash", "ack", "client-individual")
	if m := c.expect(stomp.MESSAGE); m.Value("redelivered") != "" {
		t.Fatalf("first delivery marked redelivered: %v", m.Headers)
	}
	// "Restart" on what the store holds, without the lost count.
	b2, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	d := connect(t, b2)
	subscribe(d, "id", "s", "destination", "/queue/crash")
	if m := d.expect(stomp.MESSAGE); string(m.Body) != "in flight" || m.Value("redelivered") != "true" {
		t.Fatalf("after the crash got %q %v", m.Body, m.Headers)
	}
}

func TestCleanRestartFlagsOnlyWhatWasDelivered(t *testing.T) {
	st := store.NewMemory()
	b, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, b)
	publish(c, "/queue/clean", "delivered", "persistent", "true")
	publish(c, "/queue/clean", "waiting", "persistent", "true")
	subscribe(c, "id", "s", "destination", "/queue/clean", "ack", "client-individual", "prefetch-count", "1")
	c.expect(stomp.MESSAGE)
	if err := b.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	b2, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	d := connect(t, b2)
	subscribe(d, "id", "s", "destination", "/queue/clean")
	for _, want := range []struct{ body, redelivered string }{{"delivered", "true"}, {"waiting", ""}} {
		if m := d.expect(stomp.MESSAGE); string(m.Body) != want.body || m.Value("redelivered") != want.redelivered {
			t.Fatalf("got %q %v, want %q redelivered=%q", m.Body, m.Headers, want.body, want.redelivered)
		}
	}
}
