package main

import (
	"flag"

	"github.com/stampede-mq/stampede/broker"
)

// boundFlags registers the bounds that keep one client from growing the
// broker: the destinations it may make, what it may hold in transactions
// and unacknowledged, and the patterns it subscribes with.
func boundFlags(fs *flag.FlagSet, o *broker.Options) {
	fs.Int64Var(&o.MaxTransactionBytes, "max-transaction-bytes", o.MaxTransactionBytes, "most message bytes a connection's open transactions hold together")
	fs.Int64Var(&o.MaxUnackedBytes, "max-unacked-bytes", o.MaxUnackedBytes, "most message bytes a connection holds delivered and unacknowledged, whatever its prefetch-count")
	fs.IntVar(&o.MaxQueues, "max-queues", o.MaxQueues, "most queues the broker holds; a SEND or SUBSCRIBE that would make another gets an ERROR")
	fs.IntVar(&o.MaxTopics, "max-topics", o.MaxTopics, "most topics subscribed to by exact name")
	fs.IntVar(&o.MaxDurables, "max-durable-subscriptions", o.MaxDurables, "most durable subscriptions")
	fs.IntVar(&o.MaxTempQueues, "max-temp-queues", o.MaxTempQueues, "most temporary queues per connection")
	fs.DurationVar(&o.IdleDestinationTTL, "idle-destination-ttl", o.IdleDestinationTTL, "how long an empty, unused queue or an unsubscribed topic is kept before it is forgotten")
	fs.IntVar(&o.MaxWildcards, "max-wildcards", o.MaxWildcards, "most wildcard words (* and #) in one topic subscription")
}
