package broker

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stampede-mq/stampede/stomp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConnectNegotiation(t *testing.T) {
	tests := []struct {
		name      string
		allowed   []stomp.Version
		headers   []string
		version   string // "" means an ERROR is expected
		heartBeat string
	}{
		{"highest common", nil, []string{"accept-version", "1.0,1.1,1.2"}, "1.2", "0,0"},
		{"1.1 only", nil, []string{"accept-version", "1.1"}, "1.1", "0,0"},
		{"no accept-version is 1.0", nil, nil, "1.0", "0,0"},
		{"unknown versions only", nil, []string{"accept-version", "2.0,3.1"}, "", ""},
		{"subprotocol bounds", []stomp.Version{stomp.V11}, []string{"accept-version", "1.0,1.1,1.2"}, "1.1", "0,0"},
		{"subprotocol excludes", []stomp.Version{stomp.V10}, []string{"accept-version", "1.2"}, "", ""},
		{"heart-beat echoed", nil, []string{"accept-version", "1.2", "heart-beat", "10000,10000"}, "1.2", "10000,10000"},
		{"heart-beat clamped up", nil, []string{"accept-version", "1.2", "heart-beat", "100,200"}, "1.2", "1000,1000"},
		{"heart-beat clamped down", nil, []string{"accept-version", "1.2", "heart-beat", "0,120000"}, "1.2", "60000,0"},
		{"send only", nil, []string{"accept-version", "1.2", "heart-beat", "5000,0"}, "1.2", "0,5000"},
		{"host ignored", nil, []string{"accept-version", "1.2", "host", "anything"}, "1.2", "0,0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, Options{})
			c := dial(t, b, tc.allowed...)
			c.send(stomp.CONNECT, tc.headers...)
			if tc.version == "" {
				f := c.expectError("version")
				if f.Value("version") == "" {
					t.Fatalf("version ERROR lists no versions: %v", f.Headers)
				}
				return
			}
			f := c.expect(stomp.CONNECTED)
			if got := f.Value("version"); got != tc.version {
				t.Errorf("version %q, want %q", got, tc.version)
			}
			if got := f.Value("heart-beat"); got != tc.heartBeat {
				t.Errorf("heart-beat %q, want %q", got, tc.heartBeat)
			}
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	tests := []struct {
		name    string
		connect bool
		frame   string
		want    string
		receipt bool
	}{
		{"frame before CONNECT", false, "SEND\ndestination:/queue/a\n\nx\x00", "expected CONNECT", false},
		{"garbage", false, "\x01\x02garbage\x00", "malformed frame", false},
		{"unknown command", true, "FLY\nreceipt:r1\n\n\x00", "unknown command", true},
		{"missing destination", true, "SEND\nreceipt:r1\n\nx\x00", "missing destination", true},
		{"unknown prefix", true, "SEND\ndestination:/exchange/x\n\n\x00", "unknown destination", false},
		{"wildcard in send", true, "SEND\ndestination:/topic/a.*\n\n\x00", "invalid character", false},
		{"subscribe without id", true, "SUBSCRIBE\ndestination:/topic/a\nreceipt:r1\n\n\x00", "missing id", true},
		{"bad ack mode", true, "SUBSCRIBE\ndestination:/topic/a\nid:1\nack:sometimes\n\n\x00", "invalid ack mode", false},
		{"unknown ack id", true, "ACK\nid:99-1\nreceipt:r1\n\n\x00", "unknown ack id", true},
		{"unsubscribe unknown", true, "UNSUBSCRIBE\nid:zz\n\n\x00", "no subscription", false},
		{"commit unknown transaction", true, "COMMIT\ntransaction:t9\nreceipt:r1\n\n\x00", "unknown transaction", true},
		{"send in unknown transaction", true, "SEND\ndestination:/queue/a\ntransaction:t9\n\n\x00", "unknown transaction", false},
		{"undefined escape", true, "SEND\ndestination:/queue/a\nx:a\\tb\n\n\x00", "undefined escape", false},
		{"second CONNECT", true, "CONNECT\naccept-version:1.2\n\n\x00", "already connected", false},
		{"bad heart-beat", false, "CONNECT\naccept-version:1.2\nheart-beat:x\n\n\x00", "heart-beat", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, Options{})
			var c *client
			if tc.connect {
				c = connect(t, b)
			} else {
				c = dial(t, b)
			}
			c.write(tc.frame)
			f := c.expectError(tc.want)
			if tc.receipt && f.Value("receipt-id") != "r1" {
				t.Errorf("ERROR without receipt-id: %v", f.Headers)
			}
		})
	}
}

