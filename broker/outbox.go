package broker

import "sync"

// outbox is a connection's bounded outbound queue. Any goroutine may push;
// only the write loop takes. It never blocks a publisher: a push that does
// not fit is refused and the caller decides (a topic disconnects the slow
// subscriber, a queue stops dispatching to it until it drains).
type outbox struct {
	mu      sync.Mutex
	frames  []Outbound
	bytes   int
	max     int
	closing bool // no more pushes; the write loop ends once flushed
	waiters map[*queue]struct{}
	notify  chan struct{} // capacity 1: "there is work"
}

func newOutbox(max int) *outbox {
	return &outbox{max: max, notify: make(chan struct{}, 1)}
}

func (o *outbox) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// push queues a frame unless the queue is over its byte bound. Control
// frames (CONNECTED, RECEIPT, ERROR, heart-beats) pass force, since they
// are small and must not be lost.
func (o *outbox) push(f Outbound, force bool) bool {
	o.mu.Lock()
	if o.closing || (!force && o.bytes+f.Len() > o.max && o.bytes > 0) {
		o.mu.Unlock()
		return false
	}
	o.frames = append(o.frames, f)
	o.bytes += f.Len()
	o.mu.Unlock()
	o.wake()
	return true
}

// hasRoom reports whether queue dispatch may add to this outbox; when it
// may not, q is remembered and dispatched again once the outbox drains.
func (o *outbox) hasRoom(q *queue) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing {
		return false
	}
	if o.bytes < o.max {
		return true
	}
	if o.waiters == nil {
		o.waiters = make(map[*queue]struct{})
	}
	o.waiters[q] = struct{}{}
	return false
}

// closeAfter queues a last frame (if any) and marks the outbox closing:
// the write loop flushes what is queued and then closes the transport.
// Only the first call has an effect; it reports whether this was it.
func (o *outbox) closeAfter(last *Outbound) bool {
	o.mu.Lock()
	first := !o.closing
	if first {
		if last != nil {
			o.frames = append(o.frames, *last)
			o.bytes += last.Len()
		}
		o.closing = true
	}
	o.mu.Unlock()
	o.wake()
	return first
}

// take hands the write loop everything queued. done is set once the outbox
// is closing and empty.
func (o *outbox) take(buf []Outbound) (frames []Outbound, done bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	frames = append(buf[:0], o.frames...)
	clear(o.frames)
	o.frames = o.frames[:0]
	return frames, o.closing && len(frames) == 0
}

// written releases n bytes and returns the queues waiting for room, if
// room has been made.
func (o *outbox) written(n int) []*queue {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bytes -= n
	if len(o.waiters) == 0 || o.bytes >= o.max {
		return nil
	}
	qs := make([]*queue, 0, len(o.waiters))
	for q := range o.waiters {
		qs = append(qs, q)
	}
	clear(o.waiters)
	return qs
}

// isClosing reports whether the session is on its way out.
func (o *outbox) isClosing() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closing
}

// used reports the bytes queued.
func (o *outbox) used() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}
