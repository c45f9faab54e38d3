package broker

// router is the seam between sessions and the way messages travel. A
// session speaks STOMP to its client and nothing else: what it publishes,
// subscribes to and acknowledges goes through a router, and what its
// subscriptions receive comes back through the connection the router was
// handed with each subscription (conn's outbox, see deliver).
//
// local, in this process's memory and store, is the first router; a
// cluster of brokers provides another. Every router passes the contract
// suite in router_test.go.
type router interface {
	// admit waits, for at most the configured time or until done is
	// closed, until dest can take one more message; it refuses when the
	// destination stays full.
	admit(dest string, persistent bool, done <-chan struct{}) error
	// publish routes messages to their destinations. Once it returns nil
	// every persistent copy is stored, so a RECEIPT may go out. A client
	// publisher (from, nil for the broker itself) is held back while the
	// subscribers it has just fed are congested.
	publish(from *conn, ms []*message) error
	// subscribe starts deliveries to sub: a live or durable topic
	// subscription, or a consumer of a queue.
	subscribe(sub *subscription) error
	// unsubscribe stops them; what sub held unacknowledged goes back to
	// its queue to be redelivered.
	unsubscribe(sub *subscription)
	// settle acknowledges (ack) or rejects deliveries sub holds: the one
	// match selects, or with cumulative every earlier one too. A
	// rejected queue message is redelivered when requeue is set, and
	// dead-lettered otherwise.
	settle(sub *subscription, match func(*delivery) bool, cumulative, ack, requeue bool) error
	// whenDurable calls fn once every settlement made so far is durable:
	// what was acknowledged will not come back after a crash. It may call
	// fn at once, or later from another goroutine.
	whenDurable(fn func())
	// holds reports whether sub holds an unacknowledged delivery that
	// match selects.
	holds(sub *subscription, match func(*delivery) bool) bool
	// openTemp makes a connection's temporary queue; closeTemp deletes it
	// with its messages when the connection ends.
	openTemp(name string) error
	closeTemp(name string)
	// forgetDurable deletes an inactive durable subscription owner made,
	// and what it holds.
	forgetDurable(name, owner string) error
}
