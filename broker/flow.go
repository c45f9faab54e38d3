package broker

import (
	"errors"
	"time"
)

// Flow control: a producer goes no faster than its destinations take its
// messages. A full queue holds its producers (admit); a topic publisher
// waits for the subscribers it has congested (pace), and a subscriber that
// stays congested, or overflows its outbox, is disconnected (dropSlow).
// Queue dispatch skips consumers whose outbox is full until it drains
// (outbox.hasRoom).

// admit holds a producer until dest can take one more message: a queue,
// or for a topic every durable subscription it reaches, since those keep
// what they are sent as a queue does.
func (r *local) admit(dest string, persistent bool, done <-chan struct{}) error {
	if isQueue(dest) && r.cl != nil {
		// The cluster bounds its queues; only this node's temporary
		// queues are held here.
		if q := r.queue(dest, false); q != nil && q.temp {
			return q.waitForRoom(persistent, r.opts.SendBlockTimeout, done)
		}
		return nil
	}
	if isQueue(dest) {
		q, err := r.queueFor(dest)
		if err != nil {
			return err
		}
		return q.waitForRoom(persistent, r.opts.SendBlockTimeout, done)
	}
	if !r.topics.hasDurables() {
		return nil
	}
	var m matches
	r.topics.match(dest, &m)
	for _, d := range m.durables {
		if err := d.q.waitForRoom(persistent, r.opts.SendBlockTimeout, done); err != nil {
			return err
		}
	}
	return nil
}

// pace holds the publishing connection until each congested subscriber's
// outbox is relieved (see outbox). One that stays congested for
// SlowConsumerTimeout is disconnected as too slow, so a stalled client
// holds its publishers back only that long.
func (r *local) pace(from *conn, congested []*topicSub) {
	if len(congested) == 0 {
		return
	}
	deadline := time.NewTimer(r.opts.SlowConsumerTimeout)
	defer deadline.Stop()
	for _, sub := range congested {
		if !sub.conn.out.waitRelieved(deadline.C, from.writerDone) {
			r.dropSlow(sub)
		}
	}
}

// dropSlow disconnects a topic subscriber that cannot keep up.
func (r *local) dropSlow(sub *topicSub) {
	if sub.conn.failSlow("slow consumer: subscription " + sub.id + " cannot keep up") {
		r.stats.slowConsumers.Add(1)
	}
}

// waitForRoom blocks a producer while q is over its message or byte limit,
// or, for a message that is not persistent, while q holds too much that
// cannot be paged out to the store; for at most timeout, or until done is
// closed. The caller holds no lock: its connection is simply not read
// meanwhile, so TCP backpressure reaches the client.
func (q *queue) waitForRoom(persistent bool, timeout time.Duration, done <-chan struct{}) error {
	maxMsgs, maxBytes := q.r.opts.MaxQueueMessages, q.r.opts.MaxQueueBytes
	maxTransient := q.r.opts.MaxTransientQueueBytes
	if persistent || maxTransient < 0 {
		maxTransient = 0
	}
	if maxMsgs <= 0 && maxBytes <= 0 && maxTransient <= 0 {
		return nil
	}
	var timer *time.Timer
	for {
		q.mu.Lock()
		full := (maxMsgs > 0 && q.depth+q.paged >= maxMsgs) || (maxBytes > 0 && q.totalBytes() >= maxBytes) ||
			(maxTransient > 0 && int64(q.transient) >= maxTransient)
		if !full {
			q.mu.Unlock()
			return nil
		}
		if q.roomFreed == nil {
			q.roomFreed = make(chan struct{})
		}
		wait := q.roomFreed
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		select {
		case <-wait:
		case <-timer.C:
			q.r.limits.hit("queue-full")
			return errors.New("queue " + q.name + " is full: gave up after " + timeout.String())
		case <-done:
			return errors.New("connection closing")
		}
	}
}

// totalBytes approximates the bytes a queue holds, paged messages included.
func (q *queue) totalBytes() int64 {
	return int64(q.memBytes) + q.pagedBytes
}

// freed wakes producers waiting for room; called with q.mu held whenever
// messages leave the queue.
func (q *queue) freed() {
	if q.roomFreed != nil {
		close(q.roomFreed)
		q.roomFreed = nil
	}
}
