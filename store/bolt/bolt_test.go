package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/stampede-mq/stampede/store"
	"github.com/stampede-mq/stampede/store/storetest"
)

// fill appends n records of bodySize bytes to queue, batch per Append.
func fill(t testing.TB, s *Store, queue string, n, batch, bodySize int) []*store.Record {
	t.Helper()
	all := make([]*store.Record, 0, n)
	for len(all) < n {
		recs := make([]*store.Record, 0, batch)
		for i := 0; i < batch && len(all)+len(recs) < n; i++ {
			id := fmt.Sprint(len(all) + len(recs))
			recs = append(recs, &store.Record{Queue: queue, ID: id, Body: bytes.Repeat([]byte{'b'}, bodySize), Timestamp: int64(len(all))})
		}
		if err := s.Append(recs); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}
	return all
}

func reopen(t testing.TB, b *Store) *Store {
	t.Helper()
	dir := filepath.Dir(b.Path())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return openTest(t, dir)
}

func TestBoltReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	b := openTest(t, dir)
	full := &store.Record{Queue: "/queue/a", ID: "m1", Headers: [][2]string{{"persistent", "true"}, {"x", "y"}},
		Body: []byte("hello"), Priority: 7, Expires: 123456789, Timestamp: 987654321}
	recs := []*store.Record{full, storetest.NewRecord("/queue/a", "m2", "two"), storetest.NewRecord("/queue/b", "m3", "three"), storetest.NewRecord("/queue/a", "m4", "four")}
	if err := b.Append(recs); err != nil {
		t.Fatal(err)
	}
	if err := b.SetDeliveries([]store.DeliveryCount{{Queue: "/queue/a", Seq: full.Seq, N: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete("/queue/a", recs[1].Seq); err != nil {
		t.Fatal(err)
	}
	sub := store.Subscription{Name: "c1:s1", Destination: "/topic/t.#", Queue: "/queue/a"}
	if err := b.PutSubscription(sub); err != nil {
		t.Fatal(err)
	}
	wantA := storetest.ScanAll(t, b, "/queue/a", 0, 0)
	wantQ := storetest.MustQueues(t, b)

	b = reopen(t, b)
	if got := storetest.ScanAll(t, b, "/queue/a", 0, 0); !slices.EqualFunc(got, wantA, storetest.SameRecord) {
		t.Fatalf("after reopen %+v\nwant %+v", got, wantA)
	}
	if got := storetest.ScanAll(t, b, "/queue/a", 0, 0); got[0].Deliveries != 2 || got[0].Priority != 7 || got[0].Expires != 123456789 {
		t.Fatalf("fields lost: %+v", got[0])
	}
	if got := storetest.MustQueues(t, b); !slices.Equal(got, wantQ) {
		t.Fatalf("queues %v, want %v", got, wantQ)
	}
	if subs, err := b.Subscriptions(); err != nil || !slices.Equal(subs, []store.Subscription{sub}) {
		t.Fatalf("subscriptions %v %v", subs, err)
	}
	next := storetest.NewRecord("/queue/b", "m5", "five")
	if err := b.Append([]*store.Record{next}); err != nil {
		t.Fatal(err)
	}
	if next.Seq <= recs[3].Seq {
		t.Fatalf("Seq after reopen is %d, not above %d", next.Seq, recs[3].Seq)
	}
	// The sequence survives even when every record is gone.
	if err := b.DeleteQueue("/queue/a"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteQueue("/queue/b"); err != nil {
		t.Fatal(err)
	}
	b = reopen(t, b)
	last := storetest.NewRecord("/queue/a", "m6", "six")
	if err := b.Append([]*store.Record{last}); err != nil {
		t.Fatal(err)
	}
	if last.Seq <= next.Seq {
		t.Fatalf("Seq after emptying and reopening is %d, not above %d", last.Seq, next.Seq)
	}
}

// editRaw opens the store's file with bbolt itself, for tests that plant
// what the store would never write.
func editRaw(t *testing.T, dir string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, DBFileName), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestBoltUnknownSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir).Close()
	editRaw(t, dir, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyVersion), binary.BigEndian.AppendUint32(nil, 99))
	})
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrSchemaVersion) {
		t.Fatalf("open gave %v, want ErrSchemaVersion", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "version 99") || !strings.Contains(msg, "supports version 1") {
		t.Fatalf("error does not name both versions: %v", err)
	}
}

