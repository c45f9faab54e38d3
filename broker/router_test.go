package broker

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// opener makes a broker whose sessions route through the router under
// test.
type opener func(testing.TB, Options) *Broker

// routerContract is what every router must do, seen as clients see it:
// through STOMP sessions on a broker that routes through it.
var routerContract = []struct {
	name string
	run  func(*testing.T, opener)
}{
	{"TopicFanOutAndWildcards", contractTopicFanOutAndWildcards},
	{"ClientCannotChooseMessageID", contractClientCannotChooseMessageID},
	{"QueueRoundRobinAndWaiting", contractQueueRoundRobinAndWaiting},
	{"ClientAckModes", contractClientAckModes},
	{"AckByMessageIDBefore12", contractAckByMessageIDBefore12},
	{"NackRedeliveryAndDeadLetters", contractNackRedeliveryAndDeadLetters},
	{"ExpiryAndPriority", contractExpiryAndPriority},
	{"Transactions", contractTransactions},
	{"TempQueueRequestReply", contractTempQueueRequestReply},
	{"SlowTopicSubscriberIsDisconnected", contractSlowTopicSubscriberIsDisconnected},
	{"TopicPublisherIsPacedBySubscriber", contractTopicPublisherIsPacedBySubscriber},
	{"SlowQueueConsumerIsPaused", contractSlowQueueConsumerIsPaused},
	{"ExpiredTopicMessageNotDelivered", contractExpiredTopicMessageNotDelivered},
	{"DurableCollectsWhileAway", contractDurableCollectsWhileAway},
}

func TestLocalRouterContract(t *testing.T) {
	for _, c := range routerContract {
		t.Run(c.name, func(t *testing.T) { c.run(t, newBroker) })
	}
}

func subscribe(c *client, kv ...string) {
	c.t.Helper()
	c.send(stomp.SUBSCRIBE, append(kv, "receipt", "sub")...)
	c.expectReceipt()
}

func publish(c *client, dest, body string, kv ...string) {
	c.t.Helper()
	c.sendBody(stomp.SEND, body, append([]string{"destination", dest, "receipt", "pub"}, kv...)...)
	c.expectReceipt()
}

func contractTopicFanOutAndWildcards(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	exact := connect(t, b)
	star := connect(t, b)
	hash := connect(t, b)
	subscribe(exact, "id", "1", "destination", "/topic/stocks.ibm.nyse")
	subscribe(star, "id", "1", "destination", "/topic/stocks.*.nyse")
	subscribe(hash, "id", "1", "destination", "/topic/stocks.#")
	pub := connect(t, b)
	publish(pub, "/topic/stocks.ibm.nyse", "p1", "x-user", "kept")
	for _, c := range []*client{exact, star, hash} {
		m := c.expect(stomp.MESSAGE)
		if string(m.Body) != "p1" || m.Value("x-user") != "kept" || m.Value("destination") != "/topic/stocks.ibm.nyse" ||
			m.Value("message-id") == "" || m.Value("timestamp") == "" || m.Value("subscription") != "1" {
			t.Fatalf("bad MESSAGE %v %q", m.Headers, m.Body)
		}
	}
	publish(pub, "/topic/stocks.ibm.lse", "p2")
	hash.expect(stomp.MESSAGE)
	exact.expectNothing(50 * time.Millisecond)
	star.expectNothing(10 * time.Millisecond)
	// No subscriber: dropped, not kept for later.
	publish(pub, "/topic/nobody", "lost")
	late := connect(t, b)
	subscribe(late, "id", "1", "destination", "/topic/nobody")
	late.expectNothing(50 * time.Millisecond)
}

func contractClientCannotChooseMessageID(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	subscribe(c, "id", "s1", "destination", "/topic/t")
	publish(c, "/topic/t", "x", "message-id", "mine", "subscription", "theirs")
	m := c.expect(stomp.MESSAGE)
	if m.Value("message-id") == "mine" || m.Value("subscription") != "s1" {
		t.Fatalf("client-set ids leaked: %v", m.Headers)
	}
}

