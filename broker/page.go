package broker

import "github.com/stampede-mq/stampede/store"

// Paging: a queue keeps a window of its persistent messages in memory
// (QueueMemoryBytes); the rest wait only in the store and are read back a
// batch at a time as the window drains.

// pageOut decides whether an arriving message stays only in the store.
func (q *queue) pageOut(m *message) bool {
	window := q.r.opts.QueueMemoryBytes
	if m.seq == 0 || (q.paged == 0 && q.memBytes+m.size() <= window) {
		return false
	}
	q.paged++
	q.pagedBytes += int64(m.size())
	if q.pagedMin == 0 || m.seq < q.pagedMin {
		q.pagedMin = m.seq
	}
	return true
}

// pageIn reads paged-out messages back until the window is half full.
// Stored messages already in memory are skipped, so a message is never
// held twice however appends and reads interleave.
func (q *queue) pageIn() {
	window := q.r.opts.QueueMemoryBytes
	for q.paged > 0 && q.memBytes < window/2 {
		from := q.scanFrom
		if q.pagedMin != 0 && q.pagedMin-1 < from {
			from = q.pagedMin - 1
		}
		q.pagedMin = 0
		read, loaded := 0, 0
		err := q.r.store.Scan(q.name, from, pageBatch, func(r *store.Record) error {
			read++
			q.scanFrom = max(q.scanFrom, r.Seq)
			if _, ok := q.resident[r.Seq]; ok {
				return nil
			}
			m := messageFromRecord(r, q.name)
			m.maybeDelivered = r.Seq <= q.recoveredMark
			q.pushBack(m)
			q.pagedBytes = max(0, q.pagedBytes-int64(m.size()))
			loaded++
			return nil
		})
		if err != nil {
			q.r.log.Error("reading paged messages failed", "queue", q.name, "err", err)
			return
		}
		q.paged -= loaded
		if read < pageBatch {
			// The store holds no more than what was read: whatever the
			// count says, nothing else is out there.
			q.paged, q.pagedBytes = 0, 0
		}
	}
}

// pageBatch is how many stored messages one read brings back.
const pageBatch = 256

// unstored tells the queue that the store no longer holds these settled
// messages: only now may a page read stop skipping them. emptying is what
// beginDelete said of them.
func (q *queue) unstored(seqs []uint64, emptying bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, seq := range seqs {
		delete(q.resident, seq)
	}
	if emptying {
		close(q.emptying)
		q.emptying = nil
	}
}
