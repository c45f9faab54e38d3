package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// bench is the state one run shares between its scenario, connections
// and progress line.
type bench struct {
	cfg    *config
	stderr io.Writer
	runID  uint32
	dest   string

	errors   atomic.Int64
	printed  atomic.Int64
	timedOut atomic.Bool

	mu       sync.Mutex
	conns    []*conn
	dialHist histogram // dial to CONNECTED, guarded by mu
	dialed   atomic.Int64

	// The measurement window, in clock() nanoseconds; zero until set.
	winStart atomic.Int64
	winEnd   atomic.Int64

	phase    atomic.Value // string
	progress atomic.Value // progressFunc
	locals   []net.Addr
	nextAddr atomic.Uint64

	// From the first connection: what the report says was spoken.
	version string
	server  string
}

// progressFunc returns the running count the progress line shows; a
// level (connections alive) gets no rate beside it.
type progressFunc struct {
	label string
	count func() int64
	level bool
}

// maxPrinted bounds the error lines printed, so a thousand failing
// connections do not bury the summary.
const maxPrinted = 20

// errorf counts an error and prints it, up to maxPrinted of them.
func (b *bench) errorf(format string, args ...any) {
	b.errors.Add(1)
	switch n := b.printed.Add(1); {
	case n <= maxPrinted:
		fmt.Fprintf(b.stderr, "stompbench: "+format+"\n", args...)
	case n == maxPrinted+1:
		fmt.Fprintln(b.stderr, "stompbench: more errors; only the count is reported from here on")
	}
}

func (b *bench) setPhase(p string) { b.phase.Store(p) }

func (b *bench) setProgress(label string, count func() int64) {
	b.progress.Store(progressFunc{label, count, false})
}

func (b *bench) setProgressLevel(label string, count func() int64) {
	b.progress.Store(progressFunc{label, count, true})
}

// inWindow reports whether clock time t falls in the measurement window.
func (b *bench) inWindow(t int64) bool {
	s := b.winStart.Load()
	return s != 0 && t >= s && t < b.winEnd.Load()
}

// spec returns the dial settings every connection of the run shares.
func (b *bench) spec() *dialSpec {
	c := b.cfg
	return &dialSpec{
		target:    c.target,
		login:     c.login,
		passcode:  c.passcode,
		vhost:     c.vhost,
		versions:  c.versions,
		heartbeat: c.heartbeat,
		writeBuf:  c.size + 512,
		onError: func(_ *conn, msg string) {
			b.errorf("%s", msg)
		},
	}
}

// chooseLocals settles the source addresses, for n connections in the
// conns scenario.
func (b *bench) chooseLocals(n int) {
	c := b.cfg
	addrs := c.localAddrs
	if c.localAuto && c.scenario == "conns" {
		if ip, err := netip.ParseAddr(c.target.host); err == nil && ip.Is4() && ip.IsLoopback() {
			const perAddr = 8000
			for i := range (n + perAddr - 1) / perAddr {
				addrs = append(addrs, netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + i)}))
			}
			if len(addrs) == 1 {
				addrs = nil // one address is what the kernel picks anyway
			}
		}
	}
	for _, a := range addrs {
		b.locals = append(b.locals, &net.TCPAddr{IP: a.AsSlice()})
	}
}