func contractQueueRoundRobinAndWaiting(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	pub := connect(t, b)
	for i := range 4 {
		publish(pub, "/queue/work", fmt.Sprint(i))
	}
	c1 := connect(t, b)
	subscribe(c1, "id", "a", "destination", "/queue/work")
	// The waiting messages go to the only consumer.
	for i := range 4 {
		if m := c1.expect(stomp.MESSAGE); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("got %q want %d", m.Body, i)
		}
	}
	c2 := connect(t, b)
	subscribe(c2, "id", "b", "destination", "/queue/work")
	for i := range 6 {
		publish(pub, "/queue/work", fmt.Sprint(i))
	}
	got1, got2 := drain(c1), drain(c2)
	if len(got1) != 3 || len(got2) != 3 {
		t.Fatalf("round robin gave %v and %v", got1, got2)
	}
}

func drain(c *client) []string {
	var out []string
	for {
		m := c.next(100 * time.Millisecond)
		if m == nil {
			return out
		}
		out = append(out, string(m.Body))
	}
}

func contractClientAckModes(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	pub := connect(t, b)
	for i := range 3 {
		publish(pub, "/queue/cum", fmt.Sprint(i))
		publish(pub, "/queue/ind", fmt.Sprint(i))
	}
	c := connect(t, b)
	subscribe(c, "id", "cum", "destination", "/queue/cum", "ack", "client")
	var acks []string
	for range 3 {
		acks = append(acks, c.expect(stomp.MESSAGE).Value("ack"))
	}
	// A cumulative ACK of the second covers the first.
	c.send(stomp.ACK, "id", acks[1], "receipt", "a")
	c.expect(stomp.RECEIPT)
	subscribe(c, "id", "ind", "destination", "/queue/ind", "ack", "client-individual")
	var ind []*stomp.Frame
	for range 3 {
		ind = append(ind, c.expect(stomp.MESSAGE))
	}
	c.send(stomp.ACK, "id", ind[0].Value("ack"))
	c.send(stomp.ACK, "id", ind[2].Value("ack"), "receipt", "b")
	c.expect(stomp.RECEIPT)
	c.close()

	// What was not acked comes back, marked, in order.
	d := connect(t, b)
	subscribe(d, "id", "x", "destination", "/queue/cum", "ack", "client")
	m := d.expect(stomp.MESSAGE)
	if string(m.Body) != "2" || m.Value("redelivered") != "true" {
		t.Fatalf("cumulative: got %q %v", m.Body, m.Headers)
	}
	d.expectNothing(50 * time.Millisecond)
	subscribe(d, "id", "y", "destination", "/queue/ind", "ack", "client-individual")
	m = d.expect(stomp.MESSAGE)
	if string(m.Body) != "1" || m.Value("redelivered") != "true" {
		t.Fatalf("individual: got %q %v", m.Body, m.Headers)
	}
	d.expectNothing(50 * time.Millisecond)
}

func contractAckByMessageIDBefore12(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	c := connect(t, b, "accept-version", "1.1")
	publish(c, "/queue/q11", "m")
	subscribe(c, "id", "s", "destination", "/queue/q11", "ack", "client")
	m := c.expect(stomp.MESSAGE)
	if m.Value("ack") != "" {
		t.Fatalf("1.1 MESSAGE carries an ack header: %v", m.Headers)
	}
	c.send(stomp.ACK, "message-id", m.Value("message-id"), "subscription", "s", "receipt", "r")
	c.expect(stomp.RECEIPT)
	c.send(stomp.ACK, "message-id", m.Value("message-id"), "subscription", "s")
	c.expectError("unknown message-id")
}

