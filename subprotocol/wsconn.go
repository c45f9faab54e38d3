package subprotocol

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A WebSocket connection keeps only a small read buffer of its own (for
// frame headers and control frames). Input is read from the socket in
// large chunks into a buffer borrowed from a pool, which goes back as soon
// as it has been consumed; so a busy connection makes few system calls and
// an idle one holds almost nothing.
const (
	wsOwnBufferSize  = 512 // more than 256, or gorilla would not adopt it
	wsReadChunkSize  = 16 << 10
	wsWriteChunkSize = 32 << 10
)

// wsHijacker hands gorilla's Upgrade a connection that reads ahead
// through pooled buffers and a small buffered reader the transport can
// inspect.
type wsHijacker struct {
	http.ResponseWriter
	pool *sync.Pool // *[]byte of wsReadChunkSize

	conn *readAheadConn
	br   *bufio.Reader
}

// Hijack takes over the connection. Input already buffered by the HTTP
// server (a client that did not wait for the handshake) is left where it
// is: gorilla refuses such a connection anyway.
func (h *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return c, brw, err
	}
	h.conn = &readAheadConn{Conn: c, pool: h.pool, owed: newOwedWriter(c)}
	h.br = bufio.NewReaderSize(h.conn, wsOwnBufferSize)
	brw.Reader = h.br
	return h.conn, brw, nil
}

// readAheadConn reads its socket in chunks of wsReadChunkSize into a
// pooled buffer, held only while it has unread bytes. Only one goroutine
// reads.
type readAheadConn struct {
	net.Conn
	pool *sync.Pool

	buf  *[]byte
	r, w int
	err  error // from the read that filled buf, returned once it is consumed

	writeDeadline time.Time // as last set on the socket

	// Writes go through owed, when the socket allows writing without
	// blocking; while trying is set they never wait (see owedWriter).
	owed   *owedWriter
	trying atomic.Bool
}

// Write sends p, through owed when there is one.
func (c *readAheadConn) Write(p []byte) (int, error) {
	if c.owed == nil {
		return c.Conn.Write(p)
	}
	return c.owed.write(p, c.trying.Load())
}

// SetWriteDeadline passes a deadline on to the socket only when it
// changed. Gorilla sets its deadline before every frame it writes; the
// transport moves that deadline only now and then (see lazyDeadline),
// which spares the runtime a timer update per message.
func (c *readAheadConn) SetWriteDeadline(t time.Time) error {
	if t.Equal(c.writeDeadline) {
		return nil
	}
	c.writeDeadline = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *readAheadConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		if c.err != nil {
			err := c.err
			c.err = nil
			return 0, err
		}
		if len(p) >= wsReadChunkSize {
			return c.Conn.Read(p)
		}
		buf := c.pool.Get().(*[]byte)
		n, err := c.Conn.Read(*buf)
		if n == 0 {
			c.pool.Put(buf)
			return 0, err
		}
		c.buf, c.r, c.w, c.err = buf, 0, n, err
	}
	n := copy(p, (*c.buf)[c.r:c.w])
	c.r += n
	if c.r == c.w {
		c.pool.Put(c.buf)
		c.buf = nil
	}
	return n, nil
}

// buffered reports whether input has been read from the socket and not
// yet consumed.
func (c *readAheadConn) buffered() bool { return c.buf != nil || c.err != nil }

// lazyDeadline keeps a write deadline at least half the timeout ahead,
// moving it only when less is left: a write may then block between half
// the timeout and the whole of it, and the deadline is not reset for
// every message.
type lazyDeadline struct {
	timeout time.Duration
	at      time.Time
}

// next returns the deadline to set and whether it moved.
func (d *lazyDeadline) next() (time.Time, bool) {
	now := time.Now()
	if d.at.Sub(now) > d.timeout/2 {
		return d.at, false
	}
	d.at = now.Add(d.timeout)
	return d.at, true
}
