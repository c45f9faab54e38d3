package broker

import (
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// fakeTransport is an in-memory connection: the test pushes raw bytes in
// and reads decoded frames out.
type fakeTransport struct {
	info ConnInfo
	in   chan []byte
	out  chan *stomp.Frame
	raw  chan []byte // every written frame, as on the wire

	mu      sync.Mutex
	pending []byte
	closed  chan struct{}
	once    sync.Once
	dec     *stomp.Decoder
	block   chan struct{} // when set, writes wait for it to close
	discard bool          // drop output instead of decoding it
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{
		info:   ConnInfo{Transport: "fake", RemoteAddr: "127.0.0.1:1"},
		in:     make(chan []byte, 64),
		out:    make(chan *stomp.Frame, 4096),
		raw:    make(chan []byte, 4096),
		closed: make(chan struct{}),
		dec:    stomp.NewDecoder(stomp.Limits{MaxBodyBytes: 64 << 20}),
	}
}

func (f *fakeTransport) Read(p []byte) (int, error) {
	f.mu.Lock()
	if len(f.pending) > 0 {
		n := copy(p, f.pending)
		f.pending = f.pending[n:]
		f.mu.Unlock()
		return n, nil
	}
	f.mu.Unlock()
	select {
	case b := <-f.in:
		n := copy(p, b)
		f.mu.Lock()
		f.pending = append(f.pending, b[n:]...)
		f.mu.Unlock()
		return n, nil
	case <-f.closed:
		return 0, io.EOF
	}
}

func (f *fakeTransport) WriteFrames(frames []Outbound) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-f.closed:
			return io.ErrClosedPipe
		}
	}
	select {
	case <-f.closed:
		return io.ErrClosedPipe
	default:
	}
	if f.discard {
		return nil
	}
	for _, o := range frames {
		wire := append(append([]byte(nil), o.Head...), o.Body...)
		select {
		case f.raw <- wire:
		default:
		}
		f.feed(wire)
	}
	return nil
}

// feed decodes bytes as the client would read them off the wire.
func (f *fakeTransport) feed(wire []byte) {
	err := f.dec.Feed(wire, func(fr *stomp.Frame) error {
		f.out <- fr
		return nil
	})
	if err != nil {
		panic("broker wrote a malformed frame: " + err.Error())
	}
}

func (f *fakeTransport) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeTransport) Info() ConnInfo { return f.info }

// client drives one fake connection to a broker.
type client struct {
	t     testing.TB
	ft    *fakeTransport
	done  chan struct{}
	stash []*stomp.Frame // MESSAGEs read while waiting for something else
}

func newBroker(t testing.TB, opts Options) *Broker {
	t.Helper()
	b, err := New(opts, store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dial opens a connection without sending anything; versions, when
// given, are what the transport allows.
func dial(t testing.TB, b *Broker, versions ...stomp.Version) *client {
	ft := newFakeTransport()
	ft.info.Versions = versions
	return dialOver(t, b, ft, ft)
}

// dialOver is dial over a transport built on ft.
func dialOver(t testing.TB, b *Broker, tr Transport, ft *fakeTransport) *client {
	c := &client{t: t, ft: ft, done: make(chan struct{})}
	go func() {
		b.Serve(tr)
		close(c.done)
	}()
	t.Cleanup(c.close)
	return c
}

// connect opens a connection and completes CONNECT for version 1.2
// unless headers say otherwise.
func connect(t testing.TB, b *Broker, kv ...string) *client {
	t.Helper()
	c := dial(t, b)
	if len(kv) == 0 {
		kv = []string{"accept-version", "1.2"}
	}
	c.send(stomp.CONNECT, kv...)
	c.expect(stomp.CONNECTED)
	return c
}

func (c *client) close() {
	c.ft.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Error("session did not end after its transport closed")
	}
}

func (c *client) write(raw string) { c.ft.in <- []byte(raw) }

// send writes a frame; the body, if any, is the last odd argument.
func (c *client) send(command string, kv ...string) {
	c.sendBody(command, "", kv...)
}

func (c *client) sendBody(command, body string, kv ...string) {
	f := stomp.New(command, kv...)
	f.Body = []byte(body)
	c.ft.in <- stomp.Encode(f, stomp.V12)
}

func (c *client) next(timeout time.Duration) *stomp.Frame {
	if len(c.stash) > 0 {
		f := c.stash[0]
		c.stash = c.stash[1:]
		return f
	}
	select {
	case f := <-c.ft.out:
		return f
	case <-time.After(timeout):
		return nil
	}
}

// expectReceipt waits for a RECEIPT, keeping MESSAGEs that arrive first
// (a SUBSCRIBE's messages may overtake its receipt).
func (c *client) expectReceipt() *stomp.Frame {
	c.t.Helper()
	var kept []*stomp.Frame
	for {
		select {
		case f := <-c.ft.out:
			if f.Command == stomp.MESSAGE {
				kept = append(kept, f)
				continue
			}
			c.stash = append(c.stash, kept...)
			if f.Command != stomp.RECEIPT {
				c.t.Fatalf("got %s %v %q, want RECEIPT", f.Command, f.Headers, f.Body)
			}
			return f
		case <-time.After(10 * time.Second):
			c.t.Fatal("no RECEIPT within 10s")
		}
	}
}

// expect reads the next frame and checks its command.
func (c *client) expect(command string) *stomp.Frame {
	c.t.Helper()
	f := c.next(10 * time.Second)
	if f == nil {
		dumpGoroutines()
		c.t.Fatalf("no %s frame within 10s", command)
	}
	if f.Command != command {
		c.t.Fatalf("got %s %v %q, want %s", f.Command, f.Headers, f.Body, command)
	}
	return f
}

// expectNothing checks that no frame arrives for a while.
func (c *client) expectNothing(d time.Duration) {
	c.t.Helper()
	if f := c.next(d); f != nil {
		c.t.Fatalf("unexpected %s %v %q", f.Command, f.Headers, f.Body)
	}
}

// expectClosed waits for the broker to end the session.
func (c *client) expectClosed() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatal("session still open")
	}
}

// expectError reads an ERROR, checks its message mentions want and that
// the connection then closes.
func (c *client) expectError(want string) *stomp.Frame {
	c.t.Helper()
	f := c.expect(stomp.ERROR)
	if msg := f.Value("message"); !strings.Contains(msg, want) {
		c.t.Fatalf("ERROR message %q does not mention %q", msg, want)
	}
	c.expectClosed()
	return f
}

func dumpGoroutines() {
	if fn := os.Getenv("STAMPEDE_DUMP"); fn != "" {
		fh, _ := os.Create(fn)
		pprof.Lookup("goroutine").WriteTo(fh, 2)
		fh.Close()
	}
}
