package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stampede-mq/stampede/broker"
)

// Queues are one JetStream stream, a subject per queue, and one durable
// pull consumer per queue that every node shares: a node fetches only as
// many messages as its own consumers have room for, so each message goes
// to exactly one consumer in the cluster. A message a node took and did
// not settle (it failed, or was cut off) goes back after AckWait,
// counted as delivered once more.

// queueConsumerIdle is how long a queue's consumer outlives its last use.
const queueConsumerIdle = time.Hour

// Enqueue stores queue messages and returns once JetStream has them.
func (n *Node) Enqueue(ms []*broker.Envelope) error {
	if err := n.Ready(); err != nil {
		return err
	}
	acks := make([]jetstream.PubAckFuture, 0, len(ms))
	for _, m := range ms {
		f, err := n.js.PublishAsync(queueSubject(m.Destination), encode(m))
		if err != nil {
			return err
		}
		acks = append(acks, f)
	}
	return waitAcks(acks)
}

// Consume feeds this node the shared queue name.
func (n *Node) Consume(name string) (broker.Feed, error) {
	cfg := jetstream.ConsumerConfig{
		Durable: key("q", name), FilterSubject: queueSubject(name),
		Metadata: map[string]string{"queue": name},
		// A queue nobody consumes for a while loses its consumer (each is
		// a replicated group), not its messages: the next consumer makes
		// it again.
		InactiveThreshold: queueConsumerIdle,
	}
	return n.feed(queueStream, cfg)
}

// ConsumeDurable feeds this node the durable subscription name, made on
// pattern by owner; one made on another pattern starts afresh, and one
// made by another user is refused.
func (n *Node) ConsumeDurable(name, pattern, owner string) (broker.Feed, error) {
	durable := key("d", name)
	ctx, cancel := ctxTimeout()
	defer cancel()
	info, err := n.js.Consumer(ctx, topicStream, durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case err != nil:
		return nil, err
	case info.CachedInfo().Config.Metadata["owner"] != owner:
		return nil, errors.New("access denied: cannot read durable subscription " + name + " (another user's)")
	case info.CachedInfo().Config.Metadata["pattern"] != pattern:
		if err := n.js.DeleteConsumer(ctx, topicStream, durable); err != nil {
			return nil, err
		}
	}
	cfg := jetstream.ConsumerConfig{
		Durable: durable, FilterSubjects: patternSubjects(durableSubjects, pattern),
		DeliverPolicy: jetstream.DeliverNewPolicy,
		Metadata:      map[string]string{"durable": name, "pattern": pattern, "owner": owner},
	}
	f, err := n.feed(topicStream, cfg)
	if err != nil {
		return nil, err
	}
	if err := n.registerDurable(name, pattern); err != nil {
		return nil, err
	}
	return f, nil
}

// ForgetDurable deletes the durable subscription name, if owner made it.
func (n *Node) ForgetDurable(name, owner string) error {
	ctx, cancel := ctxTimeout()
	defer cancel()
	durable := key("d", name)
	info, err := n.js.Consumer(ctx, topicStream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.CachedInfo().Config.Metadata["owner"] != owner {
		return errors.New("access denied: cannot read durable subscription " + name + " (another user's)")
	}
	if err := n.js.DeleteConsumer(ctx, topicStream, durable); err != nil {
		return err
	}
	return n.unregisterDurable(name)
}

// feed makes (or finds) a shared consumer and returns a feed from it.
func (n *Node) feed(stream string, cfg jetstream.ConsumerConfig) (broker.Feed, error) {
	cfg.AckPolicy = jetstream.AckExplicitPolicy
	cfg.AckWait = n.cfg.AckWait
	cfg.MaxDeliver = -1 // the broker counts deliveries and dead-letters
	cfg.MaxAckPending = -1
	cfg.Replicas = 0 // as the stream
	var c jetstream.Consumer
	ctx, cancel := context.WithTimeout(context.Background(), 2*apiTimeout)
	defer cancel()
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		c, err = n.js.CreateOrUpdateConsumer(ctx, stream, cfg)
		if err != nil && !isTemporary(err) {
			return permanent{err}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &feed{n: n, c: c}, nil
}

// feed is a node's share of one queue.
type feed struct {
	n *Node
	c jetstream.Consumer
}

// Fetch first takes what is waiting, all at once, so that its
// priorities count; when nothing is, it waits for what comes and hands
// each message on as it arrives.
func (f *feed) Fetch(max int, wait time.Duration, take func([]*broker.Envelope)) error {
	waiting, err := f.c.FetchNoWait(max)
	if err != nil {
		return err
	}
	var ready []*broker.Envelope
	for msg := range waiting.Messages() {
		if m := f.envelope(msg); m != nil {
			ready = append(ready, m)
		}
	}
	if len(ready) > 0 {
		take(ready)
		return nil
	}
	batch, err := f.c.Fetch(max, jetstream.FetchMaxWait(wait))
	if err != nil {
		return err
	}
	for msg := range batch.Messages() {
		if m := f.envelope(msg); m != nil {
			take([]*broker.Envelope{m})
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return err
	}
	return nil
}

// envelope reads a fetched message, leased to this node.
func (f *feed) envelope(msg jetstream.Msg) *broker.Envelope {
	m, err := decode(msg.Data())
	if err != nil {
		f.n.log.Warn("dropping a malformed queue message", "subject", msg.Subject())
		msg.Term()
		return nil
	}
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
		m.Deliveries = uint32(md.NumDelivered - 1)
	}
	m.Lease = lease{msg}
	return m
}

// LeaseTime is the consumer's AckWait.
func (f *feed) LeaseTime() time.Duration { return f.n.cfg.AckWait }

// Close does nothing: the consumer is shared and outlives this node's
// use of it; what the node leased and did not settle goes back after
// AckWait.
func (f *feed) Close() {}

// lease settles a fetched message in its queue.
type lease struct{ msg jetstream.Msg }

func (l lease) Ack()     { l.msg.Ack() }
func (l lease) Release() { l.msg.Nak() }
func (l lease) Extend()  { l.msg.InProgress() }

// PurgeQueue drops every message the queue name holds in the cluster and
// says how many there were.
func (n *Node) PurgeQueue(name string) (int, error) {
	ctx, cancel := ctxTimeout()
	defer cancel()
	s, err := n.js.Stream(ctx, queueStream)
	if err != nil {
		return 0, err
	}
	before, err := n.QueueDepths()
	if err != nil {
		return 0, err
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(queueSubject(name))); err != nil {
		return 0, err
	}
	return before[name], nil
}

// PeekQueue returns up to limit of the messages the queue name holds, in
// order, without taking them.
func (n *Node) PeekQueue(name string, limit int) ([]*broker.Envelope, error) {
	ctx, cancel := ctxTimeout()
	defer cancel()
	s, err := n.js.Stream(ctx, queueStream)
	if err != nil {
		return nil, err
	}
	var out []*broker.Envelope
	for seq := uint64(1); len(out) < limit; {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(queueSubject(name)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return out, err
		}
		if m, err := decode(raw.Data); err == nil {
			out = append(out, m)
		}
		seq = raw.Sequence + 1
	}
	return out, nil
}
