package broker

import (
	"sync"
	"time"
)

// outbox is a connection's bounded outbound queue. Any goroutine may push;
// only the write loop takes. It never blocks a publisher: a push that does
// not fit is refused and the caller decides (a topic disconnects the slow
// subscriber, a queue stops dispatching to it until it drains).
//
// A publisher may write a topic delivery itself, from its own goroutine,
// when nothing else is writing and the transport can write without
// blocking (TryWriter): see pushLater, claim and inlineDone.
//
// The write loop runs only while there is something to write: the push
// that finds it stopped starts it, and it stops once the queue has stayed
// empty for a moment (writerLinger), which spares a steady trickle of
// messages a new goroutine each. So an idle connection has no writer
// goroutine, and at most one runs at any time.
type outbox struct {
	mu      sync.Mutex
	frames  []Outbound
	spare   []Outbound // a sent batch's slice, for the next one
	bytes   int
	max     int
	closing bool // no more pushes; the write loop ends once flushed
	running bool // a write loop is running
	waiting bool // it waits on notify for work before it stops
	busy    bool // a batch is being written, by the loop or inline
	owed    bool // the transport kept bytes of an inline write; the loop sends them
	broken  bool // an inline write failed; the loop closes the transport
	// A publisher will write inline once its batch is delivered, so
	// pushes meanwhile need not wake the loop (see pushLater).
	deferred bool
	waiters  waitingQueues
	start    func()        // starts a write loop
	notify   chan struct{} // capacity 1: wakes the waiting write loop
	drained  chan struct{} // closed when bytes fall to max/relievedPart
}

func newOutbox(max int, start func()) *outbox {
	return &outbox{max: max, start: start}
}

// push queues a frame unless the queue is over its byte bound. Force is
// for what is bounded elsewhere: heart-beats (one byte per interval) and
// queue deliveries (dispatch checked hasRoom first).
func (o *outbox) push(f Outbound, force bool) bool {
	ok, _ := o.pushCongested(f, force)
	return ok
}

// pushAnswer queues a frame the read loop answers the client with
// (CONNECTED, RECEIPT). It counts against the bound like every other
// frame: while the outbox is full the read loop waits here, so a client
// that asks for receipts faster than it reads them is simply not read
// any more, rather than growing the broker. It reports false once the
// outbox is closing.
func (o *outbox) pushAnswer(f Outbound) bool {
	for {
		o.mu.Lock()
		if o.closing {
			o.mu.Unlock()
			return false
		}
		if o.bytes == 0 || o.bytes+f.Len() <= o.max {
			o.frames = append(o.frames, f)
			o.bytes += f.Len()
			start, notify := o.wakeLocked()
			o.mu.Unlock()
			o.wake(start, notify)
			return true
		}
		if o.drained == nil {
			o.drained = make(chan struct{})
		}
		drained := o.drained
		o.mu.Unlock()
		<-drained // closed as the write loop relieves it, or on closing
	}
}

// A connection is congested once its outbound queue holds more than
// max/congestedPart, and relieved when it is down to max/relievedPart.
// Topic publishers wait for congested subscribers (see awaitSubscribers).
const (
	congestedPart = 4
	relievedPart  = 8
)

// pushCongested is push that also reports whether the outbox is
// congested after it.
func (o *outbox) pushCongested(f Outbound, force bool) (ok, congested bool) {
	o.mu.Lock()
	if o.closing || (!force && o.bytes+f.Len() > o.max && o.bytes > 0) {
		o.mu.Unlock()
		return false, false
	}
	o.frames = append(o.frames, f)
	o.bytes += f.Len()
	congested = o.bytes >= o.max/congestedPart
	start, notify := o.wakeLocked()
	o.mu.Unlock()
	o.wake(start, notify)
	return true, congested
}

// waitRelieved waits until the outbox is relieved, closes or cancel is
// closed, and reports true; or until timeout fires, and reports false.
func (o *outbox) waitRelieved(timeout <-chan time.Time, cancel <-chan struct{}) bool {
	for {
		o.mu.Lock()
		if o.bytes <= o.max/relievedPart || o.closing {
			o.mu.Unlock()
			return true
		}
		if o.drained == nil {
			o.drained = make(chan struct{})
		}
		drained := o.drained
		o.mu.Unlock()
		select {
		case <-drained:
		case <-cancel:
			return true
		case <-timeout:
			return false
		}
	}
}

