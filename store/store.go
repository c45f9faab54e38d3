// Package store holds what a message store keeps: records, queue summaries
// and durable subscriptions, and Memory, a store in process memory. The
// disk-backed store is in store/bolt, and the behaviour every store shares
// is written down as tests in store/storetest; the broker declares the
// interface it needs itself.
package store

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"sync"
)

// ErrClosed is returned by every call on a closed store.
var ErrClosed = errors.New("store: closed")

// Record is one stored message.
type Record struct {
	// Seq orders records within their queue; the store assigns it.
	Seq uint64
	// Queue is the destination the message waits in.
	Queue string
	// ID is the broker's message-id.
	ID string
	// Headers are the message's headers as key/value pairs, in order.
	Headers [][2]string
	Body    []byte
	// Priority is 0-9, higher first.
	Priority uint8
	// Expires is the absolute expiry in ms since the epoch, 0 for never.
	Expires int64
	// Timestamp is the broker receive time in ms since the epoch.
	Timestamp int64
	// Deliveries counts how often the message has been handed out.
	Deliveries uint32
}

// QueueInfo describes a stored queue without reading its messages.
type QueueInfo struct {
	Name  string
	Count int   // records held
	Bytes int64 // bytes of their bodies
	// Dispatched is the queue's dispatch mark: records with a Seq up to it
	// may have been handed to a consumer before the store was closed.
	Dispatched uint64
}

// DeliveryCount is how often the record Seq of Queue has been handed out.
type DeliveryCount struct {
	Queue string
	Seq   uint64
	N     uint32
}

// Subscription is a durable topic subscription: matching messages wait in
// its own queue while the subscriber is away.
type Subscription struct {
	// Name identifies it: client-id and subscription id, or the name the
	// client chose with x-queue-name / activemq.subscriptionName.
	Name string
	// Destination is the topic or topic pattern it subscribes to.
	Destination string
	// Queue is the queue its pending messages are stored under.
	Queue string
	// Owner is the user who made it; only they may resume or delete it.
	// Empty when no logins are configured.
	Owner string
}

// Memory is a message store that lives in process memory: what it holds is
// gone when the process ends. It passes the storetest contract.
type Memory struct {
	mu     sync.Mutex
	seq    uint64
	queues map[string]map[uint64]*Record
	marks  map[string]uint64
	subs   map[string]Subscription
	closed bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{queues: make(map[string]map[uint64]*Record), marks: make(map[string]uint64), subs: make(map[string]Subscription)}
}

func copyRecord(r *Record) *Record {
	c := *r
	c.Headers = slices.Clone(r.Headers)
	c.Body = slices.Clone(r.Body)
	return &c
}

// Append stores copies of recs and sets their Seq fields.
func (m *Memory) Append(recs []*Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, r := range recs {
		m.seq++
		r.Seq = m.seq
		q := m.queues[r.Queue]
		if q == nil {
			q = make(map[uint64]*Record)
			m.queues[r.Queue] = q
		}
		q[r.Seq] = copyRecord(r)
	}
	return nil
}

// Delete removes records; missing ones are not an error.
func (m *Memory) Delete(queue string, seqs ...uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if q := m.queues[queue]; q != nil {
		for _, seq := range seqs {
			delete(q, seq)
		}
		if len(q) == 0 {
			delete(m.queues, queue)
			delete(m.marks, queue)
		}
	}
	return nil
}

// SetDeliveries records new delivery counts for the records it holds,
// all at once; a later count for the same record wins.
func (m *Memory) SetDeliveries(counts []DeliveryCount) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, c := range counts {
		if r := m.queues[c.Queue][c.Seq]; r != nil {
			r.Deliveries = c.N
		}
	}
	return nil
}

// Queues lists the queues that hold records, by name.
func (m *Memory) Queues() ([]QueueInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]QueueInfo, 0, len(m.queues))
	for name, q := range m.queues {
		info := QueueInfo{Name: name, Count: len(q), Dispatched: m.marks[name]}
		for _, r := range q {
			info.Bytes += int64(len(r.Body))
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b QueueInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Scan calls fn with copies of up to limit records of queue with Seq >
// after, in Seq order (limit <= 0: all).
func (m *Memory) Scan(queue string, after uint64, limit int, fn func(*Record) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	recs := make([]*Record, 0, len(m.queues[queue]))
	for seq, r := range m.queues[queue] {
		if seq > after {
			recs = append(recs, r)
		}
	}
	slices.SortFunc(recs, func(a, b *Record) int { return cmp.Compare(a.Seq, b.Seq) })
	if limit > 0 && len(recs) > limit {
		recs = recs[:limit]
	}
	for i, r := range recs {
		recs[i] = copyRecord(r)
	}
	m.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// DeleteQueue removes every record of queue, and its dispatch mark.
func (m *Memory) DeleteQueue(queue string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.queues, queue)
	delete(m.marks, queue)
	return nil
}

// SetDispatched sets queue's dispatch mark.
func (m *Memory) SetDispatched(queue string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.marks[queue] = seq
	return nil
}

// PutSubscription creates or replaces a durable subscription.
func (m *Memory) PutSubscription(sub Subscription) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.subs[sub.Name] = sub
	return nil
}

// DeleteSubscription removes a durable subscription.
func (m *Memory) DeleteSubscription(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.subs, name)
	return nil
}

// Subscriptions lists the durable subscriptions, by name.
func (m *Memory) Subscriptions() ([]Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]Subscription, 0, len(m.subs))
	for _, s := range m.subs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Size reports the bytes of the bodies held.
func (m *Memory) Size() (int64, error) {
	qs, err := m.Queues()
	var n int64
	for _, q := range qs {
		n += q.Bytes
	}
	return n, err
}

// Close releases the store: every later call returns ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
