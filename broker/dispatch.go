package broker

import "time"

// dispatch hands waiting messages to ready consumers, round robin. A
// consumer is ready while it is under its prefetch and its connection's
// outbound queue has room. When a stored message is past the dispatch
// mark, the mark is raised first, in a loop rather than by recursion so
// that steady traffic cannot deepen the stack.
func (q *queue) dispatch() {
	for q.dispatchOnce() && q.raiseMark() {
	}
}

// dispatchOnce dispatches what it can and reports whether it stopped at
// the dispatch mark.
func (q *queue) dispatchOnce() bool {
	var fx effects
	needMark := false
	q.mu.Lock()
	now := time.Now().UnixMilli()
	for {
		if q.paged > 0 && q.memBytes < q.r.opts.QueueMemoryBytes/2 {
			q.pageIn()
		}
		if q.depth == 0 {
			break
		}
		c := q.nextReady()
		if c == nil {
			break
		}
		m := q.popFront()
		if m.expired(now) {
			fx.expire(m, q.r.opts.DeadLetterExpired)
			continue
		}
		if m.seq > q.mark {
			q.pushFront([]*message{m})
			needMark = true
			break
		}
		q.dispatchedMax = max(q.dispatchedMax, m.seq)
		redelivered := m.deliveries > 0 || m.maybeDelivered
		if redelivered {
			q.r.stats.redelivered.Add(1)
		}
		m.deliveries++
		ackID := ""
		if c.mode != ackAuto {
			c.ackSeq++
			ackID = makeAckID(c.num, c.ackSeq)
		}
		head := appendMessageHead(nil, m, c.conn.version, c.id, ackID, redelivered, "")
		if !c.conn.out.push(Outbound{Head: head, Body: m.wire, Binary: m.binary}, true) {
			m.deliveries--
			q.pushFront([]*message{m})
			q.removeLocked(c) // its connection is closing
			continue
		}
		q.dequeued++
		q.r.stats.delivered.Add(1)
		c.conn.msgsOut.Add(1)
		if c.mode == ackAuto {
			if m.settledElsewhere() {
				fx.deletes = append(fx.deletes, m)
			}
		} else {
			c.unacked = append(c.unacked, delivery{ackID: ackID, m: m})
			c.conn.window.hold(m.size())
			if m.persistent && m.seq != 0 {
				fx.redeliver = append(fx.redeliver, m)
			}
		}
	}
	var wantMore *puller
	if q.depth == 0 {
		wantMore = q.pull
	}
	q.mu.Unlock()
	q.r.apply(q, &fx)
	if wantMore != nil {
		wantMore.nudge()
	}
	return needMark
}

// markAhead is how far past the messages in memory a new dispatch mark
// reaches, so that one store write covers many arrivals.
const markAhead = 1024

// raiseMark records a dispatch mark covering every stored message now in
// memory and reports whether the caller should dispatch again. One
// goroutine does it at a time; others leave the dispatching to it.
func (q *queue) raiseMark() bool {
	q.mu.Lock()
	for q.emptying != nil {
		// A mark written now could go with the queue's last records.
		wait := q.emptying
		q.mu.Unlock()
		<-wait
		q.mu.Lock()
	}
	if q.marking {
		q.mu.Unlock()
		return false
	}
	q.marking = true
	target := q.maxSeq + markAhead
	gen := q.markGen
	q.mu.Unlock()
	err := q.r.store.SetDispatched(q.name, target)
	if err != nil {
		// Delivery goes on; only the redelivered flag after a crash is
		// at stake.
		q.r.log.Error("recording the dispatch mark failed", "queue", q.name, "err", err)
	}
	q.mu.Lock()
	if gen == q.markGen {
		q.mark = max(q.mark, target)
	} // else a delete that may empty the store began meanwhile: raise again
	q.marking = false
	q.mu.Unlock()
	return true
}

// beginDelete is called before the store deletes these settled messages
// and reports whether they may be the last it holds of the queue. Then the
// store drops the dispatch mark with them, so the queue forgets it now and
// raises no new one until unstored: a message stored after the delete
// must not go out under a mark the store no longer has.
func (q *queue) beginDelete(seqs []uint64) (emptying bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.outlives(seqs) {
		return false
	}
	q.forgetMark()
	q.emptying = make(chan struct{})
	return true
}

// outlives reports whether a stored message in memory stays in the store
// when seqs are deleted, and with it the store's mark. Messages paged out
// are not counted on: their count is only approximate.
func (q *queue) outlives(seqs []uint64) bool {
	if len(q.resident) > len(seqs) {
		return true
	}
	gone := make(map[uint64]struct{}, len(seqs))
	for _, seq := range seqs {
		gone[seq] = struct{}{}
	}
	for seq := range q.resident {
		if _, ok := gone[seq]; !ok {
			return true
		}
	}
	return false
}

// forgetMark drops the mark when the store may have dropped it; a raise
// in flight then does not count either.
func (q *queue) forgetMark() {
	q.mark = 0
	q.markGen++
}

// settleMark, at a clean shutdown, brings the dispatch mark down from its
// look-ahead to what was really handed out (or could have been before the
// last start), so a clean restart flags nothing that was never delivered.
func (q *queue) settleMark() {
	q.mu.Lock()
	exact := max(q.dispatchedMax, q.recoveredMark)
	lower := q.mark > exact
	q.mu.Unlock()
	if !lower {
		return
	}
	if err := q.r.store.SetDispatched(q.name, exact); err != nil {
		q.r.log.Error("recording the dispatch mark failed", "queue", q.name, "err", err)
	}
}

// nextReady picks the next consumer in round-robin order that may take a
// message, or nil.
func (q *queue) nextReady() *consumer {
	n := len(q.consumers)
	for i := 0; i < n; i++ {
		idx := (q.next + i) % n
		c := q.consumers[idx]
		if c.mode != ackAuto && len(c.unacked) >= c.prefetch {
			continue
		}
		if !c.conn.out.hasRoom(q) {
			continue
		}
		if c.mode != ackAuto && !c.conn.window.hasRoom(q) {
			continue
		}
		q.next = (idx + 1) % n
		return c
	}
	return nil
}
