package broker

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// This file is the broker's face to operators: what the admin API and
// metrics read, and the few things they may do.

// ErrNotFound is returned for a destination or connection that does not
// exist.
var ErrNotFound = errors.New("not found")

// ConnectionInfo describes one client connection.
type ConnectionInfo struct {
	ID            string
	RemoteAddr    string
	User          string
	ClientID      string
	Transport     string
	Subprotocol   string
	Version       string // "" until CONNECT
	HeartBeatOut  time.Duration
	HeartBeatIn   time.Duration
	Subscriptions int
	MessagesIn    uint64
	MessagesOut   uint64
	OutboundBytes int
	OutboundMax   int
	ConnectedAt   time.Time
	Node          string // in a cluster, the node it is on
}

func (c *conn) describe() ConnectionInfo {
	ci := ConnectionInfo{
		ID: c.id, RemoteAddr: c.info.RemoteAddr, Transport: c.info.Transport,
		Subprotocol: c.info.Subprotocol, ConnectedAt: c.start,
		HeartBeatOut:  time.Duration(c.hbOut.Load()),
		HeartBeatIn:   time.Duration(c.hbIn.Load()),
		Subscriptions: int(c.sess.nsubs.Load()),
		MessagesIn:    c.msgsIn.Load(),
		MessagesOut:   c.msgsOut.Load(),
		OutboundBytes: c.out.used(),
		OutboundMax:   c.out.max,
	}
	// Fields set at CONNECT are stable once connected is seen.
	if c.connected.Load() {
		ci.Version = c.version.String()
		ci.User = c.sess.user
		ci.ClientID = c.sess.clientID
	}
	return ci
}

// DestinationInfo describes a queue or a topic.
type DestinationInfo struct {
	Name      string
	Type      string // "queue" or "topic"
	Depth     int    // messages waiting (queues)
	Unacked   int    // delivered, not yet acknowledged (queues)
	Consumers int    // consumers (queues) or subscriptions (topics)
	Enqueued  uint64 // messages received
	Dequeued  uint64 // messages delivered
	OldestAge time.Duration
	DLQ       bool
}

