package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/stampede-mq/stampede/store"
)

const (
	// A writer lingers at most 1/lingerFraction of the last commit's
	// duration, and never more than maxLinger, for more callers to join.
	lingerFraction = 2
	maxLinger      = 2 * time.Millisecond
	// lingerGap ends the lingering when no caller has come for this long.
	lingerGap = 50 * time.Microsecond
)

type opKind uint8

const (
	opAppend opKind = iota
	opDelete
	opSetDeliveries
	opDeleteQueue
	opPutSub
	opDeleteSub
	opSetMark
)

// writeOp is one write call waiting for the writer goroutine. The caller
// blocks on done until the transaction holding the op has committed or
// failed, so the writer may use the op's slices meanwhile.
type writeOp struct {
	kind   opKind
	recs   []*store.Record
	vals   [][]byte // recs encoded, by the caller's goroutine
	queues []string // recs' queues, copied when encoding
	size   int      // bytes in vals
	queue  string
	seqs   []uint64
	counts []store.DeliveryCount
	sub    store.Subscription
	// damaged is the error for counts skipped because their record could
	// not be patched; the op reports it once the rest have committed.
	damaged error

	first uint64 // Seq of recs[0] in the current attempt
	done  chan error
}

// weight is what the op counts against Options.MaxBatch.
func (op *writeOp) weight() int {
	return max(len(op.vals), len(op.seqs), len(op.counts), 1)
}

// submit hands op to the writer goroutine and waits for its result.
func (b *Store) submit(op *writeOp) error {
	if b.readOnly {
		if err := b.checkOpen(); err != nil {
			return err
		}
		return ErrReadOnly
	}
	op.done = make(chan error, 1)
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return store.ErrClosed
	}
	// Close waits for the read lock to be released, and the writer keeps
	// receiving until Close closes ops, so this send cannot block forever.
	b.ops <- op
	b.mu.RUnlock()
	return <-op.done
}

// run is the writer goroutine: it takes the first waiting op, adds every
// op already queued behind it up to the batch bounds, and commits them in
// one transaction. Writes arriving during a commit queue up for the next
// one, which is what makes concurrent callers share an fsync; a lone
// caller is never delayed.
//
// Under concurrency, though, callers fall into two cohorts: those that
// arrived during a commit, and those it has just released, which come back
// a moment after the next commit has started. So when the last or the
// current batch had several callers, the writer lingers briefly (until
// callers stop arriving, and at most a fraction of the last commit's time)
// to let the released cohort join.
func (b *Store) run() {
	defer close(b.done)
	// Faults on damaged pages become panics that update recovers; the
	// setting dies with this goroutine.
	debug.SetPanicOnFault(true)
	var lastOps int
	var lastTook time.Duration
	for op := range b.ops {
		batch := []*writeOp{op}
		weight, size := op.weight(), op.size
		full := func() bool { return weight >= b.maxBatch || size >= maxBatchBytes }
		add := func(next *writeOp) {
			batch = append(batch, next)
			weight += next.weight()
			size += next.size
		}
		open := true
	drain:
		for !full() {
			select {
			case next, ok := <-b.ops:
				if !ok {
					open = false
					break drain
				}
				add(next)
			default:
				break drain
			}
		}
		if limit := min(lastTook/lingerFraction, maxLinger); open && !full() && limit > 0 && (len(batch) > 1 || lastOps > 1) {
			// Poll rather than sleep on a timer: Go's timers are too
			// coarse for waits of tens of microseconds. Gosched hands the
			// processor to the callers being waited for.
			begin := time.Now()
			lastArrival := begin
		wait:
			for !full() {
				select {
				case next, ok := <-b.ops:
					if !ok {
						break wait
					}
					add(next)
					lastArrival = time.Now()
				default:
					// The released callers come back in quick succession;
					// a pause of lingerGap means they are all in.
					if now := time.Now(); now.Sub(begin) >= limit || now.Sub(lastArrival) >= lingerGap {
						break wait
					}
					runtime.Gosched()
				}
			}
		}
		start := time.Now()
		b.commit(batch)
		lastOps, lastTook = len(batch), time.Since(start)
	}
}

