package subprotocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

var errSockJSMessageTooBig = errors.New("sockjs: websocket message over the size limit")

// wsLimitResponse hands the WebSocket upgrade a connection that bounds
// each message the client sends.
type wsLimitResponse struct {
	http.ResponseWriter
	h    *sockjsHandler
	addr string // the client's, for h.pending
}

func (w *wsLimitResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		// The upgrader refuses a client that sent data early itself.
		return conn, brw, err
	}
	lc := &wsLimitConn{Conn: conn, limit: w.h.maxSend, timeout: w.h.readTimeout, pending: w.h.pending, addr: w.addr}
	return lc, bufio.NewReadWriter(bufio.NewReaderSize(lc, 4096), brw.Writer), nil
}

// wsLimitConn follows the frame headers of the client's WebSocket stream
// as it is read, before the library buffers a whole message, and fails
// the read that would take a message past limit bytes or past the
// address's share of pending bytes. A message begun must be finished
// within timeout: the connection then has a read deadline, and none
// between messages, when an idle client sends nothing at all.
type wsLimitConn struct {
	net.Conn
	limit   int64
	timeout time.Duration // <= 0: none
	pending *pendingBytes
	addr    string

	hdr       [14]byte // the frame header being read
	hdrLen    int
	remaining uint64 // payload bytes left in the current frame
	final     bool   // the current frame ends its message
	msg       uint64 // payload bytes of the current message so far
	begun     time.Time
	deadline  bool // a read deadline is set for the current message
	err       error

	mu     sync.Mutex // Close may come from another goroutine than Read
	held   int64      // bytes of the current message reserved in pending
	closed bool
}

func (c *wsLimitConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if open := !c.begun.IsZero(); open != c.deadline && c.timeout > 0 {
		var d time.Time
		if open {
			d = c.begun.Add(c.timeout)
		}
		if err := c.Conn.SetReadDeadline(d); err != nil {
			return 0, err
		}
		c.deadline = open
	}
	n, err := c.Conn.Read(p)
	if serr := c.scan(p[:n]); serr != nil {
		c.err = serr
		return 0, serr
	}
	return n, err
}

// Close gives back what the unfinished message held.
func (c *wsLimitConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.pending.give(c.addr, c.held)
	c.held = 0
	c.mu.Unlock()
	return c.Conn.Close()
}

// reserve counts k more bytes of the current message against the
// address's share.
func (c *wsLimitConn) reserve(k int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.pending.take(c.addr, k) {
		return false
	}
	c.held += k
	return true
}

func (c *wsLimitConn) scan(b []byte) error {
	for len(b) > 0 {
		if c.remaining > 0 {
			k := min(uint64(len(b)), c.remaining)
			if !c.begun.IsZero() && !c.reserve(int64(k)) {
				return errPendingLimit
			}
			c.remaining -= k
			b = b[k:]
			c.ended()
			continue
		}
		c.hdr[c.hdrLen] = b[0]
		c.hdrLen++
		b = b[1:]
		if c.hdrLen < 2 {
			continue
		}
		need := 2
		switch c.hdr[1] & 0x7f {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if c.hdr[1]&0x80 != 0 { // masked, as every client frame is
			need += 4
		}
		if c.hdrLen < need {
			continue
		}
		size := uint64(c.hdr[1] & 0x7f)
		switch size {
		case 126:
			size = uint64(binary.BigEndian.Uint16(c.hdr[2:4]))
		case 127:
			size = binary.BigEndian.Uint64(c.hdr[2:10])
		}
		// Control frames (opcode 8 and up) are small and sit between
		// the fragments of a message; text, binary and continuation
		// frames add up.
		c.remaining = size
		c.hdrLen = 0
		if op := c.hdr[0] & 0x0f; op < 8 {
			if op != 0 {
				c.msg = 0
			}
			if size > uint64(c.limit) || c.msg+size > uint64(c.limit) {
				return errSockJSMessageTooBig
			}
			c.msg += size
			if c.begun.IsZero() {
				c.begun = time.Now()
			}
			c.final = c.hdr[0]&0x80 != 0
			c.ended()
		}
	}
	return nil
}

// ended closes the books on a message once its last payload byte is in:
// the library now holds it whole and hands it on.
func (c *wsLimitConn) ended() {
	if c.remaining > 0 || !c.final || c.begun.IsZero() {
		return
	}
	c.mu.Lock()
	c.pending.give(c.addr, c.held)
	c.held = 0
	c.mu.Unlock()
	c.begun = time.Time{}
}