func TestBoltForeignBoltFile(t *testing.T) {
	dir := t.TempDir()
	db, err := bbolt.Open(filepath.Join(dir, DBFileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("widgets"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "another program") {
		t.Fatalf("open gave %v, want ErrCorrupt naming a foreign file", err)
	}
}

// writeStore makes a store with some content in a new directory and
// returns the bytes of its file and how many of them bbolt uses (the rest
// is room it has set aside to grow into).
func writeStore(t *testing.T) (data []byte, used int) {
	t.Helper()
	dir := t.TempDir()
	b := openTest(t, dir)
	fill(t, b, "/queue/a", 3000, 500, 100)
	fill(t, b, "/queue/b", 50, 50, 5000)
	if err := b.PutSubscription(store.Subscription{Name: "s", Destination: "/topic/t", Queue: "/queue/b"}); err != nil {
		t.Fatal(err)
	}
	if err := b.view(func(tx *bbolt.Tx) error { used = int(tx.Size()); return nil }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	data, err := os.ReadFile(filepath.Join(dir, DBFileName))
	if err != nil {
		t.Fatal(err)
	}
	return data, used
}

// exercise opens dir and, if that works, uses every read and a write; it
// returns the error of open, and the errors the calls returned. Any panic
// fails the test run.
func exercise(t *testing.T, dir string) (openErr error, callErrs []error) {
	t.Helper()
	b, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		return err, nil
	}
	defer b.Close()
	note := func(err error) {
		if err != nil {
			callErrs = append(callErrs, err)
		}
	}
	qs, err := b.Queues()
	note(err)
	for _, q := range append(qs, store.QueueInfo{Name: "/queue/a"}, store.QueueInfo{Name: "/queue/b"}) {
		note(b.Scan(q.Name, 0, 0, func(*store.Record) error { return nil }))
		note(b.Delete(q.Name, 1, 2, 3))
	}
	_, err = b.Subscriptions()
	note(err)
	_, err = b.Size()
	note(err)
	note(b.Append([]*store.Record{storetest.NewRecord("/queue/a", "new", "x")}))
	return nil, callErrs
}

func TestBoltRefusesBadFiles(t *testing.T) {
	good, used := writeStore(t)
	if len(good) < 64<<10 {
		t.Fatalf("store file of %d bytes is too small for this test", len(good))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	cases := map[string][]byte{
		"text":           []byte("this is not a database\n"),
		"random":         garbage,
		"zeros":          make([]byte, 32<<10),
		"one page":       good[:4096],
		"truncated 100":  good[:100],
		"truncated half": good[:len(good)/2],
		"truncated end":  good[:used-4096],
		"meta flipped":   flip(good, 0x20, 4096+0x20),
		"sqlite":         append([]byte("SQLite format 3\x00"), make([]byte, 8192)...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, DBFileName), data, 0o600); err != nil {
				t.Fatal(err)
			}
			err, _ := exercise(t, dir)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open gave %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

func flip(data []byte, offsets ...int) []byte {
	out := slices.Clone(data)
	for _, o := range offsets {
		out[o] ^= 0xff
	}
	return out
}

// Damage past the meta pages may go unnoticed until a page is read; then
// it must come out as an error, never a panic or a hang.
func TestBoltDamagedPages(t *testing.T) {
	t.Parallel()
	good, used := writeStore(t)
	const pageSize = 4096
	pages := used / pageSize
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			data := slices.Clone(good)
			for range 1 + rng.IntN(4) {
				p := 2 + rng.IntN(pages-2)
				start := p*pageSize + rng.IntN(pageSize)
				end := min(start+1+rng.IntN(64), len(data))
				for i := start; i < end; i++ {
					data[i] = byte(rng.Uint32())
				}
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, DBFileName), data, 0o600); err != nil {
				t.Fatal(err)
			}
			err, callErrs := exercise(t, dir)
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open gave %v, want ErrCorrupt or success", err)
			}
			for _, err := range callErrs {
				t.Log(err)
			}
		})
	}
}

