package broker

import (
	"time"
	"unicode/utf8"

	"github.com/stampede-mq/stampede/stomp"
)

// Cluster carries what one broker shares with the other nodes of a
// cluster. The broker keeps doing everything a single node does for its
// own clients (sessions, local fan-out, prefetch, ack modes, redelivery
// and dead-lettering); a Cluster only moves messages between nodes and
// holds what must outlive any one of them: queues, durable
// subscriptions, client-id claims. Without one the broker is a single
// node. The cluster package implements it on NATS JetStream.
type Cluster interface {
	// Node is this node's name, unique in the cluster.
	Node() string
	// Ready reports why the node cannot serve the cluster now, or nil.
	Ready() error

	// PublishTopics sends topic messages to the other nodes' matching
	// subscribers and to every durable subscription they match. It
	// returns once the persistent ones are stored.
	PublishTopics(ms []*Envelope) error
	// WatchTopics delivers the other nodes' messages on topics that
	// pattern matches (wildcards as in SUBSCRIBE) until stop is called.
	// Other nodes' publishers are not held back by this node's
	// subscribers: when this node falls behind and messages are lost,
	// it calls lost.
	WatchTopics(pattern string, deliver func(*Envelope), lost func()) (stop func(), err error)

	// Enqueue stores queue messages in their shared queues, where
	// exactly one consumer on some node will take each. It returns once
	// they are stored.
	Enqueue(ms []*Envelope) error
	// Consume feeds this node a shared queue (its name, /queue/…) for
	// local consumers.
	Consume(queue string) (Feed, error)
	// ConsumeDurable feeds this node a durable topic subscription; it is
	// made, keyed by name, the first time, collecting what pattern
	// matches from then on.
	ConsumeDurable(name, pattern, owner string) (Feed, error)
	// ForgetDurable deletes a durable subscription and what it holds;
	// only its owner may.
	ForgetDurable(name, owner string) error

	// OpenInbox delivers what any node sends to a temporary queue of
	// this node's until stop is called; SendInbox sends to one that may
	// live on another node.
	OpenInbox(name string, deliver func(*Envelope)) (stop func(), err error)
	SendInbox(ms []*Envelope) error

	// ClaimClientID holds key for this node until ReleaseClientID; it
	// reports false while another connection anywhere holds it.
	ClaimClientID(key string) (bool, error)
	ReleaseClientID(key string)
	// WhenSettled calls fn once every Lease.Ack made so far has been
	// confirmed by the cluster, from another goroutine or at once.
	WhenSettled(fn func())

	// KeepHistory adds retained topic messages to the history the nodes
	// share, in order, and returns each one's position there: positions
	// grow with every message kept, on any node.
	KeepHistory(ms []*Envelope) ([]uint64, error)
	// History calls each, in position order, with every retained message
	// on a topic that pattern matches whose position is from on, until
	// each returns false.
	History(pattern string, from uint64, each func(pos uint64, m *Envelope) bool) error

	// Nodes lists the nodes alive, this one included.
	Nodes() ([]NodeInfo, error)
	// QueueDepths reports the messages each shared queue holds, waiting
	// or handed out and not yet settled, by name.
	QueueDepths() (map[string]int, error)
	// PurgeQueue drops what a shared queue holds and says how much;
	// PeekQueue shows up to limit of its messages without taking them.
	PurgeQueue(name string) (int, error)
	PeekQueue(name string, limit int) ([]*Envelope, error)
	// Ask puts a question to every other node and returns the answers
	// that come within a moment; Answer makes this node answer one.
	Ask(question string, body []byte) ([][]byte, error)
	Answer(question string, answer func(body []byte) []byte) (stop func(), err error)
}

// NodeInfo describes one node of a cluster.
type NodeInfo struct {
	Name    string
	Started time.Time
	Self    bool // the node answering
}

// Feed hands this node messages of one shared queue or durable
// subscription, each held for it (leased) until settled.
type Feed interface {
	// Fetch waits up to wait for at most n messages, handing them to
	// take as they arrive; those waiting already, in one call, so that
	// their priorities can be honoured.
	Fetch(n int, wait time.Duration, take func([]*Envelope)) error
	// Close stops the feed; messages it leased and nobody settled go back
	// to the other nodes in time.
	Close()
	// LeaseTime is how long a lease lasts unless extended.
	LeaseTime() time.Duration
}

// Lease is a shared queue's hold on a message handed to this node.
type Lease interface {
	// Ack removes the message from its queue for good.
	Ack()
	// Release puts it back for any node to take.
	Release()
	// Extend tells the queue the message is still being worked on, so it
	// does not go back after its time.
	Extend()
}

// Envelope is a published message as it travels between nodes.
type Envelope struct {
	ID          string
	Destination string
	Headers     []stomp.Header // the user's headers, as sent
	Body        []byte
	Priority    uint8
	Expires     int64 // ms since the epoch, 0 = never
	Timestamp   int64 // ms since the epoch
	Persistent  bool
	// Deliveries counts earlier deliveries of a queue message: a message
	// a failed node had handed out comes back with one or more.
	Deliveries uint32
	// Lease, on a message from a Feed, settles it in its queue.
	Lease Lease
}

// exported returns m as it travels between nodes.
func (m *message) exported() *Envelope {
	return &Envelope{
		ID: m.id, Destination: m.destination, Headers: m.headers, Body: m.wire[:m.bodyLen()],
		Priority: m.priority, Expires: m.expires, Timestamp: m.timestamp, Persistent: m.persistent,
	}
}

// imported returns the message a node received, held by queue (its
// destination when empty).
func imported(x *Envelope, queue string) *message {
	if queue == "" {
		queue = x.Destination
	}
	m := &message{
		id: x.ID, destination: x.Destination, queue: queue, headers: x.Headers,
		priority: min(x.Priority, 9), expires: x.Expires, timestamp: x.Timestamp,
		persistent: x.Persistent, deliveries: x.Deliveries, lease: x.Lease,
		tails: new(headTails),
	}
	if pos, ok := parsePosition(x.ID); ok {
		m.hseq = pos // a retained message's id is its position
	}
	m.wire = make([]byte, len(x.Body)+1)
	copy(m.wire, x.Body)
	m.binary = !utf8.Valid(x.Body)
	return m
}

// exportAll returns ms as they travel between nodes.
func exportAll(ms []*message) []*Envelope {
	out := make([]*Envelope, len(ms))
	for i, m := range ms {
		out[i] = m.exported()
	}
	return out
}
