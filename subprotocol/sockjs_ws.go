package subprotocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
)

var errSockJSMessageTooBig = errors.New("sockjs: websocket message over the size limit")

// wsLimitResponse hands the WebSocket upgrade a connection that limits
// the size of each message the client sends.
type wsLimitResponse struct {
	http.ResponseWriter
	limit int64
}

func (w *wsLimitResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		// The upgrader refuses a client that sent data early itself.
		return conn, brw, err
	}
	lc := &wsLimitConn{Conn: conn, limit: w.limit}
	return lc, bufio.NewReadWriter(bufio.NewReaderSize(lc, 4096), brw.Writer), nil
}

// wsLimitConn follows the frame headers of the client's WebSocket stream
// as it is read and fails the read that would take a message past limit
// bytes, before the library has buffered it.
type wsLimitConn struct {
	net.Conn
	limit int64

	hdr       [14]byte // the frame header being read
	hdrLen    int
	remaining uint64 // payload bytes left in the current frame
	msg       uint64 // payload bytes of the current message so far
	err       error
}

func (c *wsLimitConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if serr := c.scan(p[:n]); serr != nil {
		c.err = serr
		return 0, serr
	}
	return n, err
}

func (c *wsLimitConn) scan(b []byte) error {
	for len(b) > 0 {
		if c.remaining > 0 {
			k := min(uint64(len(b)), c.remaining)
			c.remaining -= k
			b = b[k:]
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
		if op := c.hdr[0] & 0x0f; op < 8 {
			if op != 0 {
				c.msg = 0
			}
			if size > uint64(c.limit) || c.msg+size > uint64(c.limit) {
				return errSockJSMessageTooBig
			}
			c.msg += size
		}
		c.remaining = size
		c.hdrLen = 0
	}
	return nil
}
