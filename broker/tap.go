package broker

import (
	"slices"
	"sync"
	"sync/atomic"
)

// tap is a non-consuming observer of one destination.
type tap struct {
	dest string
	fn   func(Message)
}

type taps struct {
	mu    sync.RWMutex
	n     atomic.Int32
	byDst map[string][]*tap
}

// Tap calls fn with every message that reaches dest from now on, without
// taking it from consumers. fn runs on the publisher's goroutine: it must
// not block. The returned function stops the tap.
func (b *Broker) Tap(dest string, fn func(Message)) (stop func()) {
	t := &tap{dest: dest, fn: fn}
	b.taps.mu.Lock()
	if b.taps.byDst == nil {
		b.taps.byDst = make(map[string][]*tap)
	}
	b.taps.byDst[dest] = append(b.taps.byDst[dest], t)
	b.taps.n.Add(1)
	b.taps.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.taps.mu.Lock()
			l := b.taps.byDst[dest]
			if i := slices.Index(l, t); i >= 0 {
				l = slices.Delete(l, i, i+1)
			}
			if len(l) == 0 {
				delete(b.taps.byDst, dest)
			} else {
				b.taps.byDst[dest] = l
			}
			b.taps.n.Add(-1)
			b.taps.mu.Unlock()
		})
	}
}

// notify shows m to the taps on its destination; cheap when none.
func (ts *taps) notify(m *message) {
	if ts.n.Load() == 0 {
		return
	}
	ts.mu.RLock()
	l := ts.byDst[m.destination]
	ts.mu.RUnlock()
	if len(l) == 0 {
		return
	}
	e := m.export(false)
	for _, t := range l {
		t.fn(e)
	}
}
