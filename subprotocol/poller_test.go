//go:build linux

package subprotocol

import (
	"net"
	"testing"
	"time"
)

// socketPair returns both ends of a loopback TCP connection.
func socketPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return server, client
}

// parkOnce parks s and returns a channel closed when it resumes.
func parkOnce(t *testing.T, s *parking) <-chan struct{} {
	t.Helper()
	resumed := make(chan struct{})
	if !s.park(func() { close(resumed) }) {
		t.Fatal("a socket did not park")
	}
	return resumed
}

// waitResumed fails the test if resumed is not closed in a long while: a
// parked read that is never resumed is a connection that hangs.
func waitResumed(t *testing.T, resumed <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatalf("not resumed %s", what)
	}
}

// TestPollerResumes checks every way a parked read comes back: input,
// input that was there before it parked, the peer closing, and Close.
func TestPollerResumes(t *testing.T) {
	p := newPoller()
	server, client := socketPair(t)
	s := p.slot(server)

	resumed := parkOnce(t, &s)
	select {
	case <-resumed:
		t.Fatal("resumed with no input")
	default:
	}
	client.Write([]byte("x"))
	waitResumed(t, resumed, "by input")

	// Still unread: parking again comes straight back.
	waitResumed(t, parkOnce(t, &s), "by input already there")
	buf := make([]byte, 8)
	if n, err := server.Read(buf); n != 1 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}

	resumed = parkOnce(t, &s)
	client.Close()
	waitResumed(t, resumed, "by the peer's close")

	// A socket that stays quiet comes back when it is closed, and
	// does not park again.
	server2, _ := socketPair(t)
	s2 := p.slot(server2)
	resumed = parkOnce(t, &s2)
	s2.cancel()
	waitResumed(t, resumed, "by cancel")
	if s2.park(func() { t.Error("resumed after cancel") }) {
		t.Error("parked after cancel")
	}
}

// TestPollerSharesOneGoroutine parks many sockets on one poller and
// resumes them all; goleak (TestMain) then checks that its goroutine
// ended once nothing was parked.
func TestPollerSharesOneGoroutine(t *testing.T) {
	p := newPoller()
	const n = 200
	clients := make([]net.Conn, n)
	resumed := make([]<-chan struct{}, n)
	for i := range n {
		server, client := socketPair(t)
		s := p.slot(server)
		resumed[i] = parkOnce(t, &s)
		clients[i] = client
	}
	for i := range n {
		clients[i].Write([]byte("x"))
	}
	for i := range n {
		waitResumed(t, resumed[i], "by input")
	}
}

// TestPollerSkipsNonSockets: a connection without a descriptor (a pipe,
// TLS) never parks, so its read loop waits as it always did.
func TestPollerSkipsNonSockets(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := newPoller().slot(a)
	if s.park(func() { t.Error("resumed") }) {
		t.Error("a pipe parked")
	}
	s.cancel()
}
