package web

import (
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// Broker is what the console shows and steers: the calls web makes on a
// *broker.Broker, declared here so that web can be served, and tested,
// against anything that answers them.
type Broker interface {
	// Stats returns the current figures, for the overview, the sampled
	// rates and /metrics.
	Stats() broker.Stats
	// Nodes lists the nodes of the cluster, or the broker alone.
	Nodes() []broker.NodeInfo
	// Connections lists the connections, oldest first.
	Connections() []broker.ConnectionInfo
	// CloseConnection sends the connection an ERROR with reason and
	// closes it; broker.ErrNotFound when there is none with id.
	CloseConnection(id, reason string) error
	// Destinations lists queues and topics, sorted by name.
	Destinations() []broker.DestinationInfo
	// Destination describes one; broker.ErrNotFound when it is unknown.
	Destination(name string) (broker.DestinationInfo, error)
	// DeleteDestination removes a queue and its messages, or forgets a
	// topic's figures.
	DeleteDestination(name string) error
	// Durables lists the durable subscriptions, online and offline.
	Durables() []broker.DurableInfo
	// Peek returns up to limit of a queue's messages without taking them.
	Peek(name string, limit int) ([]broker.Message, error)
	// Publish sends a message as a client's SEND would.
	Publish(dest string, headers []stomp.Header, body []byte) error
	// Purge drops a queue's waiting messages and says how many.
	Purge(name string) (int, error)
	// Tap calls fn with each message that reaches dest until stop is
	// called; fn runs on the publisher's goroutine and must not block.
	Tap(dest string, fn func(broker.Message)) (stop func())
}
