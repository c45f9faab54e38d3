package cluster

import (
	"github.com/nats-io/nats.go"

	"github.com/stampede-mq/stampede/broker"
)

// Temporary queues live on the node of the connection that made them;
// their inbox subject reaches it from any other. What is sent to one that
// is gone is dropped, as it is on a single node.

// OpenInbox delivers what any node sends to the temporary queue name.
func (n *Node) OpenInbox(name string, deliver func(*broker.Envelope)) (stop func(), err error) {
	s, err := n.nc.Subscribe(inboxSubject(name), func(msg *nats.Msg) {
		if m, err := decode(msg.Data); err == nil {
			deliver(m)
		}
	})
	if err != nil {
		return nil, err
	}
	return func() { s.Unsubscribe() }, nil
}

// SendInbox sends messages to temporary queues of other nodes.
func (n *Node) SendInbox(ms []*broker.Envelope) error {
	if err := n.Ready(); err != nil {
		return err
	}
	for _, m := range ms {
		if err := n.nc.Publish(inboxSubject(m.Destination), encode(m)); err != nil {
			return err
		}
	}
	return nil
}
