package broker

import (
	"container/heap"
	"sync"
	"time"
)

// timers keeps every connection's next time check (the CONNECT deadline,
// heart-beats in and out) in one heap served by one goroutine, instead of
// a timer and a waiting goroutine per connection. The goroutine runs only
// while some connection has a check pending.
type timers struct {
	mu      sync.Mutex
	h       timerHeap
	running bool
	wake    chan struct{} // capacity 1: the earliest check moved forward
}

// timerEntry is a connection's place in the heap, guarded by timers.mu.
type timerEntry struct {
	due   int64 // unix ns
	index int   // in the heap; -1 when not in it
	ended bool  // the connection is gone: never schedule it again
}

type timerHeap []*conn

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].timer.due < h[j].timer.due }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].timer.index = i
	h[j].timer.index = j
}
func (h *timerHeap) Push(x any) {
	s := x.(*conn)
	s.timer.index = len(*h)
	*h = append(*h, s)
}
func (h *timerHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.timer.index = -1
	return s
}

// set schedules c's next check at due (unix ns), replacing any earlier
// schedule; due 0 removes it.
func (t *timers) set(s *conn, due int64) {
	t.mu.Lock()
	e := &s.timer
	if e.ended {
		t.mu.Unlock()
		return
	}
	if due == 0 {
		t.removeLocked(s)
		t.mu.Unlock()
		return
	}
	e.due = due
	if e.index >= 0 {
		heap.Fix(&t.h, e.index)
	} else {
		heap.Push(&t.h, s)
	}
	first := t.h[0] == s
	start := !t.running
	t.running = true
	t.mu.Unlock()
	switch {
	case start:
		go t.loop()
	case first:
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// end removes s for good.
func (t *timers) end(s *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.timer.ended = true
	t.removeLocked(s)
}

// removeLocked takes s out of the heap. The loop is woken when it empties,
// so that it ends now rather than at its next timer.
func (t *timers) removeLocked(s *conn) {
	if s.timer.index < 0 {
		return
	}
	heap.Remove(&t.h, s.timer.index)
	if len(t.h) == 0 {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// loop runs the checks as they fall due, until none is left.
func (t *timers) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*conn
	for {
		t.mu.Lock()
		now := time.Now().UnixNano()
		due = due[:0]
		for len(t.h) > 0 && t.h[0].timer.due <= now {
			due = append(due, heap.Pop(&t.h).(*conn))
		}
		if len(due) == 0 && len(t.h) == 0 {
			t.running = false
			t.mu.Unlock()
			return
		}
		wait := time.Duration(-1)
		if len(due) == 0 {
			wait = time.Duration(t.h[0].timer.due - now)
		}
		t.mu.Unlock()
		if wait < 0 {
			for i, s := range due {
				t.set(s, s.checkTimers(now))
				due[i] = nil
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-t.wake:
		}
	}
}
