package broker

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
	"github.com/stampede-mq/stampede/store/bolt"
)

// raceEnabled reports whether the test binary was built with -race, which
// makes the large durability runs several times slower.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func openBolt(tb testing.TB, dir string) *bolt.Store {
	tb.Helper()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// countingStore counts the store calls the broker makes, to show how its
// writes are batched and how much a recovery reads.
type countingStore struct {
	Store
	appends, deletes, deleted, setDeliveries, scanned atomic.Int64
}

func (c *countingStore) Append(recs []*store.Record) error {
	c.appends.Add(1)
	return c.Store.Append(recs)
}

func (c *countingStore) Delete(queue string, seqs ...uint64) error {
	c.deletes.Add(1)
	c.deleted.Add(int64(len(seqs)))
	return c.Store.Delete(queue, seqs...)
}

func (c *countingStore) SetDeliveries(counts []store.DeliveryCount) error {
	c.setDeliveries.Add(int64(len(counts)))
	return c.Store.SetDeliveries(counts)
}

func (c *countingStore) Scan(queue string, after uint64, limit int, fn func(*store.Record) error) error {
	return c.Store.Scan(queue, after, limit, func(r *store.Record) error {
		c.scanned.Add(1)
		return fn(r)
	})
}

func (c *countingStore) String() string {
	return fmt.Sprintf("%d appends, %d deletes of %d messages, %d delivery-count updates, %d records read",
		c.appends.Load(), c.deletes.Load(), c.deleted.Load(), c.setDeliveries.Load(), c.scanned.Load())
}

// heapWatch records the largest live heap seen. Each sample collects
// first, so it measures what is retained, not garbage not yet swept.
type heapWatch struct {
	max     uint64
	samples int
}

func (h *heapWatch) sample() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.max = max(h.max, ms.HeapAlloc)
	h.samples++
	return ms.HeapAlloc
}

const mib = 1 << 20

