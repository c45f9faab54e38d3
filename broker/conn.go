package broker

import (
	"errors"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// errStop ends a connection's read loop once its last frame has been
// queued.
var errStop = errors.New("session ends")

// errWritePanicked marks an inline write that panicked: its connection
// is closed, as after a failed write.
var errWritePanicked = errors.New("write panicked")

// conn is one client connection as bytes and frames: its transport, the
// read loop that decodes frames for its session, the outbox and the write
// loop that drains it, and the clocks that heart-beats and the CONNECT
// deadline run on. What the frames mean is the session's business.
type conn struct {
	b        *Broker
	t        Transport
	info     ConnInfo
	id       string
	out      *outbox
	receipts receipts // RECEIPTs waiting for the store, in order
	window   window   // delivered, unacknowledged bytes
	sess     *session
	try      TryWriter // the transport, when it can write without blocking

	// Read loop only.
	dec         *stomp.Decoder
	inline      []*conn // subscribers this connection's publish writes to itself
	quiet       bool    // the read being handled found no more input waiting
	lastPublish int64   // unix ns when its last publish ended
	// This publish writes its deliveries itself (see writesInline).
	inlining bool

	// Written once by the read loop at CONNECT, before connected is set
	// and before any subscription exists: goroutines that deliver or
	// describe read version only after seeing connected, or from a
	// subscription, so they always see it set.
	version   stomp.Version
	connected atomic.Bool

	// Any goroutine.
	start      time.Time
	lastRead   atomic.Int64 // unix ns
	lastWrite  atomic.Int64 // unix ns
	hbIn       atomic.Int64 // ns the client may stay silent (before grace), 0 = off
	hbOut      atomic.Int64 // ns between server heart-beats, 0 = off
	writerDone chan struct{}
	msgsIn     atomic.Uint64 // figures for operators
	msgsOut    atomic.Uint64

	// Guarded by the broker's timers.
	timer timerEntry

	// Set before the read loop first runs.
	parks  bool   // the read loop may park its transport's wait for input
	resume func() // read, made once rather than at every park
	ended  func() // runs once the connection is over and cleaned up
}

func newConn(b *Broker, t Transport) *conn {
	now := time.Now()
	c := &conn{
		b: b, t: t, info: t.Info(),
		id:         b.connPrefix + strconv.FormatUint(b.conSeq.Add(1), 10),
		dec:        stomp.NewDecoder(b.opts.Limits),
		start:      now,
		timer:      timerEntry{index: -1},
		writerDone: make(chan struct{}),
	}
	c.out = newOutbox(b.opts.MaxOutboundBytes, func() { go c.writeLoop() })
	if tw, ok := t.(TryWriter); ok && tw.CanTryWrite() {
		c.try = tw
	}
	c.window.max = b.opts.MaxUnackedBytes
	c.sess = newSession(b, c)
	c.resume = c.read
	c.lastRead.Store(now.UnixNano())
	c.lastWrite.Store(now.UnixNano())
	return c
}

// read runs the read loop, then cleans up once the connection has ended
// and runs ended. When the loop parks instead, the transport calls read
// again once there is input.
func (c *conn) read() {
	if c.readLoop() {
		return
	}
	// Whatever goes wrong while cleaning up, the connection is closed
	// and counted out, and one session's bug leaves the others running.
	defer c.ended()
	defer func() {
		if p := recover(); p != nil {
			c.b.log.Error("panic ending session", "conn", c.id, "remote", c.info.RemoteAddr, "panic", p, "stack", string(debug.Stack()))
			c.t.Close()
		}
	}()
	c.out.closeAfter(nil)
	c.sess.cleanup()
	<-c.writerDone
	c.b.timers.end(c)
}

// readLoop reads and handles frames until the connection ends, or until
// the transport has taken over the wait for input (parked is then true,
// and the connection is no longer this goroutine's to touch). A panic
// while handling a frame is this connection's alone: it is logged with
// its stack and the connection closes, as any other error would close
// it.
func (c *conn) readLoop() (parked bool) {
	defer func() {
		if p := recover(); p != nil {
			c.b.log.Error("panic in session", "conn", c.id, "remote", c.info.RemoteAddr, "panic", p, "stack", string(debug.Stack()))
			c.fail("internal error", "")
			parked = false
		}
	}()
	waiter, _ := c.t.(ReadWaiter)
	parker, _ := c.t.(ReadParker)
	if !c.parks {
		parker = nil
	}
	var buf *[]byte
	defer func() {
		if buf != nil {
			c.b.readBufs.Put(buf)
		}
	}()
	// A loop reads before it parks: it was started or resumed because
	// input is there, or soon will be.
	for fresh := true; ; fresh = false {
		if buf == nil {
			if parker != nil && !fresh {
				ready, err := parker.WaitReadFor(readLinger)
				if err != nil {
					return false
				}
				if !ready && parker.ParkRead(c.resume) {
					return true
				}
			}
			if waiter != nil {
				if err := waiter.WaitRead(); err != nil {
					return false
				}
			}
			buf = c.b.readBufs.Get().(*[]byte)
		}
		n, err := c.t.Read(*buf)
		c.quiet = n < len(*buf) // see writesInline
		if n > 0 && !c.feed((*buf)[:n]) {
			return false
		}
		if err != nil {
			return false
		}
		// A short read most likely emptied the socket: hand the buffer
		// back while waiting for more, unless the transport cannot wait
		// without one.
		if (waiter != nil || parker != nil) && n < len(*buf) {
			c.b.readBufs.Put(buf)
			buf = nil
		}
	}
}

// feed decodes and handles one read's bytes; it reports whether the
// connection goes on.
func (c *conn) feed(p []byte) bool {
	c.lastRead.Store(time.Now().UnixNano())
	ferr := c.dec.Feed(p, c.sess.handle)
	// SENDs before a decoding error are as good as any.
	if serr := c.sess.flushSends(); serr != nil {
		return false
	}
	if ferr != nil {
		if ferr != errStop {
			c.fail(ferr.Error(), c.dec.FailedReceipt())
		}
		return false
	}
	return true
}

// writeLoop is the only writer to the transport. The outbox starts it
// when there is something to send; it sends what is queued, in batches,
// and ends once the queue is empty, closing the transport if the
// connection is closing.
func (c *conn) writeLoop() {
	defer func() {
		if p := recover(); p != nil {
			c.b.log.Error("panic in session writer", "conn", c.id, "panic", p, "stack", string(debug.Stack()))
			c.out.abandon()
			c.closeTransport()
		}
	}()
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for {
		batch, act, wake := c.out.take()
		switch act {
		case actClose:
			c.closeTransport()
			return
		case actFail:
			c.out.abandon()
			c.closeTransport()
			return
		case actWait:
			if linger == nil {
				linger = time.NewTimer(writerLinger)
			} else {
				linger.Reset(writerLinger)
			}
			select {
			case <-wake:
			case <-linger.C:
				if c.out.stop() {
					return
				}
			}
			continue
		}
		if err := c.t.WriteFrames(batch); err != nil {
			c.out.abandon()
			c.closeTransport()
			return
		}
		c.lastWrite.Store(time.Now().UnixNano())
		for _, q := range c.out.written(batch) {
			q.dispatch()
		}
	}
}

// writeInline writes what c's outbox holds from the calling goroutine (a
// publisher's), if nothing else writes it; see outbox.claim. A write the
// socket does not take in full is finished by the write loop.
func (c *conn) writeInline() {
	batch, ok := c.out.claim()
	if !ok {
		return
	}
	var owed bool
	err := errWritePanicked // unless TryWriteFrames returns
	defer func() {
		if p := recover(); p != nil {
			c.b.log.Error("panic writing to session", "conn", c.id, "panic", p, "stack", string(debug.Stack()))
		}
		for _, q := range c.out.inlineDone(batch, owed, err) {
			q.dispatch()
		}
	}()
	owed, err = c.try.TryWriteFrames(batch)
	if err == nil {
		c.lastWrite.Store(time.Now().UnixNano())
	}
}

// maxInline bounds the subscribers one publish writes to itself; the
// others' write loops take theirs, on whatever cores are free.
const maxInline = 64

// inlineGap is how long a publisher must have been quiet for its publish
// to write its deliveries itself.
const inlineGap = time.Millisecond

// writesInline decides whether the publish about to start writes its
// topic deliveries itself, from this read loop, rather than handing them
// to the subscribers' write loops. Only for a client that is not sending
// flat out: its read found no more input waiting and its last publish was
// a while ago. That saves a delivery a goroutine wake-up, which is most
// of its latency at low rates. A client sending flat out keeps reading
// while the write loops write, beside it, on the other cores.
func (c *conn) writesInline(now int64) bool {
	return c.quiet && now-c.lastPublish >= int64(inlineGap)
}

// failGrace is how long a failed connection's output may take to go out.
const failGrace = 5 * time.Second

// readLinger is how long a read loop that found its client quiet waits
// for more with its goroutine before it parks (ReadParker): long enough
// that a client sending now and then (a publisher at a few hundred
// messages a second, a consumer acking) keeps it.
const readLinger = 20 * time.Millisecond

// writerLinger is how long a write loop with nothing to send waits for
// more before it ends.
const writerLinger = 20 * time.Millisecond

// closeTransport ends the connection; only the write loop that finds the
// outbox closed (or breaks it) calls it, once.
func (c *conn) closeTransport() {
	c.t.Close()
	close(c.writerDone)
}

// refuse tells a connection the broker will not serve it, and closes it.
func (c *conn) refuse(msg string) {
	c.t.WriteFrames([]Outbound{c.errorFrame(msg, "")})
	c.t.Close()
}

func (c *conn) errorFrame(msg, receiptID string) Outbound {
	f := stomp.New(stomp.ERROR, "message", msg)
	if receiptID != "" {
		f.Add("receipt-id", receiptID)
	}
	f.Add("content-type", "text/plain")
	f.Body = []byte(msg + "\n")
	// Before CONNECTED the client knows no escaping rules; raw headers
	// are what every version reads. Seeing connected set orders the read
	// of version after its one write.
	v := stomp.V10
	if c.connected.Load() {
		v = c.version
	}
	return Outbound{Head: stomp.AppendHead(nil, f, v), Body: append(f.Body, 0)}
}

// fail sends an ERROR after whatever is queued and closes the connection.
// Any goroutine may call it; only the first call has an effect, and it
// reports whether this call was that one.
func (c *conn) fail(msg, receiptID string) bool {
	ob := c.errorFrame(msg, receiptID)
	if !c.out.closeAfter(&ob) {
		return false
	}
	// What is queued ahead of the ERROR gets a little while to go out; a
	// client that takes nothing (a stalled slow consumer) is cut off then
	// rather than when a write finally times out.
	time.AfterFunc(failGrace, func() {
		select {
		case <-c.writerDone:
		default:
			c.t.Close()
		}
	})
	c.b.stats.framesOut[commandIndex(stomp.ERROR)].Add(1)
	c.b.log.Info("closing connection with ERROR", "conn", c.id, "remote", c.info.RemoteAddr, "message", msg)
	return true
}

// failSlow disconnects a client that takes nothing of what it is sent:
// what waits for it is dropped, and the ERROR goes out behind the write in
// progress. That write is bounded by the transport's write timeout, so
// the connection holds little while the ERROR waits to be read.
func (c *conn) failSlow(msg string) bool {
	ob := c.errorFrame(msg, "")
	if !c.out.closeDropping(&ob) {
		return false
	}
	c.b.stats.framesOut[commandIndex(stomp.ERROR)].Add(1)
	c.b.log.Info("closing connection with ERROR", "conn", c.id, "remote", c.info.RemoteAddr, "message", msg)
	return true
}
