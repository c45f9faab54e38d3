//go:build linux

package subprotocol

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller waits for input on the sockets of quiet connections with one
// epoll instance and at most one goroutine, so that such a connection
// needs no goroutine of its own (see broker.ReadParker): a goroutine
// parked on a socket costs a stack of 2 to 8 KiB, which for many idle
// connections is most of what they cost.
//
// Each socket is in the epoll set level-triggered and one-shot: armed when
// its read loop parks, disarmed by the event that resumes it. Level
// triggering means input that arrived before the socket was armed is not
// missed. The poller's goroutine waits on the epoll instance through the
// runtime's own poller, so it holds no thread, and ends whenever nothing
// is parked.
type poller struct {
	mu      sync.Mutex
	ep      *os.File          // the epoll instance, made on first use
	rc      syscall.RawConn   // ep's
	epfd    int               // ep's descriptor; set once, before any socket is armed
	broken  bool              // epoll failed: nothing parks
	parked  map[uint64]func() // by token: what to run when the socket is readable
	next    uint64            // the last token given out
	running bool              // the goroutine waiting on ep is running or about to
}

func newPoller() *poller {
	return &poller{parked: make(map[uint64]func())}
}

// parking is one socket's place in a poller. Only the connection's read
// loop parks; Close may cancel from any goroutine.
type parking struct {
	p  *poller
	rc syscall.RawConn // the socket's; nil when it is not one (TLS)

	// Guarded by p.mu.
	token  uint64 // of the latest parking
	closed bool   // Close has begun: parking again would wait for nothing
}

// slot returns c's place in p; it never parks unless c is a socket.
func (p *poller) slot(c net.Conn) parking {
	s := parking{p: p}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
		}
	}
	return s
}

// park arranges for resume to run on a goroutine of its own once the
// socket is readable, has ended or failed, or cancel is called. It
// reports false, having arranged nothing, when the socket cannot park.
func (s *parking) park(resume func()) bool {
	p := s.p
	if p == nil || s.rc == nil {
		return false
	}
	p.mu.Lock()
	if s.closed || !p.open() {
		p.mu.Unlock()
		return false
	}
	p.next++
	tok := p.next
	p.parked[tok] = resume
	s.token = tok
	if !p.running {
		p.running = true
		p.ep.SetReadDeadline(time.Time{}) // as cancel may have left it
		go p.run()
	}
	p.mu.Unlock()

	// Armed after the token is in place: the event may come at once.
	if err := s.arm(tok); err != nil {
		p.mu.Lock()
		_, waiting := p.parked[tok]
		delete(p.parked, tok)
		p.wakeIfEmpty()
		p.mu.Unlock()
		// Not waiting any more means cancel took resume, and runs it.
		return !waiting
	}
	return true
}

// arm puts the socket in the epoll set, or rearms it, for one event.
func (s *parking) arm(tok uint64) error {
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(uint32(tok)),
		Pad:    int32(uint32(tok >> 32)),
	}
	var err error
	cerr := s.rc.Control(func(fd uintptr) {
		// Nothing may be written once the socket is armed, as its read
		// loop may resume at once: so whether it is in the set yet is
		// learnt from the kernel (once per connection), not kept here.
		err = unix.EpollCtl(s.p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		if err == unix.ENOENT {
			err = unix.EpollCtl(s.p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if cerr != nil {
		return cerr // the socket is closed
	}
	return err
}

// cancel ends the socket's parking for good: a parked read loop resumes,
// to find its connection closing. Close calls it before closing the
// socket, whose descriptor then leaves the epoll set by itself.
func (s *parking) cancel() {
	p := s.p
	if p == nil {
		return
	}
	p.mu.Lock()
	s.closed = true
	resume, ok := p.parked[s.token]
	if ok {
		delete(p.parked, s.token)
		p.wakeIfEmpty()
	}
	p.mu.Unlock()
	if ok {
		go resume()
	}
}

// open makes the epoll instance if there is none yet, and reports whether
// there is one. p.mu is held.
func (p *poller) open() bool {
	if p.ep != nil || p.broken {
		return !p.broken
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		p.broken = true
		return false
	}
	// Non-blocking, so that os.NewFile hands it to the runtime's poller
	// and the goroutine that waits on it needs no thread.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		p.broken = true
		return false
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	rc, err := ep.SyscallConn()
	if err == nil {
		// Deadlines work only on descriptors the runtime polls, and
		// cancel needs one to stop the goroutine.
		err = ep.SetReadDeadline(time.Time{})
	}
	if err != nil {
		ep.Close()
		p.broken = true
		return false
	}
	p.ep, p.rc, p.epfd = ep, rc, epfd
	return true
}

// wakeIfEmpty ends the goroutine's wait once nothing is parked, so that
// it ends. p.mu is held.
func (p *poller) wakeIfEmpty() {
	if p.running && len(p.parked) == 0 {
		p.ep.SetReadDeadline(time.Now())
	}
}

// run waits for parked sockets to become readable and resumes their
// read loops, until none is parked.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 128)
	var ready []func()
	for {
		n := 0
		var werr error
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				n, werr = unix.EpollWait(int(fd), events, 0)
				if werr != unix.EINTR {
					return n > 0 || werr != nil
				}
			}
		})
		if err == nil {
			err = werr
		}
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if resume, ok := p.parked[tok]; ok {
				delete(p.parked, tok)
				ready = append(ready, resume)
			}
		}
		stop := len(p.parked) == 0
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// Never expected; but a parked connection must not wait
			// forever for a poller that cannot wait.
			p.broken = true
			for tok, resume := range p.parked {
				delete(p.parked, tok)
				ready = append(ready, resume)
			}
			stop = true
		}
		if stop {
			p.running = false
		} else if err != nil {
			p.ep.SetReadDeadline(time.Time{})
		}
		p.mu.Unlock()
		for i, resume := range ready {
			go resume()
			ready[i] = nil
		}
		ready = ready[:0]
		if stop {
			return
		}
	}
}