// commit applies batch in one transaction and reports to every op. An op
// that fails on its own (rather than the commit failing) is answered with
// its error and the rest are retried without it, so one bad call does not
// fail its neighbours. Seq values are computed afresh on each attempt and
// adopted only after a successful commit.
func (b *Store) commit(batch []*writeOp) {
	for len(batch) > 0 {
		bad := -1
		var badErr error
		var last, ceiling uint64
		start := time.Now()
		err := b.update(func(tx *bbolt.Tx) error {
			w := newTxWriter(tx, b.seq, b.ceiling)
			for i, op := range batch {
				if err := w.safeApply(op); err != nil {
					bad, badErr = i, err
					return err
				}
			}
			if err := w.finish(); err != nil {
				return err
			}
			last, ceiling = w.seq, w.ceiling
			return nil
		})
		if bad >= 0 {
			batch[bad].done <- badErr
			batch = slices.Delete(batch, bad, bad+1)
			continue
		}
		if err == nil {
			b.seq, b.ceiling = last, ceiling
			b.commits.Add(1)
			if b.onCommit != nil {
				b.onCommit(time.Since(start), len(batch))
			}
			for _, op := range batch {
				for i, r := range op.recs {
					r.Seq = op.first + uint64(i)
				}
			}
		} else {
			err = fmt.Errorf("store: commit: %w", err)
		}
		for _, op := range batch {
			if err == nil {
				op.done <- op.damaged
			} else {
				op.done <- err
			}
		}
		return
	}
}

// txWriter applies ops inside one write transaction, keeping the touched
// queues' buckets and stats at hand and writing the stats once at the end.
type txWriter struct {
	tx      *bbolt.Tx
	queues  *bbolt.Bucket
	subs    *bbolt.Bucket
	seq     uint64
	ceiling uint64
	buckets map[string]*bbolt.Bucket
	touched map[string]*queueStats
	// recount names queues whose stats cannot be updated by difference
	// because a record's length could not be read.
	recount map[string]bool
}

func newTxWriter(tx *bbolt.Tx, seq, ceiling uint64) *txWriter {
	return &txWriter{
		tx:      tx,
		queues:  tx.Bucket([]byte(bucketQueues)),
		subs:    tx.Bucket([]byte(bucketSubs)),
		seq:     seq,
		ceiling: ceiling,
		buckets: make(map[string]*bbolt.Bucket),
		touched: make(map[string]*queueStats),
		recount: make(map[string]bool),
	}
}

// bucket returns queue's bucket, creating it when create is set; nil when
// it does not exist and create is not set.
func (w *txWriter) bucket(queue string, create bool) (*bbolt.Bucket, error) {
	qb, known := w.buckets[queue]
	if !known {
		qb = w.queues.Bucket(queueKey(queue))
		w.buckets[queue] = qb
	}
	if qb != nil || !create {
		if qb != nil {
			// Keys only ever grow at the end, so full pages waste nothing.
			qb.FillPercent = 1.0
		}
		return qb, nil
	}
	qb, err := w.queues.CreateBucket(queueKey(queue))
	if err != nil {
		return nil, fmt.Errorf("queue %q: %w", queue, err)
	}
	qb.FillPercent = 1.0
	w.buckets[queue] = qb
	return qb, nil
}

// stat returns queue's stats for updating; finish writes them back.
func (w *txWriter) stat(queue string) (*queueStats, error) {
	if st := w.touched[queue]; st != nil {
		return st, nil
	}
	st := &queueStats{}
	if v := w.queues.Get(statsKey(queue)); v != nil {
		s, err := decodeStats(v)
		if err != nil {
			return nil, fmt.Errorf("%w: queue %q: %v", ErrCorrupt, queue, err)
		}
		*st = s
	}
	w.touched[queue] = st
	return st, nil
}

// safeApply is apply with a panic (bbolt meeting a damaged page) turned
// into that op's error, so that the rest of the batch can still commit.
func (w *txWriter) safeApply(op *writeOp) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, p)
		}
	}()
	return w.apply(op)
}

func (w *txWriter) apply(op *writeOp) error {
	switch op.kind {
	case opAppend:
		return w.append(op)
	case opDelete:
		return w.delete(op)
	case opSetDeliveries:
		return w.setDeliveries(op)
	case opDeleteQueue:
		return w.deleteQueue(op.queue)
	case opSetMark:
		if err := w.queues.Put(markKey(op.queue), seqKey(op.seqs[0])); err != nil {
			return fmt.Errorf("queue %q: %w", op.queue, err)
		}
	case opPutSub:
		if err := w.subs.Put([]byte(op.sub.Name), encodeSubscription(op.sub)); err != nil {
			return fmt.Errorf("subscription %q: %w", op.sub.Name, err)
		}
	case opDeleteSub:
		if err := w.subs.Delete([]byte(op.sub.Name)); err != nil {
			return fmt.Errorf("subscription %q: %w", op.sub.Name, err)
		}
	}
	return nil
}

