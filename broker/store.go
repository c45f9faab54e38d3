package broker

import "github.com/stampede-mq/stampede/store"

// Store is where the broker keeps persistent messages and durable
// subscriptions. It is declared here, where it is used, so that the broker
// and what imports it do not link a store implementation; store.Memory and
// store/bolt fill it, and store/storetest states the behaviour the broker
// relies on. Implementations must be safe for concurrent use.
type Store interface {
	// Append stores persistent messages, setting their Seq; it returns
	// once they are durable.
	Append(recs []*store.Record) error
	// Delete removes settled messages; missing ones are not an error.
	Delete(queue string, seqs ...uint64) error
	// SetDeliveries records how often messages have been handed out, so
	// that a restart marks them redelivered: a batch, in one write.
	SetDeliveries(counts []store.DeliveryCount) error
	// Queues lists the stored queues and their sizes, for recovery.
	Queues() ([]store.QueueInfo, error)
	// Scan pages a queue's messages in, up to limit of those after after.
	Scan(queue string, after uint64, limit int, fn func(*store.Record) error) error
	// DeleteQueue drops a queue whose durable subscription has gone.
	DeleteQueue(queue string) error
	// SetDispatched records how far a queue may have been handed out.
	SetDispatched(queue string, seq uint64) error
	// PutSubscription keeps a durable subscription.
	PutSubscription(sub store.Subscription) error
	// DeleteSubscription forgets a durable subscription, not its queue.
	DeleteSubscription(name string) error
	// Subscriptions lists the durable subscriptions, for recovery.
	Subscriptions() ([]store.Subscription, error)
	// Size is what a store limit is checked against.
	Size() (int64, error)
	// Close releases the store.
	Close() error
}
