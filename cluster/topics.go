package cluster

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stampede-mq/stampede/broker"
)

// PublishTopics sends topic messages to the other nodes on their subjects,
// and a copy of each that a durable subscription matches to the topic
// stream; it returns once the stream has stored those copies.
func (n *Node) PublishTopics(ms []*broker.Envelope) error {
	if err := n.Ready(); err != nil {
		return err
	}
	var acks []jetstream.PubAckFuture
	for _, m := range ms {
		data := encode(m)
		if err := n.nc.Publish(topicSubject(topicSubjects, m.Destination), data); err != nil {
			return err
		}
		if !n.durables.wanted(m.Destination) {
			continue
		}
		f, err := n.js.PublishAsync(topicSubject(durableSubjects, m.Destination), data)
		if err != nil {
			return err
		}
		acks = append(acks, f)
	}
	return waitAcks(acks)
}

// WatchTopics delivers other nodes' messages on what pattern matches, in
// the order they arrive, through one goroutine: a pattern that needs two
// subjects still hears each publisher in its order.
func (n *Node) WatchTopics(pattern string, deliver func(*broker.Envelope), lost func()) (stop func(), err error) {
	ch := make(chan *nats.Msg, watchBuffer)
	var subs []*nats.Subscription
	for _, subj := range patternSubjects(topicSubjects, pattern) {
		s, err := n.nc.ChanSubscribe(subj, ch)
		if err != nil {
			for _, s := range subs {
				s.Unsubscribe()
			}
			return nil, err
		}
		// Past the channel NATS drops what this node cannot take: core
		// NATS holds no publisher back. The drops are counted, and the
		// broker told (lost).
		subs = append(subs, s)
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		check := time.NewTicker(dropCheck)
		defer check.Stop()
		var dropped int
		for {
			select {
			case <-check.C:
				if d := droppedBy(subs); d > dropped {
					dropped = d
					n.log.Warn("this node fell behind the cluster's topic messages", "pattern", pattern, "dropped", d)
					lost()
				}
			case msg := <-ch:
				m, err := decode(msg.Data)
				if err != nil {
					n.log.Warn("dropping a malformed message from the cluster", "subject", msg.Subject)
					continue
				}
				deliver(m)
			case <-quit:
				return
			}
		}
	}()
	return func() {
		for _, s := range subs {
			s.Unsubscribe()
		}
		close(quit)
		<-done
	}, nil
}

// watchBuffer is how many topic messages a node holds for a pattern
// before NATS drops them; dropCheck how often drops are looked for.
const (
	watchBuffer = 8192
	dropCheck   = 100 * time.Millisecond
)

func droppedBy(subs []*nats.Subscription) int {
	n := 0
	for _, s := range subs {
		if d, err := s.Dropped(); err == nil {
			n += d
		}
	}
	return n
}

// waitAcks waits for JetStream to acknowledge each publish.
func waitAcks(acks []jetstream.PubAckFuture) error {
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		}
	}
	return nil
}
