package broker

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// crashStore is a store a test can kill between any two writes: the
// write that meets the kill, and every one after it, never lands, as if
// the process had died just before it. Those writes wait until release
// and then fail, so nothing the dead broker does afterwards depends on
// them. A broker started on Store sees what the store held at the kill.
type crashStore struct {
	Store

	mu     sync.Mutex
	writes int    // writes that landed
	killAt int    // kill at this write (1-based); 0: not by count
	killOn string // kill at the next write of this kind; "": not by kind
	dead   bool
	died   chan struct{} // closed at the kill
	ended  chan struct{} // closed by release
	once   sync.Once
}

var errKilled = errors.New("the store died with its process")

func newCrashStore() *crashStore {
	return &crashStore{Store: store.NewMemory(), died: make(chan struct{}), ended: make(chan struct{})}
}

// killAtNext kills the store at its next write of kind op.
func (c *crashStore) killAtNext(op string) {
	c.mu.Lock()
	c.killOn = op
	c.mu.Unlock()
}

// kill kills the store now, if a write has not already.
func (c *crashStore) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dead {
		c.dead = true
		close(c.died)
	}
}

// release lets the writes held since the kill fail, so the dead broker's
// goroutines can end with the test.
func (c *crashStore) release() { c.once.Do(func() { close(c.ended) }) }

// write lets a write of kind op through, or kills the store there.
func (c *crashStore) write(op string) error {
	c.mu.Lock()
	if !c.dead && (op == c.killOn || c.writes+1 == c.killAt) {
		c.dead = true
		close(c.died)
	}
	dead := c.dead
	if !dead {
		c.writes++
	}
	c.mu.Unlock()
	if dead {
		<-c.ended
		return errKilled
	}
	return nil
}

// landed counts the writes that reached the store.
func (c *crashStore) landed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

func (c *crashStore) Append(recs []*store.Record) error {
	if err := c.write("Append"); err != nil {
		return err
	}
	return c.Store.Append(recs)
}

func (c *crashStore) Delete(queue string, seqs ...uint64) error {
	if err := c.write("Delete"); err != nil {
		return err
	}
	return c.Store.Delete(queue, seqs...)
}

func (c *crashStore) SetDeliveries(counts []store.DeliveryCount) error {
	if err := c.write("SetDeliveries"); err != nil {
		return err
	}
	return c.Store.SetDeliveries(counts)
}

func (c *crashStore) DeleteQueue(queue string) error {
	if err := c.write("DeleteQueue"); err != nil {
		return err
	}
	return c.Store.DeleteQueue(queue)
}

func (c *crashStore) SetDispatched(queue string, seq uint64) error {
	if err := c.write("SetDispatched"); err != nil {
		return err
	}
	return c.Store.SetDispatched(queue, seq)
}

func (c *crashStore) PutSubscription(sub store.Subscription) error {
	if err := c.write("PutSubscription"); err != nil {
		return err
	}
	return c.Store.PutSubscription(sub)
}

func (c *crashStore) DeleteSubscription(name string) error {
	if err := c.write("DeleteSubscription"); err != nil {
		return err
	}
	return c.Store.DeleteSubscription(name)
}

// A queue whose stored messages have all been acked is empty in the store,
// and the store forgets its dispatch mark with its last record. A message
// stored after that must not go out under the mark the queue remembers.
func TestRepeatAfterTheQueueEmptiedIsFlagged(t *testing.T) {
	cs := newCrashStore()
	defer cs.release()
	b, err := New(Options{}, cs)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, b)
	subscribe(c, "id", "s", "destination", "/queue/q", "ack", "client-individual")
	publish(c, "/queue/q", "first", "persistent", "true")
	m := c.expect(stomp.MESSAGE)
	c.send(stomp.ACK, "id", m.Value("ack"), "receipt", "a")
	c.expectReceipt() // the store holds nothing now
	// The delivery count written after the next delivery never lands.
	cs.killAtNext("SetDeliveries")
	publish(c, "/queue/q", "second", "persistent", "true")
	if m := c.expect(stomp.MESSAGE); string(m.Body) != "second" {
		t.Fatalf("got %q, want second", m.Body)
	}
	<-cs.died

	b2, err := New(Options{}, cs.Store)
	if err != nil {
		t.Fatal(err)
	}
	d := connect(t, b2)
	subscribe(d, "id", "s", "destination", "/queue/q")
	if m := d.expect(stomp.MESSAGE); string(m.Body) != "second" || m.Value("redelivered") != "true" {
		t.Fatalf("after the crash got %q %v, want second with redelivered:true", m.Body, m.Headers)
	}
}

