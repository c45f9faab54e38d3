package main

import (
	"context"
	"errors"
	"time"
)

// runFanout measures one topic delivered to many subscribers: S
// subscribers (ack:auto), then P publishers sending without receipts.
func runFanout(ctx context.Context, b *bench, res *result) error {
	cfg := b.cfg
	b.setPhase("connect")
	subs, err := b.connectReceivers(ctx, cfg.subscribers, cfg.publishers, false)
	if err != nil {
		return err
	}
	pubs, err := b.connectPublishers(ctx, cfg.publishers, false)
	if err != nil {
		return err
	}
	if len(subs) == 0 || len(pubs) == 0 {
		return errNoConnections
	}
	b.setProgress("delivered", func() int64 { return received(subs) })
	b.publish(ctx, pubs, res)

	// Every subscriber should get every message.
	var want int64
	for _, p := range pubs {
		want += int64(p.seq)
	}
	b.drain(ctx, func() int64 { return received(subs) }, func() bool {
		for _, r := range subs {
			if r.recv.Load() < want && !r.gone() {
				return false
			}
		}
		return true
	})
	b.closeAll()

	var hist histogram
	var inWindow int64
	for _, p := range pubs {
		res.Published += int64(p.seq)
		inWindow += p.inWindow
	}
	res.PublishedPerS = perSecond(inWindow, cfg.duration)
	inWindow = 0
	for _, r := range subs {
		res.Delivered += r.recv.Load()
		res.Foreign += r.foreign
		inWindow += r.inWindow
		hist.merge(&r.hist)
		var unique int64
		for i, p := range pubs {
			got := int64(r.seen[i].countBelow(p.seq))
			unique += got
			res.Lost += int64(p.seq) - got
		}
		res.Duplicated += r.recv.Load() - unique
	}
	res.DeliveredPerS = perSecond(inWindow, cfg.duration)
	res.RatePerS = res.DeliveredPerS
	res.LatencyUS = latencyOf(&hist)
	return nil
}

// connectPublishers opens n publishing connections.
func (b *bench) connectPublishers(ctx context.Context, n int, persistent bool) ([]*publisher, error) {
	all := make([]*publisher, n)
	for i := range all {
		all[i] = newPublisher(b, i, persistent)
	}
	conns, err := b.dialMany(ctx, n, 0, func(i int) *dialSpec { return all[i].spec() })
	if err != nil {
		return nil, err
	}
	var live []*publisher
	for i, c := range conns {
		if c != nil {
			all[i].prepare(c)
			live = append(live, all[i])
		}
	}
	return live, nil
}

// errNoConnections ends a run that could not open the connections it needs.
var errNoConnections = errors.New("no connections could be opened")

// gone reports whether the receiver's connection has ended.
func (r *receiver) gone() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// drain waits after publishing until complete() says every expected
// message arrived, or until cfg.drain passes without a new one.
func (b *bench) drain(ctx context.Context, total func() int64, complete func() bool) {
	b.setPhase("drain")
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	last, since := total(), time.Now()
	for !complete() {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n := total(); n != last {
				last, since = n, now
			} else if now.Sub(since) >= b.cfg.drain {
				return
			}
		}
	}
}