// wakeDrainedLocked releases waitRelieved's waiters to look again.
func (o *outbox) wakeDrainedLocked() {
	if o.drained != nil {
		close(o.drained)
		o.drained = nil
	}
}

// wakeLocked claims the write loop for new work: it tells whether a loop
// must be started, or else the channel that wakes the waiting one (nil if
// it is busy). The caller passes both to wake once o is unlocked.
func (o *outbox) wakeLocked() (start bool, notify chan struct{}) {
	start = !o.running
	if o.waiting {
		notify = o.notify
	}
	o.running, o.waiting = true, false
	return start, notify
}

// wake carries out what wakeLocked decided.
func (o *outbox) wake(start bool, notify chan struct{}) {
	switch {
	case start:
		o.start()
	case notify != nil:
		select {
		case notify <- struct{}{}:
		default:
		}
	}
}

// hasRoom reports whether queue dispatch may add to this outbox; when it
// may not, q is remembered and dispatched again once the outbox drains.
func (o *outbox) hasRoom(q *queue) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closing {
		return false
	}
	if o.bytes < o.max {
		return true
	}
	o.waiters.add(q)
	return false
}

// closeAfter queues a last frame (if any) and marks the outbox closing:
// the write loop flushes what is queued and then closes the transport.
// Only the first call has an effect; it reports whether this was it.
func (o *outbox) closeAfter(last *Outbound) bool {
	return o.close(last, false)
}

// closeDropping is closeAfter for a client that stopped taking what it is
// sent: what is queued is dropped, so only the last frame waits behind
// the write in progress, and the client reads why it was cut off as soon
// as it reads at all.
func (o *outbox) closeDropping(last *Outbound) bool {
	return o.close(last, true)
}

func (o *outbox) close(last *Outbound, drop bool) bool {
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return false
	}
	if drop {
		for _, f := range o.frames {
			o.bytes -= f.Len()
		}
		clear(o.frames)
		o.frames = o.frames[:0]
	}
	if last != nil {
		o.frames = append(o.frames, *last)
		o.bytes += last.Len()
	}
	o.closing = true
	o.wakeDrainedLocked()
	start, notify := o.wakeLocked()
	o.mu.Unlock()
	o.wake(start, notify)
	return true
}

// What take tells the write loop to do.
type writeAct int

const (
	actWrite writeAct = iota // write the batch (it may be empty: what is owed)
	actWait                  // wait on wake for more, then stop
	actClose                 // everything is out and the outbox closing: close
	actFail                  // an inline write failed: abandon and close
)

// take hands the write loop everything queued. With nothing queued, the
// loop closes the transport when the outbox is closing, and otherwise
// waits on wake for more, then stops. While a publisher writes inline the
// loop waits; the publisher wakes it if there is more.
func (o *outbox) take() (frames []Outbound, act writeAct, wake <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.broken:
		return nil, actFail, nil
	case o.busy:
	case len(o.frames) > 0 || o.owed:
		frames, o.frames, o.spare = o.frames, o.spare, nil
		o.busy, o.owed = true, false
		return frames, actWrite, nil
	case o.closing:
		return nil, actClose, nil
	}
	if o.notify == nil {
		o.notify = make(chan struct{}, 1) // dropped by stop: idle connections hold none
	}
	o.waiting = true
	return nil, actWait, o.notify
}

// stop ends a waiting write loop, unless work has come meanwhile: it
// reports whether the loop must end.
func (o *outbox) stop() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.frames) > 0 || o.closing || o.owed || o.broken {
		o.waiting = false
		return false
	}
	o.running, o.waiting = false, false
	o.notify = nil
	if cap(o.frames) > idleFrames {
		o.frames = nil // a burst's backlog need not stay allocated
	}
	return true
}

// idleFrames is the queue capacity an idle connection keeps.
const idleFrames = 16