func contractNackRedeliveryAndDeadLetters(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{MaxRedeliveries: 2})
	c := connect(t, b)
	publish(c, "/queue/jobs", "a")
	publish(c, "/queue/jobs", "b")
	subscribe(c, "id", "s", "destination", "/queue/jobs", "ack", "client-individual", "prefetch-count", "1")
	m := c.expect(stomp.MESSAGE)
	if string(m.Body) != "a" {
		t.Fatalf("got %q", m.Body)
	}
	// prefetch 1: nothing more until this one is settled.
	c.expectNothing(50 * time.Millisecond)
	c.send(stomp.NACK, "id", m.Value("ack"))
	m = c.expect(stomp.MESSAGE)
	if string(m.Body) != "a" || m.Value("redelivered") != "true" {
		t.Fatalf("NACK did not redeliver in order: %q %v", m.Body, m.Headers)
	}
	c.send(stomp.NACK, "id", m.Value("ack"))
	m = c.expect(stomp.MESSAGE) // third delivery: second redelivery
	c.send(stomp.NACK, "id", m.Value("ack"))
	// Over the limit: dead-lettered, "b" comes next.
	m = c.expect(stomp.MESSAGE)
	if string(m.Body) != "b" {
		t.Fatalf("got %q, want b after a was dead-lettered", m.Body)
	}
	c.send(stomp.NACK, "id", m.Value("ack"), "requeue", "false")

	subscribe(c, "id", "dlq", "destination", "/queue/DLQ.jobs")
	for _, want := range []struct{ body, reason string }{{"a", "max-redeliveries"}, {"b", "rejected"}} {
		d := c.expect(stomp.MESSAGE)
		if string(d.Body) != want.body || d.Value("x-death-reason") != want.reason || d.Value("x-original-destination") != "/queue/jobs" {
			t.Fatalf("DLQ got %q %v, want %v", d.Body, d.Headers, want)
		}
	}
}

func contractExpiryAndPriority(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	past := fmt.Sprint(time.Now().Add(-time.Second).UnixMilli())
	publish(c, "/queue/p", "expired-abs", "expires", past)
	publish(c, "/queue/p", "expired-ttl", "expiration", "1")
	publish(c, "/queue/p", "low", "priority", "1")
	publish(c, "/queue/p", "mid")
	publish(c, "/queue/p", "high", "priority", "9")
	time.Sleep(5 * time.Millisecond)
	subscribe(c, "id", "s", "destination", "/queue/p")
	got := drain(c)
	if strings.Join(got, ",") != "high,mid,low" {
		t.Fatalf("got %v", got)
	}
	if b.Stats().Expired != 2 {
		t.Fatalf("expired count %d", b.Stats().Expired)
	}
}

func contractTransactions(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	sub := connect(t, b)
	subscribe(sub, "id", "s", "destination", "/queue/tx", "ack", "client-individual")
	c := connect(t, b)
	c.send(stomp.BEGIN, "transaction", "t1")
	c.sendBody(stomp.SEND, "one", "destination", "/queue/tx", "transaction", "t1")
	c.sendBody(stomp.SEND, "two", "destination", "/queue/tx", "transaction", "t1", "receipt", "r")
	c.expect(stomp.RECEIPT)
	sub.expectNothing(50 * time.Millisecond)
	c.send(stomp.COMMIT, "transaction", "t1")
	m1, m2 := sub.expect(stomp.MESSAGE), sub.expect(stomp.MESSAGE)
	if string(m1.Body) != "one" || string(m2.Body) != "two" {
		t.Fatalf("got %q %q", m1.Body, m2.Body)
	}

	c.send(stomp.BEGIN, "transaction", "t2")
	c.sendBody(stomp.SEND, "dropped", "destination", "/queue/tx", "transaction", "t2")
	c.send(stomp.ABORT, "transaction", "t2", "receipt", "ab")
	c.expect(stomp.RECEIPT)
	sub.expectNothing(50 * time.Millisecond)

	// ACKs in a transaction take effect at COMMIT; aborted ones never.
	sub.send(stomp.BEGIN, "transaction", "a1")
	sub.send(stomp.ACK, "id", m1.Value("ack"), "transaction", "a1")
	sub.send(stomp.ABORT, "transaction", "a1")
	sub.send(stomp.BEGIN, "transaction", "a2")
	sub.send(stomp.ACK, "id", m2.Value("ack"), "transaction", "a2")
	sub.send(stomp.COMMIT, "transaction", "a2", "receipt", "c")
	sub.expect(stomp.RECEIPT)

	// A transaction left open at disconnect is dropped.
	c.send(stomp.BEGIN, "transaction", "t3")
	c.sendBody(stomp.SEND, "never", "destination", "/queue/tx", "transaction", "t3", "receipt", "x")
	c.expect(stomp.RECEIPT)
	c.close()
	sub.close()
	d := connect(t, b)
	subscribe(d, "id", "s", "destination", "/queue/tx")
	if got := drain(d); strings.Join(got, ",") != "one" {
		t.Fatalf("after aborted ack and dropped tx got %v, want [one]", got)
	}
}