// crashLife is what a client saw of one broker, up to its store's death.
type crashLife struct {
	c     *client
	cs    *crashStore
	seen  map[string]bool // bodies delivered
	early []*stomp.Frame  // MESSAGEs that overtook an awaited RECEIPT
}

// next returns the next frame, or nil once the store has died and the
// frame it waits for may never come.
func (l *crashLife) next() *stomp.Frame {
	select {
	case f := <-l.c.ft.out:
		if f.Command == stomp.MESSAGE {
			l.seen[string(f.Body)] = true
		}
		return f
	case <-l.cs.died:
		return nil
	}
}

// await reads frames until a MESSAGE (receipt "") or the RECEIPT named
// arrives (true), or the store dies (false).
func (l *crashLife) await(receipt string) (*stomp.Frame, bool) {
	if receipt == "" && len(l.early) > 0 {
		m := l.early[0]
		l.early = l.early[1:]
		return m, true
	}
	for {
		f := l.next()
		switch {
		case f == nil:
			return nil, false
		case f.Command == stomp.ERROR:
			l.c.t.Fatalf("ERROR %v", f.Headers)
		case receipt == "" && f.Command == stomp.MESSAGE:
			return f, true
		case receipt != "" && f.Command == stomp.RECEIPT && f.Value("receipt-id") == receipt:
			return f, true
		case f.Command == stomp.MESSAGE:
			l.early = append(l.early, f)
		}
	}
}

// crashScenario drives a consumer through deliveries, acks with and
// without receipts, a NACK and a queue that empties and fills again,
// until the store dies or the scenario ends.
func crashScenario(l *crashLife) {
	c := l.c
	c.send(stomp.SUBSCRIBE, "id", "s", "destination", "/queue/q", "ack", "client-individual", "prefetch-count", "2", "receipt", "sub")
	if _, ok := l.await("sub"); !ok {
		return
	}
	steps := []struct{ body, ack string }{
		{"m1", "receipt"}, {"m2", "plain"}, {"m3", "nack"}, {"m3", "receipt"}, {"m4", "plain"}, {"m5", "receipt"},
	}
	for i, st := range steps {
		if i == 0 || steps[i-1].body != st.body {
			c.sendBody(stomp.SEND, st.body, "destination", "/queue/q", "persistent", "true", "receipt", "p-"+st.body)
			if _, ok := l.await("p-" + st.body); !ok {
				return
			}
		}
		m, ok := l.await("")
		if !ok {
			return
		}
		switch st.ack {
		case "nack":
			c.send(stomp.NACK, "id", m.Value("ack"))
		case "plain":
			c.send(stomp.ACK, "id", m.Value("ack"))
		default:
			id := fmt.Sprint("a", i)
			c.send(stomp.ACK, "id", m.Value("ack"), "receipt", id)
			if _, ok := l.await(id); !ok {
				return
			}
		}
	}
}

// TestEveryCrashPointFlagsRepeats kills the store at each of the writes a
// short consumer session makes, in turn, and restarts on what it held:
// every message the first broker delivered that the second delivers again
// must carry redelivered:true.
func TestEveryCrashPointFlagsRepeats(t *testing.T) {
	run := func(t *testing.T, killAt int) (writes int) {
		cs := newCrashStore()
		cs.killAt = killAt
		defer cs.release()
		b, err := New(Options{}, cs)
		if err != nil {
			t.Fatal(err)
		}
		life := &crashLife{c: connect(t, b), cs: cs, seen: map[string]bool{}}
		crashScenario(life)
		flushed := make(chan struct{})
		go func() { b.local.writer.flush(); close(flushed) }()
		select {
		case <-flushed:
		case <-cs.died:
		}
		if killAt == 0 {
			return cs.landed()
		}
		// Background writes vary a little between runs; a run that
		// made fewer dies at its end.
		cs.kill()
		b2, err := New(Options{}, cs.Store)
		if err != nil {
			t.Fatal(err)
		}
		d := connect(t, b2)
		subscribe(d, "id", "s", "destination", "/queue/q") // its MESSAGEs come first
		var again []*stomp.Frame
		for m := d.next(0); m != nil; m = d.next(0) {
			again = append(again, m)
		}
		// What the first broker sent after the kill was still sent
		// before the process died.
		for len(life.c.ft.out) > 0 {
			life.next()
		}
		for _, m := range again {
			if life.seen[string(m.Body)] && m.Value("redelivered") != "true" {
				t.Errorf("killed at write %d: %s delivered again without redelivered:true", killAt, m.Body)
			}
		}
		return 0
	}
	writes := run(t, 0)
	if writes < 10 {
		t.Fatalf("the scenario made only %d writes", writes)
	}
	for k := 1; k <= writes; k++ {
		t.Run(fmt.Sprint("write", k), func(t *testing.T) { run(t, k) })
	}
}