func TestDuplicateSubscriptionID(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	c.send(stomp.SUBSCRIBE, "id", "s", "destination", "/topic/a", "receipt", "1")
	c.expect(stomp.RECEIPT)
	c.send(stomp.SUBSCRIBE, "id", "s", "destination", "/queue/b")
	c.expectError("duplicate subscription")
}

func TestLimitErrors(t *testing.T) {
	b := newBroker(t, Options{Limits: stomp.Limits{MaxHeaderBytes: 256, MaxHeaders: 4, MaxBodyBytes: 100}, MaxSubscriptions: 2})
	cases := []struct {
		name, frame, want string
	}{
		{"body", "SEND\ndestination:/queue/a\n\n" + string(make1(101, 'x')) + "\x00", "frame body limit"},
		{"declared body", "SEND\ndestination:/queue/a\ncontent-length:1000\n\n", "frame body limit"},
		{"header section", "SEND\ndestination:/queue/a\nx:" + string(make1(300, 'y')) + "\n\n\x00", "header section limit"},
		{"header count", "SEND\ndestination:/queue/a\na:1\nb:2\nc:3\nd:4\n\n\x00", "header count limit"},
		{"subscriptions", "SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\x00SUBSCRIBE\nid:2\ndestination:/topic/a\n\n\x00SUBSCRIBE\nid:3\ndestination:/topic/a\n\n\x00", "subscription limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, b)
			c.write(tc.frame)
			c.expectError(tc.want)
		})
	}
}

func make1(n int, c byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestReceiptAndDisconnect(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	c.send(stomp.SEND, "destination", "/topic/x", "receipt", "r-1")
	if r := c.expect(stomp.RECEIPT); r.Value("receipt-id") != "r-1" {
		t.Fatalf("receipt-id %q", r.Value("receipt-id"))
	}
	c.send(stomp.DISCONNECT, "receipt", "bye")
	if r := c.expect(stomp.RECEIPT); r.Value("receipt-id") != "bye" {
		t.Fatalf("receipt-id %q", r.Value("receipt-id"))
	}
	c.expectClosed()
}

func TestFramesInOneChunkAndSplit(t *testing.T) {
	b := newBroker(t, Options{})
	c := dial(t, b)
	// CONNECT, then frames escaped by 1.2 rules, all in one chunk: the
	// version chosen by CONNECT must apply to the frames after it.
	all := "CONNECT\naccept-version:1.2\n\n\x00\n" +
		"SUBSCRIBE\nid:a\\cb\ndestination:/topic/t\n\n\x00\r\n" +
		"SEND\ndestination:/topic/t\nk:v\\nw\n\nhello\x00"
	for i := 0; i < len(all); i += 7 {
		c.write(all[i:min(i+7, len(all))])
	}
	c.expect(stomp.CONNECTED)
	m := c.expect(stomp.MESSAGE)
	if m.Value("subscription") != "a:b" || m.Value("k") != "v\nw" || string(m.Body) != "hello" {
		t.Fatalf("got %v %q", m.Headers, m.Body)
	}
}

func TestConnectTimeout(t *testing.T) {
	b := newBroker(t, Options{ConnectTimeout: 100 * time.Millisecond})
	c := dial(t, b)
	c.expectError("no CONNECT")
}

func TestHeartBeats(t *testing.T) {
	b := newBroker(t, Options{HeartbeatMin: 50 * time.Millisecond, HeartbeatGrace: 3})
	c := dial(t, b)
	c.send(stomp.CONNECT, "accept-version", "1.2", "heart-beat", "0,100")
	c.expect(stomp.CONNECTED)
	n := 0
	deadline := time.After(550 * time.Millisecond)
loop:
	for {
		select {
		case w := <-c.ft.raw:
			if string(w) == "\n" {
				n++
			}
		case <-deadline:
			break loop
		}
	}
	// One every ~80-100ms; allow for a slow machine but insist they flow.
	if n < 3 {
		t.Fatalf("%d server heart-beats in 550ms with a 100ms interval", n)
	}

	// A client that promised heart-beats and falls silent is dropped.
	c2 := dial(t, b)
	c2.send(stomp.CONNECT, "accept-version", "1.2", "heart-beat", "50,0")
	c2.expect(stomp.CONNECTED)
	c2.expectError("heart-beat timeout")

	// One that keeps sending EOLs is not.
	c3 := dial(t, b)
	c3.send(stomp.CONNECT, "accept-version", "1.2", "heart-beat", "200,0")
	c3.expect(stomp.CONNECTED)
	// Beats every 50ms against a 600ms allowance: a loaded machine may
	// delay some, never by that much.
	for range 16 {
		c3.write("\n")
		time.Sleep(50 * time.Millisecond)
	}
	c3.send(stomp.SEND, "destination", "/topic/x", "receipt", "alive")
	c3.expect(stomp.RECEIPT)
}

func TestShutdownSendsError(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b)
	done := make(chan error)
	go func() { done <- b.Shutdown(t.Context()) }()
	c.expectError("server shutting down")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// New connections are refused.
	c2 := dial(t, b)
	c2.expectError("shutting down")
}

