package broker

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// ErrStoreFull refuses a persistent message when the store is over
// MaxStoreBytes.
var ErrStoreFull = errors.New("message store is full")

// persist stores, in one append, every persistent copy the plan's queues
// will hold, and gives each its store sequence.
func (r *local) persist(p *plan) error {
	var recs []*store.Record
	var stored []*message
	var kept []*histEntry
	for i := range p.routes {
		if !p.routes[i].m.persistent {
			continue
		}
		for _, c := range p.routes[i].copies {
			recs = append(recs, c.record())
			stored = append(stored, c)
		}
		if e := p.routes[i].hist; e != nil && !e.gone {
			kept = append(kept, e)
		}
	}
	for _, e := range kept {
		recs = append(recs, e.record())
	}
	if len(recs) == 0 {
		return nil
	}
	if max := r.opts.MaxStoreBytes; max > 0 {
		if size, err := r.store.Size(); err != nil || size >= max {
			return fmt.Errorf("%w (max %d bytes)", ErrStoreFull, max)
		}
	}
	if err := r.store.Append(recs); err != nil {
		r.log.Error("storing persistent messages failed", "err", err)
		return fmt.Errorf("message not stored: %w", err)
	}
	for i, c := range stored {
		c.seq = recs[i].Seq
	}
	for i, e := range kept {
		e.stored = recs[len(stored)+i].Seq
	}
	return nil
}

// destinationKey carries a durable copy's topic name in its stored
// headers. A NUL can never appear in a header read from a client.
const destinationKey = "\x00destination"

func (m *message) record() *store.Record {
	r := &store.Record{
		Queue: m.queue, ID: m.id, Body: m.wire[:m.bodyLen()],
		Priority: m.priority, Expires: m.expires, Timestamp: m.timestamp,
		Deliveries: m.deliveries,
	}
	r.Headers = make([][2]string, len(m.headers), len(m.headers)+1)
	for i, h := range m.headers {
		r.Headers[i] = [2]string{h.Key, h.Value}
	}
	if m.destination != m.queue {
		r.Headers = append(r.Headers, [2]string{destinationKey, m.destination})
	}
	return r
}

// messageFromRecord rebuilds a stored message held by queue name.
func messageFromRecord(r *store.Record, name string) *message {
	m := &message{
		id: r.ID, queue: name, priority: min(r.Priority, 9),
		expires: r.Expires, timestamp: r.Timestamp, persistent: true,
		deliveries: r.Deliveries, seq: r.Seq, tails: new(headTails),
	}
	m.destination = name
	m.headers = make([]stomp.Header, 0, len(r.Headers))
	for _, h := range r.Headers {
		if h[0] == destinationKey {
			m.destination = h[1]
			continue
		}
		m.headers = append(m.headers, stomp.Header{Key: h[0], Value: h[1]})
	}
	m.wire = append(r.Body[:len(r.Body):len(r.Body)], 0)
	m.binary = !utf8.Valid(r.Body)
	return m
}