func contractTempQueueRequestReply(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	svc := connect(t, b)
	subscribe(svc, "id", "svc", "destination", "/queue/svc")
	req := connect(t, b)
	other := connect(t, b)
	publish(req, "/queue/svc", "ping", "reply-to", "/temp-queue/r")
	publish(other, "/queue/svc", "ping2", "reply-to", "/temp-queue/r")
	m1, m2 := svc.expect(stomp.MESSAGE), svc.expect(stomp.MESSAGE)
	r1, r2 := m1.Value("reply-to"), m2.Value("reply-to")
	if !strings.HasPrefix(r1, "/queue/") || r1 == r2 {
		t.Fatalf("reply-to not rewritten to distinct routable names: %q %q", r1, r2)
	}
	publish(svc, r1, "pong")
	publish(svc, r2, "pong2")
	got := req.expect(stomp.MESSAGE)
	if string(got.Body) != "pong" || got.Value("subscription") != "/temp-queue/r" {
		t.Fatalf("reply %q %v", got.Body, got.Headers)
	}
	if got := other.expect(stomp.MESSAGE); string(got.Body) != "pong2" {
		t.Fatalf("second requester got %q", got.Body)
	}
	req.close()
	for _, q := range b.Stats().Queues {
		if q.Name == r1 {
			t.Fatalf("temp queue %s outlived its connection", r1)
		}
	}
}

func contractSlowTopicSubscriberIsDisconnected(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{MaxOutboundBytes: 64 << 10})
	slow := connect(t, b)
	subscribe(slow, "id", "s", "destination", "/topic/firehose")
	slow.ft.block = make(chan struct{}) // stops reading from now on
	pub := connect(t, b)
	body := strings.Repeat("x", 8<<10)
	start := time.Now()
	for range 200 {
		publish(pub, "/topic/firehose", body)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("publisher was held up by a slow subscriber")
	}
	if used := slow.connOutbox(b); used > 128<<10 {
		t.Fatalf("slow subscriber's outbox holds %d bytes", used)
	}
	if n := b.Stats().SlowConsumers; n != 1 {
		t.Fatalf("one slow subscriber counted %d times", n)
	}
	close(slow.ft.block)
	for {
		f := slow.next(3 * time.Second)
		if f == nil {
			t.Fatal("no ERROR for the slow subscriber")
		}
		if f.Command == stomp.ERROR {
			if !strings.Contains(f.Value("message"), "slow consumer") {
				t.Fatalf("ERROR %q", f.Value("message"))
			}
			break
		}
	}
	slow.expectClosed()
}

