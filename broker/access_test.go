package broker

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// testPrincipal may read and write destinations with the given prefixes.
type testPrincipal struct {
	name        string
	read, write string
}

func (p testPrincipal) Name() string              { return p.name }
func (p testPrincipal) CanRead(dest string) bool  { return strings.HasPrefix(dest, p.read) }
func (p testPrincipal) CanWrite(dest string) bool { return strings.HasPrefix(dest, p.write) }

func authBroker(t *testing.T) *Broker {
	return newBroker(t, Options{
		FailedLoginDelay: time.Millisecond,
		Authenticate: func(info ConnInfo, login, passcode string) (Principal, error) {
			if login == "alice" && passcode == "secret" {
				return testPrincipal{"alice", "/queue/alice", "/queue/"}, nil
			}
			if login == "boom" {
				panic("authenticator bug")
			}
			return nil, errors.New("bad password")
		},
	})
}

func TestAuthentication(t *testing.T) {
	b := authBroker(t)
	c := dial(t, b)
	c.send(stomp.CONNECT, "accept-version", "1.2", "login", "alice", "passcode", "wrong")
	f := c.expectError("access refused")
	if f.Value("message") != "access refused" || strings.Contains(string(f.Body), "password") {
		t.Fatalf("refusal says too much: %v %q", f.Headers, f.Body)
	}
	ok := connect(t, b, "accept-version", "1.2", "login", "alice", "passcode", "secret")
	if u := b.Connections()[0].User; u != "alice" {
		t.Fatalf("user %q", u)
	}
	_ = ok
	if n := b.Stats().Refusals["login"]; n != 1 {
		t.Fatalf("login refusals counted %d", n)
	}
}

func TestAuthorization(t *testing.T) {
	b := authBroker(t)
	cases := []struct {
		name  string
		frame string
		want  string
	}{
		{"write refused", "SEND\ndestination:/topic/x\nreceipt:r\n\n\x00", "access refused: write /topic/x"},
		{"read refused", "SUBSCRIBE\nid:1\ndestination:/queue/bob\n\n\x00", "access refused: read /queue/bob"},
		{"reply-to refused", "SEND\ndestination:/queue/alice\nreply-to:/queue/bob\n\n\x00", "access refused: read /queue/bob"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, b, "accept-version", "1.2", "login", "alice", "passcode", "secret")
			c.write(tc.frame)
			c.expectError(tc.want)
		})
	}
	// What is allowed works, temp queues included; nothing refused was kept.
	c := connect(t, b, "accept-version", "1.2", "login", "alice", "passcode", "secret")
	publish(c, "/queue/alice.in", "ok", "reply-to", "/temp-queue/r")
	subscribe(c, "id", "1", "destination", "/queue/alice.in")
	c.expect(stomp.MESSAGE)
	if _, err := b.Destination("/topic/x"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a refused SEND left a trace")
	}
}

func TestPanicInSessionIsContained(t *testing.T) {
	b := authBroker(t)
	c := dial(t, b)
	c.send(stomp.CONNECT, "accept-version", "1.2", "login", "boom")
	c.expectError("internal error")
	ok := connect(t, b, "accept-version", "1.2", "login", "alice", "passcode", "secret")
	publish(ok, "/queue/alice", "still serving")
}

func TestPerIPAndTransactionLimits(t *testing.T) {
	b := newBroker(t, Options{MaxConnectionsPerIP: 2, MaxTransactions: 1, MaxTransactionFrames: 2})
	c := connect(t, b)
	connect(t, b)
	third := dial(t, b)
	third.expectError("connections per address limit")

	c.send(stomp.BEGIN, "transaction", "a")
	c.send(stomp.BEGIN, "transaction", "b")
	c.expectError("open transactions limit")

	d := dial(t, b) // a slot is free again once c is gone
	d.send(stomp.CONNECT, "accept-version", "1.2")
	d.expect(stomp.CONNECTED)
	d.send(stomp.BEGIN, "transaction", "t")
	for range 3 {
		d.send(stomp.SEND, "destination", "/queue/x", "transaction", "t")
	}
	d.expectError("frames per transaction limit")
}

func TestFullQueueBlocksProducer(t *testing.T) {
	b := newBroker(t, Options{MaxQueueMessages: 2, SendBlockTimeout: 300 * time.Millisecond})
	p := connect(t, b)
	publish(p, "/queue/small", "1")
	publish(p, "/queue/small", "2")
	// The third waits; a consumer draining the queue lets it through.
	p.sendBody(stomp.SEND, "3", "destination", "/queue/small", "receipt", "r3")
	p.expectNothing(100 * time.Millisecond)
	c := connect(t, b)
	subscribe(c, "id", "s", "destination", "/queue/small")
	if r := p.expectReceipt(); r.Value("receipt-id") != "r3" {
		t.Fatalf("receipt %v", r.Headers)
	}
	if got := strings.Join(drain(c), ","); got != "1,2,3" {
		t.Fatalf("consumer got %s", got)
	}
	// With nobody draining, the producer gives up with an ERROR.
	publish(p, "/queue/idle", "1")
	publish(p, "/queue/idle", "2")
	start := time.Now()
	p.sendBody(stomp.SEND, "3", "destination", "/queue/idle", "receipt", "r4")
	f := p.expectError("is full")
	if f.Value("receipt-id") != "r4" || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("ERROR %v after %v", f.Headers, time.Since(start))
	}
}

// TestTransientBacklogHoldsProducer checks the default flow control on
// non-persistent messages: past MaxTransientQueueBytes their producer
// waits (and gets an ERROR once SendBlockTimeout passes), while a
// persistent producer to the same queue is not held, since the store
// takes its messages.
func TestTransientBacklogHoldsProducer(t *testing.T) {
	b := newBroker(t, Options{MaxTransientQueueBytes: 4 << 10, SendBlockTimeout: 300 * time.Millisecond})
	c := connect(t, b)
	body := strings.Repeat("x", 1024)
	for i := range 4 {
		c.sendBody(stomp.SEND, body, "destination", "/queue/backlog", "receipt", "t"+strconv.Itoa(i))
		c.expectReceipt()
	}
	p := connect(t, b)
	p.sendBody(stomp.SEND, body, "destination", "/queue/backlog", "persistent", "true", "receipt", "p")
	p.expectReceipt()
	c.sendBody(stomp.SEND, body, "destination", "/queue/backlog", "receipt", "late")
	c.expectError("is full")
}
