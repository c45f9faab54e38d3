package subprotocol

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stampede-mq/stampede/broker"
)

// Accept backoff bounds: long enough to let a shortage of file
// descriptors ease, short enough not to stall accepting for long.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// writeChunk is about how much one write deadline covers; see WriteFrames.
const writeChunk = 1 << 20

// TCPOptions configures ServeTCP. The zero value logs nothing and uses
// DefaultWriteTimeout.
type TCPOptions struct {
	// Logger receives accept failures and session panics; nil discards them.
	Logger *slog.Logger
	// WriteTimeout bounds a write to a client that takes nothing; zero
	// means DefaultWriteTimeout and a negative value means no limit.
	WriteTimeout time.Duration
}

// ServeTCP accepts plain STOMP connections (also STOMP over TLS, when ln is
// a TLS listener) and serves each with srv: the broker's sessions wait for
// input without a goroutine while their clients are quiet (on Linux,
// without TLS), any other Server's run on a goroutine each. It returns nil
// once ln is closed, or the first error that is not temporary. Sessions
// already running are left to srv to end.
func ServeTCP(ln net.Listener, srv Server, opts TCPOptions) error {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := writeTimeout(opts.WriteTimeout)
	// Shared by this listener's connections that cannot use writev.
	pool := &sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
	p := newPoller()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if isTemporary(err) {
				delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
				logger.Warn("stomp accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		t := newTCPTransport(c, pool)
		t.deadline.timeout = timeout
		t.park = p.slot(c)
		serve(srv, t, logger)
	}
}

func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// tcpTransport is a broker.Transport over a stream socket.
type tcpTransport struct {
	conn     net.Conn
	info     broker.ConnInfo
	deadline lazyDeadline // for writes; no limit when its timeout is 0
	park     parking      // the socket's place in the listener's poller

	// Writer side, used by one writer at a time: the session's write loop,
	// or a publisher trying to write for it (TryWriteFrames).
	writev bool        // conn gathers net.Buffers in one system call
	vec    net.Buffers // reused between batches
	pool   *sync.Pool  // *bufio.Writer for conns without writev
	owed   *owedWriter // for TryWriteFrames; nil when conn is not a plain socket

	closed atomic.Bool
	rdMu   sync.Mutex // orders read-deadline changes against Close
}

func newTCPTransport(c net.Conn, pool *sync.Pool) *tcpTransport {
	t := &tcpTransport{
		conn:     c,
		deadline: lazyDeadline{timeout: DefaultWriteTimeout},
		pool:     pool,
		info:     broker.ConnInfo{Transport: "tcp", RemoteAddr: c.RemoteAddr().String()},
	}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		t.writev = true
		t.owed = newOwedWriter(c)
	}
	return t
}

// Read reads from the socket. Once Close has begun, errors read as
// net.ErrClosed, whatever the lingering close did to the socket.
func (t *tcpTransport) Read(p []byte) (int, error) {
	n, err := t.conn.Read(p)
	if err != nil && t.closed.Load() {
		err = net.ErrClosed
	}
	return n, err
}

// WaitRead blocks until the socket has input, without a buffer.
func (t *tcpTransport) WaitRead() error {
	err := waitReadable(t.conn)
	if err != nil && t.closed.Load() {
		err = net.ErrClosed
	}
	return err
}

// WaitReadFor is WaitRead for at most d. The wait uses the socket's read
// deadline, which Close sets too for its lingering drain: rdMu keeps this
// wait from clearing that one.
func (t *tcpTransport) WaitReadFor(d time.Duration) (bool, error) {
	t.rdMu.Lock()
	if t.closed.Load() {
		t.rdMu.Unlock()
		return false, net.ErrClosed
	}
	err := t.conn.SetReadDeadline(time.Now().Add(d))
	t.rdMu.Unlock()
	if err != nil {
		return false, err
	}
	err = waitReadable(t.conn)
	t.rdMu.Lock()
	if !t.closed.Load() {
		if derr := t.conn.SetReadDeadline(time.Time{}); err == nil {
			err = derr
		}
	}
	t.rdMu.Unlock()
	if t.closed.Load() {
		return false, net.ErrClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, nil
	}
	return err == nil, err
}

// ParkRead leaves the wait for input to the listener's poller.
func (t *tcpTransport) ParkRead(resume func()) bool { return t.park.park(resume) }

