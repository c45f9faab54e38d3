package broker

import (
	"slices"
	"sync/atomic"

	"sync"

	"github.com/stampede-mq/stampede/store"
)

// consumer is a subscription to a queue. Its delivery state is guarded
// by the queue's lock.
type consumer struct {
	*subscription
	q *queue

	ackSeq  uint64
	unacked []delivery
}

// queue holds messages until exactly one consumer takes each.
type queue struct {
	r    *local
	name string
	temp bool    // a connection's /temp-queue, removed with it
	pull *puller // set when the queue stands in for a shared one (shared.go); guarded by mu

	opening sync.Mutex // held while a puller's feed is opened, and only then

	mu        sync.Mutex
	levels    [10][]*message // by priority, FIFO within a level
	depth     int            // messages in levels
	memBytes  int            // their approximate size
	transient int            // the part of memBytes that is not persistent
	consumers []*consumer
	next      int // round-robin position
	enqueued  uint64
	dequeued  uint64
	removed   bool         // forgotten while idle: look the name up again
	lastUsed  atomic.Int64 // unix ns, see forgetIfIdle

	// Paging: persistent messages past the memory window stay only in the
	// store and are read back a batch at a time as the window drains.
	paged    int                 // stored messages not in memory
	scanFrom uint64              // store sequence read up to
	pagedMin uint64              // lowest sequence paged out since the last read, 0 if none
	resident map[uint64]struct{} // stored messages that are in memory (waiting or unacked)

	// Dispatch mark: no stored message goes out before the store has
	// durably recorded a mark at or above its sequence, so that after a
	// crash everything that may have been delivered comes back flagged.
	mark          uint64 // durable mark
	marking       bool   // a goroutine is raising it
	maxSeq        uint64 // highest sequence held in memory
	recoveredMark uint64 // the mark found at start-up
	dispatchedMax uint64 // highest stored sequence actually handed out
	// The store forgets the mark with the queue's last record.
	markGen  uint64        // bumped whenever it may have done so
	emptying chan struct{} // while a delete that may empty the store runs; closed after

	pagedBytes int64         // approximate size of the paged-out messages
	roomFreed  chan struct{} // closed when messages leave; producers blocked on a full queue wait on it
}

func (q *queue) pushBack(m *message) {
	q.levels[m.priority] = append(q.levels[m.priority], m)
	q.held(m)
}

// held accounts for a message entering memory.
func (q *queue) held(m *message) {
	q.depth++
	q.memBytes += m.size()
	if !m.persistent {
		q.transient += m.size()
	}
	if m.seq != 0 {
		q.maxSeq = max(q.maxSeq, m.seq)
		if q.resident == nil {
			q.resident = make(map[uint64]struct{})
		}
		q.resident[m.seq] = struct{}{}
	}
}

// pushFront puts messages back at the head of their levels, keeping their
// relative order.
func (q *queue) pushFront(ms []*message) {
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		q.levels[m.priority] = slices.Insert(q.levels[m.priority], 0, m)
		q.held(m)
	}
}

func (q *queue) popFront() *message {
	for p := len(q.levels) - 1; p >= 0; p-- {
		if l := q.levels[p]; len(l) > 0 {
			m := l[0]
			l[0] = nil
			q.levels[p] = l[1:]
			if len(q.levels[p]) == 0 {
				q.levels[p] = nil // let the backing array go
			}
			q.depth--
			q.memBytes -= m.size()
			if !m.persistent {
				q.transient -= m.size()
			}
			q.freed()
			return m
		}
	}
	return nil
}

// enqueue adds published messages and dispatches them.
func (q *queue) enqueue(ms ...*message) {
	q.used()
	q.mu.Lock()
	if q.removed {
		q.mu.Unlock()
		q.r.queue(q.name, true).enqueue(ms...)
		return
	}
	for _, m := range ms {
		q.enqueued++
		if _, early := q.resident[m.seq]; early && m.seq != 0 {
			// A page read found it in the store between its append and
			// now, and counted it as paged out: it is already here.
			q.paged++
			continue
		}
		if !q.pageOut(m) {
			q.pushBack(m)
		}
	}
	q.mu.Unlock()
	q.dispatch()
}

// addConsumer attaches c, to the queue now bearing q's name if q was
// forgotten meanwhile.
func (q *queue) addConsumer(c *consumer) {
	q.used()
	q.mu.Lock()
	if q.removed {
		q.mu.Unlock()
		q = q.r.queue(q.name, true)
		c.q = q
		q.addConsumer(c)
		return
	}
	q.consumers = append(q.consumers, c)
	q.mu.Unlock()
	q.dispatch()
}

