package auth

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a time the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":                "127.0.0.1",
		"[::ffff:10.0.0.1]:5000":        "10.0.0.1",
		"[2001:db8:1:2:aaaa::1]:5000":   "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:6000":   "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:5000":        "2001:db8:1:3::/64",
		"not an address":                "not an address",
		"unix-socket-peer-without-port": "unix-socket-peer-without-port",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestThrottleBacksOff(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	th := newThrottle(1, Options{MaxFailures: 3, BackoffMax: 10 * time.Second})
	th.now = clock.now
	const a, b = "192.0.2.1", "192.0.2.2"
	for range 3 {
		if err := th.admit(a); err != nil {
			t.Fatalf("refused within the allowance: %v", err)
		}
		th.failed(a)
	}
	// Waits of 1 s, 2 s, 4 s, 8 s, then 10 s (the cap), each from the
	// failure that starts it.
	for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		if err := th.admit(a); err != nil {
			t.Fatalf("refused after waiting: %v", err)
		}
		th.failed(a)
		clock.add(wait - time.Millisecond)
		if err := th.admit(a); !errors.Is(err, ErrRefused) {
			t.Fatalf("admitted %v into a %v wait", wait-time.Millisecond, wait)
		}
		if err := th.admit(b); err != nil {
			t.Fatalf("another address was refused: %v", err)
		}
		clock.add(time.Millisecond)
	}
	// Forgotten twice the cap after the last failure: the allowance is
	// whole again.
	clock.add(20*time.Second + time.Millisecond)
	for range 3 {
		if err := th.admit(a); err != nil {
			t.Fatalf("refused after the failures were forgotten: %v", err)
		}
		th.failed(a)
	}
}

func TestThrottleWithoutBackoff(t *testing.T) {
	th := newThrottle(1, Options{})
	for range 100 {
		th.failed("192.0.2.1")
	}
	if err := th.admit("192.0.2.1"); err != nil {
		t.Fatal(err)
	}
}

