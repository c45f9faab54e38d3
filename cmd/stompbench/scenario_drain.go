package main

import (
	"context"
	"errors"
	"math"
	"time"
)

// runDrain measures how fast consumers empty a persistent queue that is
// already full: cfg.producers put cfg.messages persistent messages in it
// (each SEND receipted, at most cfg.window in flight per producer), then
// cfg.consumers subscribe with ack:client-individual and ACK every message,
// each ACK asking for a RECEIPT when cfg.ackReceipts. The ACKs are
// pipelined, as a careful consumer that still wants throughput sends them:
// the next one never waits for the last one's RECEIPT. The figure is
// messages drained per second, from the first SUBSCRIBE until the last
// ACK's RECEIPT (or, without receipts, the last MESSAGE).
func runDrain(ctx context.Context, b *bench, res *result) error {
	cfg := b.cfg
	d := &drainResult{Messages: cfg.messages, Prefetch: cfg.prefetch, AckReceipts: cfg.ackReceipts}
	res.Drain = d

	b.setPhase("connect")
	pubs, err := b.connectPublishers(ctx, cfg.producers, true)
	if err != nil {
		return err
	}
	if len(pubs) == 0 {
		return errNoConnections
	}
	b.setPhase("fill")
	b.setProgress("receipted", func() int64 { return receipted(pubs) })
	fillStart := time.Now()
	b.fill(ctx, pubs, cfg.messages)
	b.drain(ctx, func() int64 { return receipted(pubs) }, func() bool {
		for _, p := range pubs {
			if p.outstanding() > 0 && !p.gone() {
				return false
			}
		}
		return true
	})
	d.FillS = time.Since(fillStart).Seconds()
	for _, p := range pubs {
		res.Published += int64(p.seq)
		res.Receipted += p.rcptCount.Load()
	}
	if d.FillS > 0 {
		d.FillPerS = float64(res.Receipted) / d.FillS
	}
	if missing := res.Published - res.Receipted; missing > 0 {
		b.errorf("%d persistent sends got no RECEIPT within %v of the last one", missing, cfg.drain)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}

	// Every delivery from here on counts.
	b.winEnd.Store(math.MaxInt64)
	b.winStart.Store(clock())
	c0, t0 := b.sampleCPU(), time.Now()
	cons, err := b.connectReceivers(ctx, cfg.consumers, cfg.producers, true)
	if err != nil {
		return err
	}
	if len(cons) == 0 {
		return errNoConnections
	}
	b.setProgress("drained", func() int64 { return received(cons) })
	want := res.Receipted
	b.drain(ctx, func() int64 { return received(cons) + ackReceipted(cons) }, func() bool {
		got := received(cons)
		return got >= want && (!cfg.ackReceipts || ackReceipted(cons) >= got)
	})
	res.setCPU(c0, b.sampleCPU(), time.Since(t0))
	res.sampleRSS(cfg.pid)
	b.closeAll()

	var hist histogram
	start, end := int64(math.MaxInt64), int64(0)
	var acks int64
	for _, r := range cons {
		res.Consumed += r.recv.Load()
		res.Foreign += r.foreign
		hist.merge(&r.ackHist)
		start = min(start, r.subAt)
		last := r.lastMsg
		if cfg.ackReceipts {
			last = r.lastRcpt
			acks += int64(r.ackSeq)
			d.AckReceipted += r.ackRcpt.Load()
		}
		end = max(end, last)
	}
	if missing := acks - d.AckReceipted; missing > 0 {
		b.errorf("%d ACKs got no RECEIPT within %v of the last one", missing, cfg.drain)
	}

	// As in persistent: a receipted message no consumer got is lost.
	var unique int64
	for i, p := range pubs {
		var got seqSet
		for _, r := range cons {
			got.union(&r.seen[i])
		}
		unique += int64(got.count())
		res.Lost += int64(p.receipted.count() - intersectCount(&p.receipted, &got))
	}
	res.Duplicated = res.Consumed - unique
	d.Drained = unique
	if end > start {
		d.DrainS = float64(end-start) / 1e9
		d.DrainedPerS = float64(unique) / d.DrainS
	}
	res.ConsumedPerS = d.DrainedPerS
	res.RatePerS = d.DrainedPerS
	if cfg.ackReceipts {
		res.LatencyUS = latencyOf(&hist)
	}
	return nil
}

// fill has the publishers send n messages between them, as fast as their
// receipt windows let them, and returns when all are sent.
func (b *bench) fill(ctx context.Context, pubs []*publisher, n int) {
	done := make(chan struct{})
	for i, p := range pubs {
		share := uint64(n / len(pubs))
		if i < n%len(pubs) {
			share++
		}
		go func() {
			defer func() { done <- struct{}{} }()
			for p.seq < share {
				if err := p.burst(ctx, int(min(share-p.seq, batchMax))); err != nil {
					if ctx.Err() == nil && !p.c.closing.Load() && !errors.Is(err, errConnDone) {
						b.errorf("publisher %d: %v", p.idx, err)
					}
					return
				}
			}
		}()
	}
	for range pubs {
		<-done
	}
}

// ackReceipted sums the ACK RECEIPTs the receivers have had so far.
func ackReceipted(rs []*receiver) int64 {
	var n int64
	for _, r := range rs {
		n += r.ackRcpt.Load()
	}
	return n
}

// drainResult is the drain scenario's part of the report.
type drainResult struct {
	Messages    int  `json:"messages"`
	Prefetch    int  `json:"prefetch"`
	AckReceipts bool `json:"ack_receipts"`
	// The fill: from the first SEND to the last one's RECEIPT.
	FillS    float64 `json:"fill_s"`
	FillPerS float64 `json:"fill_per_s"`
	// The drain: from the first SUBSCRIBE to the last ACK's RECEIPT.
	Drained      int64   `json:"drained"`
	AckReceipted int64   `json:"ack_receipted"`
	DrainS       float64 `json:"drain_s"`
	DrainedPerS  float64 `json:"drained_per_s"`
}
