package web

import (
	"runtime/metrics"
	"sync"
	"time"

	"github.com/stampede-mq/stampede/broker"
)

// sample is the broker at one moment, as the overview's live charts and
// figures show it.
type sample struct {
	T           int64   `json:"t"`   // ms since the epoch
	In          float64 `json:"in"`  // messages published per second
	Out         float64 `json:"out"` // messages delivered per second
	Connections int     `json:"connections"`
	Waiting     int     `json:"waiting"` // messages waiting in queues
	Queues      int     `json:"queues"`
	MessagesIn  uint64  `json:"messages_in"`
	MessagesOut uint64  `json:"messages_out"`
	Expired     uint64  `json:"expired"`
	DeadLetter  uint64  `json:"dead_lettered"`
	Uptime      float64 `json:"uptime_seconds"`
	HeapBytes   uint64  `json:"heap_bytes"`
}

// sampler takes a sample every interval and keeps the last few, so a page
// opened now still shows the last minutes. It reads only the broker's
// cheap figures (no per-connection walk), and does so whether or not
// anybody watches, so the history has no gaps.
type sampler struct {
	b        Broker
	interval time.Duration

	mu      sync.Mutex
	ring    []sample
	next    int // where the next sample goes
	full    bool
	watches map[chan sample]struct{}
	prev    broker.Stats
	prevAt  time.Time
}

func newSampler(b Broker, interval time.Duration, keep int) *sampler {
	return &sampler{b: b, interval: interval, ring: make([]sample, keep), watches: make(map[chan sample]struct{})}
}

func (sp *sampler) run(done <-chan struct{}) {
	sp.take(time.Now())
	t := time.NewTicker(sp.interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			sp.take(now)
		}
	}
}

func (sp *sampler) take(now time.Time) {
	st := sp.b.Stats()
	smp := sample{
		T: now.UnixMilli(), Connections: st.Connections, Queues: len(st.Queues),
		MessagesIn: st.Published, MessagesOut: st.Delivered, Expired: st.Expired,
		DeadLetter: st.DeadLettered, Uptime: st.Uptime.Seconds(), HeapBytes: heapBytes(),
	}
	for _, q := range st.Queues {
		smp.Waiting += q.Depth
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.prevAt.IsZero() {
		if secs := now.Sub(sp.prevAt).Seconds(); secs > 0 {
			smp.In = float64(st.Published-sp.prev.Published) / secs
			smp.Out = float64(st.Delivered-sp.prev.Delivered) / secs
		}
	}
	sp.prev, sp.prevAt = st, now
	sp.ring[sp.next] = smp
	sp.next = (sp.next + 1) % len(sp.ring)
	sp.full = sp.full || sp.next == 0
	for ch := range sp.watches {
		select {
		case ch <- smp:
		default: // a watcher that has fallen behind misses a point
		}
	}
}

// history returns the kept samples, oldest first.
func (sp *sampler) history() []sample {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.historyLocked()
}

func (sp *sampler) historyLocked() []sample {
	if !sp.full {
		return append([]sample(nil), sp.ring[:sp.next]...)
	}
	return append(append([]sample(nil), sp.ring[sp.next:]...), sp.ring[:sp.next]...)
}

func (sp *sampler) latest() (sample, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if !sp.full && sp.next == 0 {
		return sample{}, false
	}
	return sp.ring[(sp.next+len(sp.ring)-1)%len(sp.ring)], true
}

// watch returns the history so far and a channel of the samples that
// follow it; stop ends the watch.
func (sp *sampler) watch() (past []sample, ch <-chan sample, stop func()) {
	c := make(chan sample, 8)
	sp.mu.Lock()
	past = sp.historyLocked()
	sp.watches[c] = struct{}{}
	sp.mu.Unlock()
	return past, c, func() {
		sp.mu.Lock()
		delete(sp.watches, c)
		sp.mu.Unlock()
	}
}

// heapBytes reads the live heap from runtime/metrics, which, unlike
// runtime.ReadMemStats, does not stop the world.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