// waitQueued waits until no slot is free and n checks wait for one.
func waitQueued(t *testing.T, th *throttle, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		th.mu.Lock()
		free, got := th.free, len(th.queues[0])+len(th.queues[1])
		th.mu.Unlock()
		if free == 0 && got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d slots free and %d checks waiting, want 0 and %d", free, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitTurns waits until n logins of addr wait for the address's turn.
func waitTurns(t *testing.T, th *throttle, addr string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		th.mu.Lock()
		got := 0
		if r := th.addrs[addr]; r != nil {
			got = len(r.turns)
		}
		th.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d logins of %s wait for a turn, want %d", got, addr, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestThrottleSlots: a guessing address holds at most one slot and waits
// behind clean addresses; its other logins wait outside the slot queue.
func TestThrottleSlots(t *testing.T) {
	th := newThrottle(1, Options{MaxFailures: 100, MaxChecksPerAddress: 1})
	const guesser, honest, other = "192.0.2.66", "192.0.2.1", "192.0.2.2"
	th.failed(guesser)

	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	hold := make(chan struct{})
	run := func(addr string, block chan struct{}) {
		defer wg.Done()
		th.check(addr, func() bool {
			if block != nil {
				<-block
			}
			mu.Lock()
			order = append(order, addr)
			mu.Unlock()
			return false
		})
	}
	wg.Add(1)
	go run(guesser, hold) // takes the only slot
	waitQueued(t, th, 0)
	for range 3 {
		wg.Add(1)
		go run(guesser, nil)
	}
	waitTurns(t, th, guesser, 3) // waiting for the address, not for a slot
	wg.Add(1)
	go run(other, nil)
	waitQueued(t, th, 1)
	close(hold)
	wg.Wait()
	// The guesser's second check may queue for the slot only once its
	// first is done; by then the clean address is queued ahead of it.
	wg.Add(1)
	go run(honest, nil)
	wg.Wait()

	want := []string{guesser, other, guesser, guesser, guesser, honest}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.free != 1 || len(th.addrs) != 1 {
		t.Fatalf("after the checks: %d slots free, %d addresses remembered; want 1 and 1 (the guesser)", th.free, len(th.addrs))
	}
}

// TestThrottleCleanFirst: with the slot busy, a clean address's check goes
// before a guesser's that queued earlier.
func TestThrottleCleanFirst(t *testing.T) {
	th := newThrottle(1, Options{MaxFailures: 100, MaxChecksPerAddress: 1})
	const a, guesser, clean = "192.0.2.1", "192.0.2.66", "192.0.2.2"
	th.failed(guesser)
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	hold := make(chan struct{})
	run := func(addr string, block chan struct{}) {
		defer wg.Done()
		th.check(addr, func() bool {
			if block != nil {
				<-block
			}
			mu.Lock()
			order = append(order, addr)
			mu.Unlock()
			return true
		})
	}
	wg.Add(1)
	go run(a, hold)
	waitQueued(t, th, 0)
	wg.Add(1)
	go run(guesser, nil)
	waitQueued(t, th, 1)
	wg.Add(1)
	go run(clean, nil)
	waitQueued(t, th, 2)
	close(hold)
	wg.Wait()
	if len(order) != 3 || order[1] != clean || order[2] != guesser {
		t.Fatalf("order %v, want [%s %s %s]", order, a, clean, guesser)
	}
}

// TestAuthenticatorBacksOff: an address that keeps failing is refused
// even with the right passcode, others are not, and a success does not
// clear the record.
func TestAuthenticatorBacksOff(t *testing.T) {
	path := writeFile(t, t.TempDir(), "broker.toml", usersConfig(t))
	a, err := New(path, Options{MaxFailures: 2, BackoffMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const guesser, elsewhere = "198.51.100.9:4000", "198.51.100.10:4000"
	if _, err := a.Authenticate(Credentials{Login: "alice", Passcode: "alice-pass", RemoteAddr: guesser}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := a.Authenticate(Credentials{Login: "alice", Passcode: "guess", RemoteAddr: guesser}); !errors.Is(err, ErrRefused) {
			t.Fatalf("a wrong passcode: %v", err)
		}
	}
	// The allowance is spent: the right passcode still counts as one.
	if _, err := a.Authenticate(Credentials{Login: "alice", Passcode: "alice-pass", RemoteAddr: guesser}); err != nil {
		t.Fatalf("the last login within the allowance: %v", err)
	}
	if _, err := a.Authenticate(Credentials{Login: "bob", Passcode: "guess", RemoteAddr: guesser}); !errors.Is(err, ErrRefused) {
		t.Fatal(err)
	}
	_, err = a.AuthenticateUser("alice", "alice-pass", guesser)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("a backing-off address got in: %v", err)
	}
	t.Logf("refused: %v", err)
	if _, err := a.Authenticate(Credentials{Login: "alice", Passcode: "alice-pass", RemoteAddr: elsewhere}); err != nil {
		t.Fatalf("another address was refused: %v", err)
	}
}

// TestThrottleRefusesWaiters: logins that waited for the address's turn
// while it began to back off are refused without a check, and do not
// make it wait longer.
func TestThrottleRefusesWaiters(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	th := newThrottle(1, Options{MaxFailures: 1, MaxChecksPerAddress: 1})
	th.now = clock.now
	const a = "192.0.2.1"
	hold := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		th.check(a, func() bool { <-hold; return false })
	}()
	waitQueued(t, th, 0)
	var checked atomic.Int32
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := th.check(a, func() bool { checked.Add(1); return false })
			errs <- err
		}()
	}
	waitTurns(t, th, a, 3)
	th.failed(a)
	th.failed(a) // one over the allowance: a second's wait
	close(hold)
	wg.Wait()
	for range 3 {
		if err := <-errs; !errors.Is(err, ErrRefused) {
			t.Fatalf("a waiting login of a backing-off address: %v", err)
		}
	}
	if n := checked.Load(); n != 0 {
		t.Fatalf("%d checks ran for a backing-off address", n)
	}
	clock.add(time.Second)
	if err := th.admit(a); err != nil {
		t.Fatalf("still refused after the wait: %v", err)
	}
}
