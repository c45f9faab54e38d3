package subprotocol

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxConnsPerIP is LimitPerIP's usual bound, that of the broker's
// sessions per address.
const DefaultMaxConnsPerIP = 10000

// LimitPerIP returns a listener that keeps at most max connections from
// one IP address open at once: a connection past that is closed as soon
// as it is accepted. It counts connections however they end up used (a
// WebSocket, a SockJS stream, an idle keep-alive), until they are closed,
// so that one address cannot take every descriptor the process has.
// Refusals are logged at most once a minute, with their count.
func LimitPerIP(ln net.Listener, max int, log *slog.Logger) net.Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &perIPListener{Listener: ln, max: max, log: log, open: make(map[string]int)}
}

type perIPListener struct {
	net.Listener
	max int
	log *slog.Logger

	mu       sync.Mutex
	open     map[string]int
	refused  int // since the last report
	reported time.Time
}

// Accept returns the next connection within the bound.
func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteHost(c.RemoteAddr().String())
		if l.admit(ip) {
			return &countedConn{Conn: c, l: l, ip: ip}, nil
		}
		c.Close()
	}
}

func (l *perIPListener) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] < l.max {
		l.open[ip]++
		return true
	}
	l.refused++
	if now := time.Now(); now.Sub(l.reported) >= time.Minute {
		l.log.Warn("connections refused: too many open from one address",
			"addr", l.Addr().String(), "remote", ip, "limit", l.max, "refused", l.refused)
		l.refused, l.reported = 0, now
	}
	return false
}

func (l *perIPListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// countedConn gives its place back when first closed.
type countedConn struct {
	net.Conn
	l    *perIPListener
	ip   string
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}

// SyscallConn lets waitReadable reach the socket, so that idle WebSocket
// connections still wait without a read buffer.
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite lets net/http half-close before it closes, as it does on a
// bare TCP connection.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
