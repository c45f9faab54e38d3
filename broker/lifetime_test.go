package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

func TestDestinationLimits(t *testing.T) {
	b := newBroker(t, Options{MaxQueues: 3, MaxTopics: 2, MaxDurables: 1, MaxTempQueues: 1, IdleDestinationTTL: time.Hour})
	c := connect(t, b)
	for i := range 3 {
		publish(c, fmt.Sprint("/queue/q", i), "x")
	}
	c.sendBody(stomp.SEND, "x", "destination", "/queue/q3")
	c.expectError("queues limit reached (max 3)")

	c = connect(t, b)
	subscribe(c, "id", "1", "destination", "/topic/a")
	subscribe(c, "id", "2", "destination", "/topic/b")
	subscribe(c, "id", "w", "destination", "/topic/#") // patterns are no topics
	c.send(stomp.SUBSCRIBE, "id", "3", "destination", "/topic/c")
	c.expectError("topics limit reached (max 2)")

	c = connect(t, b, "accept-version", "1.2", "client-id", "app")
	subscribe(c, "id", "d1", "destination", "/topic/a", "durable", "true")
	c.send(stomp.SUBSCRIBE, "id", "d2", "destination", "/topic/a", "durable", "true")
	c.expectError("durable subscriptions limit reached (max 1)")

	st := b.Stats()
	for _, name := range []string{"queues", "topics", "durable-subscriptions"} {
		if st.Refusals[name] != 1 {
			t.Errorf("refusals %v: want 1 %s", st.Refusals, name)
		}
	}

	b = newBroker(t, Options{MaxTempQueues: 1})
	c = connect(t, b)
	publish(c, "/queue/q0", "1", "reply-to", "/temp-queue/a")
	c.sendBody(stomp.SEND, "2", "destination", "/queue/q0", "reply-to", "/temp-queue/b")
	c.expectError("temporary queues per connection limit reached (max 1)")
}

func TestIdleDestinationsAreForgotten(t *testing.T) {
	const ttl = 50 * time.Millisecond
	b := newBroker(t, Options{MaxQueues: 2, IdleDestinationTTL: ttl})
	c := connect(t, b)
	publish(c, "/topic/nobody", "x")
	if _, err := b.Destination("/topic/nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a topic nobody subscribes to was recorded")
	}
	subscribe(c, "id", "t", "destination", "/topic/once")
	c.send(stomp.UNSUBSCRIBE, "id", "t", "receipt", "u")
	c.expectReceipt()
	publish(c, "/queue/drained", "x")
	subscribe(c, "id", "q", "destination", "/queue/drained")
	c.expect(stomp.MESSAGE)
	c.send(stomp.UNSUBSCRIBE, "id", "q", "receipt", "u2")
	c.expectReceipt()
	publish(c, "/queue/full", "kept")

	time.Sleep(2 * ttl)
	// A new queue past the limit makes the broker forget idle ones first.
	publish(c, "/queue/new", "x")
	for name, want := range map[string]bool{"/topic/once": false, "/queue/drained": false, "/queue/full": true, "/queue/new": true} {
		_, err := b.Destination(name)
		if got := err == nil; got != want {
			t.Errorf("%s kept: %v, want %v", name, got, want)
		}
	}
	// A name forgotten and used again starts afresh.
	if err := b.DeleteDestination("/queue/new"); err != nil {
		t.Fatal(err)
	}
	publish(c, "/queue/drained", "again")
	subscribe(c, "id", "q2", "destination", "/queue/drained")
	if m := c.expect(stomp.MESSAGE); string(m.Body) != "again" {
		t.Fatalf("got %q", m.Body)
	}
}

// A queue forgotten between a producer finding it and enqueueing to it
// hands the message to the queue that bears its name now.
func TestForgottenQueueStillTakesMessages(t *testing.T) {
	b := newBroker(t, Options{IdleDestinationTTL: time.Millisecond})
	q, err := b.local.queueFor("/queue/race")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	b.local.sweep(true)
	if b.local.queue("/queue/race", false) != nil {
		t.Fatal("idle queue not forgotten")
	}
	q.enqueue(newMessage("m1", "/queue/race", &stomp.Frame{Command: stomp.SEND}, time.Now()))
	if got := b.local.queue("/queue/race", false); got == nil || got.stats().Depth != 1 {
		t.Fatalf("message lost with the forgotten queue")
	}
}
