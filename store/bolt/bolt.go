// Package bolt is the message store kept on disk: one bbolt file that
// holds every queue's records and the durable subscriptions.
package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/stampede-mq/stampede/store"
)

// File layout, all buckets at the root:
//
//	meta     "version" → uint32 schema version
//	         "seq"     → uint64 ceiling: every Seq handed out is at most this
//	queues   "q"+name → nested bucket of the queue: big-endian uint64 Seq → record
//	         "s"+name → the queue's stats: uint64 count, uint64 body bytes
//	subs     subscription name → destination, queue
//
// A queue's bucket and stats entry exist exactly while it holds records.
// The stats sit beside the bucket so that a commit touching a queue dirties
// one parent page for both, and Queues reads only the "s" keys.
//
// The sequence is reserved in blocks of seqBlock: meta is rewritten only
// when a commit passes the ceiling, not at every commit, and a reopened
// store continues above the ceiling, leaving a gap that nothing minds.
const (
	// SchemaVersion is the layout version this build reads and writes.
	SchemaVersion = 1

	// DBFileName is the file Open keeps in its directory.
	DBFileName = "broker.db"

	bucketMeta   = "meta"
	bucketQueues = "queues"
	bucketSubs   = "subs"
	keyVersion   = "version"
	keySeq       = "seq"
	prefixQueue  = 'q'
	prefixStats  = 's'
	prefixMark   = 'd' // a queue's dispatch mark
	seqBlock     = 1 << 16

	defaultLockTimeout = time.Second
	defaultMaxBatch    = 4096
	// maxBatchBytes bounds the encoded bytes one commit carries, so a burst
	// of large messages does not build one huge transaction.
	maxBatchBytes = 32 << 20
	// scanChunk and scanChunkBytes bound what one Scan read transaction
	// collects: a long read transaction pins pages that writers would
	// otherwise reuse, and fn may be slow.
	scanChunk      = 512
	scanChunkBytes = 4 << 20
)

var (
	// ErrReadOnly is returned by writes to a store opened with
	// Options.ReadOnly.
	ErrReadOnly = errors.New("store: opened read-only")
	// ErrCorrupt is wrapped by errors about a file that is not a store, is
	// damaged, or holds a value that does not decode.
	ErrCorrupt = errors.New("store: not a valid store file or corrupt")
	// ErrSchemaVersion is wrapped by the error for a file whose layout
	// version this build does not know.
	ErrSchemaVersion = errors.New("store: unsupported schema version")
	// ErrLocked is wrapped by the error for a file another process holds
	// open for writing.
	ErrLocked = errors.New("store: file in use by another process")
)

// Options tunes Open. The zero value is the right choice for the
// broker.
type Options struct {
	// LockTimeout bounds the wait for the file lock when another process
	// has the file open; 0 means one second.
	LockTimeout time.Duration
	// ReadOnly opens an existing store for reading; several read-only opens
	// may share a file, and every write returns ErrReadOnly.
	ReadOnly bool
	// MaxBatch caps how many records (or other writes) one group commit
	// carries; 0 means 4096.
	MaxBatch int
	// OnCommit, when set, is told how long each successful group commit
	// took, fsync included, and how many writes it carried; metrics hang
	// off it without the store knowing about them.
	OnCommit func(d time.Duration, writes int)

	// openFile replaces os.OpenFile, so tests can hand bbolt a file that
	// fails the way a broken disk would.
	openFile func(name string, flag int, perm os.FileMode) (*os.File, error)
}

// Store is a message store kept in one bbolt file.
//
// Every write (Append, Delete, SetDeliveries, DeleteQueue and the
// subscription calls) goes through one goroutine that gathers whatever
// writes are waiting into one transaction, so concurrent callers share one
// commit and its fsync; each call returns once its transaction has been
// committed and fsynced, or with the error that stopped it. Deletes and
// delivery counts are fsynced too, although losing one would only cause a
// redelivery: a bbolt commit without fsync may reach the disk with its new
// root before the pages it points to, so skipping it risks the whole file,
// not just the last delete. They cost little because they share commits.
//
// What callers should know beyond the contract of store/storetest:
//   - Seq values increase but are not dense: a reopened store continues
//     above a reserved block, leaving a gap.
//   - Size is the bytes in use, not the file's size (see FileSize): the
//     file never shrinks, but its free pages are reused.
//   - Scan reads in short chunks and is not a snapshot: records appended
//     meanwhile with a higher Seq may be included.
//   - Queue and subscription names must not be empty.
//   - Damage found in the file comes back as errors wrapping ErrCorrupt,
//     never as a panic.
type Store struct {
	db       *bbolt.DB
	path     string
	readOnly bool
	maxBatch int
	onCommit func(time.Duration, int)

	// mu is held for reading by calls that use db or ops, and for writing
	// by Close, so that Close waits for them and later calls see closed.
	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once
	closeErr  error

	ops  chan *writeOp
	done chan struct{} // closed when the writer goroutine has ended

	// seq is the last Seq handed out and ceiling the reserved one in the
	// file; only the writer goroutine uses them after Open returns.
	seq, ceiling uint64

	commits atomic.Int64 // write transactions committed
	decoded atomic.Int64 // records decoded
}

