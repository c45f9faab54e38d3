package broker

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"sync"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

type ackMode uint8

const (
	ackAuto ackMode = iota
	ackClient
	ackIndividual
)

var errUnknownAck = errors.New("no unacknowledged message matches")

// delivery is a message handed to a subscription and not yet acked.
type delivery struct {
	ackID string
	m     *message
}

func makeAckID(subNum int, seq uint64) string {
	return strconv.Itoa(subNum) + "-" + strconv.FormatUint(seq, 10)
}

func findDelivery(ds []delivery, match func(*delivery) bool) int {
	for i := range ds {
		if match(&ds[i]) {
			return i
		}
	}
	return -1
}

// removeSettled removes ds[i], or ds[:i+1] when cumulative, moving
// whichever side of i is shorter. Acks mostly settle the oldest delivery,
// which then costs nothing, however many are outstanding.
func removeSettled(ds []delivery, i int, cumulative bool) []delivery {
	if cumulative {
		clear(ds[:i+1])
		return ds[i+1:]
	}
	if i < len(ds)/2 {
		copy(ds[1:i+1], ds[:i])
		ds[0] = delivery{}
		return ds[1:]
	}
	return slices.Delete(ds, i, i+1)
}

// consumer is one subscription to a queue. Its delivery state is guarded
// by the queue's lock.
type consumer struct {
	s        *session
	q        *queue
	id       string
	num      int
	mode     ackMode
	prefetch int

	ackSeq  uint64
	unacked []delivery
}

// queue holds messages until exactly one consumer takes each.
type queue struct {
	b    *Broker
	name string
	temp bool // a connection's /temp-queue, removed with it

	mu        sync.Mutex
	levels    [10][]*message // by priority, FIFO within a level
	depth     int            // messages in levels
	memBytes  int            // their approximate size
	transient int            // the part of memBytes that is not persistent
	consumers []*consumer
	next      int // round-robin position
	enqueued  uint64
	dequeued  uint64

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

	pagedBytes int64         // approximate size of the paged-out messages
	roomFreed  chan struct{} // closed when messages leave; producers blocked on a full queue wait on it
}

// effects are the follow-ups of a change made under the queue lock, run
// after it is released so that no lock is held across store writes or
// while taking another queue's lock.
type effects struct {
	deletes   []*message // settled persistent messages
	redeliver []*message // persistent messages whose count changed
	dead      []deadLetter
	expired   int
}