// removeConsumer detaches c and puts its unacked messages back at the
// front of the queue, in order, to be redelivered.
func (q *queue) removeConsumer(c *consumer) {
	var fx effects
	q.mu.Lock()
	ms := make([]*message, 0, len(c.unacked))
	for _, d := range c.unacked {
		ms = append(ms, d.m)
	}
	released := sizeOf(c.unacked)
	clear(c.unacked)
	c.unacked = nil
	q.requeueLocked(ms, &fx)
	q.removeLocked(c)
	q.mu.Unlock()
	q.r.apply(q, &fx)
	q.released(c, released)
}

// released gives a consumer's connection back the window its settled
// messages held, and dispatches this queue and any that waited for room.
func (q *queue) released(c *consumer, n int) {
	for _, other := range c.conn.window.release(n) {
		if other != q {
			other.dispatch()
		}
	}
	q.dispatch()
}

func (q *queue) removeLocked(c *consumer) {
	if i := slices.Index(q.consumers, c); i >= 0 {
		q.consumers = slices.Delete(q.consumers, i, i+1)
		if q.next > i {
			q.next--
		}
		if len(q.consumers) > 0 {
			q.next %= len(q.consumers)
		} else {
			q.next = 0
		}
	}
}

// requeueLocked returns messages to the front of the queue, or to the dead
// letter queue once they have been redelivered too often.
func (q *queue) requeueLocked(ms []*message, fx *effects) {
	back := ms[:0:0]
	for _, m := range ms {
		if int(m.deliveries) > q.r.opts.MaxRedeliveries {
			fx.dead = append(fx.dead, deadLetter{m, "max-redeliveries"})
			continue
		}
		back = append(back, m)
	}
	q.pushFront(back)
}

// settle acks (ack) or nacks deliveries of c. With cumulative set (client
// mode) every earlier delivery of c goes with the matched one.
func (q *queue) settle(c *consumer, match func(*delivery) bool, cumulative, ack, requeue bool) error {
	var fx effects
	q.mu.Lock()
	i := findDelivery(c.unacked, match)
	if i < 0 {
		q.mu.Unlock()
		return errUnknownAck
	}
	var settled []*message
	var released int
	if cumulative {
		for _, d := range c.unacked[:i+1] {
			settled = append(settled, d.m)
		}
		released = sizeOf(c.unacked[:i+1])
	} else {
		settled = []*message{c.unacked[i].m}
		released = settled[0].size()
	}
	c.unacked = removeSettled(c.unacked, i, cumulative)
	if ack {
		q.r.stats.acked.Add(uint64(len(settled)))
	} else {
		q.r.stats.nacked.Add(uint64(len(settled)))
	}
	switch {
	case ack:
		for _, m := range settled {
			if m.settledElsewhere() {
				fx.deletes = append(fx.deletes, m)
			}
		}
	case requeue:
		q.requeueLocked(settled, &fx)
	default:
		for _, m := range settled {
			fx.dead = append(fx.dead, deadLetter{m, "rejected"})
		}
	}
	q.mu.Unlock()
	q.r.apply(q, &fx)
	q.released(c, released)
	return nil
}

func (q *queue) hasPending(c *consumer, match func(*delivery) bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return findDelivery(c.unacked, match) >= 0
}

// purge drops every waiting message, in memory and paged out, and
// returns how many there were. Delivered, unacked messages stay.
func (q *queue) purge() int {
	var fx effects
	q.mu.Lock()
	n := q.depth + q.paged
	for m := q.popFront(); m != nil; m = q.popFront() {
		if m.settledElsewhere() {
			fx.deletes = append(fx.deletes, m)
		}
	}
	if q.paged > 0 {
		// Everything stored that is not in memory is paged out.
		var seqs []uint64
		q.r.store.Scan(q.name, 0, 0, func(r *store.Record) error {
			if _, ok := q.resident[r.Seq]; !ok {
				seqs = append(seqs, r.Seq)
			}
			return nil
		})
		if err := q.r.store.Delete(q.name, seqs...); err != nil {
			q.r.log.Error("purging stored messages failed", "queue", q.name, "err", err)
		}
		if len(q.resident) == 0 {
			q.forgetMark() // the store may hold nothing of the queue now
		}
		q.paged, q.pagedMin, q.pagedBytes = 0, 0, 0
		q.freed()
	}
	q.mu.Unlock()
	q.r.apply(q, &fx)
	return n
}

// QueueStats describes a queue at one moment.
type QueueStats struct {
	Name      string
	Depth     int
	Consumers int
	Enqueued  uint64
	Dequeued  uint64
}

func (q *queue) stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStats{Name: q.name, Depth: q.depth + q.paged, Consumers: len(q.consumers), Enqueued: q.enqueued, Dequeued: q.dequeued}
}
