package broker

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"sync"

	"github.com/stampede-mq/stampede/stomp"
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

// removeSettled removes ds[i], or ds[:i+1] when cumulative, in place.
func removeSettled(ds []delivery, i int, cumulative bool) []delivery {
	if cumulative {
		n := copy(ds, ds[i+1:])
		clear(ds[n:])
		return ds[:n]
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
	depth     int
	consumers []*consumer
	next      int // round-robin position
	enqueued  uint64
	dequeued  uint64
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
	q.depth++
}

// pushFront puts messages back at the head of their levels, keeping their
// relative order.
func (q *queue) pushFront(ms []*message) {
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		q.levels[m.priority] = slices.Insert(q.levels[m.priority], 0, m)
		q.depth++
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
			return m
		}
	}
	return nil
}

// enqueue adds published messages and dispatches them.
func (q *queue) enqueue(ms ...*message) {
	q.mu.Lock()
	for _, m := range ms {
		q.pushBack(m)
		q.enqueued++
	}
	q.mu.Unlock()
	q.dispatch()
}

// dispatch hands waiting messages to ready consumers, round robin. A
// consumer is ready while it is under its prefetch and its connection's
// outbound queue has room.
func (q *queue) dispatch() {
	var fx effects
	q.mu.Lock()
	now := time.Now().UnixMilli()
	for q.depth > 0 {
		c := q.nextReady()
		if c == nil {
			break
		}
		m := q.popFront()
		if m.expired(now) {
			fx.expire(m, q.b.opts.DeadLetterExpired)
			continue
		}
		redelivered := m.deliveries > 0
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

// purge drops every waiting message and returns how many there were.
func (q *queue) purge() int {
	var fx effects
	q.mu.Lock()
	n := q.depth
	for m := q.popFront(); m != nil; m = q.popFront() {
		if m.persistent {
			fx.deletes = append(fx.deletes, m)
		}
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
	return QueueStats{Name: q.name, Depth: q.depth, Consumers: len(q.consumers), Enqueued: q.enqueued, Dequeued: q.dequeued}
}

// dlqName is the dead letter queue for a queue: /queue/DLQ.NAME. Dead
// letter queues themselves have none, so a poison message cannot loop.
func dlqName(queueName string) (string, bool) {
	name := strings.TrimPrefix(queueName, queuePrefix)
	if strings.HasPrefix(name, "DLQ.") || strings.HasPrefix(queueName, tempQueuePrefix) {
		return "", false
	}
	return queuePrefix + "DLQ." + name, true
}

func deathHeaders(orig, reason string) []stomp.Header {
	return []stomp.Header{{Key: "x-original-destination", Value: orig}, {Key: "x-death-reason", Value: reason}}
}
