//go:build linux

package subprotocol

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// waitReadable blocks until c has input, has reached its end or has
// failed, without reading anything, so the caller needs no buffer while it
// waits. It returns an error only when c is closed or broken. Connections
// that are not sockets (TLS, pipes) return at once: the caller then simply
// reads, as it would without waiting.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var one [1]byte
	return rc.Read(func(fd uintptr) bool {
		// Peeking, rather than waiting on the poller first, matters: the
		// poller is edge-triggered, so bytes already queued in the socket
		// would raise no new event.
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	})
}

// waitReadableFor is waitReadable for at most d; it reports whether c has
// input (or has ended) by then. It uses c's read deadline, and clears it.
func waitReadableFor(c net.Conn, d time.Duration) (bool, error) {
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return false, err
	}
	err := waitReadable(c)
	if derr := c.SetReadDeadline(time.Time{}); err == nil {
		err = derr
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, nil
	}
	return err == nil, err
}