// dialOne opens one connection with spec s (copied) and tracks it.
func (b *bench) dialOne(ctx context.Context, s *dialSpec) (*conn, error) {
	if len(b.locals) > 0 {
		s.local = b.locals[int(b.nextAddr.Add(1)-1)%len(b.locals)]
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t0 := clock()
	c, err := dial(dctx, s)
	if err != nil {
		return nil, err
	}
	took := clock() - t0
	b.mu.Lock()
	b.dialHist.record(took)
	if b.version == "" {
		b.version = c.version.String()
		b.server = c.server
	}
	b.conns = append(b.conns, c)
	b.mu.Unlock()
	b.dialed.Add(1)
	if ctx.Err() != nil {
		// The run was aborted while this one was connecting.
		c.abort()
		return nil, context.Cause(ctx)
	}
	return c, nil
}

// dialMany opens n connections, at most cfg.dialParallel at a time and at
// most rate per second (0: no cap). mk returns the spec of connection i.
// A failed connection is counted and printed and leaves a nil slot; the
// error is only returned when the run was cancelled.
func (b *bench) dialMany(ctx context.Context, n int, rate float64, mk func(i int) *dialSpec) ([]*conn, error) {
	conns := make([]*conn, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, b.cfg.dialParallel) {
		wg.Go(func() {
			for i := range next {
				c, err := b.dialOne(ctx, mk(i))
				if err != nil {
					if ctx.Err() == nil {
						b.errorf("connection %d: %v", i, err)
					}
					continue
				}
				conns[i] = c
			}
		})
	}
	start := time.Now()
	var err error
feed:
	for i := range n {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					err = context.Cause(ctx)
					break feed
				}
			}
		}
		select {
		case next <- i:
		case <-ctx.Done():
			err = context.Cause(ctx)
			break feed
		}
	}
	close(next)
	wg.Wait()
	return conns, err
}

// closeAll says DISCONNECT on every connection, closes it and waits for
// the readers to end.
func (b *bench) closeAll() {
	b.mu.Lock()
	conns := b.conns
	b.mu.Unlock()
	var wg sync.WaitGroup
	// A few goroutines: a DISCONNECT to a peer that stopped reading waits
	// out its write deadline.
	ch := make(chan *conn)
	for range min(len(conns), 16) {
		wg.Go(func() {
			for c := range ch {
				c.close()
			}
		})
	}
	for _, c := range conns {
		ch <- c
	}
	close(ch)
	wg.Wait()
	for _, c := range conns {
		<-c.done
	}
}

// abortAll closes every connection at once, unblocking whatever waits on
// them.
func (b *bench) abortAll() {
	b.mu.Lock()
	conns := b.conns
	b.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
}

// showProgress prints the progress line once a second until ctx ends.
func (b *bench) showProgress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	var last int64
	var lastLabel string
	lastAt := start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			phase, _ := b.phase.Load().(string)
			p, _ := b.progress.Load().(progressFunc)
			line := fmt.Sprintf("%-8s %6.1fs", phase, now.Sub(start).Seconds())
			if p.count != nil {
				n := p.count()
				line += fmt.Sprintf("  %s %d", p.label, n)
				if p.label == lastLabel && !p.level {
					line += fmt.Sprintf(" (%.0f/s)", float64(n-last)/now.Sub(lastAt).Seconds())
				}
				last, lastLabel = n, p.label
			}
			lastAt = now
			if e := b.errors.Load(); e > 0 {
				line += fmt.Sprintf("  errors %d", e)
			}
			fmt.Fprintln(b.stderr, line)
		}
	}
}

// heartbeats starts one goroutine that sends every connection's
// heart-beats, rather than a timer per connection. It runs from before the
// first dial, so connections opened early are not left silent while the
// rest open, and it ticks at half the interval offered (the negotiated one
// is never shorter), so a pass over thousands of connections is never
// late. The returned function stops it and waits for it.
func (b *bench) heartbeats(ctx context.Context) (stop func()) {
	every := b.cfg.heartbeat / 2
	if every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			b.mu.Lock()
			conns := b.conns
			b.mu.Unlock()
			for _, c := range conns {
				if ctx.Err() != nil {
					return
				}
				if c.hbToServer > 0 && !c.closing.Load() {
					c.heartbeat() // a dead connection is reported by its reader
				}
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// sleepUntil waits until clock time t or until ctx ends.
func sleepUntil(ctx context.Context, t int64) error {
	d := time.Duration(t - clock())
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// errTimeout is the cause of a run cut short by -timeout.
var errTimeout = errors.New("timed out")