// Open opens the store in dir/broker.db, creating dir (mode 0750) and
// the file when they are missing. It refuses a file that is not a store
// (ErrCorrupt), has an unknown schema version (ErrSchemaVersion) or is in
// use by another process (ErrLocked, after Options.LockTimeout).
func Open(dir string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = defaultLockTimeout
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: data directory: %w", err)
		}
	}
	path := filepath.Join(dir, DBFileName)
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	b := &Store{db: db, path: path, readOnly: opts.ReadOnly, maxBatch: opts.MaxBatch, onCommit: opts.OnCommit}
	if err := b.prepare(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if !b.readOnly {
		b.ops = make(chan *writeOp, 256)
		b.done = make(chan struct{})
		go b.run()
	}
	return b, nil
}

// openDB opens the bbolt file and turns every way that can fail, panics
// included, into an error.
func openDB(path string, opts Options) (db *bbolt.DB, err error) {
	openFile := opts.openFile
	if openFile == nil {
		openFile = os.OpenFile
	}
	var file *os.File
	bo := &bbolt.Options{
		Timeout:  opts.LockTimeout,
		ReadOnly: opts.ReadOnly,
		// The hash-map freelist keeps allocation fast when churn leaves
		// many free pages scattered through the file.
		FreelistType: bbolt.FreelistMapType,
		// The freelist is written at every commit (NoFreelistSync off):
		// without it bbolt rebuilds the list at open by walking every
		// page, which reads all bodies, and it reports damage found on
		// that walk by panicking in a goroutine nobody can recover.
		NoFreelistSync: false,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := openFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	// bbolt reads the file through mmap and trusts what it finds; damaged
	// pages make it index out of range or fault on a page past the end.
	// Both become panics here, and the panic becomes an error.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if file != nil {
				_ = file.Close() // also drops the lock bbolt took
			}
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, p)
		}
	}()
	db, err = bbolt.Open(path, 0o600, bo)
	if err == nil {
		return db, nil
	}
	var errno syscall.Errno
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s: lock not acquired within %v", ErrLocked, path, opts.LockTimeout)
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	default:
		// Invalid or mismatched meta pages, bad checksums, a file too
		// short to hold them: all mean the file is not a usable store.
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
}

// prepare checks the layout, creating it in a new file, and loads seq.
func (b *Store) prepare() error {
	check := func(tx *bbolt.Tx) error {
		info, err := os.Stat(b.path)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if tx.Size() > info.Size() {
			return fmt.Errorf("%w: %s is truncated: %d bytes, needs %d", ErrCorrupt, b.path, info.Size(), tx.Size())
		}
		meta := tx.Bucket([]byte(bucketMeta))
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bbolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("%w: %s is a bbolt file of another program", ErrCorrupt, b.path)
			}
			if !tx.Writable() {
				return fmt.Errorf("%w: %s is empty", ErrCorrupt, b.path)
			}
			return initLayout(tx)
		}
		v := meta.Get([]byte(keyVersion))
		if len(v) != 4 {
			return fmt.Errorf("%w: %s has no schema version", ErrCorrupt, b.path)
		}
		if ver := beUint32(v); ver != SchemaVersion {
			return fmt.Errorf("%w: %s has schema version %d; this build supports version %d",
				ErrSchemaVersion, b.path, ver, SchemaVersion)
		}
		for _, name := range []string{bucketQueues, bucketSubs} {
			if tx.Bucket([]byte(name)) == nil {
				return fmt.Errorf("%w: %s lacks bucket %q", ErrCorrupt, b.path, name)
			}
		}
		s := meta.Get([]byte(keySeq))
		if len(s) != 8 {
			return fmt.Errorf("%w: %s has no sequence", ErrCorrupt, b.path)
		}
		b.seq = beUint64(s)
		b.ceiling = b.seq
		return nil
	}
	if b.readOnly {
		return b.view(check)
	}
	// A write transaction even when nothing changes: its commit also sets
	// bbolt's free-page statistics, which Size uses.
	return b.update(check)
}