// Destinations lists queues and the topics that have been published or
// subscribed to, sorted by name.
func (b *Broker) Destinations() []DestinationInfo {
	qs := b.local.allQueues()
	out := make([]DestinationInfo, 0, len(qs))
	for _, q := range qs {
		out = append(out, q.describe())
	}
	for _, t := range b.local.topics.all() {
		out = append(out, b.describeTopic(t))
	}
	out = b.sharedDepths(out)
	slices.SortFunc(out, func(a, b DestinationInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (b *Broker) describeTopic(t *topic) DestinationInfo {
	return DestinationInfo{
		Name: t.name, Type: "topic",
		Consumers: b.local.topics.count(t.name),
		Enqueued:  t.published.Load(),
		Dequeued:  t.delivered.Load(),
	}
}

func (q *queue) describe() DestinationInfo {
	q.mu.Lock()
	defer q.mu.Unlock()
	d := DestinationInfo{
		Name: q.name, Type: "queue", Depth: q.depth + q.paged, Consumers: len(q.consumers),
		Enqueued: q.enqueued, Dequeued: q.dequeued,
		DLQ: strings.HasPrefix(q.name, queuePrefix+"DLQ."),
	}
	for _, c := range q.consumers {
		d.Unacked += len(c.unacked)
	}
	var oldest int64
	for _, l := range q.levels {
		if len(l) > 0 && (oldest == 0 || l[0].timestamp < oldest) {
			oldest = l[0].timestamp
		}
	}
	if oldest != 0 {
		d.OldestAge = time.Since(time.UnixMilli(oldest))
	}
	return d
}

// Destination describes one destination.
func (b *Broker) Destination(name string) (DestinationInfo, error) {
	if b.opts.Cluster != nil && isQueue(name) {
		var local []DestinationInfo
		if q := b.local.queue(name, false); q != nil {
			local = append(local, q.describe())
		}
		for _, d := range b.sharedDepths(local) {
			if d.Name == name {
				return d, nil
			}
		}
		return DestinationInfo{}, ErrNotFound
	}
	if q := b.local.queue(name, false); q != nil {
		return q.describe(), nil
	}
	if t := b.local.topics.lookup(name); t != nil {
		return b.describeTopic(t), nil
	}
	return DestinationInfo{}, ErrNotFound
}

// Message is a message as the admin API shows it.
type Message struct {
	ID          string
	Destination string
	Headers     []stomp.Header
	Body        []byte
	Priority    int
	Timestamp   time.Time
	Redelivered bool
	Persistent  bool
}

func (m *message) export(redelivered bool) Message {
	return Message{
		ID: m.id, Destination: m.destination, Headers: slices.Clone(m.headers),
		Body: m.wire[:m.bodyLen()], Priority: int(m.priority),
		Timestamp: time.UnixMilli(m.timestamp), Redelivered: redelivered, Persistent: m.persistent,
	}
}

// Peek returns up to limit waiting messages of a queue in delivery order,
// without consuming them; of a topic, its newest retained messages, in
// the order they were published.
func (b *Broker) Peek(name string, limit int) ([]Message, error) {
	if !isQueue(name) {
		return b.peekHistory(name, limit)
	}
	if cl := b.opts.Cluster; cl != nil && isQueue(name) && !strings.HasPrefix(name, tempQueueNamePrefix) {
		xs, err := cl.PeekQueue(name, limit)
		if err != nil {
			return nil, err
		}
		out := make([]Message, len(xs))
		for i, x := range xs {
			out[i] = imported(x, name).export(false)
		}
		return out, nil
	}
	q := b.local.queue(name, false)
	if q == nil {
		return nil, ErrNotFound
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Message
	for p := len(q.levels) - 1; p >= 0 && len(out) < limit; p-- {
		for _, m := range q.levels[p] {
			if len(out) >= limit {
				break
			}
			out = append(out, m.export(m.deliveries > 0))
		}
	}
	return out, nil
}

// Publish sends a message as a client's SEND would (receipt semantics
// included: it returns once the message is routed and, if persistent,
// stored).
func (b *Broker) Publish(dest string, headers []stomp.Header, body []byte) error {
	kind, err := parseDestination(dest, false)
	if err != nil {
		return err
	}
	if kind == kindTempQueue {
		return errors.New("temporary queues belong to their connection")
	}
	if err := checkHeaderNames(headers); err != nil {
		return err
	}
	f := &stomp.Frame{Command: stomp.SEND, Headers: headers, Body: body}
	return b.router.publish(nil, []*message{newMessage(b.ids.next(), dest, f, time.Now())})
}

// Purge drops every waiting message of a queue and returns how many.
func (b *Broker) Purge(name string) (int, error) {
	if cl := b.opts.Cluster; cl != nil && isQueue(name) && !strings.HasPrefix(name, tempQueueNamePrefix) {
		n, err := cl.PurgeQueue(name)
		if q := b.local.queue(name, false); q != nil {
			q.purge()
		}
		return n, err
	}
	q := b.local.queue(name, false)
	if q == nil {
		return 0, ErrNotFound
	}
	return q.purge(), nil
}

// DeleteDestination removes a queue with its messages (its consumers are
// disconnected with an ERROR), or forgets a topic's figures.
func (b *Broker) DeleteDestination(name string) error {
	if !isQueue(name) {
		if !b.local.topics.forget(name) {
			return ErrNotFound
		}
		return nil
	}
	if cl := b.opts.Cluster; cl != nil && !strings.HasPrefix(name, tempQueueNamePrefix) {
		if _, err := cl.PurgeQueue(name); err != nil {
			return err
		}
	}
	q := b.local.queue(name, false)
	if q == nil {
		return ErrNotFound
	}
	b.local.dropQueue(q)
	q.mu.Lock()
	consumers := slices.Clone(q.consumers)
	q.mu.Unlock()
	for _, c := range consumers {
		c.conn.fail("queue "+name+" was deleted", "")
	}
	q.purge()
	return nil
}

func (b *Broker) peekHistory(name string, limit int) ([]Message, error) {
	ms, ok := b.local.hist.latest(name, limit)
	if !ok && b.local.topics.lookup(name) == nil {
		return nil, ErrNotFound
	}
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.export(false))
	}
	return out, nil
}
