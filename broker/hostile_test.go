package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// Each test here is a way one client once reached past its own
// connection; the broker now refuses it and carries on.

func TestTempQueuesArePrivate(t *testing.T) {
	b := newBroker(t, Options{})
	svc := connect(t, b)
	subscribe(svc, "id", "svc", "destination", "/queue/svc")
	req := connect(t, b)
	publish(req, "/queue/svc", "ping", "reply-to", "/temp-queue/r")
	replyTo := svc.expect(stomp.MESSAGE).Value("reply-to")
	if strings.Contains(replyTo, ".c2.") || len(replyTo) < len("/queue/tmp.")+24 {
		t.Fatalf("temporary queue name %q is guessable", replyTo)
	}
	thief := connect(t, b)
	thief.send(stomp.SUBSCRIBE, "id", "steal", "destination", replyTo)
	thief.expectError("another connection's temporary queue")
	publish(svc, replyTo, "pong")
	if m := req.expect(stomp.MESSAGE); string(m.Body) != "pong" {
		t.Fatalf("reply %q", m.Body)
	}
}

func TestTempQueuesCountAgainstSubscriptionLimit(t *testing.T) {
	b := newBroker(t, Options{MaxSubscriptions: 2})
	c := connect(t, b)
	publish(c, "/queue/svc", "1", "reply-to", "/temp-queue/a")
	publish(c, "/queue/svc", "2", "reply-to", "/temp-queue/b")
	c.sendBody(stomp.SEND, "3", "destination", "/queue/svc", "reply-to", "/temp-queue/c")
	c.expectError("subscription limit")
}

func TestHeaderNamesThatCannotTravel(t *testing.T) {
	b := newBroker(t, Options{})
	old := connect(t, b, "accept-version", "1.0")
	old.send(stomp.SUBSCRIBE, "destination", "/queue/smuggle")
	c := connect(t, b)
	// content-length\c1 would reach the 1.0 subscriber as content-length:1:
	c.write("SEND\ndestination:/queue/smuggle\ncontent-length\\c1:x\n\nbody\x00")
	c.expectError("contains a colon")
	old.expectNothing(50 * time.Millisecond)
}

func TestReservedHeadersAreStripped(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	subscribe(c, "id", "s", "destination", "/queue/h")
	publish(c, "/queue/h", "x", "x-death-reason", "forged", "x-original-destination", "/queue/admin",
		"content-transfer-encoding", "base64", "x-invalid-utf8", "headers", "x-app", "kept")
	m := c.expect(stomp.MESSAGE)
	for _, k := range []string{"x-death-reason", "x-original-destination", "content-transfer-encoding", "x-invalid-utf8"} {
		if _, ok := m.Get(k); ok {
			t.Errorf("publisher set %s", k)
		}
	}
	if m.Value("x-app") != "kept" {
		t.Errorf("application header lost: %v", m.Headers)
	}
}

func TestNamesThatBecomeKeysAreBounded(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	c.send(stomp.SUBSCRIBE, "id", "d", "destination", "/topic/t", "durable", "true", "x-queue-name", strings.Repeat("n", 32760))
	c.expectError("durable subscription name longer than")
	d := dial(t, b)
	d.send(stomp.CONNECT, "accept-version", "1.2", "client-id", strings.Repeat("i", 300))
	d.expectError("client-id longer than")
	// Everyone else publishes as before.
	p := connect(t, b)
	publish(p, "/topic/t", "fine", "persistent", "true")
}

func usersBroker(t *testing.T) *Broker {
	return newBroker(t, Options{
		Authenticate: func(info ConnInfo, login, passcode string) (Principal, error) {
			return testPrincipal{login, "/", "/"}, nil
		},
	})
}

// Another user once reused a victim's client-id and re-pointed her
// durable subscription, deleting what it held; or deleted it outright; or
// squatted her client-id so that she could not connect.
func TestDurablesAndClientIDsBelongToTheirUser(t *testing.T) {
	b := usersBroker(t)
	alice := connect(t, b, "accept-version", "1.2", "login", "alice", "client-id", "app")
	// Bob holding the same client-id does not keep alice out.
	bob := connect(t, b, "accept-version", "1.2", "login", "bob", "client-id", "app")
	subscribe(alice, "id", "news", "destination", "/topic/news", "durable", "true")
	alice.send(stomp.DISCONNECT, "receipt", "bye")
	alice.expectReceipt()
	pub := connect(t, b, "accept-version", "1.2", "login", "carol")
	publish(pub, "/topic/news", "kept", "persistent", "true")

	bob.send(stomp.SUBSCRIBE, "id", "news", "destination", "/topic/other", "durable", "true")
	bob.expectError("another user's")
	bob = connect(t, b, "accept-version", "1.2", "login", "bob")
	bob.send(stomp.UNSUBSCRIBE, "id", "x", "durable", "true", "x-queue-name", "app.news")
	bob.expectError("another user's")

	alice = connect(t, b, "accept-version", "1.2", "login", "alice", "client-id", "app")
	subscribe(alice, "id", "news", "destination", "/topic/news", "durable", "true")
	if m := alice.expect(stomp.MESSAGE); string(m.Body) != "kept" {
		t.Fatalf("alice's durable subscription lost its message: %q", m.Body)
	}
}

// /topic/public.# also reaches /topic/public, which a read rule for
// /topic/public.… does not allow.
func TestWildcardDeliversOnlyReadableNames(t *testing.T) {
	b := newBroker(t, Options{
		Authenticate: func(info ConnInfo, login, passcode string) (Principal, error) {
			if login == "reader" {
				return testPrincipal{"reader", "/topic/public.", "/none"}, nil
			}
			return testPrincipal{login, "/", "/"}, nil
		},
	})
	r := connect(t, b, "accept-version", "1.2", "login", "reader")
	subscribe(r, "id", "p", "destination", "/topic/public.#")
	pub := connect(t, b, "accept-version", "1.2", "login", "writer")
	publish(pub, "/topic/public", "not yours")
	publish(pub, "/topic/public.news", "yours")
	if m := r.expect(stomp.MESSAGE); string(m.Body) != "yours" {
		t.Fatalf("reader got %q", m.Body)
	}
	r.expectNothing(50 * time.Millisecond)
}