func initLayout(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucket([]byte(bucketMeta))
	if err != nil {
		return err
	}
	if err := meta.Put([]byte(keyVersion), beAppendUint32(nil, SchemaVersion)); err != nil {
		return err
	}
	if err := meta.Put([]byte(keySeq), seqKey(0)); err != nil {
		return err
	}
	for _, name := range []string{bucketQueues, bucketSubs} {
		if _, err := tx.CreateBucket([]byte(name)); err != nil {
			return err
		}
	}
	return nil
}

// view runs a read transaction, and update a write transaction, turning a
// panic on a damaged page into an error. bbolt rolls a write transaction
// back when fn panics.
func (b *Store) view(fn func(*bbolt.Tx) error) error { return b.guard(b.db.View, fn) }

func (b *Store) update(fn func(*bbolt.Tx) error) error { return b.guard(b.db.Update, fn) }

func (b *Store) guard(run func(func(*bbolt.Tx) error) error, fn func(*bbolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, b.path, p)
		}
	}()
	return run(fn)
}

// read runs fn under the read lock unless the store is closed.
func (b *Store) read(fn func(*bbolt.Tx) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	return b.view(fn)
}

// Path returns the file the store lives in.
func (b *Store) Path() string { return b.path }

// Append stores recs and sets their Seq fields, increasing within each
// queue in the order given. It returns once the records are fsynced; the
// Seq fields are set only when it succeeds.
func (b *Store) Append(recs []*store.Record) error {
	op := &writeOp{kind: opAppend, recs: recs, vals: make([][]byte, len(recs)), queues: make([]string, len(recs))}
	for i, r := range recs {
		if r == nil {
			return errors.New("store: nil record")
		}
		if err := checkName("queue", r.Queue); err != nil {
			return err
		}
		v, err := encodeRecord(r)
		if err != nil {
			return err
		}
		if len(v) > bbolt.MaxValueSize {
			return fmt.Errorf("store: record of %d bytes is too large", len(v))
		}
		op.vals[i], op.queues[i] = v, r.Queue
		op.size += len(v)
	}
	if len(recs) == 0 {
		return b.checkOpen()
	}
	return b.submit(op)
}

// Delete removes records; missing ones are not an error. Like every write
// it waits for its commit, which it shares with whatever other writes are
// waiting.
func (b *Store) Delete(queue string, seqs ...uint64) error {
	if queue == "" || len(seqs) == 0 {
		return b.checkOpen()
	}
	return b.submit(&writeOp{kind: opDelete, queue: queue, seqs: seqs})
}

// SetDeliveries records new delivery counts, of records in any queues, in
// one commit; a later count for the same record wins, and missing records
// are not an error. A record too damaged to patch is skipped: the others
// are committed, and the error then wraps ErrCorrupt.
func (b *Store) SetDeliveries(counts []store.DeliveryCount) error {
	if len(counts) == 0 {
		return b.checkOpen()
	}
	return b.submit(&writeOp{kind: opSetDeliveries, counts: counts})
}

// DeleteQueue removes every record of queue, and its dispatch mark.
func (b *Store) DeleteQueue(queue string) error {
	if queue == "" {
		return b.checkOpen()
	}
	return b.submit(&writeOp{kind: opDeleteQueue, queue: queue})
}

// SetDispatched sets queue's dispatch mark to seq; it waits for the
// commit like Append. A queue left empty forgets its mark.
func (b *Store) SetDispatched(queue string, seq uint64) error {
	if err := checkName("queue", queue); err != nil {
		return err
	}
	return b.submit(&writeOp{kind: opSetMark, queue: queue, seqs: []uint64{seq}})
}

// PutSubscription creates or replaces a durable subscription. The name
// must not be empty.
func (b *Store) PutSubscription(sub store.Subscription) error {
	if err := checkName("subscription name", sub.Name); err != nil {
		return err
	}
	return b.submit(&writeOp{kind: opPutSub, sub: sub})
}

// DeleteSubscription removes a durable subscription (not its queue).
func (b *Store) DeleteSubscription(name string) error {
	if name == "" {
		return b.checkOpen()
	}
	return b.submit(&writeOp{kind: opDeleteSub, sub: store.Subscription{Name: name}})
}

