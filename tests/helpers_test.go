package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/stampede-mq/stampede/subprotocol"
)

// waitFor bounds every single wait for something the broker should do
// promptly; generous because the broker runs with the race detector.
const waitFor = 5 * time.Second

// stompTransport opens a byte stream to the broker, so the same
// client scenarios run over plain TCP and over WebSocket.
type stompTransport struct {
	name string
	dial func(ctx context.Context, p *brokerProc) (io.ReadWriteCloser, error)
}

var stompTransports = []stompTransport{
	{"tcp", func(ctx context.Context, p *brokerProc) (io.ReadWriteCloser, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", p.TCPAddr)
	}},
	{"ws", func(ctx context.Context, p *brokerProc) (io.ReadWriteCloser, error) {
		return subprotocol.Dial(ctx, p.WSURL)
	}},
}

var tcpTransport, wsTransport = stompTransports[0], stompTransports[1]

// dialStream opens a raw stream over tr, closed when the test ends.
func dialStream(t testing.TB, p *brokerProc, tr stompTransport) io.ReadWriteCloser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	rwc, err := tr.dial(ctx, p)
	if err != nil {
		t.Fatalf("dial %s: %v", tr.name, err)
	}
	t.Cleanup(func() { rwc.Close() })
	return rwc
}

// quietLogger keeps go-stomp from printing to stdout; the tests check
// what it reports through its API instead.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...interface{})   {}
func (quietLogger) Infof(string, ...interface{})    {}
func (quietLogger) Warningf(string, ...interface{}) {}
func (quietLogger) Errorf(string, ...interface{})   {}
func (quietLogger) Debug(string)                    {}
func (quietLogger) Info(string)                     {}
func (quietLogger) Warning(string)                  {}
func (quietLogger) Error(string)                    {}

// goConnect connects a go-stomp client over tr. Every blocking call it
// makes is bounded, so a misbehaving broker fails the test instead of
// hanging it.
func goConnect(t testing.TB, p *brokerProc, tr stompTransport, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	rwc := dialStream(t, p, tr)
	all := append([]func(*stomp.Conn) error{
		stomp.ConnOpt.Logger(quietLogger{}),
		stomp.ConnOpt.MsgSendTimeout(waitFor),
		stomp.ConnOpt.RcvReceiptTimeout(waitFor),
		stomp.ConnOpt.DisconnectReceiptTimeout(waitFor),
		stomp.ConnOpt.UnsubscribeReceiptTimeout(waitFor),
	}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := stomp.ConnectWithContext(ctx, rwc, all...)
	if err != nil {
		t.Fatalf("stomp connect over %s: %v", tr.name, err)
	}
	t.Cleanup(func() { c.MustDisconnect() })
	return c
}

// barrier returns once the broker has handled every frame c sent before
// it: frames of one connection take effect in order, and a receipted SEND
// to a topic nobody uses has no other effect.
func barrier(t testing.TB, c *stomp.Conn) {
	t.Helper()
	if err := c.Send("/topic/barrier", "", nil, stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("barrier send: %v", err)
	}
}

// subscribe subscribes and waits until the subscription is in place.
func subscribe(t testing.TB, c *stomp.Conn, dest string, ack stomp.AckMode, opts ...func(*frame.Frame) error) *stomp.Subscription {
	t.Helper()
	sub, err := c.Subscribe(dest, ack, opts...)
	if err != nil {
		t.Fatalf("subscribe %s: %v", dest, err)
	}
	barrier(t, c)
	return sub
}

// send sends with a receipt, so the message has been routed on return.
func send(t testing.TB, c *stomp.Conn, dest, body string, opts ...func(*frame.Frame) error) {
	t.Helper()
	opts = append(opts, stomp.SendOpt.Receipt)
	if err := c.Send(dest, "text/plain", []byte(body), opts...); err != nil {
		t.Fatalf("send to %s: %v", dest, err)
	}
}

// recv returns the next message of sub, failing on an error or timeout.
func recv(t testing.TB, sub *stomp.Subscription) *stomp.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatalf("subscription %s closed", sub.Destination())
		}
		if m.Err != nil {
			t.Fatalf("subscription %s: %v", sub.Destination(), m.Err)
		}
		return m
	case <-time.After(waitFor):
		t.Fatalf("no message on %s within %v", sub.Destination(), waitFor)
	}
	return nil
}

