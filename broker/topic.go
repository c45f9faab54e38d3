package broker

import (
	"sync"
	"sync/atomic"
)

// topic is one exact topic name: the subscriptions made on that name, and
// what has passed through it. Subscriptions on patterns that reach it live
// in the index's trie, not here. Its bindings are guarded by the index's
// lock.
type topic struct {
	name string
	bindings
	published, delivered atomic.Uint64
	lastUsed             atomic.Int64 // unix ns, see sweep
}

// topicSub is a live subscription to a topic name or pattern.
type topicSub struct {
	*subscription
	pattern pattern
	// reader, when set, must be allowed to read each name delivered: a
	// "#" that takes no word reaches a name the pattern as written does
	// not show (/topic/a.# reaches /topic/a). allowed caches the name it
	// last allowed, since a subscriber mostly hears few names.
	reader  Principal
	allowed atomic.Pointer[string]

	mu      sync.Mutex
	ackSeq  uint64
	pending []delivery // client modes: delivered, not yet acked

	// While holding, a subscription replaying history keeps live
	// deliveries back in held (replay.go); markGap puts x-resume-gap on
	// the next MESSAGE.
	holding atomic.Bool
	markGap atomic.Bool
	// replayed is the last position its replay read up to: a message
	// kept before the replay read the history may still be on its way
	// live, after the replay has ended, and is dropped then.
	replayed  atomic.Uint64
	hmu       sync.Mutex
	held      []*message
	heldBytes int
}

// settle acks or nacks pending deliveries. Topic messages are not
// redelivered: a NACK simply drops them.
func (sub *topicSub) settle(match func(*delivery) bool, cumulative bool) error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	i := findDelivery(sub.pending, match)
	if i < 0 {
		return errUnknownAck
	}
	n := sub.pending[i].m.size()
	if cumulative {
		n = sizeOf(sub.pending[:i+1])
	}
	sub.pending = removeSettled(sub.pending, i, cumulative)
	sub.conn.window.release(n)
	return nil
}

func (sub *topicSub) hasPending(match func(*delivery) bool) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return findDelivery(sub.pending, match) >= 0
}

// drop forgets what the subscription holds unacknowledged, when it ends:
// topic messages are not redelivered.
func (sub *topicSub) drop() {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.conn.window.release(sizeOf(sub.pending))
	clear(sub.pending)
	sub.pending = nil
}