// TestTopicPublisherIsPacedBySubscriber checks topic flow control: a
// subscriber that stops reading for a while (less than the slow-consumer
// timeout) holds its publisher back instead of losing messages, and gets
// every one of them once it reads again.
func contractTopicPublisherIsPacedBySubscriber(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{MaxOutboundBytes: 64 << 10, SlowConsumerTimeout: 10 * time.Second})
	sub := connect(t, b)
	subscribe(sub, "id", "s", "destination", "/topic/paced")
	sub.ft.block = make(chan struct{})
	pub := connect(t, b)
	body := strings.Repeat("x", 8<<10)
	const n = 200 // 1.6 MiB through a 64 KiB outbound queue
	unblocked := make(chan time.Time, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		unblocked <- time.Now()
		close(sub.ft.block)
	}()
	for i := range n {
		publish(pub, "/topic/paced", body, "n", strconv.Itoa(i))
	}
	done := time.Now()
	if at := <-unblocked; done.Before(at) {
		t.Fatal("all messages were published while the subscriber read nothing")
	}
	for i := range n {
		m := sub.next(3 * time.Second)
		if m == nil || m.Command != stomp.MESSAGE || m.Value("n") != strconv.Itoa(i) {
			t.Fatalf("message %d: got %v", i, m)
		}
	}
	if got := b.Stats().SlowConsumers; got != 0 {
		t.Fatalf("%d subscribers dropped as slow", got)
	}
}

// connOutbox reports the bytes queued for this client's session.
func (c *client) connOutbox(b *Broker) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.conns {
		if s.t == Transport(c.ft) {
			return s.out.used()
		}
	}
	return 0
}

func contractSlowQueueConsumerIsPaused(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{MaxOutboundBytes: 32 << 10})
	slow := connect(t, b)
	subscribe(slow, "id", "s", "destination", "/queue/bulk")
	slow.ft.block = make(chan struct{})
	pub := connect(t, b)
	body := strings.Repeat("y", 4<<10)
	for range 100 {
		publish(pub, "/queue/bulk", body)
	}
	if used := slow.connOutbox(b); used > 64<<10 {
		t.Fatalf("queue kept dispatching to a full consumer: %d bytes queued", used)
	}
	close(slow.ft.block)
	// Once it drains, it gets every message, and is not disconnected.
	n := 0
	for n < 100 {
		f := slow.next(3 * time.Second)
		if f == nil {
			t.Fatalf("only %d of 100 messages arrived", n)
		}
		if f.Command != stomp.MESSAGE {
			t.Fatalf("got %s", f.Command)
		}
		n++
	}
}

func contractExpiredTopicMessageNotDelivered(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	subscribe(c, "id", "s", "destination", "/topic/ttl")
	publish(c, "/topic/ttl", "old", "expires", fmt.Sprint(time.Now().Add(-time.Second).UnixMilli()))
	publish(c, "/topic/ttl", "fresh", "expiration", "60000")
	if got := drain(c); strings.Join(got, ",") != "fresh" {
		t.Fatalf("got %v", got)
	}
}

func contractDurableCollectsWhileAway(t *testing.T, newBroker opener) {
	b := newBroker(t, Options{})
	pub := connect(t, b)
	c := connect(t, b, "accept-version", "1.2", "client-id", "app")
	subscribe(c, "id", "s", "destination", "/topic/feed.#", "durable", "true")
	live := connect(t, b)
	subscribe(live, "id", "l", "destination", "/topic/feed.#")
	publish(pub, "/topic/feed", "zero words")
	if m := c.expect(stomp.MESSAGE); string(m.Body) != "zero words" {
		t.Fatalf("durable got %q", m.Body)
	}
	if m := live.expect(stomp.MESSAGE); string(m.Body) != "zero words" {
		t.Fatalf("live got %q", m.Body)
	}
	c.close()
	publish(pub, "/topic/feed.a.b", "away 1")
	publish(pub, "/topic/feed.c", "away 2", "persistent", "true")
	publish(pub, "/topic/other", "not matching")
	c2 := connect(t, b, "accept-version", "1.2", "client-id", "app")
	subscribe(c2, "id", "s", "destination", "/topic/feed.#", "durable", "true")
	if got := strings.Join(drain(c2), ","); got != "away 1,away 2" {
		t.Fatalf("resumed with %q", got)
	}
	other := connect(t, b, "accept-version", "1.2", "client-id", "other")
	other.send(stomp.SUBSCRIBE, "id", "x", "destination", "/topic/feed.#", "x-queue-name", "app.s", "durable", "true")
	other.expectError("already active")
}