func TestConnectionLimitAndClientID(t *testing.T) {
	b := newBroker(t, Options{MaxConnections: 1})
	connect(t, b)
	c2 := dial(t, b)
	c2.expectError("connection limit")

	b2 := newBroker(t, Options{})
	connect(t, b2, "accept-version", "1.2", "client-id", "app")
	c3 := dial(t, b2)
	c3.send(stomp.CONNECT, "accept-version", "1.2", "client-id", "app")
	c3.expectError("client-id already connected")
}

func TestDisconnectFreesClientIDBeforeReceipt(t *testing.T) {
	b := newBroker(t, Options{})
	c := connect(t, b, "accept-version", "1.2", "client-id", "app")
	subscribe(c, "id", "d", "destination", "/topic/t", "durable", "true")
	c.send(stomp.DISCONNECT, "receipt", "bye")
	c.expectReceipt()
	// The receipt is the client's cue to come back at once, before the
	// broker has seen its old socket close.
	again := connect(t, b, "accept-version", "1.2", "client-id", "app")
	subscribe(again, "id", "d", "destination", "/topic/t", "durable", "true")
}

// TestIdleSessionsHoldNoWriter checks that a connected, idle session keeps
// only its read loop: the write loop ends once the queue is empty, and the
// shared timers still send heart-beats and enforce the incoming ones.
func TestIdleSessionsHoldNoWriter(t *testing.T) {
	b := newBroker(t, Options{HeartbeatMin: 50 * time.Millisecond, HeartbeatGrace: 2})
	countWriters := func() int {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return strings.Count(stacks, "broker.(*session).writeLoop")
	}
	const n = 20
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = connect(t, b, "accept-version", "1.2", "heart-beat", "0,100")
	}
	// Heart-beats start a writer now and then; in between there is none.
	deadline := time.Now().Add(2 * time.Second)
	for countWriters() > n/2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d write loops running for %d idle sessions", countWriters(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i, c := range clients {
		got := 0
		for got < 2 {
			select {
			case w := <-c.ft.raw:
				if string(w) == "\n" {
					got++
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("client %d: %d heart-beats in 2s at a 100ms interval", i, got)
			}
		}
	}
	// A client that promised heart-beats and falls silent is still dropped.
	silent := connect(t, b, "accept-version", "1.2", "heart-beat", "50,0")
	silent.expectError("heart-beat timeout")
}