func TestBoltCorruptValue(t *testing.T) {
	dir := t.TempDir()
	b := openTest(t, dir)
	recs := fill(t, b, "/queue/a", 3, 3, 10)
	b.Close()
	editRaw(t, dir, func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketQueues)).Bucket(queueKey("/queue/a")).Put(seqKey(recs[1].Seq), []byte{recordFormat, 1, 2})
	})
	b = openTest(t, dir)
	if err := b.Scan("/queue/a", 0, 0, func(*store.Record) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("scan over a damaged record gave %v", err)
	}
	counts := []store.DeliveryCount{{Queue: "/queue/a", Seq: recs[0].Seq, N: 4}, {Queue: "/queue/a", Seq: recs[1].Seq, N: 4}, {Queue: "/queue/a", Seq: recs[2].Seq, N: 4}}
	if err := b.SetDeliveries(counts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("SetDeliveries on a damaged record gave %v", err)
	}
	// The damaged record can be deleted, and the rest is intact.
	if err := b.Delete("/queue/a", recs[1].Seq); err != nil {
		t.Fatal(err)
	}
	got := storetest.ScanAll(t, b, "/queue/a", 0, 0)
	if !slices.Equal(storetest.IDs(got), []string{"0", "2"}) {
		t.Fatalf("left %v", storetest.IDs(got))
	}
	// The damaged record did not cost its neighbours their counts.
	if got[0].Deliveries != 4 || got[1].Deliveries != 4 {
		t.Fatalf("deliveries %d %d beside a damaged record, want 4 4", got[0].Deliveries, got[1].Deliveries)
	}
	if qs := storetest.MustQueues(t, b); !slices.Equal(qs, []store.QueueInfo{{Name: "/queue/a", Count: 2, Bytes: 20}}) {
		t.Fatalf("queues %v", qs)
	}
}

func TestBoltDataDirUnusable(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "data"), Options{}); err == nil {
		t.Fatal("opened a store under a regular file")
	}
	// broker.db itself a directory.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, DBFileName), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("opened a directory as the store file")
	}
	if os.Geteuid() == 0 {
		t.Log("running as root, which ignores permissions: not testing a read-only directory")
		return
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ro, Options{}); err == nil {
		t.Fatal("opened a store in a directory that is not writable")
	}
}

func TestBoltLocked(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	start := time.Now()
	_, err := Open(dir, Options{})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open gave %v, want ErrLocked", err)
	}
	if elapsed < 900*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("second open gave up after %v, want about the 1s default", elapsed)
	}
	if _, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond, ReadOnly: true}); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open beside a writer gave %v, want ErrLocked", err)
	}
}

func TestBoltReadOnly(t *testing.T) {
	dir := t.TempDir()
	b := openTest(t, dir)
	fill(t, b, "/queue/a", 5, 5, 3)
	b.Close()
	if _, err := Open(t.TempDir(), Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a missing store succeeded")
	}
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ro2, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal("a second reader:", err)
	}
	ro2.Close()
	if got := storetest.ScanAll(t, ro, "/queue/a", 0, 0); len(got) != 5 {
		t.Fatalf("read-only store holds %d records", len(got))
	}
	if err := ro.Append([]*store.Record{storetest.NewRecord("/queue/a", "x", "x")}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("append to a read-only store gave %v", err)
	}
	if err := ro.Delete("/queue/a", 1); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("delete in a read-only store gave %v", err)
	}
	ro.Close()
	if err := ro.Append([]*store.Record{storetest.NewRecord("/queue/a", "x", "x")}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("append to a closed read-only store gave %v", err)
	}
}

