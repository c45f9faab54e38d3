package broker

import "sync"

// storeWriter makes the store writes that need not hold anyone up:
// deletes of settled messages and updated delivery counts. Losing one to a
// crash costs a redelivery, or a redelivered flag, never a message, so
// nobody waits for their fsync. Pending writes are gathered and made
// together: a queue's deletes in one call, delivery counts concurrently so
// the store can commit them in one go.
type storeWriter struct {
	r *local

	mu      sync.Mutex
	pending []storeOp
	running bool
	added   uint64     // ops handed over so far
	written uint64     // ops written so far
	idle    *sync.Cond // signalled after every batch
}

// storeOp holds no message: a backlog of writes must not keep bodies
// alive.
type storeOp struct {
	q          *queue
	seq        uint64
	deliveries uint32
	del        bool
}

// maxUnwritten is how far store bookkeeping may fall behind before the
// goroutines settling messages wait for it.
const maxUnwritten = 8192

// maxConcurrentUpdates bounds the goroutines writing delivery counts at
// once.
const maxConcurrentUpdates = 64

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
		w.mu.Unlock()
	}
}

func (w *storeWriter) write(ops []storeOp) {
	r := w.r
	type key struct {
		q   *queue
		seq uint64
	}
	deletes := map[*queue][]uint64{}
	deleted := map[key]bool{}
	for _, op := range ops {
		if op.del {
			deletes[op.q] = append(deletes[op.q], op.seq)
			deleted[key{op.q, op.seq}] = true
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxConcurrentUpdates)
	for _, op := range ops {
		if op.del || deleted[key{op.q, op.seq}] {
			continue // a count for a record about to go is wasted work
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(op storeOp) {
			defer func() { <-sem; wg.Done() }()
			if err := r.store.SetDeliveries(op.q.name, op.seq, op.deliveries); err != nil {
				r.log.Error("store update failed", "queue", op.q.name, "err", err)
			}
		}(op)
	}
	wg.Wait()
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
