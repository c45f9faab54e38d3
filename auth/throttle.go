package auth

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// maxTrackedAddresses bounds the addresses the throttle remembers; when
// full it forgets every address not checking right now.
const maxTrackedAddresses = 1 << 16

// firstBackoff is the wait after the first failure over the allowance; it
// doubles with each further one.
const firstBackoff = time.Second

// throttle keeps password guessing from starving honest logins. Per
// address (IPv4, or the /64 of an IPv6 address):
//
//   - past maxFailures recent failed logins, the address must wait (from
//     firstBackoff, doubling up to backoffMax) before its next check, and
//     is refused without one meanwhile;
//   - at most perAddr passcode checks run or wait for a bcrypt slot at
//     once; its other logins wait for their turn, holding no slot;
//   - when every bcrypt slot is busy, addresses without recent failures
//     get the next free one before addresses with some.
//
// A success does not clear an address's failures: a user with an account
// of their own could otherwise wipe the record between guesses at
// someone else's. Failures are forgotten 2×backoffMax after the last one.
//
// All fields below mu are guarded by it; a slot or an address's turn is
// handed from the goroutine that releases it to the first waiter by
// closing the waiter's channel.
type throttle struct {
	maxFailures int // <= 0: no backoff
	backoffMax  time.Duration
	perAddr     int // <= 0: no per-address bound
	now         func() time.Time

	mu     sync.Mutex
	addrs  map[string]*addrRecord
	free   int                // bcrypt slots not in use
	queues [2][]chan struct{} // waiting for a slot: [0] clean addresses, [1] the rest
}

// addrRecord is what the throttle knows of one address.
type addrRecord struct {
	inUse    int // logins of this address inside check
	checks   int // of those, holding the address's turn (at most perAddr)
	turns    []chan struct{}
	failures int
	last     time.Time // of the last failure
	until    time.Time // refused without a check before this
}

func newThrottle(slots int, opts Options) *throttle {
	t := &throttle{
		maxFailures: opts.MaxFailures,
		backoffMax:  opts.BackoffMax,
		perAddr:     opts.MaxChecksPerAddress,
		now:         time.Now,
		addrs:       make(map[string]*addrRecord),
		free:        max(1, slots),
	}
	if t.backoffMax <= 0 {
		t.backoffMax = DefaultBackoffMax
	}
	return t
}

// addressKey is the unit the throttle counts by: the IPv4 address, or
// the /64 network of an IPv6 one (one subscriber's usual allocation).
func addressKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// admit refuses an address that is backing off.
func (t *throttle) admit(addr string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.addrs[addr]; r != nil {
		return t.backingOff(r)
	}
	return nil
}

// backingOff refuses r while it must wait. Called with mu held.
func (t *throttle) backingOff(r *addrRecord) error {
	if t.maxFailures <= 0 {
		return nil
	}
	if wait := r.until.Sub(t.now()); wait > 0 {
		return &backoffError{failures: r.failures, wait: wait}
	}
	return nil
}

// backoffError refuses a login without a check. It is not one more
// failure: an address that keeps knocking does not wait longer for it,
// which would also lock out its honest users for good.
type backoffError struct {
	failures int
	wait     time.Duration
}

func (e *backoffError) Error() string {
	return fmt.Sprintf("%v: %d failed logins from this address; the next check in %v",
		ErrRefused, e.failures, e.wait.Round(time.Millisecond))
}

func (e *backoffError) Unwrap() error { return ErrRefused }

// failed records a failed login from addr.
func (t *throttle) failed(addr string) {
	if t.maxFailures <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	r := t.record(addr)
	if !t.recent(r) {
		r.failures = 0
	}
	r.failures++
	r.last = now
	if over := r.failures - t.maxFailures; over > 0 {
		r.until = now.Add(min(firstBackoff<<min(over-1, 20), t.backoffMax))
	}
}

// check runs f, a passcode check, once the address has its turn and a
// bcrypt slot is free. A login that waited for its turn while the address
// began to back off is refused without running f.
func (t *throttle) check(addr string, f func() bool) (bool, error) {
	if err := t.acquire(addr); err != nil {
		return false, err
	}
	defer t.release(addr)
	return f(), nil
}

func (t *throttle) acquire(addr string) error {
	t.mu.Lock()
	r := t.record(addr)
	r.inUse++
	if t.perAddr > 0 && r.checks >= t.perAddr {
		turn := make(chan struct{})
		r.turns = append(r.turns, turn)
		t.mu.Unlock()
		<-turn // passTurn counted it in r.checks for us
		t.mu.Lock()
	} else {
		r.checks++
	}
	if err := t.backingOff(r); err != nil {
		t.passTurn(addr, r)
		t.mu.Unlock()
		return err
	}
	if t.free > 0 {
		t.free--
		t.mu.Unlock()
		return nil
	}
	q := 0
	if t.recent(r) {
		q = 1
	}
	slot := make(chan struct{})
	t.queues[q] = append(t.queues[q], slot)
	t.mu.Unlock()
	<-slot
	return nil
}

// release gives the bcrypt slot and the address's turn to the next.
func (t *throttle) release(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case len(t.queues[0]) > 0:
		close(t.queues[0][0])
		t.queues[0] = t.queues[0][1:]
	case len(t.queues[1]) > 0:
		close(t.queues[1][0])
		t.queues[1] = t.queues[1][1:]
	default:
		t.free++
	}
	t.passTurn(addr, t.addrs[addr])
}

// passTurn gives the address's turn to its next login, if one waits.
// Called with mu held.
func (t *throttle) passTurn(addr string, r *addrRecord) {
	if len(r.turns) > 0 {
		close(r.turns[0])
		r.turns = r.turns[1:]
	} else {
		r.checks--
	}
	r.inUse--
	if r.inUse == 0 && r.failures == 0 {
		delete(t.addrs, addr)
	}
}

// recent reports whether r has failures not yet forgotten. Called with mu
// held.
func (t *throttle) recent(r *addrRecord) bool {
	return r.failures > 0 && t.now().Sub(r.last) <= 2*t.backoffMax
}

// record returns addr's record, making one if needed. Called with mu held.
func (t *throttle) record(addr string) *addrRecord {
	if r := t.addrs[addr]; r != nil {
		return r
	}
	if len(t.addrs) >= maxTrackedAddresses {
		t.forget()
	}
	r := &addrRecord{}
	t.addrs[addr] = r
	return r
}

// forget drops the records of addresses not checking right now, stale
// ones first; whoever fills the table with fresh failures from 65,536
// addresses resets everyone's. Called with mu held.
func (t *throttle) forget() {
	for addr, r := range t.addrs {
		if r.inUse == 0 && !t.recent(r) {
			delete(t.addrs, addr)
		}
	}
	if len(t.addrs) < maxTrackedAddresses*3/4 {
		return
	}
	for addr, r := range t.addrs {
		if r.inUse == 0 {
			delete(t.addrs, addr)
		}
	}
}
