package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// crashLife is one broker process as the crash scenario's clients see it:
// the connections opened to it, which all end when it is killed.
type crashLife struct {
	s    *soak
	ctx  context.Context
	wg   sync.WaitGroup
	dead atomic.Bool // the process is being killed: what fails now is expected

	mu    sync.Mutex
	conns []*conn
}

func (s *soak) newLife(ctx context.Context) *crashLife { return &crashLife{s: s, ctx: ctx} }

// fail reports a client's failure, unless the kill caused it.
func (lf *crashLife) fail(format string, args ...any) {
	if !lf.dead.Load() && lf.ctx.Err() == nil {
		lf.s.b.errorf(format, args...)
	}
}

// spec is the dial settings of a client of this life: a connection lost
// to the kill is no error.
func (lf *crashLife) spec() *dialSpec {
	s := lf.s.b.spec()
	s.onError = func(_ *conn, msg string) { lf.fail("%s", msg) }
	return s
}

func (lf *crashLife) dial(spec *dialSpec) (*conn, error) {
	ctx, cancel := context.WithTimeout(lf.ctx, 30*time.Second)
	defer cancel()
	c, err := dial(ctx, spec)
	if err != nil {
		return nil, err
	}
	lf.mu.Lock()
	lf.conns = append(lf.conns, c)
	lf.mu.Unlock()
	if c.version < stomp.V11 {
		c.abort()
		return nil, fmt.Errorf("STOMP %s has no client-individual ACKs", c.version)
	}
	return c, nil
}

// end says DISCONNECT on every connection still open and waits for the
// clients to stop.
func (lf *crashLife) end() {
	lf.dead.Store(true)
	lf.mu.Lock()
	conns := lf.conns
	lf.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	lf.wg.Wait()
	for _, c := range conns {
		<-c.done
	}
}

// produce starts a producer for slot: persistent SENDs to dest with a
// receipt each, at most -window unreceipted, at rate messages/s (0: as
// fast as the window allows), until count are sent and receipted (0:
// until the connection ends). The returned channel closes when it stops.
func (lf *crashLife) produce(slot int, dest string, rate float64, count uint64) <-chan struct{} {
	done := make(chan struct{})
	lf.wg.Go(func() {
		defer close(done)
		if err := lf.runProducer(slot, dest, rate, count); err != nil {
			lf.fail("producer %d: %v", slot, err)
		}
	})
	return done
}

func (lf *crashLife) runProducer(slot int, dest string, rate float64, count uint64) error {
	l, cfg := lf.s.l, lf.s.cfg
	window := make(chan struct{}, cfg.window)
	spec := lf.spec()
	spec.onReceipt = func(id string, _ int64) {
		seq, err := strconv.ParseUint(id, 16, 64)
		if err != nil {
			lf.fail("producer %d: RECEIPT for an unknown receipt id %q", slot, id)
			return
		}
		l.receipt(slot, seq, 1)
		select {
		case <-window:
		default:
		}
	}
	c, err := lf.dial(spec)
	if err != nil {
		return err
	}
	body := newBody(cfg.size, lf.s.b.runID, slot)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var sent uint64
	for count == 0 || sent < count || len(window) > 0 {
		owed := count > 0 && sent < count
		if count == 0 {
			owed = rate <= 0 || uint64(time.Since(start).Seconds()*rate) >= sent
		}
		if owed {
			select {
			case window <- struct{}{}:
			case <-c.done:
				return nil
			}
			seq := l.claim(slot, 1)
			putSeqSent(body, seq, clock())
			f := stomp.New(stomp.SEND, "destination", dest, "persistent", "true", "receipt", strconv.FormatUint(seq, 16))
			f.Body = body
			if c.send(stomp.Encode(f, c.version)) != nil {
				return nil // the connection ended; its reader says why
			}
			sent++
			continue
		}
		select {
		case <-tick.C:
		case <-c.done:
			return nil
		}
	}
	return nil
}

// produceTx starts a producer for slot that sends transactions of
// -tx-size persistent SENDs to dest, at rate transactions/s, each COMMIT
// with a receipt that it awaits before the next.
func (lf *crashLife) produceTx(slot int, dest string, rate float64) {
	lf.wg.Go(func() {
		if err := lf.runTxProducer(slot, dest, rate); err != nil {
			lf.fail("transaction producer: %v", err)
		}
	})
}

func (lf *crashLife) runTxProducer(slot int, dest string, rate float64) error {
	l, k := lf.s.l, uint64(lf.s.cfg.txSize)
	committed := make(chan struct{}, 1)
	spec := lf.spec()
	spec.onReceipt = func(id string, _ int64) {
		first, err := strconv.ParseUint(id, 16, 64)
		if err != nil {
			lf.fail("transaction producer: RECEIPT for an unknown receipt id %q", id)
			return
		}
		l.receipt(slot, first, k)
		select {
		case committed <- struct{}{}:
		default:
		}
	}
	c, err := lf.dial(spec)
	if err != nil {
		return err
	}
	body := newBody(lf.s.cfg.size, lf.s.b.runID, slot)
	every := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		first := l.claim(slot, k)
		tx := "tx-" + strconv.FormatUint(first, 16)
		out := stomp.Encode(stomp.New(stomp.BEGIN, "transaction", tx), c.version)
		for seq := first; seq < first+k; seq++ {
			putSeqSent(body, seq, clock())
			f := stomp.New(stomp.SEND, "destination", dest, "persistent", "true", "transaction", tx)
			f.Body = body
			out = stomp.AppendFrame(out, f, c.version)
		}
		commit := stomp.New(stomp.COMMIT, "transaction", tx, "receipt", strconv.FormatUint(first, 16))
		if c.send(stomp.AppendFrame(out, commit, c.version)) != nil {
			return nil
		}
		select {
		case <-committed:
		case <-c.done:
			return nil
		}
		select {
		case <-tick.C:
		case <-c.done:
			return nil
		}
	}
}

