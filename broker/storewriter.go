package broker

import (
	"sync"

	"github.com/stampede-mq/stampede/store"
)

// storeWriter makes the store writes that need not hold anyone up:
// deletes of settled messages and updated delivery counts. Losing one to a
// crash costs a redelivery, or a redelivered flag, never a message, so
// nobody waits for their fsync. Pending writes are gathered and made
// together: a queue's deletes in one call, and every delivery count in one.
type storeWriter struct {
	r *local

	mu      sync.Mutex
	pending []storeOp
	running bool
	added   uint64     // ops handed over so far
	written uint64     // ops written so far
	idle    *sync.Cond // signalled after every batch
	waiters []writeWaiter
}

// writeWaiter is called once the ops handed over before it are written.
// Targets only grow, so waiters are in the order they fall due.
type writeWaiter struct {
	target uint64
	fn     func()
}

// storeOp holds no message: a backlog of writes must not keep bodies
// alive.
type storeOp struct {
	q          *queue
	name       string // without q: a store queue no queue stands for (history)
	seq        uint64
	deliveries uint32
	del        bool
}

// maxUnwritten is how far store bookkeeping may fall behind before the
// goroutines settling messages wait for it.
const maxUnwritten = 8192

func (w *storeWriter) add(ops ...storeOp) {
	if len(ops) == 0 {
		return
	}
	w.mu.Lock()
	// Backpressure: a drain must not outrun the disk without bound, or
	// the backlog, and with it the heap, grows with the queue.
	for w.added-w.written > maxUnwritten && w.running {
		w.idle.Wait()
	}
	w.pending = append(w.pending, ops...)
	w.added += uint64(len(ops))
	if !w.running {
		w.running = true
		go w.run()
	}
	w.mu.Unlock()
}

// run drains pending writes and exits when there are none, so an idle
// broker holds no goroutine for it.
func (w *storeWriter) run() {
	for {
		w.mu.Lock()
		ops := w.pending
		w.pending = nil
		if len(ops) == 0 {
			w.running = false
			w.idle.Broadcast()
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.write(ops)
		w.mu.Lock()
		w.written += uint64(len(ops))
		w.idle.Broadcast()
		n := 0
		for n < len(w.waiters) && w.waiters[n].target <= w.written {
			n++
		}
		due := w.waiters[:n:n]
		w.waiters = w.waiters[n:]
		w.mu.Unlock()
		for _, d := range due {
			d.fn()
		}
	}
}

// whenWritten calls fn once every write handed over so far has been made:
// at once if none is pending, else from the writer after its batch. One
// batch's commit so answers every waiter that asked before it, from any
// connection.
func (w *storeWriter) whenWritten(fn func()) {
	w.mu.Lock()
	if w.written >= w.added {
		w.mu.Unlock()
		fn()
		return
	}
	w.waiters = append(w.waiters, writeWaiter{target: w.added, fn: fn})
	w.mu.Unlock()
}

func (w *storeWriter) write(ops []storeOp) {
	r := w.r
	type key struct {
		q   *queue
		seq uint64
	}
	deletes := map[*queue][]uint64{}
	deleted := map[key]bool{}
	var bare map[string][]uint64
	for _, op := range ops {
		if op.q == nil {
			if bare == nil {
				bare = make(map[string][]uint64)
			}
			bare[op.name] = append(bare[op.name], op.seq)
			continue
		}
		if op.del {
			deletes[op.q] = append(deletes[op.q], op.seq)
			deleted[key{op.q, op.seq}] = true
		}
	}
	var counts []store.DeliveryCount
	for name, seqs := range bare {
		if err := r.store.Delete(name, seqs...); err != nil {
			r.log.Error("store delete failed", "queue", name, "err", err)
		}
	}
	for _, op := range ops {
		if op.q == nil || op.del || deleted[key{op.q, op.seq}] {
			continue // a count for a record about to go is wasted work
		}
		counts = append(counts, store.DeliveryCount{Queue: op.q.name, Seq: op.seq, N: op.deliveries})
	}
	if len(counts) > 0 {
		if err := r.store.SetDeliveries(counts); err != nil {
			r.log.Error("store update failed", "counts", len(counts), "err", err)
		}
	}
	for q, seqs := range deletes {
		emptying := q.beginDelete(seqs)
		if err := r.store.Delete(q.name, seqs...); err != nil {
			r.log.Error("store delete failed", "queue", q.name, "err", err)
		}
		q.unstored(seqs, emptying)
	}
}

// flush waits until every write handed over so far has been made. Writes
// handed over later do not hold it up, so it returns under steady load too.
func (w *storeWriter) flush() {
	w.mu.Lock()
	target := w.added
	for w.written < target {
		w.idle.Wait()
	}
	w.mu.Unlock()
}
