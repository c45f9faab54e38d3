package subprotocol

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/broker"
)

// stalledSend starts a send request on a raw connection that announces
// length body bytes and sends only sent of them. The channel gets the
// response's status code (0 if the connection ended without one).
func stalledSend(t *testing.T, base, path string, length, sent int) (net.Conn, <-chan int) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
		path, length, strings.Repeat("[", min(sent, 1))+strings.Repeat(" ", max(sent-1, 0)))
	status := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return c, status
}

func expectStatus(t *testing.T, what string, status <-chan int, want int) {
	t.Helper()
	select {
	case got := <-status:
		if got != want {
			t.Fatalf("%s: status %d, want %d", what, got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no answer", what)
	}
}

// TestSockJSSendToNoSession: a send request for a session that does not
// exist is answered at once, without its body being read.
func TestSockJSSendToNoSession(t *testing.T) {
	t.Parallel()
	base := startSockJS(t, echoServer(), SockJSOptions{})
	_, status := stalledSend(t, base, "/sockjs/000/nobody/xhr_send", 8<<20, 100)
	expectStatus(t, "send to no session", status, http.StatusNotFound)
}

// TestSockJSSendBounds: a send request's body must arrive within the read
// timeout, and one address's unfinished bodies within its share; either
// way the session ends, having received nothing of it.
func TestSockJSSendBounds(t *testing.T) {
	t.Parallel()
	srv := newChanServer()
	defer close(srv.release)
	base := startSockJS(t, srv, SockJSOptions{MaxSendBytes: 800, MaxPendingBytesPerIP: 1000, ReadTimeout: 2 * time.Second, DisconnectDelay: 4 * time.Second})
	a, b := newSJClient(t, base), newSJClient(t, base)
	a.poll()
	ta := srv.next(t)
	b.poll()
	tb := srv.next(t)

	_, slow := stalledSend(t, base, strings.TrimPrefix(a.base, base)+"/xhr_send", 700, 10)
	// The stalled send must hold its share before the second one asks:
	// two connections' requests are served in no set order.
	time.Sleep(200 * time.Millisecond)
	_, over := stalledSend(t, base, strings.TrimPrefix(b.base, base)+"/xhr_send", 700, 700)
	expectStatus(t, "a send past the address's share", over, http.StatusServiceUnavailable)
	if _, err := tb.Read(make([]byte, 10)); err == nil {
		t.Error("the session went on after its send was refused")
	}
	expectStatus(t, "a stalled send", slow, http.StatusRequestTimeout)
	if _, err := ta.Read(make([]byte, 10)); err == nil {
		t.Error("the session went on after its send timed out")
	}

	// Both shares were given back: a new session sends as much again.
	c := newSJClient(t, base)
	c.poll()
	tc := srv.next(t)
	msg := strings.Repeat("x", 600)
	got := make(chan string, 1)
	go func() {
		b := make([]byte, len(msg))
		n, _ := io.ReadFull(tc, b)
		got <- string(b[:n])
	}()
	c.send(msg) // returns once the session has taken it
	if g := <-got; g != msg {
		t.Fatalf("after the refusals the session read %q", g)
	}
}

// rawWSFrameHeader is the header of a masked client frame (mask zero, so
// the payload goes as is) announcing size payload bytes.
func rawWSFrameHeader(fin bool, op byte, size int) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	h := []byte{b0, 0x80 | 126, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[2:4], uint16(size))
	return h
}

// endedServer reports each session's end.
func endedServer() (Server, <-chan error) {
	ended := make(chan error, 4)
	return serverFunc(func(tr broker.Transport) {
		_, err := io.Copy(io.Discard, tr)
		ended <- err
	}), ended
}

func expectEnded(t *testing.T, what string, ended <-chan error) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the session went on", what)
	}
}

func expectGoingOn(t *testing.T, what string, ended <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-ended:
		t.Fatalf("%s: the session ended: %v", what, err)
	case <-time.After(d):
	}
}

// TestSockJSWebSocketUnfinished: a WebSocket message begun must be
// finished within the read timeout; an idle connection between messages
// is left alone.
func TestSockJSWebSocketUnfinished(t *testing.T) {
	t.Parallel()
	srv, ended := endedServer()
	const timeout = 300 * time.Millisecond
	base := startSockJS(t, srv, SockJSOptions{MaxSendBytes: 800, ReadTimeout: timeout})
	idle := dialSockJSWebSocket(t, base)
	slow := dialSockJSWebSocket(t, base)
	slow.UnderlyingConn().Write(append(rawWSFrameHeader(true, websocket.TextMessage, 700), `["`+strings.Repeat("s", 600)...))
	expectEnded(t, "an unfinished message", ended)

	time.Sleep(timeout)
	if err := idle.WriteMessage(websocket.TextMessage, []byte(`["idle"]`)); err != nil {
		t.Fatal(err)
	}
	expectGoingOn(t, "a message after an idle spell", ended, 2*timeout)
}

// TestSockJSWebSocketPending: one address's unfinished messages must fit
// its share; what a closed connection held is given back.
func TestSockJSWebSocketPending(t *testing.T) {
	t.Parallel()
	srv, ended := endedServer()
	base := startSockJS(t, srv, SockJSOptions{MaxSendBytes: 800, MaxPendingBytesPerIP: 1000, ReadTimeout: time.Minute})
	slow := dialSockJSWebSocket(t, base)
	slow.UnderlyingConn().Write(append(rawWSFrameHeader(true, websocket.TextMessage, 700), `["`+strings.Repeat("s", 600)...))
	expectGoingOn(t, "an unfinished message within the share", ended, 100*time.Millisecond)
	over := dialSockJSWebSocket(t, base)
	over.UnderlyingConn().Write(append(rawWSFrameHeader(true, websocket.TextMessage, 700), `["`+strings.Repeat("o", 600)...))
	expectEnded(t, "a message past the share", ended)

	slow.Close()
	expectEnded(t, "a closed connection", ended)
	ws := dialSockJSWebSocket(t, base)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`["`+strings.Repeat("x", 700)+`"]`)); err != nil {
		t.Fatal(err)
	}
	expectGoingOn(t, "a message once the share was given back", ended, 300*time.Millisecond)
}
