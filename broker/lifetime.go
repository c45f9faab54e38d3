package broker

import (
	"strings"
	"sync/atomic"
	"time"
)

// A destination is kept only while something needs it. A queue that is
// empty, unused and neither temporary nor a durable subscription's, and a
// topic nobody subscribes to by its exact name, are forgotten once idle
// for Options.IdleDestinationTTL; a topic published to with no
// subscription is never recorded at all. How many of each may exist at
// once is bounded, so a client naming new destinations cannot grow the
// broker without limit.

// queueFor returns the named queue, creating it within the queue limit.
func (r *local) queueFor(name string) (*queue, error) {
	if err := r.roomForQueue(name); err != nil {
		return nil, err
	}
	return r.queue(name, true), nil
}

// roomForQueue refuses a queue that does not exist yet when the broker
// holds as many as it may, idle ones forgotten first.
func (r *local) roomForQueue(name string) error {
	full := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.queues[name] == nil && len(r.queues) >= r.opts.MaxQueues
	}
	if !full() {
		return nil
	}
	r.sweep(true)
	if full() {
		r.limits.hit("queues")
		return limitError("queues", r.opts.MaxQueues)
	}
	return nil
}

// sweep forgets idle destinations; unless forced, at most a few times per
// idle period, so that callers on busy paths may call it freely.
func (r *local) sweep(force bool) {
	ttl := r.opts.IdleDestinationTTL
	now := time.Now().UnixNano()
	last := r.lastSweep.Load()
	if !force && now-last < int64(ttl)/8 {
		return
	}
	if !r.lastSweep.CompareAndSwap(last, now) {
		return // another goroutine sweeps
	}
	idleSince := now - int64(ttl)
	r.mu.Lock()
	for name, q := range r.queues {
		if q.forgetIfIdle(idleSince) {
			delete(r.queues, name)
		}
	}
	r.mu.Unlock()
	r.topics.sweep(idleSince)
}

// forgetIfIdle marks the queue removed when nothing needs it and it has
// been unused since idleSince (unix ns). Whoever still holds it finds it
// removed and looks the name up again (see enqueue, addConsumer).
func (q *queue) forgetIfIdle(idleSince int64) bool {
	if q.temp || strings.HasPrefix(q.name, durablePrefix) || q.lastUsed.Load() > idleSince {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.depth > 0 || q.paged > 0 || len(q.consumers) > 0 || q.marking {
		return false
	}
	q.removed = true
	q.freed() // producers waiting for room look again
	return true
}

// used records activity on the queue.
func (q *queue) used() { q.r.touch(&q.lastUsed, time.Now().UnixNano()) }

// touch records activity at now (unix ns) in last. Publishers share the
// word, so it is written only when the sweep could tell the difference:
// once per eighth of the idle period.
func (r *local) touch(last *atomic.Int64, now int64) {
	if now-last.Load() >= int64(r.opts.IdleDestinationTTL)/8 {
		last.Store(now)
	}
}

// sweep drops topics with no exact subscription, unused since idleSince.
func (x *topicIndex) sweep(idleSince int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for name, t := range x.topics {
		if t.empty() && t.lastUsed.Load() <= idleSince {
			delete(x.topics, name)
		}
	}
}
