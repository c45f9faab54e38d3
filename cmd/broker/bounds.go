package main

import (
	"flag"

	"github.com/stampede-mq/stampede/broker"
)

// boundFlags registers the byte and size bounds that keep one client from
// growing the broker: what it may hold in transactions, unacknowledged,
// and in the patterns it subscribes with.
func boundFlags(fs *flag.FlagSet, o *broker.Options) {
	fs.Int64Var(&o.MaxTransactionBytes, "max-transaction-bytes", o.MaxTransactionBytes, "most message bytes a connection's open transactions hold together")
	fs.Int64Var(&o.MaxUnackedBytes, "max-unacked-bytes", o.MaxUnackedBytes, "most message bytes a connection holds delivered and unacknowledged, whatever its prefetch-count")
	fs.IntVar(&o.MaxWildcards, "max-wildcards", o.MaxWildcards, "most wildcard words (* and #) in one topic subscription")
}