func recvBody(t testing.TB, sub *stomp.Subscription) string {
	t.Helper()
	return string(recv(t, sub).Body)
}

// expectNothing fails if sub receives anything within d.
func expectNothing(t testing.TB, sub *stomp.Subscription, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatalf("subscription %s closed", sub.Destination())
		}
		if m.Err != nil {
			t.Fatalf("subscription %s: %v", sub.Destination(), m.Err)
		}
		t.Fatalf("unexpected message on %s: %q (headers %v)", sub.Destination(), m.Body, headerList(m.Header))
	case <-time.After(d):
	}
}

func headerList(h *frame.Header) []string {
	if h == nil {
		return nil
	}
	out := make([]string, 0, h.Len())
	for i := 0; i < h.Len(); i++ {
		k, v := h.GetAt(i)
		out = append(out, k+":"+v)
	}
	return out
}

// rawFrame is a STOMP frame as read off the wire by the raw clients.
type rawFrame struct {
	Command string
	Headers [][2]string
	Body    []byte
}

// Get returns the first value of key: the first occurrence wins.
func (f *rawFrame) Get(key string) (string, bool) {
	for _, h := range f.Headers {
		if h[0] == key {
			return h[1], true
		}
	}
	return "", false
}

func (f *rawFrame) Value(key string) string {
	v, _ := f.Get(key)
	return v
}

func (f *rawFrame) String() string {
	var b strings.Builder
	b.WriteString(f.Command)
	for _, h := range f.Headers {
		fmt.Fprintf(&b, " %s:%q", h[0], h[1])
	}
	body := f.Body
	if len(body) > 80 {
		body = body[:80]
	}
	fmt.Fprintf(&b, " body=%q", body)
	return b.String()
}

// readRawFrame reads one frame, skipping heart-beat EOLs (counted in
// *beats when beats is not nil). Header values are unescaped by the 1.2
// rules except on CONNECTED, as the broker speaks 1.2 unless told otherwise.
func readRawFrame(r *bufio.Reader, beats *int) (*rawFrame, error) {
	var cmd string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if beats != nil {
				*beats++
			}
			continue
		}
		cmd = line
		break
	}
	f := &rawFrame{Command: cmd}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, unexpected(err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("header line without colon: %q", line)
		}
		if cmd != "CONNECTED" {
			k, v = unescapeHeader(k), unescapeHeader(v)
		}
		f.Headers = append(f.Headers, [2]string{k, v})
	}
	if cl, ok := f.Get("content-length"); ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad content-length %q", cl)
		}
		f.Body = make([]byte, n+1)
		if _, err := io.ReadFull(r, f.Body); err != nil {
			return nil, unexpected(err)
		}
		if f.Body[n] != 0 {
			return nil, fmt.Errorf("no NUL after %d body bytes", n)
		}
		f.Body = f.Body[:n]
		return f, nil
	}
	body, err := r.ReadBytes(0)
	if err != nil {
		return nil, unexpected(err)
	}
	f.Body = body[:len(body)-1]
	return f, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func unescapeHeader(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	return strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r", `\c`, ":").Replace(s)
}

// parseRawFrame parses a single frame held in one WebSocket message.
func parseRawFrame(data []byte) (*rawFrame, error) {
	return readRawFrame(bufio.NewReader(bytes.NewReader(data)), nil)
}

// rawClient speaks STOMP by hand over any byte stream, so tests can send
// exactly the bytes they mean, malformed ones included. A goroutine reads
// frames into a channel; reads are bounded by timeouts there.
type rawClient struct {
	t      testing.TB
	rwc    io.ReadWriteCloser
	frames chan *rawFrame
	done   chan struct{} // closed when reading stops
	err    error         // why reading stopped; read after done
	mu     sync.Mutex
	beats  int
}

