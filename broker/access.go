package broker

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Principal is an authenticated client: who it is and where it may go.
type Principal interface {
	// Name is the user name shown to operators and in logs.
	Name() string
	// CanRead reports whether the client may SUBSCRIBE to destination.
	CanRead(destination string) bool
	// CanWrite reports whether the client may SEND to destination.
	CanWrite(destination string) bool
}

// ErrAccessRefused is what a failed login or a forbidden destination gets.
var ErrAccessRefused = errors.New("access refused")

// errAccess names the refused action and destination, as operators and
// clients want to see it, without saying anything about credentials.
func errAccess(action, dest string) error {
	return errors.New("access refused: " + action + " " + dest)
}

// checkRead and checkWrite apply the session's permissions; a session with
// no principal (no authentication configured) may do anything.
func (s *session) checkRead(dest string) error {
	if s.principal != nil && !s.principal.CanRead(dest) {
		s.b.limits.hit("access-refused")
		return errAccess("read", dest)
	}
	return nil
}

func (s *session) checkWrite(dest string) error {
	if s.principal == nil || dest == s.lastWritable {
		return nil
	}
	if !s.principal.CanWrite(dest) {
		s.b.limits.hit("access-refused")
		return errAccess("write", dest)
	}
	// A producer mostly sends to one destination; the principal's
	// patterns, often regular expressions, need not run for every SEND.
	s.lastWritable = dest
	return nil
}

// limitCounters counts refusals by limit name, for operators.
type limitCounters struct {
	m sync.Map // name → *atomic.Uint64
}

func (l *limitCounters) hit(name string) {
	v, ok := l.m.Load(name)
	if !ok {
		v, _ = l.m.LoadOrStore(name, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

func (l *limitCounters) snapshot() map[string]uint64 {
	out := map[string]uint64{}
	l.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// limitError is an ERROR message naming the limit that was exceeded.
func limitError(what string, max int) error {
	return errors.New(what + " limit reached (max " + strconv.Itoa(max) + ")")
}

// hostOf returns the IP part of a remote address, for per-IP limits.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// waitForRoom blocks a producer while q is over its message or byte limit,
// or, for a message that is not persistent, while q holds too much that
// cannot be paged out to the store; for at most timeout, or until done is
// closed. The caller holds no lock: its connection is simply not read
// meanwhile, so TCP backpressure reaches the client.
func (q *queue) waitForRoom(persistent bool, timeout time.Duration, done <-chan struct{}) error {
	maxMsgs, maxBytes := q.b.opts.MaxQueueMessages, q.b.opts.MaxQueueBytes
	maxTransient := q.b.opts.MaxTransientQueueBytes
	if persistent || maxTransient < 0 {
		maxTransient = 0
	}
	if maxMsgs <= 0 && maxBytes <= 0 && maxTransient <= 0 {
		return nil
	}
	var timer *time.Timer
	for {
		q.mu.Lock()
		full := (maxMsgs > 0 && q.depth+q.paged >= maxMsgs) || (maxBytes > 0 && q.totalBytes() >= maxBytes) ||
			(maxTransient > 0 && int64(q.transient) >= maxTransient)
		if !full {
			q.mu.Unlock()
			return nil
		}
		if q.roomFreed == nil {
			q.roomFreed = make(chan struct{})
		}
		wait := q.roomFreed
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		select {
		case <-wait:
		case <-timer.C:
			q.b.limits.hit("queue-full")
			return errors.New("queue " + q.name + " is full: gave up after " + timeout.String())
		case <-done:
			return errors.New("connection closing")
		}
	}
}

// totalBytes approximates the bytes a queue holds, paged messages included.
func (q *queue) totalBytes() int64 {
	return int64(q.memBytes) + q.pagedBytes
}

// freed wakes producers waiting for room; called with q.mu held whenever
// messages leave the queue.
func (q *queue) freed() {
	if q.roomFreed != nil {
		close(q.roomFreed)
		q.roomFreed = nil
	}
}
