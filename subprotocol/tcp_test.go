package subprotocol

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// fanoutServer answers each frame with a heart-beat and two copies of it
// in one batch, the copies sharing one body as fan-out does.
func fanoutServer(infos chan<- broker.ConnInfo) Server {
	return serverFunc(func(tr broker.Transport) {
		if infos != nil {
			infos <- tr.Info()
		}
		_ = decodeAll(tr, 4096, func(f *stomp.Frame) error {
			o := outbound(f)
			o2 := o
			o2.Head = stomp.AppendHead(nil, &stomp.Frame{Command: f.Command, Headers: append(slices.Clone(f.Headers), stomp.Header{Key: "copy", Value: "2"})}, stomp.V12)
			return tr.WriteFrames([]broker.Outbound{{Head: []byte("\n")}, o, o2})
		})
	})
}

// serveTCP runs ServeTCP on ln until the test ends, then checks that it
// returned nil.
func serveTCP(t *testing.T, ln net.Listener, srv Server) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- ServeTCP(ln, srv, TCPOptions{}) }()
	t.Cleanup(func() {
		ln.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeTCP returned %v after the listener closed, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("ServeTCP did not return after the listener closed")
		}
	})
}

// readFrames decodes n frames from r.
func readFrames(t *testing.T, r io.Reader, n int) []*stomp.Frame {
	t.Helper()
	var got []*stomp.Frame
	dec := stomp.NewDecoder(stomp.Limits{})
	buf := make([]byte, 1024)
	for len(got) < n {
		m, err := r.Read(buf)
		if ferr := dec.Feed(buf[:m], func(f *stomp.Frame) error { got = append(got, f); return nil }); ferr != nil {
			t.Fatal(ferr)
		}
		if err != nil && len(got) < n {
			t.Fatalf("after %d frames: %v", len(got), err)
		}
	}
	return got
}

func TestTCPRoundTrip(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	infos := make(chan broker.ConnInfo, 1)
	serveTCP(t, ln, fanoutServer(infos))

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	sent := []string{
		"SEND\ndestination:/q/a\n\nhello\x00",
		"SEND\ndestination:/q/b\ncontent-length:4\n\n\xff\x00\x01\x02\x00",
	}
	if _, err := io.WriteString(c, strings.Join(sent, "\n")); err != nil {
		t.Fatal(err)
	}
	got := readFrames(t, c, 4)
	for i, s := range sent {
		want := decodeOne(t, []byte(s))
		for j, f := range got[2*i : 2*i+2] {
			if f.Value("destination") != want.Value("destination") || !bytes.Equal(f.Body, want.Body) {
				t.Errorf("frame %d copy %d: %s %v %q, want %q", i, j, f.Command, f.Headers, f.Body, want.Body)
			}
		}
		if got[2*i+1].Value("copy") != "2" {
			t.Errorf("frame %d: copies out of order", i)
		}
	}
	info := <-infos
	if info.Transport != "tcp" || info.RemoteAddr != c.LocalAddr().String() || info.Subprotocol != "" || info.Versions != nil {
		t.Errorf("info %+v", info)
	}
}

// pipeListener hands out the server ends of net.Pipe connections, after
// the errors it is told to return first.
type pipeListener struct {
	errs   chan error
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{errs: make(chan error, 10), conns: make(chan net.Conn, 10), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.errs:
		return nil, err
	default:
	}
	select {
	case err := <-l.errs:
		return nil, err
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial returns the client end of a new connection.
func (l *pipeListener) dial() net.Conn {
	s, c := net.Pipe()
	l.conns <- s
	return c
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestTCPWithoutWritev covers connections that cannot gather writes (TLS
// ones, say), and accept errors that are only temporary.
func TestTCPWithoutWritev(t *testing.T) {
	ln := newPipeListener()
	ln.errs <- &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	ln.errs <- &net.OpError{Op: "accept", Net: "tcp", Err: syscall.ECONNABORTED}
	serveTCP(t, ln, fanoutServer(nil))

	c := ln.dial()
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(c, "SEND\ndestination:/q\n\nhi\x00")
	got := readFrames(t, c, 2)
	for _, f := range got {
		if f.Command != "SEND" || string(f.Body) != "hi" {
			t.Errorf("got %s %q", f.Command, f.Body)
		}
	}
}

func TestServeTCPErrors(t *testing.T) {
	t.Run("permanent accept error", func(t *testing.T) {
		ln := newPipeListener()
		boom := errors.New("boom")
		ln.errs <- boom
		if err := ServeTCP(ln, fanoutServer(nil), TCPOptions{}); err != boom {
			t.Errorf("ServeTCP returned %v, want %v", err, boom)
		}
	})
	t.Run("closed listener", func(t *testing.T) {
		ln := newPipeListener()
		ln.Close()
		if err := ServeTCP(ln, fanoutServer(nil), TCPOptions{}); err != nil {
			t.Errorf("ServeTCP returned %v, want nil", err)
		}
	})
	t.Run("panicking session", func(t *testing.T) {
		ln := newPipeListener()
		var calls sync.WaitGroup
		calls.Add(2)
		serveTCP(t, ln, serverFunc(func(tr broker.Transport) {
			defer calls.Done()
			panic("session bug")
		}))
		for range 2 { // the listener keeps serving after a panic
			c := ln.dial()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("client read %v, want io.EOF once the session's connection is closed", err)
			}
			c.Close()
		}
		calls.Wait()
	})
}

func TestTCPCloseUnblocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	serveTCP(t, ln, serverFunc(func(tr broker.Transport) {
		_, err := closeDuringRead(tr) // nil when still blocked
		result <- err
	}))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-result; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close returned %v, want net.ErrClosed", err)
	}
}

// TestTCPLargeBatch checks that a batch larger than one write chunk
// arrives whole and in order, over writev and over the buffered path.
func TestTCPLargeBatch(t *testing.T) {
	body := append(bytes.Repeat([]byte("b"), 300<<10), 0)
	var batch []broker.Outbound
	for i := range 7 {
		batch = append(batch, broker.Outbound{Head: []byte("\n")})
		batch = append(batch, broker.Outbound{Head: []byte("MESSAGE\nseq:" + strconv.Itoa(i) + "\n\n"), Body: body})
	}
	srv := serverFunc(func(tr broker.Transport) {
		if _, err := tr.Read(make([]byte, 1)); err != nil {
			return
		}
		if err := tr.WriteFrames(batch); err != nil {
			t.Error(err)
		}
		_, _ = io.Copy(io.Discard, tr)
	})
	tests := []struct {
		name string
		dial func(t *testing.T) net.Conn
	}{
		{"writev", func(t *testing.T) net.Conn {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			serveTCP(t, ln, srv)
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"buffered", func(t *testing.T) net.Conn {
			ln := newPipeListener()
			serveTCP(t, ln, srv)
			return ln.dial()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial(t)
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte("\n")); err != nil {
				t.Fatal(err)
			}
			got := readFrames(t, c, 7)
			for i, f := range got {
				if f.Value("seq") != strconv.Itoa(i) || len(f.Body) != len(body)-1 {
					t.Errorf("frame %d: seq %q, %d body bytes", i, f.Value("seq"), len(f.Body))
				}
			}
		})
	}
}