func TestBoltGroupCommit(t *testing.T) {
	b := openTest(t, t.TempDir())
	const writers, each = 32, 20
	before := b.commits.Load()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := b.Append([]*store.Record{storetest.NewRecord("/queue/g", fmt.Sprint(w, i), "x")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	commits := b.commits.Load() - before
	t.Logf("%d appends in %d commits", writers*each, commits)
	if commits >= writers*each {
		t.Fatalf("%d appends took %d commits: none were shared", writers*each, commits)
	}
	if qs := storetest.MustQueues(t, b); qs[0].Count != writers*each {
		t.Fatalf("queues %v", qs)
	}
}

// A store holding many records reopens and lists its queues and first page
// without reading the rest.
func TestBoltReopenLarge(t *testing.T) {
	t.Parallel()
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	dir := t.TempDir()
	b := openTest(t, dir)
	fill(t, b, "/queue/big", n, 10_000, 50)
	fill(t, b, "/queue/small", 10, 10, 50)
	b.Close()
	start := time.Now()
	b = openTest(t, dir)
	qs := storetest.MustQueues(t, b)
	got := storetest.ScanAll(t, b, "/queue/big", 0, 1000)
	elapsed := time.Since(start)
	t.Logf("reopen + Queues + Scan(1000) over %d records: %v", n, elapsed)
	if !slices.Equal(qs, []store.QueueInfo{{Name: "/queue/big", Count: n, Bytes: int64(n) * 50}, {Name: "/queue/small", Count: 10, Bytes: 500}}) {
		t.Fatalf("queues %v", qs)
	}
	if len(got) != 1000 || got[999].ID != "999" {
		t.Fatalf("scan gave %d records", len(got))
	}
	if d := b.decoded.Load(); d > 1000 {
		t.Fatalf("reopening decoded %d records", d)
	}
}

// Churn through many small messages: freed pages are reused, so the file
// stops growing after the first cycle.
func TestBoltDiskReuse(t *testing.T) {
	t.Parallel()
	n, cycles := 100_000, 5
	if testing.Short() {
		n = 20_000
	}
	b := openTest(t, t.TempDir())
	var first int64
	for cycle := range cycles {
		recs := fill(t, b, "/queue/churn", n, 1000, 64)
		for i := 0; i < len(recs); i += 1000 {
			seqs := make([]uint64, 0, 1000)
			for _, r := range recs[i:min(i+1000, len(recs))] {
				seqs = append(seqs, r.Seq)
			}
			if err := b.Delete("/queue/churn", seqs...); err != nil {
				t.Fatal(err)
			}
		}
		size, err := b.FileSize()
		if err != nil {
			t.Fatal(err)
		}
		used, _ := b.Size()
		t.Logf("cycle %d: file %d bytes, in use %d", cycle, size, used)
		if cycle == 0 {
			first = size
		} else if float64(size) > 1.5*float64(first) {
			t.Fatalf("file grew from %d to %d bytes over %d cycles", first, size, cycle+1)
		}
		if used > size/4 {
			t.Fatalf("an empty store reports %d of %d bytes in use", used, size)
		}
	}
	if qs := storetest.MustQueues(t, b); len(qs) != 0 {
		t.Fatalf("queues %v", qs)
	}
}

func TestBoltSizeTracksContent(t *testing.T) {
	b := openTest(t, t.TempDir())
	empty, err := b.Size()
	if err != nil {
		t.Fatal(err)
	}
	recs := fill(t, b, "/queue/s", 200, 200, 10_000)
	full, _ := b.Size()
	if full < empty+2_000_000 {
		t.Fatalf("Size went from %d to %d after storing 2 MB", empty, full)
	}
	for _, r := range recs {
		if err := b.Delete("/queue/s", r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := b.Size(); after > empty+100_000 {
		t.Fatalf("Size is %d after deleting everything (empty %d, full %d)", after, empty, full)
	}
	// After a reopen it is still the bytes in use, not the file's size.
	b = reopen(t, b)
	if after, _ := b.Size(); after > empty+100_000 {
		t.Fatalf("Size is %d after reopening an emptied store", after)
	}
}

func TestBoltRefusesBadArguments(t *testing.T) {
	b := openTest(t, t.TempDir())
	if err := b.Append([]*store.Record{{Queue: ""}}); err == nil {
		t.Error("appended to an unnamed queue")
	}
	if err := b.Append([]*store.Record{{Queue: strings.Repeat("q", bbolt.MaxKeySize)}}); err == nil {
		t.Error("appended to a queue with an over-long name")
	}
	if err := b.Append([]*store.Record{storetest.NewRecord("/queue/a", "1", "x"), nil}); err == nil {
		t.Error("appended a nil record")
	}
	if err := b.PutSubscription(store.Subscription{}); err == nil {
		t.Error("stored an unnamed subscription")
	}
	if qs := storetest.MustQueues(t, b); len(qs) != 0 {
		t.Fatalf("a refused append stored something: %v", qs)
	}
}

// Closing while writers are busy: each write either succeeds, and is then
// found after reopening, or fails with ErrClosed.
func TestBoltCloseDuringWrites(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 16
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	started := make(chan struct{}, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprint(w, "-", i)
				err := b.Append([]*store.Record{storetest.NewRecord("/queue/c", id, "x")})
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					if !errors.Is(err, store.ErrClosed) {
						t.Errorf("append during Close: %v", err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		})
	}
	for range writers {
		<-started
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	b = openTest(t, dir)
	got := map[string]bool{}
	for _, r := range storetest.ScanAll(t, b, "/queue/c", 0, 0) {
		got[r.ID] = true
	}
	for _, id := range acked {
		if !got[id] {
			t.Fatalf("acknowledged record %s is missing", id)
		}
	}
	t.Logf("%d records acknowledged before Close, %d stored", len(acked), len(got))
}

func TestOnCommitReportsEachCommit(t *testing.T) {
	var mu sync.Mutex
	var calls, writes int
	b, err := Open(t.TempDir(), Options{OnCommit: func(d time.Duration, n int) {
		mu.Lock()
		defer mu.Unlock()
		if d <= 0 || n <= 0 {
			t.Errorf("commit reported %v for %d writes", d, n)
		}
		calls++
		writes += n
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 3 {
		if err := b.Append([]*store.Record{{Queue: "/queue/c", ID: fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 || writes != 3 || int64(calls) != b.commits.Load() {
		t.Fatalf("%d calls for %d writes, %d commits", calls, writes, b.commits.Load())
	}
}

func TestBoltDispatchMarkSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	b := openTest(t, dir)
	if err := b.Append([]*store.Record{storetest.NewRecord("/queue/r", "1", "x")}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetDispatched("/queue/r", 42); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = openTest(t, dir)
	if qs := storetest.MustQueues(t, b); qs[0].Dispatched != 42 {
		t.Fatalf("mark after reopen %d", qs[0].Dispatched)
	}
}

// TestBoltSetDeliveriesOneCommit: counts for many records of several
// queues are one transaction.
func TestBoltSetDeliveriesOneCommit(t *testing.T) {
	b := openTest(t, t.TempDir())
	var counts []store.DeliveryCount
	for _, q := range []string{"/queue/x", "/queue/y", "/queue/z"} {
		for i, r := range fill(t, b, q, 500, 500, 10) {
			counts = append(counts, store.DeliveryCount{Queue: q, Seq: r.Seq, N: uint32(i)})
		}
	}
	before := b.commits.Load()
	if err := b.SetDeliveries(counts); err != nil {
		t.Fatal(err)
	}
	if n := b.commits.Load() - before; n != 1 {
		t.Fatalf("%d counts took %d commits", len(counts), n)
	}
	for _, q := range []string{"/queue/x", "/queue/y", "/queue/z"} {
		for i, r := range storetest.ScanAll(t, b, q, 0, 0) {
			if r.Deliveries != uint32(i) {
				t.Fatalf("%s record %d has %d deliveries", q, i, r.Deliveries)
			}
		}
	}
}