// abandon drops what is queued after a failed write: nothing more can be
// sent. The loop that calls it stays the running one, so no other starts.
func (o *outbox) abandon() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closing, o.busy, o.owed = true, false, false
	clear(o.frames)
	o.frames, o.spare = nil, nil
	o.bytes = 0
	o.wakeDrainedLocked()
}

// written takes back a batch from take once it has been sent, releases
// its bytes and returns the queues waiting for room, if room has been made.
func (o *outbox) written(batch []Outbound) []*queue {
	n := batchLen(batch)
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writtenLocked(batch, n)
}

func batchLen(batch []Outbound) int {
	n := 0
	for i := range batch {
		n += batch[i].Len()
	}
	clear(batch) // let sent bodies be collected
	return n
}

func (o *outbox) writtenLocked(batch []Outbound, n int) []*queue {
	o.busy = false
	if o.spare == nil && cap(batch) <= maxSpareFrames {
		o.spare = batch[:0]
	}
	o.bytes -= n
	if o.bytes <= o.max/relievedPart {
		o.wakeDrainedLocked()
	}
	if o.bytes >= o.max {
		return nil
	}
	return o.waiters.take()
}

// maxSpareFrames bounds the batch slice kept for reuse.
const maxSpareFrames = 4096

// pushLater is pushCongested for a publisher that will write inline once
// its whole batch is delivered. When nothing else is writing and the write
// loop is idle or gone, the loop is not woken: later reports that the
// caller must call claim after the batch (this connection is then
// deferred until it has). Otherwise it is an ordinary push.
func (o *outbox) pushLater(f Outbound) (ok, congested, later bool) {
	o.mu.Lock()
	if o.closing || (o.bytes+f.Len() > o.max && o.bytes > 0) {
		o.mu.Unlock()
		return false, false, false
	}
	o.frames = append(o.frames, f)
	o.bytes += f.Len()
	congested = o.bytes >= o.max/congestedPart
	switch {
	case o.deferred:
		// The publisher that deferred it writes this too.
		o.mu.Unlock()
		return true, congested, false
	case !o.busy && !o.owed && !o.broken && (!o.running || o.waiting):
		o.deferred = true
		o.mu.Unlock()
		return true, congested, true
	}
	start, notify := o.wakeLocked()
	o.mu.Unlock()
	o.wake(start, notify)
	return true, congested, false
}

// claim hands a publisher what is queued to write inline, unless another
// writer is at it or must be: then it makes sure that one is running and
// reports false. It ends what pushLater deferred.
func (o *outbox) claim() (frames []Outbound, ok bool) {
	o.mu.Lock()
	o.deferred = false
	if o.busy || o.owed || o.broken || o.closing || len(o.frames) == 0 || (o.running && !o.waiting) {
		var start bool
		var notify chan struct{}
		if !o.busy && (len(o.frames) > 0 || o.owed || o.broken || o.closing) {
			start, notify = o.wakeLocked()
		}
		o.mu.Unlock()
		o.wake(start, notify)
		return nil, false
	}
	frames, o.frames, o.spare = o.frames, o.spare, nil
	o.busy = true
	o.mu.Unlock()
	return frames, true
}

// inlineDone takes back a claimed batch once written: it releases its
// bytes, hands the write loop whatever the write left owed or the
// meantime queued, and returns the queues waiting for room, like written.
// A failed write leaves the loop to close the transport.
func (o *outbox) inlineDone(batch []Outbound, owed bool, err error) []*queue {
	n := batchLen(batch)
	o.mu.Lock()
	var queues []*queue
	if err != nil {
		o.busy, o.broken = false, true
	} else {
		queues = o.writtenLocked(batch, n)
		o.owed = owed
	}
	var start bool
	var notify chan struct{}
	if len(o.frames) > 0 || o.owed || o.broken || o.closing {
		start, notify = o.wakeLocked()
	}
	o.mu.Unlock()
	o.wake(start, notify)
	return queues
}

// isClosing reports whether the session is on its way out.
func (o *outbox) isClosing() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closing
}

// used reports the bytes queued.
func (o *outbox) used() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}