// consume starts a client-individual consumer of dest with -prefetch.
// It ACKs every message, a share of them (-receipted-acks) with a receipt;
// with tx set it ACKs in transactions of -tx-size instead, each COMMIT
// with a receipt.
func (lf *crashLife) consume(dest string, tx bool) {
	lf.wg.Go(func() {
		cc := &crashConsumer{lf: lf, tx: tx, pending: map[string][]crashMsg{}}
		if err := cc.run(dest); err != nil {
			lf.fail("consumer of %s: %v", dest, err)
		}
	})
}

// crashConsumer's fields are owned by its connection's reader goroutine.
type crashConsumer struct {
	lf      *crashLife
	tx      bool
	owed    float64               // receipted ACKs due, by -receipted-acks
	ids     uint64                // receipt ids handed out
	pending map[string][]crashMsg // receipt id → what its ACK or COMMIT settles
	batch   []crashMsg            // tx: delivered, awaiting their transaction
	ackIDs  []string
}

func (cc *crashConsumer) run(dest string) error {
	spec := cc.lf.spec()
	spec.onMessage = cc.onMessage
	spec.onReceipt = func(id string, _ int64) {
		if msgs, ok := cc.pending[id]; ok {
			delete(cc.pending, id)
			cc.lf.s.l.ackReceipt(msgs...)
		}
	}
	c, err := cc.lf.dial(spec)
	if err != nil {
		return err
	}
	sub := stomp.New(stomp.SUBSCRIBE, "id", "0", "destination", dest, "ack", "client-individual")
	if n := cc.lf.s.cfg.prefetch; n > 0 {
		sub.Add("prefetch-count", strconv.Itoa(n))
		sub.Add("activemq.prefetchSize", strconv.Itoa(n))
	}
	c.send(stomp.Encode(sub, c.version)) // a failure ends the reader, which says why
	return nil
}

// onMessage records a delivery and queues its ACK, which the reader's
// next read flushes together with the others of that read.
func (cc *crashConsumer) onMessage(c *conn, f *stomp.Frame, _ int64) {
	s := cc.lf.s
	var settles []crashMsg // what the ACK settles, for the ledger
	if st, ok := parseStamp(f.Body); !ok || st.run != s.b.runID || st.pub >= len(s.l.next) {
		s.l.foreignMessage()
	} else {
		s.l.delivery(st.pub, st.seq, f.Value("redelivered") == "true")
		settles = []crashMsg{{st.pub, st.seq}}
	}
	id := f.Value("ack")
	if c.version < stomp.V12 {
		id = f.Value("message-id")
	}
	var out []byte
	if cc.tx {
		cc.batch = append(cc.batch, settles...)
		cc.ackIDs = append(cc.ackIDs, id)
		if len(cc.ackIDs) < s.cfg.txSize {
			return
		}
		out = cc.commit(c)
	} else {
		ack := cc.ackFrame(c, id)
		if cc.owed += s.cfg.receiptedAcks; cc.owed >= 1 {
			cc.owed--
			ack.Add("receipt", cc.receiptFor(settles...))
		}
		out = stomp.Encode(ack, c.version)
	}
	c.nc.wmu.Lock()
	c.put(out) // a failure ends the reader, which says why
	c.nc.wmu.Unlock()
}

// ackFrame is the ACK of the message a MESSAGE's ack (1.2) or message-id
// (1.1) header names.
func (cc *crashConsumer) ackFrame(c *conn, id string) *stomp.Frame {
	if c.version >= stomp.V12 {
		return stomp.New(stomp.ACK, "id", id)
	}
	return stomp.New(stomp.ACK, "message-id", id, "subscription", "0")
}

// receiptFor hands out a receipt id whose RECEIPT settles msgs.
func (cc *crashConsumer) receiptFor(msgs ...crashMsg) string {
	cc.ids++
	id := "ack-" + strconv.FormatUint(cc.ids, 16)
	cc.pending[id] = msgs
	return id
}

// commit encodes a transaction that ACKs the batch, its COMMIT with a
// receipt.
func (cc *crashConsumer) commit(c *conn) []byte {
	tx := "tx-" + strconv.FormatUint(cc.ids, 16)
	out := stomp.Encode(stomp.New(stomp.BEGIN, "transaction", tx), c.version)
	for _, id := range cc.ackIDs {
		ack := cc.ackFrame(c, id)
		ack.Add("transaction", tx)
		out = stomp.AppendFrame(out, ack, c.version)
	}
	commit := stomp.New(stomp.COMMIT, "transaction", tx, "receipt", cc.receiptFor(cc.batch...))
	cc.batch, cc.ackIDs = nil, cc.ackIDs[:0]
	return stomp.AppendFrame(out, commit, c.version)
}
