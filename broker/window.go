package broker

import "sync"

// window bounds the bytes of the messages a connection holds delivered
// and not yet acknowledged, whatever prefetch-count its subscriptions
// chose. Queue dispatch skips a connection whose window is full and comes
// back once acknowledgements make room; a topic subscription that would
// overflow it is a slow consumer. One message always fits an empty
// window, however large.
type window struct {
	mu      sync.Mutex
	bytes   int64
	max     int64
	waiters waitingQueues
}

// waitingQueues are queues whose dispatch stopped at a full outbox or
// window, to be dispatched again once it has room. Guarded by its
// owner's lock.
type waitingQueues map[*queue]struct{}

func (w *waitingQueues) add(q *queue) {
	if *w == nil {
		*w = make(waitingQueues)
	}
	(*w)[q] = struct{}{}
}

// take empties the set and returns what it held.
func (w waitingQueues) take() []*queue {
	if len(w) == 0 {
		return nil
	}
	qs := make([]*queue, 0, len(w))
	for q := range w {
		qs = append(qs, q)
	}
	clear(w)
	return qs
}

// hasRoom reports whether the window can take another message; when it
// cannot, q (if any) is remembered for release to return.
func (w *window) hasRoom(q *queue) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bytes == 0 || w.bytes < w.max {
		return true
	}
	if q != nil {
		w.waiters.add(q)
	}
	return false
}

// hold counts a delivered message against the window.
func (w *window) hold(n int) {
	w.mu.Lock()
	w.bytes += int64(n)
	w.mu.Unlock()
}

// release gives back the bytes of settled messages and returns the
// queues that were waiting for room, now that there is some.
func (w *window) release(n int) []*queue {
	if n == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bytes -= int64(n)
	if w.bytes >= w.max {
		return nil
	}
	return w.waiters.take()
}

// sizeOf adds up the sizes of deliveries' messages.
func sizeOf(ds []delivery) int {
	n := 0
	for _, d := range ds {
		n += d.m.size()
	}
	return n
}
