package bolt

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/store"
	"github.com/stampede-mq/stampede/store/storetest"
)

// TestBoltModel runs random writes and reopens against a Bolt store and a
// plain map, comparing them after every step. A failure prints the seed;
// STORE_MODEL_SEED=N replays it.
func TestBoltModel(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if env := os.Getenv("STORE_MODEL_SEED"); env != "" {
		var err error
		if seed, err = strconv.ParseUint(env, 10, 64); err != nil {
			t.Fatal("STORE_MODEL_SEED:", err)
		}
	}
	steps := 3000
	if testing.Short() {
		steps = 500
	}
	t.Logf("seed %d (replay with STORE_MODEL_SEED=%d)", seed, seed)
	defer func() {
		if t.Failed() {
			t.Logf("failed with seed %d: replay with STORE_MODEL_SEED=%d", seed, seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	dir := t.TempDir()
	b := openTest(t, dir)
	m := newModel()
	queues := []string{"/queue/a", "/queue/b", "/queue/c.d", "/topic/x"}
	var lastSeq uint64

	for step := range steps {
		q := queues[rng.IntN(len(queues))]
		var what string
		switch op := rng.IntN(100); {
		case op < 40:
			n := 1 + rng.IntN(5)
			if rng.IntN(20) == 0 {
				n = 50 + rng.IntN(600) // crosses Scan's chunks
			}
			recs := make([]*store.Record, n)
			for i := range recs {
				recs[i] = randomRecord(rng, queues, q, step, i)
			}
			what = fmt.Sprintf("append %d", n)
			if err := b.Append(recs); err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			for _, r := range recs {
				if r.Seq <= lastSeq {
					t.Fatalf("step %d: Seq %d after %d", step, r.Seq, lastSeq)
				}
				lastSeq = r.Seq
				c := *r // the model changes only its copy's Deliveries
				m.put(&c)
			}
		case op < 70:
			n := 1 + rng.IntN(8)
			if rng.IntN(5) == 0 {
				n = 300
			}
			seqs := m.pick(rng, q, n)
			seqs = append(seqs, lastSeq+1+uint64(rng.IntN(3))) // missing
			what = fmt.Sprintf("delete %s %v", q, seqs)
			if err := b.Delete(q, seqs...); err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			for _, s := range seqs {
				m.delete(q, s)
			}
		case op < 85:
			// Counts for a few records of any queues, some of them
			// missing, some named twice.
			var counts []store.DeliveryCount
			for range 1 + rng.IntN(6) {
				cq := queues[rng.IntN(len(queues))]
				c := store.DeliveryCount{Queue: cq, Seq: lastSeq + 1, N: rng.Uint32N(20)}
				if s := m.pick(rng, cq, 1); len(s) > 0 && rng.IntN(10) > 0 {
					c.Seq = s[0]
				}
				counts = append(counts, c)
			}
			what = fmt.Sprintf("setDeliveries %v", counts)
			if err := b.SetDeliveries(counts); err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			for _, c := range counts {
				if r := m.queues[c.Queue][c.Seq]; r != nil {
					r.Deliveries = c.N
				}
			}
		case op < 88:
			what = "deleteQueue " + q
			if err := b.DeleteQueue(q); err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			delete(m.queues, q)
		case op < 92:
			sub := store.Subscription{Name: fmt.Sprint("sub", rng.IntN(4)), Destination: fmt.Sprint("/topic/", step), Queue: q}
			what = fmt.Sprintf("putSubscription %+v", sub)
			if err := b.PutSubscription(sub); err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			m.subs[sub.Name] = sub
		case op < 94:
			name := fmt.Sprint("sub", rng.IntN(4))
			what = "deleteSubscription " + name
			if err := b.DeleteSubscription(name); err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			delete(m.subs, name)
		default:
			what = "reopen"
			b = reopen(t, b)
		}
		m.check(t, b, fmt.Sprintf("step %d (%s)", step, what))
	}
}

func randomRecord(rng *rand.Rand, queues []string, q string, step, i int) *store.Record {
	r := &store.Record{
		Queue:      q,
		ID:         fmt.Sprintf("m-%d-%d", step, i),
		Priority:   uint8(rng.IntN(10)),
		Expires:    rng.Int64(),
		Timestamp:  int64(step),
		Deliveries: rng.Uint32N(3),
	}
	if rng.IntN(3) == 0 {
		// Records of one Append may go to different queues.
		r.Queue = queues[rng.IntN(len(queues))]
	}
	for range rng.IntN(4) {
		r.Headers = append(r.Headers, [2]string{fmt.Sprint("h", rng.IntN(100)), fmt.Sprint(rng.Int())})
	}
	r.Body = make([]byte, rng.IntN(300))
	for j := range r.Body {
		r.Body[j] = byte(rng.Uint32())
	}
	return r
}

type model struct {
	queues map[string]map[uint64]*store.Record
	subs   map[string]store.Subscription
}

func newModel() *model {
	return &model{queues: map[string]map[uint64]*store.Record{}, subs: map[string]store.Subscription{}}
}

func (m *model) put(r *store.Record) {
	if m.queues[r.Queue] == nil {
		m.queues[r.Queue] = map[uint64]*store.Record{}
	}
	m.queues[r.Queue][r.Seq] = r
}

func (m *model) delete(q string, seq uint64) {
	delete(m.queues[q], seq)
	if len(m.queues[q]) == 0 {
		delete(m.queues, q)
	}
}

// pick returns up to n random Seqs held in queue q.
func (m *model) pick(rng *rand.Rand, q string, n int) []uint64 {
	seqs := slices.Sorted(maps.Keys(m.queues[q]))
	rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
	return seqs[:min(n, len(seqs))]
}

func (m *model) check(t *testing.T, s *Store, when string) {
	t.Helper()
	var want []store.QueueInfo
	for _, q := range slices.Sorted(maps.Keys(m.queues)) {
		info := store.QueueInfo{Name: q, Count: len(m.queues[q])}
		for _, r := range m.queues[q] {
			info.Bytes += int64(len(r.Body))
		}
		want = append(want, info)
	}
	got, err := s.Queues()
	if err != nil {
		t.Fatalf("%s: Queues: %v", when, err)
	}
	if len(got) != len(want) || (len(got) > 0 && !slices.Equal(got, want)) {
		t.Fatalf("%s: Queues %v, model %v", when, got, want)
	}
	for _, info := range want {
		recs := storetest.ScanAll(t, s, info.Name, 0, 0)
		seqs := slices.Sorted(maps.Keys(m.queues[info.Name]))
		if len(recs) != len(seqs) {
			t.Fatalf("%s: %s scans %d records, model %d", when, info.Name, len(recs), len(seqs))
		}
		for i, r := range recs {
			if w := m.queues[info.Name][seqs[i]]; !storetest.SameRecord(r, w) {
				t.Fatalf("%s: %s record %d is %+v\nmodel %+v", when, info.Name, i, r, w)
			}
		}
	}
	subs, err := s.Subscriptions()
	if err != nil {
		t.Fatalf("%s: Subscriptions: %v", when, err)
	}
	wantSubs := slices.SortedFunc(maps.Values(m.subs), func(a, b store.Subscription) int {
		return strings.Compare(a.Name, b.Name)
	})
	if len(subs) != len(wantSubs) || (len(subs) > 0 && !slices.Equal(subs, wantSubs)) {
		t.Fatalf("%s: subscriptions %v, model %v", when, subs, wantSubs)
	}
}