type deadLetter struct {
	m      *message
	reason string
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

// pageOut decides whether an arriving message stays only in the store.
func (q *queue) pageOut(m *message) bool {
	window := q.b.opts.QueueMemoryBytes
	if m.seq == 0 || (q.paged == 0 && q.memBytes+m.size() <= window) {
		return false
	}
	q.paged++
	q.pagedBytes += int64(m.size())
	if q.pagedMin == 0 || m.seq < q.pagedMin {
		q.pagedMin = m.seq
	}
	return true
}

// pageIn reads paged-out messages back until the window is half full.
// Stored messages already in memory are skipped, so a message is never
// held twice however appends and reads interleave.
func (q *queue) pageIn() {
	window := q.b.opts.QueueMemoryBytes
	for q.paged > 0 && q.memBytes < window/2 {
		from := q.scanFrom
		if q.pagedMin != 0 && q.pagedMin-1 < from {
			from = q.pagedMin - 1
		}
		q.pagedMin = 0
		read, loaded := 0, 0
		err := q.b.store.Scan(q.name, from, pageBatch, func(r *store.Record) error {
			read++
			q.scanFrom = max(q.scanFrom, r.Seq)
			if _, ok := q.resident[r.Seq]; ok {
				return nil
			}
			m := messageFromRecord(r, q.name)
			m.maybeDelivered = r.Seq <= q.recoveredMark
			q.pushBack(m)
			q.pagedBytes = max(0, q.pagedBytes-int64(m.size()))
			loaded++
			return nil
		})
		if err != nil {
			q.b.log.Error("reading paged messages failed", "queue", q.name, "err", err)
			return
		}
		q.paged -= loaded
		if read < pageBatch {
			// The store holds no more than what was read: whatever the
			// count says, nothing else is out there.
			q.paged, q.pagedBytes = 0, 0
		}
	}
}

// pageBatch is how many stored messages one read brings back.
const pageBatch = 256

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
	q.mu.Lock()
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

// dispatch hands waiting messages to ready consumers, round robin. A
// consumer is ready while it is under its prefetch and its connection's
// outbound queue has room. When a stored message is past the dispatch
// mark, the mark is raised first, in a loop rather than by recursion so
// that steady traffic cannot deepen the stack.
func (q *queue) dispatch() {
	for q.dispatchOnce() && q.raiseMark() {
	}
}

// dispatchOnce dispatches what it can and reports whether it stopped at
// the dispatch mark.
func (q *queue) dispatchOnce() bool {
	var fx effects
	needMark := false
	q.mu.Lock()
	now := time.Now().UnixMilli()
	for {
		if q.paged > 0 && q.memBytes < q.b.opts.QueueMemoryBytes/2 {
			q.pageIn()
		}
		if q.depth == 0 {
			break
		}
		c := q.nextReady()
		if c == nil {
			break
		}
		m := q.popFront()
		if m.expired(now) {
			fx.expire(m, q.b.opts.DeadLetterExpired)
			continue
		}
		if m.seq > q.mark {
			q.pushFront([]*message{m})
			needMark = true
			break
		}
		q.dispatchedMax = max(q.dispatchedMax, m.seq)
		redelivered := m.deliveries > 0 || m.maybeDelivered
		if redelivered {
			q.b.stats.redelivered.Add(1)
		}
		m.deliveries++
		ackID := ""
		if c.mode != ackAuto {
			c.ackSeq++
			ackID = makeAckID(c.num, c.ackSeq)
		}
		head := appendMessageHead(nil, m, c.s.version, c.id, ackID, redelivered)
		if !c.s.out.push(Outbound{Head: head, Body: m.wire, Binary: m.binary}, true) {
			m.deliveries--
			q.pushFront([]*message{m})
			q.removeLocked(c) // its connection is closing
			continue
		}
		q.dequeued++
		q.b.stats.delivered.Add(1)
		c.s.msgsOut.Add(1)
		if c.mode == ackAuto {
			if m.persistent {
				fx.deletes = append(fx.deletes, m)
			}
		} else {
			c.unacked = append(c.unacked, delivery{ackID: ackID, m: m})
			if m.persistent {
				fx.redeliver = append(fx.redeliver, m)
			}
		}
	}
	q.mu.Unlock()
	q.b.apply(q, &fx)
	return needMark
}

// markAhead is how far past the messages in memory a new dispatch mark
// reaches, so that one store write covers many arrivals.
const markAhead = 1024

// raiseMark records a dispatch mark covering every stored message now in
// memory and reports whether the caller should dispatch again. One
// goroutine does it at a time; others leave the dispatching to it.
func (q *queue) raiseMark() bool {
	q.mu.Lock()
	if q.marking {
		q.mu.Unlock()
		return false
	}
	q.marking = true
	target := q.maxSeq + markAhead
	q.mu.Unlock()
	err := q.b.store.SetDispatched(q.name, target)
	if err != nil {
		// Delivery goes on; only the redelivered flag after a crash is
		// at stake.
		q.b.log.Error("recording the dispatch mark failed", "queue", q.name, "err", err)
	}
	q.mu.Lock()
	q.mark = max(q.mark, target)
	q.marking = false
	q.mu.Unlock()
	return true
}

// settleMark, at a clean shutdown, brings the dispatch mark down from its
// look-ahead to what was really handed out (or could have been before the
// last start), so a clean restart flags nothing that was never delivered.
func (q *queue) settleMark() {
	q.mu.Lock()
	exact := max(q.dispatchedMax, q.recoveredMark)
	lower := q.mark > exact
	q.mu.Unlock()
	if !lower {
		return
	}
	if err := q.b.store.SetDispatched(q.name, exact); err != nil {
		q.b.log.Error("recording the dispatch mark failed", "queue", q.name, "err", err)
	}
}

func (fx *effects) expire(m *message, toDLQ bool) {
	fx.expired++
	if toDLQ {
		fx.dead = append(fx.dead, deadLetter{m, "expired"})
	} else if m.persistent {
		fx.deletes = append(fx.deletes, m)
	}
}

// nextReady picks the next consumer in round-robin order that may take a
// message, or nil.
func (q *queue) nextReady() *consumer {
	n := len(q.consumers)
	for i := 0; i < n; i++ {
		idx := (q.next + i) % n
		c := q.consumers[idx]
		if c.mode != ackAuto && len(c.unacked) >= c.prefetch {
			continue
		}
		if !c.s.out.hasRoom(q) {
			continue
		}
		q.next = (idx + 1) % n
		return c
	}
	return nil
}

func (q *queue) addConsumer(c *consumer) {
	q.mu.Lock()
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
	clear(c.unacked)
	c.unacked = nil
	q.requeueLocked(ms, &fx)
	q.removeLocked(c)
	q.mu.Unlock()
	q.b.apply(q, &fx)
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
		if int(m.deliveries) > q.b.opts.MaxRedeliveries {
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
	if cumulative {
		for _, d := range c.unacked[:i+1] {
			settled = append(settled, d.m)
		}
	} else {
		settled = []*message{c.unacked[i].m}
	}
	c.unacked = removeSettled(c.unacked, i, cumulative)
	if ack {
		q.b.stats.acked.Add(uint64(len(settled)))
	} else {
		q.b.stats.nacked.Add(uint64(len(settled)))
	}
	switch {
	case ack:
		for _, m := range settled {
			if m.persistent {
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
	q.b.apply(q, &fx)
	q.dispatch()
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
		if m.persistent {
			fx.deletes = append(fx.deletes, m)
		}
	}
	if q.paged > 0 {
		// Everything stored that is not in memory is paged out.
		var seqs []uint64
		q.b.store.Scan(q.name, 0, 0, func(r *store.Record) error {
			if _, ok := q.resident[r.Seq]; !ok {
				seqs = append(seqs, r.Seq)
			}
			return nil
		})
		if err := q.b.store.Delete(q.name, seqs...); err != nil {
			q.b.log.Error("purging stored messages failed", "queue", q.name, "err", err)
		}
		q.paged, q.pagedMin, q.pagedBytes = 0, 0, 0
		q.freed()
	}
	q.mu.Unlock()
	q.b.apply(q, &fx)
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

// dlqName is the dead letter queue for a queue: /queue/DLQ.NAME. Dead
// letter queues themselves have none, so a poison message cannot loop.
func dlqName(queueName string) (string, bool) {
	name, ok := strings.CutPrefix(queueName, queuePrefix)
	if !ok || strings.HasPrefix(name, "DLQ.") {
		return "", false
	}
	return queuePrefix + "DLQ." + name, true
}

func deathHeaders(orig, reason string) []stomp.Header {
	return []stomp.Header{{Key: "x-original-destination", Value: orig}, {Key: "x-death-reason", Value: reason}}
}
