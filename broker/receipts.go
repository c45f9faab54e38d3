package broker

import (
	"sync"

	"github.com/stampede-mq/stampede/stomp"
)

// receipts keeps a connection's RECEIPTs in order while some of them wait
// for the store. A RECEIPT for an ACK, NACK or COMMIT means that what it
// settled is on disk; rather than hold the read loop until then, its
// place is kept here and the read loop goes on reading and applying
// frames. As the store commits (one commit covers every frame and
// connection that asked before it), waiting receipts become ready, and
// the ready ones at the front go to the outbox, in the order asked.
//
// While nothing waits, a receipt goes straight to the outbox. The bytes
// held here are bounded by the outbound bound: past it the read loop
// waits, as it does for a full outbox.
type receipts struct {
	mu      sync.Mutex
	queue   []*pendingReceipt
	bytes   int
	drained chan struct{} // closed when the queue empties or shrinks under max
}

type pendingReceipt struct {
	frame Outbound
	ready bool
}

// answer queues a receipt (or CONNECTED) that is ready now. Read loop only.
func (c *conn) answer(f *stomp.Frame) {
	c.b.stats.framesOut[commandIndex(f.Command)].Add(1)
	ob := Outbound{Head: stomp.AppendHead(nil, f, c.version), Body: []byte{0}}
	if !c.receipts.append(&pendingReceipt{frame: ob, ready: true}, c) {
		c.out.pushAnswer(ob)
	}
}

// answerWhenDurable queues a receipt that goes out once the router has
// made durable what was settled so far. Read loop only.
func (c *conn) answerWhenDurable(f *stomp.Frame, r router) {
	c.b.stats.framesOut[commandIndex(f.Command)].Add(1)
	p := &pendingReceipt{frame: Outbound{Head: stomp.AppendHead(nil, f, c.version), Body: []byte{0}}}
	c.receipts.wait(c)
	c.receipts.mu.Lock()
	c.receipts.queue = append(c.receipts.queue, p)
	c.receipts.bytes += p.frame.Len()
	c.receipts.mu.Unlock()
	r.whenDurable(func() { c.receipts.release(p, c) })
}

// append queues p behind receipts still waiting; it reports false, queuing
// nothing, when none waits and p may go straight out.
func (rs *receipts) append(p *pendingReceipt, c *conn) bool {
	rs.mu.Lock()
	if len(rs.queue) == 0 {
		rs.mu.Unlock()
		return false
	}
	rs.mu.Unlock()
	rs.wait(c)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.queue) == 0 {
		return false // drained meanwhile
	}
	rs.queue = append(rs.queue, p)
	rs.bytes += p.frame.Len()
	return true
}

// wait holds the read loop while the receipts held reach the outbound
// bound, until they drain or the connection closes.
func (rs *receipts) wait(c *conn) {
	rs.until(c, func() bool { return rs.bytes < c.out.max || len(rs.queue) == 0 })
}

// until waits, as receipts are released, for ok (called with rs.mu held)
// to hold, or for the connection to close.
func (rs *receipts) until(c *conn, ok func() bool) {
	for {
		rs.mu.Lock()
		if ok() {
			rs.mu.Unlock()
			return
		}
		if rs.drained == nil {
			rs.drained = make(chan struct{})
		}
		ch := rs.drained
		rs.mu.Unlock()
		select {
		case <-ch:
		case <-c.writerDone:
			return
		}
	}
}

// release marks p ready and sends the ready receipts at the front. Any
// goroutine; the outbox takes them whatever its fill, since their bytes
// were bounded here.
func (rs *receipts) release(p *pendingReceipt, c *conn) {
	rs.mu.Lock()
	p.ready = true
	n := 0
	for n < len(rs.queue) && rs.queue[n].ready {
		n++
	}
	out := make([]Outbound, n)
	for i, q := range rs.queue[:n] {
		out[i] = q.frame
		rs.bytes -= q.frame.Len()
	}
	clear(rs.queue[:n])
	rs.queue = rs.queue[n:]
	if len(rs.queue) == 0 {
		rs.queue = nil
	}
	// Pushed under the lock, so that receipts released by two
	// goroutines keep their order.
	for _, ob := range out {
		c.out.push(ob, true)
	}
	if n > 0 && rs.drained != nil {
		close(rs.drained)
		rs.drained = nil
	}
	rs.mu.Unlock()
}

// flushed waits until every receipt held has gone to the outbox, or the
// connection closes: a DISCONNECT's RECEIPT must be the last frame.
func (rs *receipts) flushed(c *conn) {
	rs.until(c, func() bool { return len(rs.queue) == 0 })
}
