// Package storetest is the behavioural contract of a message store: one
// suite that every implementation runs from its own tests, so that the
// broker may rely on what it states whichever store it is given.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/stampede-mq/stampede/store"
)

// Store is what the suite exercises: the calls the broker makes on its
// message store. Implementations must be safe for concurrent use; Append
// must not return until the records are durable, and concurrent Appends
// may share one write to disk.
type Store interface {
	// Append stores records and sets their Seq fields, increasing within
	// each queue in the order given.
	Append(recs []*store.Record) error
	// Delete removes records; missing ones are not an error.
	Delete(queue string, seqs ...uint64) error
	// SetDeliveries records new delivery counts, of records in any
	// queues, in one write; a later count for the same record wins, and
	// missing records are not an error.
	SetDeliveries(counts []store.DeliveryCount) error
	// Queues lists the queues that hold records, with their sizes,
	// without reading the records.
	Queues() ([]store.QueueInfo, error)
	// Scan calls fn for up to limit records of queue with Seq > after, in
	// Seq order (limit <= 0: all). Records are the caller's to keep.
	Scan(queue string, after uint64, limit int, fn func(*store.Record) error) error
	// DeleteQueue removes every record of queue, and its dispatch mark.
	DeleteQueue(queue string) error
	// SetDispatched durably sets queue's dispatch mark to seq. It goes
	// with the queue's records: a queue left empty forgets it.
	SetDispatched(queue string, seq uint64) error
	// PutSubscription creates or replaces a durable subscription.
	PutSubscription(sub store.Subscription) error
	// DeleteSubscription removes a durable subscription (not its queue).
	DeleteSubscription(name string) error
	// Subscriptions lists the durable subscriptions.
	Subscriptions() ([]store.Subscription, error)
	// Size reports the bytes the store occupies.
	Size() (int64, error)
	// Close releases the store; every later call returns store.ErrClosed.
	Close() error
}

// Run runs every contract test as a subtest of t, each against a fresh,
// empty store that open returns; open arranges for its cleanup.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, s Store)
	}{
		{"AppendScan", testAppendScan},
		{"LongScan", testLongScan},
		{"Fields", testFields},
		{"Copies", testCopies},
		{"Delete", testDelete},
		{"SetDeliveries", testSetDeliveries},
		{"Queues", testQueues},
		{"DeleteQueue", testDeleteQueue},
		{"Subscriptions", testSubscriptions},
		{"Close", testClose},
		{"Concurrent", testConcurrent},
		{"DispatchMark", testDispatchMark},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, open(t)) })
	}
}

// NewRecord returns a record of queue with id and body, the only fields
// most tests care about.
func NewRecord(queue, id, body string) *store.Record {
	return &store.Record{Queue: queue, ID: id, Body: []byte(body)}
}