// WriteFrames writes the batch with as few system calls as it can: with
// writev on plain sockets, so heads and shared bodies go out together
// without copying, and through a buffer otherwise (on a TLS connection
// each head and body would else become a record of its own). A batch
// larger than writeChunk is written in chunks, each with a fresh deadline,
// so the deadline catches a peer that makes no progress rather than a
// slow link with a long queue.
func (t *tcpTransport) WriteFrames(frames []broker.Outbound) error {
	if t.owed != nil && len(frames) == 0 {
		t.deadline.next()
		return t.owed.flush(t.deadline.at)
	}
	for len(frames) > 0 {
		n, size := 1, frames[0].Len()
		for n < len(frames) && size+frames[n].Len() <= writeChunk {
			size += frames[n].Len()
			n++
		}
		if err := t.writeChunk(frames[:n]); err != nil {
			return err
		}
		frames = frames[n:]
	}
	return nil
}

func (t *tcpTransport) writeChunk(frames []broker.Outbound) error {
	if err := t.keepDeadline(); err != nil {
		return err
	}
	if !t.writev {
		return t.writeBuffered(frames)
	}
	return t.gather(frames, false)
}

// keepDeadline moves the socket's write deadline ahead when it is due.
// TryWriteFrames needs it as much as WriteFrames: the runtime refuses
// any write, even one that would not wait, once the deadline has passed.
func (t *tcpTransport) keepDeadline() error {
	if t.deadline.timeout > 0 {
		if at, moved := t.deadline.next(); moved {
			return t.conn.SetWriteDeadline(at)
		}
	}
	return nil
}

// gather writes the frames' heads and bodies with one writev, waiting for
// the socket unless trying.
func (t *tcpTransport) gather(frames []broker.Outbound, try bool) error {
	vec := t.vec[:0]
	for i := range frames {
		if len(frames[i].Head) > 0 {
			vec = append(vec, frames[i].Head)
		}
		if len(frames[i].Body) > 0 {
			vec = append(vec, frames[i].Body)
		}
	}
	t.vec = vec
	var err error
	if t.owed != nil {
		err = t.owed.writeBuffers(vec, try)
	} else {
		_, err = vec.WriteTo(t.conn) // consumes its copy of the slice header only
	}
	clear(t.vec) // let sent bodies be collected
	t.vec = t.vec[:0]
	return err
}

// TryWriteFrames sends the frames as far as the socket takes them at once
// (broker.TryWriter); the rest is owed, and WriteFrames sends it first.
func (t *tcpTransport) TryWriteFrames(frames []broker.Outbound) (owed bool, err error) {
	if t.owed == nil {
		return false, errors.ErrUnsupported
	}
	if err := t.keepDeadline(); err != nil {
		return false, err
	}
	if err := t.gather(frames, true); err != nil {
		return false, err
	}
	return t.owed.owes(), nil
}

// CanTryWrite reports whether TryWriteFrames works on this connection.
func (t *tcpTransport) CanTryWrite() bool { return t.owed != nil }

func (t *tcpTransport) writeBuffered(frames []broker.Outbound) error {
	bw := t.pool.Get().(*bufio.Writer)
	bw.Reset(t.conn)
	defer func() {
		bw.Reset(nil)
		t.pool.Put(bw)
	}()
	for i := range frames {
		if _, err := bw.Write(frames[i].Head); err != nil {
			return err
		}
		if _, err := bw.Write(frames[i].Body); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Lingering close: how long and how much unread input Close drains.
const (
	lingerTimeout = time.Second
	lingerBytes   = 1 << 20
)

// Close closes the socket, unblocking Read and WriteFrames. Only the
// first call acts; later ones return nil. Closing a socket that still has
// unread input makes the kernel send a reset, which can destroy the ERROR
// frame just written before the client reads it; so Close first shuts
// down the sending side and drains what the client still sends, briefly.
func (t *tcpTransport) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	t.park.cancel()
	if tc, ok := t.conn.(*net.TCPConn); ok {
		t.rdMu.Lock() // after closed is set: a WaitReadFor leaves the deadline alone
		err := tc.SetReadDeadline(time.Now().Add(lingerTimeout))
		t.rdMu.Unlock()
		if err == nil && tc.CloseWrite() == nil {
			io.CopyN(io.Discard, tc, lingerBytes)
		}
	}
	return t.conn.Close()
}

// Info describes the connection.
func (t *tcpTransport) Info() broker.ConnInfo { return t.info }
