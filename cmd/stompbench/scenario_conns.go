package main

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// byeReceipt names the RECEIPT that confirms a DISCONNECT.
const byeReceipt = "stompbench-bye"

// runConns measures idle connections: how fast N of them open, what they
// cost the broker in memory, and whether all of them are still served
// after being held open with heart-beats.
func runConns(ctx context.Context, b *bench, res *result) error {
	cfg := b.cfg
	n := cfg.conns
	cr := &connsResult{Requested: n, HoldS: cfg.hold.Seconds(), HeartbeatMS: cfg.heartbeat.Milliseconds()}
	res.Conns = cr
	cr.SourceAddrs = max(1, len(b.locals))
	if cfg.pid > 0 {
		if kib, err := procRSS(cfg.pid); err == nil {
			cr.RSSBeforeKiB = &kib
		}
	}

	bye := make([]chan struct{}, n)
	for i := range bye {
		bye[i] = make(chan struct{})
	}
	var byes atomic.Int64
	b.setPhase("connect")
	b.setProgress("opened", b.dialed.Load)
	c0 := b.sampleCPU()
	t0 := time.Now()
	conns, err := b.dialMany(ctx, n, cfg.connectRate, func(i int) *dialSpec {
		s := b.spec()
		s.idle = true
		s.onReceipt = func(id string, _ int64) {
			if id != byeReceipt {
				b.errorf("connection %d: RECEIPT for an unknown receipt id %q", i, id)
				return
			}
			close(bye[i])
			byes.Add(1)
		}
		return s
	})
	if err != nil {
		return err
	}
	connectTime := time.Since(t0)
	var live []int
	for i, c := range conns {
		if c != nil {
			live = append(live, i)
		}
	}
	cr.Opened = len(live)
	cr.ConnectS = connectTime.Seconds()
	cr.ConnectPerS = float64(cr.Opened) / connectTime.Seconds()
	res.RatePerS = cr.ConnectPerS
	b.mu.Lock()
	res.LatencyUS = latencyOf(&b.dialHist)
	b.mu.Unlock()
	if cfg.pid > 0 {
		if kib, err := procRSS(cfg.pid); err == nil {
			cr.RSSAfterKiB = &kib
			if cr.RSSBeforeKiB != nil && cr.Opened > 0 {
				per := float64(kib-*cr.RSSBeforeKiB) / float64(cr.Opened)
				cr.RSSPerConnKiB = &per
			}
		}
	}
	if len(live) == 0 {
		return errNoConnections
	}

	// Hold, while the heart-beat goroutine keeps every connection alive.
	b.setPhase("hold")
	b.setProgressLevel("alive", func() int64 {
		var alive int64
		for _, i := range live {
			select {
			case <-conns[i].done:
			default:
				alive++
			}
		}
		return alive
	})
	held := sleepUntil(ctx, clock()+int64(cfg.hold))
	res.setCPU(c0, b.sampleCPU(), time.Since(t0))
	res.sampleRSS(cfg.pid)
	if held != nil {
		return held
	}

	// Server heart-beats: late when a silence ran past 1.5 intervals (the
	// server should send within half an interval of the due time).
	now := clock()
	for _, i := range live {
		c := conns[i]
		gap := max(c.nc.maxGap.Load(), now-c.nc.lastRecv.Load())
		cr.MaxSilenceMS = max(cr.MaxSilenceMS, float64(gap)/1e6)
		if every := c.hbFromServer; every > 0 && time.Duration(gap) > every*3/2 {
			cr.HeartbeatLate++
		}
	}

	// Every connection must still be served: DISCONNECT with a receipt.
	b.setPhase("verify")
	b.setProgress("confirmed", byes.Load)
	disc := []byte("DISCONNECT\nreceipt:" + byeReceipt + "\n\n\x00")
	open := make([]bool, n) // still open when its DISCONNECT went out
	for _, i := range live {
		c := conns[i]
		select {
		case <-c.done:
			continue // lost during the hold: it cannot answer
		default:
		}
		open[i] = true
		c.closing.Store(true) // the server closes after the RECEIPT
		c.send(disc)          // a failure shows as a missing RECEIPT
	}
	// A connection answers with its RECEIPT or, as RabbitMQ's Web-STOMP
	// does, with an orderly close and no RECEIPT: either way the broker
	// was still serving it.
	deadline := time.NewTimer(receiptWait)
	defer deadline.Stop()
	expired := false
	for _, i := range live {
		if !expired {
			select {
			case <-bye[i]:
			case <-conns[i].done: // closed after any RECEIPT it read
			case <-deadline.C:
				expired = true
			case <-ctx.Done():
				expired = true
			}
		}
		switch {
		case isClosed(bye[i]):
			cr.Alive++
		case open[i] && isClosed(conns[i].done) && cleanClose(conns[i].err):
			cr.Alive++
			cr.ClosedOnDisconnect++
		}
	}
	if cr.Alive < len(live) {
		b.errorf("%d of %d connections did not confirm DISCONNECT", len(live)-cr.Alive, len(live))
	}
	cr.Failed = n - cr.Alive
	b.closeAll()
	return context.Cause(ctx)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// cleanClose reports whether a connection ended in order: the peer closed
// the stream, or sent a WebSocket close with a normal status.
func cleanClose(err error) bool {
	return errors.Is(err, io.EOF) || websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway)
}