// ScanAll returns the records Scan hands out, failing t on an error.
func ScanAll(t testing.TB, s Store, queue string, after uint64, limit int) []*store.Record {
	t.Helper()
	var got []*store.Record
	if err := s.Scan(queue, after, limit, func(r *store.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatalf("Scan(%q, %d, %d): %v", queue, after, limit, err)
	}
	return got
}

// IDs returns the records' IDs, in order.
func IDs(recs []*store.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// MustQueues returns what Queues lists, failing t on an error.
func MustQueues(t testing.TB, s Store) []store.QueueInfo {
	t.Helper()
	qs, err := s.Queues()
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// SameRecord compares records treating nil and empty slices alike.
func SameRecord(a, b *store.Record) bool {
	return a.Seq == b.Seq && a.Queue == b.Queue && a.ID == b.ID && slices.Equal(a.Headers, b.Headers) &&
		bytes.Equal(a.Body, b.Body) && a.Priority == b.Priority && a.Expires == b.Expires &&
		a.Timestamp == b.Timestamp && a.Deliveries == b.Deliveries
}

func testAppendScan(t *testing.T, s Store) {
	batch := []*store.Record{NewRecord("/queue/a", "a1", "x"), NewRecord("/queue/b", "b1", "y"), NewRecord("/queue/a", "a2", "z")}
	if err := s.Append(batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]*store.Record{NewRecord("/queue/a", "a3", "w")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(nil); err != nil {
		t.Fatal("empty append:", err)
	}
	got := ScanAll(t, s, "/queue/a", 0, 0)
	if !slices.Equal(IDs(got), []string{"a1", "a2", "a3"}) {
		t.Fatalf("queue a holds %v", IDs(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("Seq not increasing: %d then %d", got[i-1].Seq, got[i].Seq)
		}
	}
	if got[0].Seq != batch[0].Seq || got[1].Seq != batch[2].Seq || batch[1].Seq == 0 {
		t.Fatalf("Append set Seq %d %d %d, Scan gives %d %d", batch[0].Seq, batch[1].Seq, batch[2].Seq, got[0].Seq, got[1].Seq)
	}
	for _, r := range got {
		if r.Queue != "/queue/a" {
			t.Fatalf("record of queue a says queue %q", r.Queue)
		}
	}
	if got := ScanAll(t, s, "/queue/a", got[0].Seq, 0); !slices.Equal(IDs(got), []string{"a2", "a3"}) {
		t.Fatalf("after first: %v", IDs(got))
	}
	if got := ScanAll(t, s, "/queue/a", 0, 2); !slices.Equal(IDs(got), []string{"a1", "a2"}) {
		t.Fatalf("limit 2: %v", IDs(got))
	}
	if got := ScanAll(t, s, "/queue/a", got[2].Seq, 0); len(got) != 0 {
		t.Fatalf("after last: %v", IDs(got))
	}
	if got := ScanAll(t, s, "/queue/a", math.MaxUint64, 0); len(got) != 0 {
		t.Fatalf("after max: %v", IDs(got))
	}
	if got := ScanAll(t, s, "/queue/none", 0, 0); len(got) != 0 {
		t.Fatalf("missing queue: %v", IDs(got))
	}
	stop := errors.New("stop")
	calls := 0
	err := s.Scan("/queue/a", 0, 0, func(*store.Record) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Scan returned %v after %d calls, want fn's error after 1", err, calls)
	}
}

func testLongScan(t *testing.T, s Store) {
	const n = 1500 // more than one of Bolt's read chunks
	var recs []*store.Record
	for i := range n {
		recs = append(recs, NewRecord("/queue/long", fmt.Sprint(i), fmt.Sprint("body", i)))
	}
	if err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
	got := ScanAll(t, s, "/queue/long", 0, 0)
	if len(got) != n {
		t.Fatalf("scanned %d of %d", len(got), n)
	}
	for i, r := range got {
		if r.ID != fmt.Sprint(i) || r.Seq != recs[i].Seq {
			t.Fatalf("record %d is %q seq %d, want seq %d", i, r.ID, r.Seq, recs[i].Seq)
		}
	}
	if got := ScanAll(t, s, "/queue/long", recs[99].Seq, 1000); len(got) != 1000 || got[0].ID != "100" || got[999].ID != "1099" {
		t.Fatalf("limit 1000 after 100: %d records, %s..%s", len(got), got[0].ID, got[len(got)-1].ID)
	}
}

func testFields(t *testing.T, s Store) {
	in := &store.Record{
		Queue:      "/queue/f",
		ID:         "id:1",
		Headers:    [][2]string{{"content-type", "text/plain"}, {"", ""}, {"k", "v1"}, {"k", "v2\x00\n"}},
		Body:       []byte{0, 1, 2, 255, 0},
		Priority:   9,
		Expires:    1700000000123,
		Timestamp:  -5,
		Deliveries: math.MaxUint32,
	}
	empty := &store.Record{Queue: "/queue/f"}
	if err := s.Append([]*store.Record{in, empty}); err != nil {
		t.Fatal(err)
	}
	got := ScanAll(t, s, "/queue/f", 0, 0)
	if len(got) != 2 {
		t.Fatalf("%d records", len(got))
	}
	if !SameRecord(got[0], in) {
		t.Fatalf("got %+v\nwant %+v", got[0], in)
	}
	if !SameRecord(got[1], empty) {
		t.Fatalf("got %+v\nwant %+v", got[1], empty)
	}
}

func testCopies(t *testing.T, s Store) {
	r := &store.Record{Queue: "/queue/c", ID: "1", Body: []byte("body"), Headers: [][2]string{{"k", "v"}}}
	if err := s.Append([]*store.Record{r}); err != nil {
		t.Fatal(err)
	}
	r.Body[0] = 'X'
	r.Headers[0][1] = "changed"
	r.ID = "changed"
	got := ScanAll(t, s, "/queue/c", 0, 0)[0]
	if string(got.Body) != "body" || got.Headers[0][1] != "v" || got.ID != "1" {
		t.Fatalf("store shares the appended record: %+v", got)
	}
	got.Body[0] = 'Y'
	got.Headers[0][1] = "changed"
	got.Deliveries = 7
	again := ScanAll(t, s, "/queue/c", 0, 0)[0]
	if string(again.Body) != "body" || again.Headers[0][1] != "v" || again.Deliveries != 0 {
		t.Fatalf("store shares the scanned record: %+v", again)
	}
}

func testDelete(t *testing.T, s Store) {
	recs := []*store.Record{NewRecord("/queue/d", "1", "a"), NewRecord("/queue/d", "2", "bb"), NewRecord("/queue/d", "3", "ccc")}
	if err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("/queue/d", recs[1].Seq, recs[1].Seq+1000); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("/queue/d", recs[1].Seq); err != nil {
		t.Fatal("deleting again:", err)
	}
	if err := s.Delete("/queue/missing", 1, 2); err != nil {
		t.Fatal("deleting from a missing queue:", err)
	}
	if err := s.Delete("/queue/d"); err != nil {
		t.Fatal("deleting nothing:", err)
	}
	// A Seq of another queue names nothing here.
	if err := s.Append([]*store.Record{NewRecord("/queue/other", "o", "o")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("/queue/d", 0); err != nil {
		t.Fatal(err)
	}
	if got := IDs(ScanAll(t, s, "/queue/d", 0, 0)); !slices.Equal(got, []string{"1", "3"}) {
		t.Fatalf("after delete: %v", got)
	}
	if qs := MustQueues(t, s); !slices.Equal(qs, []store.QueueInfo{{Name: "/queue/d", Count: 2, Bytes: 4}, {Name: "/queue/other", Count: 1, Bytes: 1}}) {
		t.Fatalf("queues %v", qs)
	}
	if err := s.Delete("/queue/d", recs[0].Seq, recs[2].Seq); err != nil {
		t.Fatal(err)
	}
	if qs := MustQueues(t, s); !slices.Equal(qs, []store.QueueInfo{{Name: "/queue/other", Count: 1, Bytes: 1}}) {
		t.Fatalf("an emptied queue is still listed: %v", qs)
	}
	// An emptied queue takes records again, after the old ones.
	r := NewRecord("/queue/d", "4", "dddd")
	if err := s.Append([]*store.Record{r}); err != nil {
		t.Fatal(err)
	}
	if r.Seq <= recs[2].Seq {
		t.Fatalf("Seq went back from %d to %d", recs[2].Seq, r.Seq)
	}
}

func testSetDeliveries(t *testing.T, s Store) {
	recs := []*store.Record{NewRecord("/queue/s", "1", "a"), NewRecord("/queue/s", "2", "b"), NewRecord("/queue/t", "3", "c")}
	if err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeliveries([]store.DeliveryCount{{Queue: "/queue/s", Seq: recs[1].Seq, N: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeliveries([]store.DeliveryCount{{Queue: "/queue/s", Seq: recs[1].Seq + 100, N: 3}}); err != nil {
		t.Fatal("missing record:", err)
	}
	if err := s.SetDeliveries([]store.DeliveryCount{{Queue: "/queue/none", Seq: 1, N: 3}}); err != nil {
		t.Fatal("missing queue:", err)
	}
	if err := s.SetDeliveries(nil); err != nil {
		t.Fatal("no counts:", err)
	}
	got := ScanAll(t, s, "/queue/s", 0, 0)
	if got[0].Deliveries != 0 || got[1].Deliveries != 3 || string(got[1].Body) != "b" {
		t.Fatalf("deliveries %d %d, body %q", got[0].Deliveries, got[1].Deliveries, got[1].Body)
	}
	// One call may span queues, name the same record twice (the later
	// count wins) and name records that are not there.
	err := s.SetDeliveries([]store.DeliveryCount{
		{Queue: "/queue/s", Seq: recs[0].Seq, N: 1},
		{Queue: "/queue/t", Seq: recs[2].Seq, N: 5},
		{Queue: "/queue/s", Seq: recs[2].Seq, N: 9}, // recs[2] is not in /queue/s
		{Queue: "/queue/none", Seq: recs[0].Seq, N: 9},
		{Queue: "/queue/s", Seq: recs[0].Seq, N: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	got = append(ScanAll(t, s, "/queue/s", 0, 0), ScanAll(t, s, "/queue/t", 0, 0)...)
	if got[0].Deliveries != 2 || got[1].Deliveries != 3 || got[2].Deliveries != 5 {
		t.Fatalf("after one call for several records: deliveries %d %d %d, want 2 3 5", got[0].Deliveries, got[1].Deliveries, got[2].Deliveries)
	}
	want := []store.QueueInfo{{Name: "/queue/s", Count: 2, Bytes: 2}, {Name: "/queue/t", Count: 1, Bytes: 1}}
	if qs := MustQueues(t, s); !slices.Equal(qs, want) {
		t.Fatalf("SetDeliveries changed the sizes: %v", qs)
	}
}

func testQueues(t *testing.T, s Store) {
	if qs := MustQueues(t, s); len(qs) != 0 {
		t.Fatalf("new store lists %v", qs)
	}
	err := s.Append([]*store.Record{NewRecord("/queue/z", "1", "12345"), NewRecord("/queue/a", "2", ""), NewRecord("/queue/z", "3", "67"), NewRecord("/topic/t", "4", "t")})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.QueueInfo{{Name: "/queue/a", Count: 1, Bytes: 0}, {Name: "/queue/z", Count: 2, Bytes: 7}, {Name: "/topic/t", Count: 1, Bytes: 1}}
	if qs := MustQueues(t, s); !slices.Equal(qs, want) {
		t.Fatalf("queues %v, want %v", qs, want)
	}
	if n, err := s.Size(); err != nil || n <= 0 {
		t.Fatalf("Size %d, %v", n, err)
	}
}

func testDeleteQueue(t *testing.T, s Store) {
	recs := []*store.Record{NewRecord("/queue/x", "1", "a"), NewRecord("/queue/y", "2", "b"), NewRecord("/queue/x", "3", "c")}
	if err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteQueue("/queue/x"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteQueue("/queue/x"); err != nil {
		t.Fatal("again:", err)
	}
	if err := s.DeleteQueue("/queue/never"); err != nil {
		t.Fatal("missing queue:", err)
	}
	if got := ScanAll(t, s, "/queue/x", 0, 0); len(got) != 0 {
		t.Fatalf("deleted queue holds %v", IDs(got))
	}
	if qs := MustQueues(t, s); !slices.Equal(qs, []store.QueueInfo{{Name: "/queue/y", Count: 1, Bytes: 1}}) {
		t.Fatalf("queues %v", qs)
	}
	r := NewRecord("/queue/x", "4", "d")
	if err := s.Append([]*store.Record{r}); err != nil {
		t.Fatal(err)
	}
	if r.Seq <= recs[2].Seq {
		t.Fatalf("Seq went back from %d to %d", recs[2].Seq, r.Seq)
	}
	if got := IDs(ScanAll(t, s, "/queue/x", 0, 0)); !slices.Equal(got, []string{"4"}) {
		t.Fatalf("recreated queue holds %v", got)
	}
}

func testSubscriptions(t *testing.T, s Store) {
	subs, err := s.Subscriptions()
	if err != nil || len(subs) != 0 {
		t.Fatalf("new store: %v %v", subs, err)
	}
	b := store.Subscription{Name: "client-b:sub-1", Destination: "/topic/logs.#", Queue: "/queue/durable.b"}
	a := store.Subscription{Name: "a", Destination: "/topic/x", Queue: "", Owner: "alice"}
	for _, sub := range []store.Subscription{b, a} {
		if err := s.PutSubscription(sub); err != nil {
			t.Fatal(err)
		}
	}
	if subs, _ := s.Subscriptions(); !slices.Equal(subs, []store.Subscription{a, b}) {
		t.Fatalf("subscriptions %v", subs)
	}
	b.Destination = "/topic/other"
	if err := s.PutSubscription(b); err != nil {
		t.Fatal(err)
	}
	if subs, _ := s.Subscriptions(); !slices.Equal(subs, []store.Subscription{a, b}) {
		t.Fatalf("after replace %v", subs)
	}
	if err := s.DeleteSubscription("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSubscription("a"); err != nil {
		t.Fatal("again:", err)
	}
	if subs, _ := s.Subscriptions(); !slices.Equal(subs, []store.Subscription{b}) {
		t.Fatalf("after delete %v", subs)
	}
}

func testClose(t *testing.T, s Store) {
	if err := s.Append([]*store.Record{NewRecord("/queue/q", "1", "a")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	_, qErr := s.Queues()
	_, subErr := s.Subscriptions()
	_, sizeErr := s.Size()
	for name, err := range map[string]error{
		"Append":             s.Append([]*store.Record{NewRecord("/queue/q", "2", "b")}),
		"Append none":        s.Append(nil),
		"Delete":             s.Delete("/queue/q", 1),
		"SetDeliveries":      s.SetDeliveries([]store.DeliveryCount{{Queue: "/queue/q", Seq: 1, N: 1}}),
		"SetDeliveries none": s.SetDeliveries(nil),
		"Queues":             qErr,
		"Scan":               s.Scan("/queue/q", 0, 0, func(*store.Record) error { return nil }),
		"DeleteQueue":        s.DeleteQueue("/queue/q"),
		"PutSubscription":    s.PutSubscription(store.Subscription{Name: "n"}),
		"DeleteSubscription": s.DeleteSubscription("n"),
		"Subscriptions":      subErr,
		"Size":               sizeErr,
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want store.ErrClosed", name, err)
		}
	}
}

// Concurrent writers each see their own records in order, and nothing is
// lost or duplicated.
func testConcurrent(t *testing.T, s Store) {
	const writers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			q := fmt.Sprintf("/queue/c%d", w%4)
			var last uint64
			for i := range each {
				r := NewRecord(q, fmt.Sprintf("%d-%d", w, i), "x")
				if err := s.Append([]*store.Record{r}); err != nil {
					errs <- err
					return
				}
				if r.Seq <= last {
					errs <- fmt.Errorf("writer %d: Seq %d after %d", w, r.Seq, last)
					return
				}
				last = r.Seq
				if i%3 == 0 {
					if err := s.Delete(q, r.Seq); err != nil {
						errs <- err
						return
					}
				} else if err := s.SetDeliveries([]store.DeliveryCount{{Queue: q, Seq: r.Seq, N: uint32(i)}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, q := range MustQueues(t, s) {
		got := ScanAll(t, s, q.Name, 0, 0)
		if len(got) != q.Count || q.Bytes != int64(q.Count) {
			t.Fatalf("%s: scan gives %d, Queues says %+v", q.Name, len(got), q)
		}
		seen := map[string]bool{}
		for _, r := range got {
			var w, i int
			fmt.Sscanf(r.ID, "%d-%d", &w, &i)
			if seen[r.ID] || i%3 == 0 || r.Deliveries != uint32(i) {
				t.Fatalf("%s: unexpected record %+v", q.Name, r)
			}
			seen[r.ID] = true
		}
		total += len(got)
	}
	if want := writers * (each - (each+2)/3); total != want {
		t.Fatalf("%d records left, want %d", total, want)
	}
}

func testDispatchMark(t *testing.T, s Store) {
	recs := []*store.Record{NewRecord("/queue/m", "1", "a"), NewRecord("/queue/m", "2", "b")}
	if err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
	if qs := MustQueues(t, s); qs[0].Dispatched != 0 {
		t.Fatalf("new queue has mark %d", qs[0].Dispatched)
	}
	for _, seq := range []uint64{recs[1].Seq + 100, recs[0].Seq} { // it may go down, too
		if err := s.SetDispatched("/queue/m", seq); err != nil {
			t.Fatal(err)
		}
	}
	if qs := MustQueues(t, s); qs[0].Dispatched != recs[0].Seq {
		t.Fatalf("mark %d, want %d", qs[0].Dispatched, recs[0].Seq)
	}
	// A queue left empty forgets its mark.
	if err := s.Delete("/queue/m", recs[0].Seq, recs[1].Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]*store.Record{NewRecord("/queue/m", "3", "c")}); err != nil {
		t.Fatal(err)
	}
	if qs := MustQueues(t, s); qs[0].Dispatched != 0 {
		t.Fatalf("emptied queue kept mark %d", qs[0].Dispatched)
	}
	if err := s.SetDispatched("/queue/m", 7); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteQueue("/queue/m"); err != nil {
		t.Fatal(err)
	}
	if err := s.Append([]*store.Record{NewRecord("/queue/m", "4", "d")}); err != nil {
		t.Fatal(err)
	}
	if qs := MustQueues(t, s); qs[0].Dispatched != 0 {
		t.Fatalf("deleted queue kept mark %d", qs[0].Dispatched)
	}
}