// Queues lists the queues that hold records, with their sizes, from the
// per-queue summaries alone.
func (b *Store) Queues() ([]store.QueueInfo, error) {
	var out []store.QueueInfo
	err := b.read(func(tx *bbolt.Tx) error {
		out = out[:0]
		c := tx.Bucket([]byte(bucketQueues)).Cursor()
		for k, v := c.Seek([]byte{prefixStats}); len(k) > 0 && k[0] == prefixStats; k, v = c.Next() {
			name := string(k[1:])
			st, err := decodeStats(v)
			if err != nil {
				return fmt.Errorf("%w: queue %q: %v", ErrCorrupt, name, err)
			}
			if st.count > 0 {
				info := store.QueueInfo{Name: name, Count: int(st.count), Bytes: st.bytes}
				if m := tx.Bucket([]byte(bucketQueues)).Get(markKey(name)); len(m) == 8 {
					info.Dispatched = beUint64(m)
				}
				out = append(out, info)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []store.QueueInfo{}
	}
	return out, nil
}

// Scan calls fn for up to limit records of queue with Seq > after, in Seq
// order (limit <= 0: all). It reads in chunks, each in its own short read
// transaction, and calls fn between them with no transaction open; so a
// scan sees records appended while it runs if their Seq is higher than
// the ones it has passed.
func (b *Store) Scan(queue string, after uint64, limit int, fn func(*store.Record) error) error {
	for {
		n := scanChunk
		if limit > 0 && limit < n {
			n = limit
		}
		recs, more, err := b.scanChunk(queue, after, n)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		after = recs[len(recs)-1].Seq
		if limit > 0 {
			if limit -= len(recs); limit == 0 {
				return nil
			}
		}
	}
}

// scanChunk reads up to n records after after; more reports that it
// stopped at n or at the byte bound with records left.
func (b *Store) scanChunk(queue string, after uint64, n int) (recs []*store.Record, more bool, err error) {
	if queue == "" || after == ^uint64(0) {
		return nil, false, b.checkOpen()
	}
	err = b.read(func(tx *bbolt.Tx) error {
		recs, more = recs[:0], false
		qb := tx.Bucket([]byte(bucketQueues)).Bucket(queueKey(queue))
		if qb == nil {
			return nil
		}
		c := qb.Cursor()
		size := 0
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			if len(recs) == n || size >= scanChunkBytes {
				more = true
				return nil
			}
			if len(k) != 8 {
				return fmt.Errorf("%w: queue %q: key of %d bytes", ErrCorrupt, queue, len(k))
			}
			r, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%w: queue %q seq %d: %v", ErrCorrupt, queue, beUint64(k), err)
			}
			b.decoded.Add(1)
			r.Seq, r.Queue = beUint64(k), queue
			recs = append(recs, r)
			size += len(v)
		}
		return nil
	})
	return recs, more, err
}

// Subscriptions lists the durable subscriptions.
func (b *Store) Subscriptions() ([]store.Subscription, error) {
	out := []store.Subscription{}
	err := b.read(func(tx *bbolt.Tx) error {
		out = out[:0]
		return tx.Bucket([]byte(bucketSubs)).ForEach(func(k, v []byte) error {
			s, err := decodeSubscription(string(k), v)
			if err != nil {
				return fmt.Errorf("%w: subscription %q: %v", ErrCorrupt, k, err)
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Size reports the bytes of the pages in use, that is the file's
// high-water mark less its free pages. It falls when records are deleted,
// although the file does not shrink (bbolt reuses the free pages instead),
// so a limit on it is a limit on what is stored.
func (b *Store) Size() (int64, error) {
	var size int64
	err := b.read(func(tx *bbolt.Tx) error {
		size = tx.Size()
		return nil
	})
	if err != nil {
		return 0, err
	}
	size -= int64(b.db.Stats().FreeAlloc)
	return max(size, 0), nil
}

// FileSize reports the size of the file on disk, free pages included.
func (b *Store) FileSize() (int64, error) {
	if err := b.checkOpen(); err != nil {
		return 0, err
	}
	info, err := os.Stat(b.path)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return info.Size(), nil
}

// Close releases the store. Writes already waiting are committed first.
// Calling Close again does nothing and returns the first call's result.
func (b *Store) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		if b.ops != nil {
			close(b.ops)
		}
		b.mu.Unlock()
		if b.done != nil {
			<-b.done
		}
		b.closeErr = b.db.Close()
	})
	return b.closeErr
}

func (b *Store) checkOpen() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return store.ErrClosed
	}
	return nil
}

// checkName refuses names bbolt cannot use as keys.
func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("store: empty %s", what)
	}
	if len(name) >= bbolt.MaxKeySize { // one byte goes to the key prefix
		return fmt.Errorf("store: %s of %d bytes is too long", what, len(name))
	}
	return nil
}

// queueKey and statsKey name a queue's bucket and stats in bucketQueues.
func queueKey(name string) []byte { return append([]byte{prefixQueue}, name...) }

func statsKey(name string) []byte { return append([]byte{prefixStats}, name...) }

func markKey(name string) []byte { return append([]byte{prefixMark}, name...) }