func newRawClient(t testing.TB, rwc io.ReadWriteCloser) *rawClient {
	c := &rawClient{t: t, rwc: rwc, frames: make(chan *rawFrame, 1024), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		r := bufio.NewReaderSize(rwc, 64<<10)
		for {
			var beats int
			f, err := readRawFrame(r, &beats)
			c.mu.Lock()
			c.beats += beats
			c.mu.Unlock()
			if err != nil {
				c.err = err
				return
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() { rwc.Close() })
	return c
}

func dialRaw(t testing.TB, p *brokerProc, tr stompTransport) *rawClient {
	t.Helper()
	return newRawClient(t, dialStream(t, p, tr))
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.rwc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// frame encodes a frame; kv are header key, value pairs written as given
// (no escaping).
func encodeFrame(cmd string, body string, kv ...string) string {
	var b strings.Builder
	b.WriteString(cmd + "\n")
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + ":" + kv[i+1] + "\n")
	}
	b.WriteString("\n" + body + "\x00")
	return b.String()
}

func (c *rawClient) send(cmd, body string, kv ...string) {
	c.t.Helper()
	c.write(encodeFrame(cmd, body, kv...))
}

// next returns the next frame, failing if none arrives in time or the
// connection ends.
func (c *rawClient) next() *rawFrame {
	c.t.Helper()
	return c.nextWithin(waitFor)
}

// nextWithin returns the next frame, failing if none arrives within d or
// the connection ends.
func (c *rawClient) nextWithin(d time.Duration) *rawFrame {
	c.t.Helper()
	f, ended := frameOrEnd(c, d)
	switch {
	case ended:
		c.t.Fatalf("connection ended while waiting for a frame: %v", c.err)
	case f == nil:
		c.t.Fatalf("no frame within %v", d)
	}
	return f
}

// frameOrEnd returns c's next frame; or ended if the connection ends
// without one; or neither if nothing happens within d.
func frameOrEnd(c *rawClient, d time.Duration) (f *rawFrame, ended bool) {
	select {
	case f := <-c.frames:
		return f, false
	case <-c.done:
		select {
		case f := <-c.frames:
			return f, false
		default:
			return nil, true
		}
	case <-time.After(d):
		return nil, false
	}
}

// expect returns the next frame and fails unless it is a cmd.
func (c *rawClient) expect(cmd string) *rawFrame {
	c.t.Helper()
	f := c.next()
	if f.Command != cmd {
		c.t.Fatalf("got %s, want %s", f, cmd)
	}
	return f
}

// connect sends CONNECT (extra headers appended) and returns CONNECTED.
func (c *rawClient) connect(kv ...string) *rawFrame {
	c.t.Helper()
	c.send("CONNECT", "", append([]string{"accept-version", "1.2", "host", "/"}, kv...)...)
	return c.expect("CONNECTED")
}

// expectClosed waits until the server closes the connection and returns
// the frames that came before the end.
func (c *rawClient) expectClosed(within time.Duration) []*rawFrame {
	c.t.Helper()
	var got []*rawFrame
	deadline := time.After(within)
	for {
		select {
		case f := <-c.frames:
			got = append(got, f)
		case <-c.done:
			for {
				select {
				case f := <-c.frames:
					got = append(got, f)
				default:
					if c.err != nil && !errors.Is(c.err, io.EOF) {
						c.t.Logf("connection ended with %v", c.err)
					}
					return got
				}
			}
		case <-deadline:
			c.t.Fatalf("connection still open after %v; frames: %v", within, got)
		}
	}
}

func (c *rawClient) heartBeats() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beats
}

// procStatus reads a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// dialTinyReceiveBuffer connects over TCP with a 4 KiB receive buffer, so
// the kernel absorbs little for a client that stops reading and the broker
// soon sees it as slow.
func dialTinyReceiveBuffer(t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: waitFor, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
