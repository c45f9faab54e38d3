package main

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// batchMax is how many frames a publisher queues before it flushes: a few
// system calls per thousand messages rather than one per message, while a
// batch stays small enough for the broker to read in one go.
const batchMax = 64

// A persistent SEND's receipt id is its sequence number and send time in
// hex, so the RECEIPT alone gives the latency: no map of sends in flight.
const (
	rcptSeqLen  = lenSeq
	rcptSentLen = lenSent
	rcptLen     = rcptSeqLen + rcptSentLen
)

// publisher sends stamped SENDs on one connection from one goroutine. The
// frame is encoded once; each send patches the stamp (and receipt id) in
// place.
type publisher struct {
	b     *bench
	idx   int
	c     *conn
	frame []byte
	body  int           // offset of the body stamp in frame
	rcpt  int           // offset of the receipt id in frame, or -1
	slots chan struct{} // persistent: one token per receipt in flight

	seq      uint64       // next sequence number: the count sent, once run returns
	sent     atomic.Int64 // for the progress line
	inWindow int64        // sends stamped inside the window

	// Persistent sends; owned by the reader goroutine until it ends.
	receipted    seqSet
	rcptCount    atomic.Int64
	rcptInWindow int64
	rcptHist     histogram
}

func newPublisher(b *bench, idx int, persistent bool) *publisher {
	p := &publisher{b: b, idx: idx, rcpt: -1}
	if persistent {
		p.slots = make(chan struct{}, b.cfg.window)
	}
	return p
}

// spec returns the dial settings of the publisher's connection.
func (p *publisher) spec() *dialSpec {
	s := p.b.spec()
	if p.slots != nil {
		s.onReceipt = p.onReceipt
	}
	return s
}

// prepare encodes the SEND once the connection's version is known.
func (p *publisher) prepare(c *conn) {
	p.c = c
	cfg := p.b.cfg
	f := stomp.New(stomp.SEND, "destination", p.b.dest, "content-type", "text/plain")
	if p.slots != nil {
		f.Add("persistent", "true")
		f.Add("receipt", string(bytes.Repeat([]byte{'0'}, rcptLen)))
	}
	f.Body = newBody(cfg.size, p.b.runID, p.idx)
	p.frame = stomp.AppendFrame(nil, f, c.version)
	p.body = len(p.frame) - 1 - cfg.size
	if p.slots != nil {
		p.rcpt = bytes.Index(p.frame, []byte("\nreceipt:")) + len("\nreceipt:")
	}
}

// run publishes from start until end (clock times), paced at rate
// messages/s or as fast as the connection takes them when rate is 0.
func (p *publisher) run(ctx context.Context, rate float64, start, end int64) {
	var err error
	if rate > 0 {
		err = p.paced(ctx, rate, start, end)
	} else {
		for err == nil && clock() < end {
			err = p.burst(ctx, batchMax)
		}
	}
	if err != nil && ctx.Err() == nil && !p.c.closing.Load() && !errors.Is(err, errConnDone) {
		p.b.errorf("publisher %d: %v", p.idx, err)
	}
}

// paced keeps the count sent at rate × elapsed: a ticker wakes it and it
// sends whatever is due in one burst, so a late wake-up catches up rather
// than lowering the rate.
func (p *publisher) paced(ctx context.Context, rate float64, start, end int64) error {
	interval := min(max(time.Duration(float64(time.Second)/rate), time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := clock()
		if now >= end {
			return nil
		}
		due := int64(float64(now-start)*rate/1e9) + 1 - int64(p.seq)
		for due > 0 {
			n := int(min(due, batchMax))
			if err := p.burst(ctx, n); err != nil {
				return err
			}
			due -= int64(n)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		case <-p.c.done:
			return errConnDone
		}
	}
}

var errConnDone = errors.New("connection closed")

// burst sends up to n messages and flushes them. A persistent publisher
// first waits for receipt slots, never while holding the write lock: the
// reader may need that lock to flush before it reads the receipts.
func (p *publisher) burst(ctx context.Context, n int) error {
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-p.c.done:
			return errConnDone
		}
		got := 1
	more:
		for got < n {
			select {
			case p.slots <- struct{}{}:
				got++
			default:
				break more
			}
		}
		n = got
	}
	c := p.c
	c.nc.wmu.Lock()
	defer c.nc.wmu.Unlock()
	stampAt := p.frame[p.body:]
	for range n {
		now := clock()
		putSeqSent(stampAt, p.seq, now)
		if p.rcpt >= 0 {
			putHex(p.frame[p.rcpt:p.rcpt+rcptSeqLen], p.seq)
			putHex(p.frame[p.rcpt+rcptSeqLen:p.rcpt+rcptLen], uint64(now))
		}
		if err := c.put(p.frame); err != nil {
			return err
		}
		p.seq++
		if p.b.inWindow(now) {
			p.inWindow++
		}
	}
	p.sent.Add(int64(n))
	return c.nc.flush()
}

// onReceipt runs on the reader goroutine for each RECEIPT.
func (p *publisher) onReceipt(id string, now int64) {
	var seq, sent uint64
	ok := len(id) == rcptLen
	if ok {
		var ok1, ok2 bool
		seq, ok1 = parseHex(id[:rcptSeqLen])
		sent, ok2 = parseHex(id[rcptSeqLen:])
		ok = ok1 && ok2 && seq < maxSeq
	}
	if !ok {
		p.b.errorf("publisher %d: RECEIPT for an unknown receipt id %q", p.idx, id)
		return
	}
	if !p.receipted.add(seq) {
		p.b.errorf("publisher %d: a second RECEIPT for %q", p.idx, id)
		return
	}
	p.rcptCount.Add(1)
	select {
	case <-p.slots:
	default:
	}
	if p.b.inWindow(now) {
		p.rcptInWindow++
		p.rcptHist.record(now - int64(sent))
	}
}

// outstanding returns the receipts still awaited.
func (p *publisher) outstanding() int {
	if p.slots == nil {
		return 0
	}
	return len(p.slots)
}

// cpuSample is CPU time used so far by the tool and the broker.
type cpuSample struct {
	tool     time.Duration
	broker   time.Duration
	brokerOK bool
}

func (b *bench) sampleCPU() cpuSample {
	s := cpuSample{tool: selfCPU()}
	if b.cfg.pid > 0 {
		var err error
		s.broker, err = procCPU(b.cfg.pid)
		s.brokerOK = err == nil
	}
	return s
}

// publish runs the publishers through the warm-up and the window and
// returns when they have stopped; it sets the window, and the CPU and RSS
// figures of res.
func (b *bench) publish(ctx context.Context, pubs []*publisher, res *result) {
	cfg := b.cfg
	t0 := clock()
	ws := t0 + int64(cfg.warmup)
	we := ws + int64(cfg.duration)
	b.winEnd.Store(we) // before winStart: inWindow reads start first
	b.winStart.Store(ws)
	rate := cfg.rate / float64(len(pubs))
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Go(func() { p.run(ctx, rate, t0, we) })
	}
	b.setPhase("warmup")
	if sleepUntil(ctx, ws) == nil {
		c0 := b.sampleCPU()
		b.setPhase("measure")
		if sleepUntil(ctx, we) == nil {
			res.setCPU(c0, b.sampleCPU(), cfg.duration)
			res.sampleRSS(cfg.pid)
		}
	}
	wg.Wait()
}
