package broker

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
}

// Connections lists the current connections, oldest first.
func (b *Broker) Connections() []ConnectionInfo {
	b.mu.Lock()
	all := make([]*session, 0, len(b.sessions))
	for s := range b.sessions {
		all = append(all, s)
	}
	b.mu.Unlock()
	out := make([]ConnectionInfo, 0, len(all))
	for _, s := range all {
		out = append(out, s.describe())
	}
	slices.SortFunc(out, func(a, b ConnectionInfo) int { return a.ConnectedAt.Compare(b.ConnectedAt) })
	return out
}

func (s *session) describe() ConnectionInfo {
	ci := ConnectionInfo{
		ID: s.id, RemoteAddr: s.info.RemoteAddr, Transport: s.info.Transport,
		Subprotocol: s.info.Subprotocol, ConnectedAt: s.start,
		HeartBeatOut:  time.Duration(s.hbOut.Load()),
		HeartBeatIn:   time.Duration(s.hbIn.Load()),
		Subscriptions: int(s.nsubs.Load()),
		MessagesIn:    s.msgsIn.Load(),
		MessagesOut:   s.msgsOut.Load(),
		OutboundBytes: s.out.used(),
		OutboundMax:   s.out.max,
	}
	// Fields set at CONNECT are stable once connected is seen.
	if s.connected.Load() {
		ci.Version = s.version.String()
		ci.User = s.user
		ci.ClientID = s.clientID
	}
	return ci
}

// CloseConnection ends a connection with an ERROR carrying reason.
func (b *Broker) CloseConnection(id, reason string) error {
	b.mu.Lock()
	var found *session
	for s := range b.sessions {
		if s.id == id {
			found = s
			break
		}
	}
	b.mu.Unlock()
	if found == nil {
		return ErrNotFound
	}
	found.fail(reason, "")
	return nil
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

// topicStats counts what passed through one topic name.
type topicStats struct {
	published, delivered atomic.Uint64
}

func (b *Broker) topicCounter(name string) *topicStats {
	if v, ok := b.topicNames.Load(name); ok {
		return v.(*topicStats)
	}
	v, _ := b.topicNames.LoadOrStore(name, &topicStats{})
	return v.(*topicStats)
}

// Destinations lists queues and the topics that have been published or
// subscribed to, sorted by name.
func (b *Broker) Destinations() []DestinationInfo {
	b.mu.Lock()
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	b.mu.Unlock()
	out := make([]DestinationInfo, 0, len(qs))
	for _, q := range qs {
		out = append(out, q.describe())
	}
	b.topicNames.Range(func(k, v any) bool {
		out = append(out, b.describeTopic(k.(string), v.(*topicStats)))
		return true
	})
	slices.SortFunc(out, func(a, b DestinationInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (b *Broker) describeTopic(name string, st *topicStats) DestinationInfo {
	return DestinationInfo{
		Name: name, Type: "topic",
		Consumers: len(b.topics.match(name, nil)),
		Enqueued:  st.published.Load(),
		Dequeued:  st.delivered.Load(),
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
	if q := b.queue(name, false); q != nil {
		return q.describe(), nil
	}
	if v, ok := b.topicNames.Load(name); ok {
		return b.describeTopic(name, v.(*topicStats)), nil
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
// without consuming them.
func (b *Broker) Peek(name string, limit int) ([]Message, error) {
	q := b.queue(name, false)
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
	f := &stomp.Frame{Command: stomp.SEND, Headers: headers, Body: body}
	return b.publish([]*message{newMessage(b.nextMessageID(), dest, f, time.Now())})
}

// Purge drops every waiting message of a queue and returns how many.
func (b *Broker) Purge(name string) (int, error) {
	q := b.queue(name, false)
	if q == nil {
		return 0, ErrNotFound
	}
	return q.purge(), nil
}

// DeleteDestination removes a queue with its messages (its consumers are
// disconnected with an ERROR), or forgets a topic's figures.
func (b *Broker) DeleteDestination(name string) error {
	if !isQueue(name) {
		if _, ok := b.topicNames.LoadAndDelete(name); !ok {
			return ErrNotFound
		}
		return nil
	}
	q := b.queue(name, false)
	if q == nil {
		return ErrNotFound
	}
	b.dropQueue(q)
	q.mu.Lock()
	consumers := slices.Clone(q.consumers)
	q.mu.Unlock()
	for _, c := range consumers {
		c.s.fail("queue "+name+" was deleted", "")
	}
	q.purge()
	return nil
}

// tap is a non-consuming observer of one destination.
type tap struct {
	dest string
	fn   func(Message)
}

type taps struct {
	mu    sync.RWMutex
	n     atomic.Int32
	byDst map[string][]*tap
}

// Tap calls fn with every message that reaches dest from now on, without
// taking it from consumers. fn runs on the publisher's goroutine: it must
// not block. The returned function stops the tap.
func (b *Broker) Tap(dest string, fn func(Message)) (stop func()) {
	t := &tap{dest: dest, fn: fn}
	b.taps.mu.Lock()
	if b.taps.byDst == nil {
		b.taps.byDst = make(map[string][]*tap)
	}
	b.taps.byDst[dest] = append(b.taps.byDst[dest], t)
	b.taps.n.Add(1)
	b.taps.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.taps.mu.Lock()
			l := b.taps.byDst[dest]
			if i := slices.Index(l, t); i >= 0 {
				l = slices.Delete(l, i, i+1)
			}
			if len(l) == 0 {
				delete(b.taps.byDst, dest)
			} else {
				b.taps.byDst[dest] = l
			}
			b.taps.n.Add(-1)
			b.taps.mu.Unlock()
		})
	}
}

// notifyTaps shows m to the taps on its destination; cheap when none.
func (b *Broker) notifyTaps(m *message) {
	if b.taps.n.Load() == 0 {
		return
	}
	b.taps.mu.RLock()
	l := b.taps.byDst[m.destination]
	b.taps.mu.RUnlock()
	if len(l) == 0 {
		return
	}
	e := m.export(false)
	for _, t := range l {
		t.fn(e)
	}
}
