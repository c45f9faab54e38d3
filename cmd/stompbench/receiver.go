package main

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// receiver is one subscribing connection: a fanout subscriber or a queue
// consumer. Everything but recv is owned by its reader goroutine and read
// only after that goroutine has ended.
type receiver struct {
	b   *bench
	ack bool // client-individual: ACK each message

	seen     []seqSet // per publisher
	recv     atomic.Int64
	inWindow int64
	hist     histogram
	foreign  int64 // MESSAGEs without this run's stamp
	ackBuf   []byte
	lastMsg  int64 // clock() when the last MESSAGE arrived

	// With ackReceipts every ACK asks for a RECEIPT whose id is the ACK's
	// number and send time in hex, like a persistent SEND's, so the
	// RECEIPT alone gives the latency. The next ACK never waits for it.
	ackReceipts bool
	ackSeq      uint64       // ACKs sent with a receipt
	acked       seqSet       // ACK numbers receipted
	ackRcpt     atomic.Int64 // for the drain's progress and end
	ackHist     histogram    // ACK→RECEIPT
	lastRcpt    int64        // clock() when the last ACK's RECEIPT arrived
	subAt       int64        // clock() when the SUBSCRIBE went out

	subscribed chan struct{}
	done       <-chan struct{} // the connection's; set by subscribe
}

func newReceiver(b *bench, publishers int, ack bool) *receiver {
	return &receiver{
		b:           b,
		ack:         ack,
		ackReceipts: ack && b.cfg.scenario == "drain" && b.cfg.ackReceipts,
		seen:        make([]seqSet, publishers),
		subscribed:  make(chan struct{}),
	}
}

func (r *receiver) spec(i int) *dialSpec {
	s := r.b.spec()
	if ts := r.b.cfg.receivers; len(ts) > 0 {
		s.target = ts[i%len(ts)]
	}
	s.onMessage = r.onMessage
	s.onReceipt = r.onReceipt
	return s
}

// subscribeReceipt names the RECEIPT that confirms the SUBSCRIBE.
const subscribeReceipt = "stompbench-subscribed"

// subscribe sends the SUBSCRIBE, asking for a receipt.
func (r *receiver) subscribe(c *conn) error {
	r.done = c.done
	r.subAt = clock()
	f := stomp.New(stomp.SUBSCRIBE, "id", "0", "destination", r.b.dest)
	if r.ack {
		mode := "client-individual"
		if c.version == stomp.V10 {
			mode = "client" // 1.0 has no client-individual
		}
		f.Add("ack", mode)
		if n := r.b.cfg.prefetch; n > 0 {
			f.Add("prefetch-count", strconv.Itoa(n))
			f.Add("activemq.prefetchSize", strconv.Itoa(n))
		}
	} else {
		f.Add("ack", "auto")
	}
	if r.b.cfg.noSubReceipt {
		close(r.subscribed) // connectReceivers waits -settle instead
	} else {
		f.Add("receipt", subscribeReceipt)
	}
	return c.send(stomp.Encode(f, c.version))
}

func (r *receiver) onReceipt(id string, now int64) {
	if id != subscribeReceipt {
		r.onAckReceipt(id, now)
		return
	}
	select {
	case <-r.subscribed:
	default:
		close(r.subscribed)
	}
}

// onAckReceipt counts the RECEIPT of one ACK.
func (r *receiver) onAckReceipt(id string, now int64) {
	var seq, sent uint64
	ok := r.ackReceipts && len(id) == rcptLen
	if ok {
		var ok1, ok2 bool
		seq, ok1 = parseHex(id[:rcptSeqLen])
		sent, ok2 = parseHex(id[rcptSeqLen:])
		ok = ok1 && ok2 && seq < r.ackSeq
	}
	if !ok {
		r.b.errorf("RECEIPT for an unknown receipt id %q", id)
		return
	}
	if !r.acked.add(seq) {
		r.b.errorf("a second RECEIPT for ACK %q", id)
		return
	}
	r.ackHist.record(now - int64(sent))
	r.lastRcpt = now
	r.ackRcpt.Add(1)
}

// onMessage runs on the reader goroutine for each MESSAGE.
func (r *receiver) onMessage(c *conn, f *stomp.Frame, now int64) {
	r.lastMsg = now
	if r.ack {
		r.sendAck(c, f)
	}
	st, ok := parseStamp(f.Body)
	if !ok || st.run != r.b.runID || st.pub >= len(r.seen) || st.seq >= maxSeq {
		r.foreign++
		return
	}
	r.seen[st.pub].add(st.seq)
	r.recv.Add(1)
	if r.b.inWindow(now) {
		r.inWindow++
		r.hist.record(now - st.sent)
	}
}

// sendAck queues the ACK for f; the reader's next Read flushes it together
// with the ACKs for the rest of what it read.
func (r *receiver) sendAck(c *conn, f *stomp.Frame) {
	v := c.version
	b := append(r.ackBuf[:0], "ACK\n"...)
	if id, ok := f.Get("ack"); ok && v >= stomp.V12 {
		b = stomp.AppendHeader(b, "id", id, v)
	} else {
		b = stomp.AppendHeader(b, "message-id", f.Value("message-id"), v)
		if v >= stomp.V11 {
			b = stomp.AppendHeader(b, "subscription", f.Value("subscription"), v)
		}
	}
	if r.ackReceipts {
		b = append(b, "receipt:"...)
		n := len(b)
		b = append(b, make([]byte, rcptLen)...)
		putHex(b[n:n+rcptSeqLen], r.ackSeq)
		putHex(b[n+rcptSeqLen:], uint64(clock()))
		b = append(b, '\n')
		r.ackSeq++
	}
	b = append(b, '\n', 0)
	r.ackBuf = b
	c.nc.wmu.Lock()
	err := c.put(b)
	c.nc.wmu.Unlock()
	if err != nil && !c.closing.Load() {
		r.b.errorf("ACK: %v", err)
	}
}

// connectReceivers opens and subscribes n receivers and waits for every
// SUBSCRIBE to be confirmed. Failed ones are counted as errors and left
// out of the result.
func (b *bench) connectReceivers(ctx context.Context, n, publishers int, ack bool) ([]*receiver, error) {
	rs := make([]*receiver, n)
	for i := range rs {
		rs[i] = newReceiver(b, publishers, ack)
	}
	var subscribed atomic.Int64
	b.setProgressLevel("subscribed", subscribed.Load)
	conns, err := b.dialMany(ctx, n, 0, func(i int) *dialSpec { return rs[i].spec(i) })
	if err != nil {
		return nil, err
	}
	for i, c := range conns {
		if c == nil {
			continue
		}
		if err := rs[i].subscribe(c); err != nil {
			b.errorf("SUBSCRIBE on connection %d: %v", i, err)
		}
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var live []*receiver
	for i, r := range rs {
		if conns[i] == nil {
			continue
		}
		select {
		case <-r.subscribed:
			live = append(live, r)
			subscribed.Add(1)
		case <-conns[i].done:
			// The reader has reported why.
		case <-timeout.C:
			b.errorf("no RECEIPT for SUBSCRIBE within 30s")
			return nil, errNoReceipt
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	if b.cfg.noSubReceipt {
		select {
		case <-time.After(b.cfg.subSettle):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	return live, nil
}

// errNoReceipt ends a run whose SUBSCRIBEs were not confirmed.
var errNoReceipt = errors.New("SUBSCRIBE not confirmed")

// received sums the messages the receivers have counted so far.
func received(rs []*receiver) int64 {
	var n int64
	for _, r := range rs {
		n += r.recv.Load()
	}
	return n
}
