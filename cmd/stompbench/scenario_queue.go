package main

import (
	"context"
	"time"
)

// runQueue measures one queue between P producers and C consumers that
// ACK every message (ack:client-individual). With persistent set, SENDs
// carry persistent:true and a receipt, at most cfg.window unreceipted per
// producer, and lost is counted against receipted sends.
func runQueue(ctx context.Context, b *bench, res *result, persistent bool) error {
	cfg := b.cfg
	b.setPhase("connect")
	cons, err := b.connectReceivers(ctx, cfg.consumers, cfg.producers, true)
	if err != nil {
		return err
	}
	pubs, err := b.connectPublishers(ctx, cfg.producers, persistent)
	if err != nil {
		return err
	}
	if len(cons) == 0 || len(pubs) == 0 {
		return errNoConnections
	}
	if persistent {
		b.setProgress("receipted", func() int64 { return receipted(pubs) })
	} else {
		b.setProgress("consumed", func() int64 { return received(cons) })
	}
	b.publish(ctx, pubs, res)

	if persistent {
		// The last sends' receipts, then their deliveries.
		b.drain(ctx, func() int64 { return receipted(pubs) }, func() bool {
			for _, p := range pubs {
				if p.outstanding() > 0 && !p.gone() {
					return false
				}
			}
			return true
		})
	}
	want := func() int64 {
		if persistent {
			return receipted(pubs)
		}
		var n int64
		for _, p := range pubs {
			n += int64(p.seq)
		}
		return n
	}()
	b.drain(ctx, func() int64 { return received(cons) }, func() bool { return received(cons) >= want })
	b.closeAll()

	var inWindow, rcptInWindow int64
	var rcptHist histogram
	for _, p := range pubs {
		res.Published += int64(p.seq)
		inWindow += p.inWindow
		res.Receipted += p.rcptCount.Load()
		rcptInWindow += p.rcptInWindow
		rcptHist.merge(&p.rcptHist)
	}
	res.PublishedPerS = perSecond(inWindow, cfg.duration)

	var hist histogram
	inWindow = 0
	for _, r := range cons {
		res.Consumed += r.recv.Load()
		res.Foreign += r.foreign
		inWindow += r.inWindow
		hist.merge(&r.hist)
	}
	res.ConsumedPerS = perSecond(inWindow, cfg.duration)

	// A message is lost when no consumer got it, duplicated each time
	// it arrived again.
	var unique int64
	for i, p := range pubs {
		var got seqSet
		for _, r := range cons {
			got.union(&r.seen[i])
		}
		unique += int64(got.count())
		if persistent {
			res.Lost += int64(p.receipted.count() - intersectCount(&p.receipted, &got))
		} else {
			res.Lost += int64(p.seq - got.countBelow(p.seq))
		}
	}
	res.Duplicated = res.Consumed - unique

	if persistent {
		if missing := res.Published - res.Receipted; missing > 0 {
			b.errorf("%d persistent sends got no RECEIPT within %v of the last one", missing, cfg.drain)
		}
		res.ReceiptedPerS = perSecond(rcptInWindow, cfg.duration)
		res.RatePerS = res.ReceiptedPerS
		res.LatencyUS = latencyOf(&rcptHist)
		res.ConsumeLatencyUS = latencyOf(&hist)
	} else {
		res.RatePerS = res.ConsumedPerS
		res.LatencyUS = latencyOf(&hist)
	}
	return nil
}

// receipted sums the RECEIPTs the producers have had so far.
func receipted(pubs []*publisher) int64 {
	var n int64
	for _, p := range pubs {
		n += p.rcptCount.Load()
	}
	return n
}

// gone reports whether the publisher's connection has ended.
func (p *publisher) gone() bool {
	select {
	case <-p.c.done:
		return true
	default:
		return false
	}
}

// receiptWait bounds the wait for a RECEIPT to DISCONNECT.
const receiptWait = 15 * time.Second
