package subprotocol

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// SockJS pre-authentication bounds: what a client sends is buffered
// whole (a send request's body, a WebSocket message) before the broker
// sees any of it, so before it has logged in. These bound how long a
// client may take to finish one, and how much one address may have
// unfinished at once.
const (
	DefaultSockJSReadTimeout       = 10 * time.Second
	DefaultSockJSPendingBytesPerIP = 32 << 20
)

// sessionWait is how long a send request waits for its session's handler
// to start: the library answers the opening request before it runs it.
const sessionWait = time.Second

var (
	errPendingLimit = errors.New("sockjs: too many bytes in transit from this address")
	errSendTimeout  = errors.New("sockjs: send request body not received in time")
)

// pendingBytes counts, per client address, the bytes of send bodies and
// WebSocket messages being received. Memory they take is only given back
// once they are complete or dropped.
type pendingBytes struct {
	limit int64 // per address; <= 0: no limit

	mu   sync.Mutex
	held map[string]int64
}

func newPendingBytes(limit int64) *pendingBytes {
	return &pendingBytes{limit: limit, held: make(map[string]int64)}
}

// take reserves n bytes for addr, or reports that its share is used up.
func (b *pendingBytes) take(addr string, n int64) bool {
	if b.limit <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held[addr]+n > b.limit {
		return false
	}
	b.held[addr] += n
	return true
}

// give returns n bytes of addr's reservation.
func (b *pendingBytes) give(addr string, n int64) {
	if b.limit <= 0 || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held[addr] -= n; b.held[addr] <= 0 {
		delete(b.held, addr)
	}
}

// remoteHost is the address part of host:port, what the budget counts by.
func remoteHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// sendChunk is how much of a body of unknown length is reserved and read
// at a time.
const sendChunk = 32 << 10

// readSend reads a send request's body, at most max bytes, within the
// read timeout and the address's share of the pending bytes. The caller
// gives back n bytes once the body has been handled, error or not.
//
// The read deadline stays in place after a failure: net/http then reads
// what is left of a short body to reuse the connection, and a stalled
// client must not hold it there.
func (h *sockjsHandler) readSend(w http.ResponseWriter, r *http.Request) (body []byte, n int64, err error) {
	addr := remoteHost(r.RemoteAddr)
	rc := http.NewResponseController(w)
	if h.readTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(h.readTimeout))
		defer func() {
			if err == nil {
				_ = rc.SetReadDeadline(time.Time{})
			}
		}()
	}
	if r.ContentLength > h.maxSend {
		return nil, 0, errSendTooLarge
	}
	if r.ContentLength >= 0 {
		if !h.pending.take(addr, r.ContentLength) {
			return nil, 0, errPendingLimit
		}
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
		return body, r.ContentLength, readError(err)
	}
	for {
		if int64(len(body)) > h.maxSend {
			return nil, n, errSendTooLarge
		}
		if !h.pending.take(addr, sendChunk) {
			return nil, n, errPendingLimit
		}
		n += sendChunk
		body = append(body, make([]byte, sendChunk)...)
		k, err := io.ReadFull(r.Body, body[len(body)-sendChunk:])
		body = body[:len(body)-sendChunk+k]
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return body, n, nil
		}
		if err != nil {
			return nil, n, readError(err)
		}
	}
}

var errSendTooLarge = errors.New("sockjs: send request too large")

// readError tells a client that took too long from one that failed.
func readError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errSendTimeout
	}
	return err
}
