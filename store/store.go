// Package store keeps persistent queue messages. The broker talks to it
// through the Store interface; Memory is the in-process implementation and
// a disk-backed one fills the same interface.
package store

import (
	"errors"
	"slices"
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

// Store persists queue messages. Append must not return until the
// records are durable; implementations must be safe for concurrent use.
type Store interface {
	// Append stores records and sets their Seq fields.
	Append(recs []*Record) error
	// Delete removes a record; deleting a missing record is not an error.
	Delete(queue string, seq uint64) error
	// SetDeliveries records a new delivery count for a record.
	SetDeliveries(queue string, seq uint64, n uint32) error
	// Queues lists the queues that hold records.
	Queues() ([]string, error)
	// Each calls fn for every record of queue in Seq order.
	Each(queue string, fn func(*Record) error) error
	// Close releases the store.
	Close() error
}

// Memory is a Store that lives in process memory: what it holds is gone
// when the process ends.
type Memory struct {
	mu     sync.Mutex
	seq    uint64
	queues map[string]map[uint64]*Record
	closed bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{queues: make(map[string]map[uint64]*Record)}
}

func copyRecord(r *Record) *Record {
	c := *r
	c.Headers = slices.Clone(r.Headers)
	c.Body = slices.Clone(r.Body)
	return &c
}

// Append implements Store.
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

// Delete implements Store.
func (m *Memory) Delete(queue string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if q := m.queues[queue]; q != nil {
		delete(q, seq)
		if len(q) == 0 {
			delete(m.queues, queue)
		}
	}
	return nil
}

// SetDeliveries implements Store.
func (m *Memory) SetDeliveries(queue string, seq uint64, n uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if r := m.queues[queue][seq]; r != nil {
		r.Deliveries = n
	}
	return nil
}

// Queues implements Store.
func (m *Memory) Queues() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	names := make([]string, 0, len(m.queues))
	for name := range m.queues {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// Each implements Store. Records are copies; fn may keep them.
func (m *Memory) Each(queue string, fn func(*Record) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	recs := make([]*Record, 0, len(m.queues[queue]))
	for _, r := range m.queues[queue] {
		recs = append(recs, copyRecord(r))
	}
	m.mu.Unlock()
	slices.SortFunc(recs, func(a, b *Record) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