func (w *txWriter) append(op *writeOp) error {
	for i, v := range op.vals {
		q := op.queues[i]
		qb, err := w.bucket(q, true)
		if err != nil {
			return err
		}
		st, err := w.stat(q)
		if err != nil {
			return err
		}
		w.seq++
		if i == 0 {
			op.first = w.seq
		}
		if err := qb.Put(seqKey(w.seq), v); err != nil {
			return fmt.Errorf("queue %q: %w", q, err)
		}
		bodyLen, _ := recordBodyLen(v)
		st.count++
		st.bytes += bodyLen
	}
	return nil
}

func (w *txWriter) delete(op *writeOp) error {
	qb, err := w.bucket(op.queue, false)
	if qb == nil || err != nil {
		return err
	}
	st, err := w.stat(op.queue)
	if err != nil {
		return err
	}
	for _, seq := range op.seqs {
		k := seqKey(seq)
		v := qb.Get(k)
		if v == nil {
			continue
		}
		// A value too damaged to read its length still goes: deleting
		// is how a damaged record is got rid of.
		bodyLen, err := recordBodyLen(v)
		if err != nil {
			w.recount[op.queue] = true
		}
		if err := qb.Delete(k); err != nil {
			return fmt.Errorf("queue %q: %w", op.queue, err)
		}
		st.count--
		st.bytes -= bodyLen
	}
	return nil
}

// setDeliveries patches each count into its record in place. A record too
// damaged to patch is skipped rather than failing the op, so that it does
// not cost the other records their counts.
func (w *txWriter) setDeliveries(op *writeOp) error {
	op.damaged = nil // from an earlier attempt at the batch
	for _, c := range op.counts {
		qb, err := w.bucket(c.Queue, false)
		if err != nil {
			return err
		}
		if qb == nil {
			continue
		}
		k := seqKey(c.Seq)
		v := qb.Get(k)
		if v == nil {
			continue
		}
		if _, err := recordBodyLen(v); err != nil {
			op.damaged = fmt.Errorf("%w: queue %q seq %d: %v", ErrCorrupt, c.Queue, c.Seq, err)
			continue
		}
		// v is bbolt's memory; Put needs a value of our own.
		nv := bytes.Clone(v)
		binary.BigEndian.PutUint32(nv[offDeliveries:], c.N)
		if err := qb.Put(k, nv); err != nil {
			return fmt.Errorf("queue %q: %w", c.Queue, err)
		}
	}
	return nil
}

func (w *txWriter) deleteQueue(queue string) error {
	if qb, _ := w.bucket(queue, false); qb != nil {
		if err := w.queues.DeleteBucket(queueKey(queue)); err != nil {
			return fmt.Errorf("queue %q: %w", queue, err)
		}
	}
	w.buckets[queue] = nil
	w.touched[queue] = &queueStats{}
	if err := w.queues.Delete(markKey(queue)); err != nil {
		return fmt.Errorf("queue %q: %w", queue, err)
	}
	return nil
}

// finish writes the touched queues' stats, drops queues left empty and
// moves the sequence ceiling when it has been passed.
func (w *txWriter) finish() error {
	for q, st := range w.touched {
		qb, err := w.bucket(q, false)
		if err != nil {
			return err
		}
		if w.recount[q] && qb != nil {
			*st = countQueue(qb)
		}
		if st.count <= 0 && qb != nil {
			if k, _ := qb.Cursor().First(); k == nil {
				if err := w.queues.DeleteBucket(queueKey(q)); err != nil {
					return fmt.Errorf("queue %q: %w", q, err)
				}
				w.buckets[q] = nil
			} else {
				// The stats disagree with the records; trust the records.
				*st = countQueue(qb)
			}
		}
		if st.count <= 0 {
			if err := w.queues.Delete(statsKey(q)); err != nil {
				return err
			}
			if err := w.queues.Delete(markKey(q)); err != nil {
				return err
			}
			continue
		}
		if err := w.queues.Put(statsKey(q), encodeStats(*st)); err != nil {
			return err
		}
	}
	if w.seq > w.ceiling {
		w.ceiling = w.seq + seqBlock
		meta := w.tx.Bucket([]byte(bucketMeta))
		if err := meta.Put([]byte(keySeq), seqKey(w.ceiling)); err != nil {
			return err
		}
	}
	return nil
}

func countQueue(qb *bbolt.Bucket) queueStats {
	var st queueStats
	c := qb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n, _ := recordBodyLen(v)
		st.count++
		st.bytes += n
	}
	return st
}