// seqBody is a message body of size bytes that starts with its sequence
// number, so a consumer can check order from the body alone.
func seqBody(seq, size int) []byte {
	b := make([]byte, size)
	n := copy(b, strconv.Itoa(seq)+":")
	for i := n; i < size; i++ {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func bodySeq(body []byte) (int, error) {
	i := bytes.IndexByte(body, ':')
	if i < 0 {
		return 0, fmt.Errorf("body %.20q has no sequence", body)
	}
	return strconv.Atoi(string(body[:i]))
}

// fillQueue publishes n persistent messages of size bytes to dest in
// batches, the way a transaction's COMMIT does: one store write per batch.
// It calls every(i) after each batch with the number published so far.
func fillQueue(tb testing.TB, b *Broker, dest string, n, size, batch int, every func(int)) {
	tb.Helper()
	hdrs := []stomp.Header{{Key: "destination", Value: dest}, {Key: "persistent", Value: "true"}}
	now := time.Now()
	ms := make([]*message, 0, batch)
	for i := 0; i < n; {
		ms = ms[:0]
		for ; len(ms) < batch && i < n; i++ {
			f := &stomp.Frame{Command: stomp.SEND, Headers: hdrs, Body: seqBody(i, size)}
			ms = append(ms, newMessage(b.ids.next(), dest, f, now))
		}
		if err := b.router.publish(nil, ms); err != nil {
			tb.Fatalf("publishing message %d: %v", i, err)
		}
		clear(ms)
		if every != nil {
			every(i)
		}
	}
}

// drainResult is what drainQueue saw.
type drainResult struct {
	err      error
	received int
}

// startDrain subscribes consumers to dest with client-ack subscriptions
// that consume n messages in all, each acking cumulatively every ackEvery
// messages, and returns a function that waits for them. Each consumer must
// see the sequence numbers rise (queue order), and together they must see
// every one of 0..n-1 exactly once. progress counts messages received, for
// the caller to sample the heap while they run.
func startDrain(tb testing.TB, b *Broker, dest string, n, consumers, prefetch, ackEvery int, progress *atomic.Int64) (wait func() error) {
	seen := make([]atomic.Bool, n)
	errc := make(chan error, consumers)
	var wg sync.WaitGroup
	for k := range consumers {
		c := connect(tb, b)
		// The fake transport keeps a copy of every frame for tests that
		// look at raw bytes; nobody reads them here, so drop them lest
		// they count as broker heap.
		stopRaw := make(chan struct{})
		go func() {
			for {
				select {
				case <-c.ft.raw:
				case <-stopRaw:
					return
				}
			}
		}()
		tb.Cleanup(func() { close(stopRaw) })
		subscribe(c, "id", "d", "destination", dest, "ack", "client", "prefetch-count", strconv.Itoa(prefetch))
		wg.Add(1)
		go func() {
			defer wg.Done()
			last, unacked := -1, 0
			var lastAck string
			lastMsg := time.Now()
			for int(progress.Load()) < n {
				f := c.next(20 * time.Millisecond)
				if f == nil {
					if time.Since(lastMsg) > 20*time.Second {
						errc <- fmt.Errorf("consumer %d: no message for 20s after %d of %d in all", k, progress.Load(), n)
						return
					}
					continue
				}
				lastMsg = time.Now()
				if f.Command != stomp.MESSAGE {
					errc <- fmt.Errorf("consumer %d: got %s %v", k, f.Command, f.Headers)
					return
				}
				seq, err := bodySeq(f.Body)
				if err != nil || seq <= last || seq >= n {
					errc <- fmt.Errorf("consumer %d: message %.20q after %d: out of order (%v)", k, f.Body, last, err)
					return
				}
				if seen[seq].Swap(true) {
					errc <- fmt.Errorf("consumer %d: message %d delivered twice", k, seq)
					return
				}
				last, lastAck = seq, f.Value("ack")
				if unacked++; unacked == ackEvery {
					c.send(stomp.ACK, "id", lastAck)
					unacked = 0
				}
				progress.Add(1)
			}
			if unacked > 0 {
				c.send(stomp.ACK, "id", lastAck, "receipt", "last")
				if f := c.next(20 * time.Second); f == nil || f.Command != stomp.RECEIPT {
					errc <- fmt.Errorf("consumer %d: no receipt for its last ACK: %v", k, f)
				}
			}
		}()
	}
	return func() error {
		wg.Wait()
		close(errc)
		return <-errc
	}
}

// waitStoreEmpty waits until the store holds no messages: ACKed messages
// are deleted after the ACK's effects run.
func waitStoreEmpty(tb testing.TB, st Store) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		qs, err := st.Queues()
		if err != nil {
			tb.Fatal(err)
		}
		if len(qs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("store still holds %+v after every message was acked", qs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deepRun is what fillAndDrain measured.
type deepRun struct {
	fill, drain time.Duration
	fillHeap    uint64 // largest live heap while filling
	heap        uint64 // largest live heap overall
	samples     int
}

// fillAndDrain fills dest with n persistent messages of size bytes, 1 MiB
// per store write, then drains them in order through one client-ack
// consumer, sampling the live heap samples times in each phase. The
// consumer holds about 1 MiB unacked (at most 1000 messages) and acks
// half of that at a time.
func fillAndDrain(tb testing.TB, b *Broker, st Store, dest string, n, size, samples int) deepRun {
	tb.Helper()
	var r deepRun
	var hw heapWatch
	every := max(n/samples, 1)
	next := every
	start := time.Now()
	fillQueue(tb, b, dest, n, size, max(mib/size, 1), func(i int) {
		if i >= next {
			hw.sample()
			next += every
		}
	})
	r.fill = time.Since(start)
	r.fillHeap = hw.max
	if d, _ := b.Destination(dest); d.Depth != n {
		tb.Fatalf("queue depth %d after filling, want %d", d.Depth, n)
	}

	start = time.Now()
	var progress atomic.Int64
	prefetch := min(1000, mib/size)
	wait := startDrain(tb, b, dest, n, 1, prefetch, max(prefetch/2, 1), &progress)
	done := make(chan error, 1)
	go func() { done <- wait() }()
	next = every
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for draining := true; draining; {
		select {
		case err := <-done:
			if err != nil {
				tb.Fatal(err)
			}
			draining = false
		case <-tick.C:
			if int(progress.Load()) >= next {
				hw.sample()
				next += every
			}
		}
	}
	// Drained means gone from the store too, not just delivered.
	waitStoreEmpty(tb, st)
	r.drain = time.Since(start)
	r.heap, r.samples = hw.max, hw.samples
	return r
}

// TestQueueLargerThanMemory fills a queue with far more persistent
// messages than its memory window and drains it in order, sampling the
// live heap as it goes: paging must keep the heap flat however deep the
// queue. It runs 256 MiB of 1 KiB messages, sixteen memory windows deep,
// with the heap under 64 MiB (about 20 s with the race detector).
func TestQueueLargerThanMemory(t *testing.T) {
	total, size, heapLimit := 256*mib, 1024, uint64(64*mib)
	n := total / size
	st := &countingStore{Store: openBolt(t, t.TempDir())}
	b, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	var hw heapWatch
	base := hw.sample()
	r := fillAndDrain(t, b, st, "/queue/deep", n, size, 16)
	t.Logf("%d MiB in %d messages of %d bytes: fill %v (%.0f MiB/s), drain %v (%.0f msgs/s); live heap %.1f MiB at start, at most %.1f MiB filling and %.1f MiB overall (%d samples, limit %d MiB)",
		total/mib, n, size, r.fill.Round(time.Millisecond), float64(total)/mib/r.fill.Seconds(),
		r.drain.Round(time.Millisecond), float64(n)/r.drain.Seconds(),
		float64(base)/mib, float64(r.fillHeap)/mib, float64(r.heap)/mib, r.samples, heapLimit/mib)
	t.Logf("store calls: %v", st)
	if r.heap >= heapLimit {
		t.Fatalf("heap reached %.1f MiB, limit %d MiB", float64(r.heap)/mib, heapLimit/mib)
	}
}

// TestRecoveryOfAMillionMessages stores 1 M small messages in four
// queues, reopens the store and times what a restart does before the
// first delivery: New (which reads each queue's first window back) and a
// consumer's first MESSAGE. Recovery must take the queue sizes from the
// store's counts and read only a window of each queue, so both the records
// read and the heap stay a small fraction of what is stored.
func TestRecoveryOfAMillionMessages(t *testing.T) {
	const queues, total, size = 4, 1_000_000, 32
	const window = 4 * mib
	dir := t.TempDir()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const batch = 10_000
	now := time.Now().UnixMilli()
	recs := make([]*store.Record, batch)
	for i := 0; i < total; i += batch {
		for j := range recs {
			seq := i + j
			recs[j] = &store.Record{
				Queue: fmt.Sprintf("/queue/recover.%d", seq%queues), ID: "m-" + strconv.Itoa(seq),
				Headers: [][2]string{{"persistent", "true"}}, Body: seqBody(seq/queues, size),
				Priority: 4, Timestamp: now,
			}
		}
		if err := st.Append(recs); err != nil {
			t.Fatal(err)
		}
	}
	clear(recs)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stored %d messages of %d bytes in %d queues in %v", total, size, queues, time.Since(start).Round(time.Millisecond))

	var hw heapWatch
	base := hw.sample()
	start = time.Now()
	cs := &countingStore{Store: openBolt(t, dir)}
	opened := time.Since(start)
	b, err := New(Options{QueueMemoryBytes: window}, cs)
	if err != nil {
		t.Fatal(err)
	}
	recovered := time.Since(start)
	read := cs.scanned.Load()
	qs := b.Stats().Queues
	if len(qs) != queues {
		t.Fatalf("recovered %d queues, want %d", len(qs), queues)
	}
	for _, q := range qs {
		if q.Depth != total/queues {
			t.Errorf("%s has depth %d after recovery, want %d", q.Name, q.Depth, total/queues)
		}
	}
	c := connect(t, b)
	c.send(stomp.SUBSCRIBE, "id", "s", "destination", "/queue/recover.3", "ack", "client")
	m := c.expect(stomp.MESSAGE)
	first := time.Since(start)
	if seq, err := bodySeq(m.Body); err != nil || seq != 0 {
		t.Fatalf("first message after recovery is %.20q, want sequence 0", m.Body)
	}
	heap := hw.sample()
	// Reading every record would take hundreds of MiB; a window per queue
	// (its nominal size understates small messages, hence twice) is what
	// may stay.
	heapLimit := uint64(queues*2*window + 8*mib)
	t.Logf("recovery of %d messages: open %v, New %v, first delivery %v; %d records read; heap %.1f MiB before, %.1f MiB after (limit %d MiB)",
		total, opened.Round(time.Millisecond), recovered.Round(time.Millisecond), first.Round(time.Millisecond),
		read, float64(base)/mib, float64(heap)/mib, heapLimit/mib)
	if read > total/10 {
		t.Errorf("recovery read %d of %d records", read, total)
	}
	if heap >= heapLimit {
		t.Errorf("heap after recovery is %.1f MiB, limit %d MiB: recovery keeps too much", float64(heap)/mib, heapLimit/mib)
	}
}
