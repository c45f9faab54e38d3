package subprotocol

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// owedWriter writes to a socket in one of two ways: as a plain blocking
// write, or, for the broker's writes from a publisher's goroutine
// (broker.TryWriter), without ever waiting. What a socket does not take
// at once is then owed: it is kept, in order, and goes out before
// anything else on the next blocking write, or on flush. Writes are
// serialized here, since a WebSocket control frame may be written from
// the read loop while the write loop or a publisher writes.
type owedWriter struct {
	mu   sync.Mutex
	conn net.Conn
	raw  syscall.RawConn
	owed []byte
}

// newOwedWriter returns nil when c cannot be written without blocking (it
// is not a socket of this system, or it is TLS); its transport then never
// offers to.
func newOwedWriter(c net.Conn) *owedWriter {
	sc, ok := c.(syscall.Conn)
	if !ok || !canWriteRaw {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &owedWriter{conn: c, raw: raw}
}

// write sends p. Trying, it takes what the socket takes at once and owes
// the rest, and fails only when the socket has failed; otherwise it blocks
// until what was owed and p have gone out.
func (w *owedWriter) write(p []byte, try bool) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if try {
		if err := w.tryLocked(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if err := w.flushLocked(); err != nil {
		return 0, err
	}
	return w.conn.Write(p)
}

// writeBuffers is write for several slices, sent as one.
func (w *owedWriter) writeBuffers(bufs [][]byte, try bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !try {
		if err := w.flushLocked(); err != nil {
			return err
		}
		nb := net.Buffers(bufs)
		_, err := nb.WriteTo(w.conn)
		return err
	}
	if len(w.owed) > 0 {
		for _, b := range bufs {
			w.owed = append(w.owed, b...)
		}
		return nil
	}
	n, err := writevRaw(w.raw, bufs)
	if err != nil {
		return err
	}
	for _, b := range bufs {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		w.owed = append(w.owed, b[n:]...)
		n = 0
	}
	return nil
}

// flush sends what is owed, blocking until deadline at most. The socket
// keeps that deadline; a transport's own deadlines only ever move later.
func (w *owedWriter) flush(deadline time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.owed) == 0 {
		return nil
	}
	if !deadline.IsZero() {
		if err := w.conn.SetWriteDeadline(deadline); err != nil {
			return err
		}
	}
	return w.flushLocked()
}

// owes reports whether anything is owed.
func (w *owedWriter) owes() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.owed) > 0
}

func (w *owedWriter) flushLocked() error {
	if len(w.owed) == 0 {
		return nil
	}
	_, err := w.conn.Write(w.owed)
	clear(w.owed)
	w.owed = w.owed[:0]
	if cap(w.owed) > maxOwedKept {
		w.owed = nil
	}
	return err
}

// maxOwedKept bounds the owed buffer a connection keeps for reuse.
const maxOwedKept = 4 << 10

func (w *owedWriter) tryLocked(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if len(w.owed) > 0 {
		// Behind what is owed already: all of p waits too.
		w.owed = append(w.owed, p...)
		return nil
	}
	n, err := writeRaw(w.raw, p)
	if err != nil {
		return err
	}
	if n < len(p) {
		w.owed = append(w.owed, p[n:]...)
	}
	return nil
}
