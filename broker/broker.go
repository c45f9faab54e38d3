// Package broker routes STOMP frames between sessions: topics fan out to
// every matching subscription, queues hand each message to exactly one
// consumer. Transports hand it connections through Serve; it knows nothing
// of sockets or WebSocket.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// Options configures a Broker. Zero fields take the defaults listed in
// DefaultOptions.
type Options struct {
	// Limits bound frames read from clients.
	Limits stomp.Limits
	// MaxConnections bounds concurrent client connections.
	MaxConnections int
	// MaxSubscriptions bounds subscriptions per connection.
	MaxSubscriptions int
	// MaxOutboundBytes bounds each connection's outbound queue.
	MaxOutboundBytes int
	// HeartbeatMin and HeartbeatMax clamp negotiated heart-beat intervals.
	HeartbeatMin, HeartbeatMax time.Duration
	// HeartbeatGrace is how many negotiated intervals a client may stay
	// silent before it is disconnected.
	HeartbeatGrace float64
	// ConnectTimeout is how long a new connection has to send CONNECT.
	ConnectTimeout time.Duration
	// MaxRedeliveries is how often a message is redelivered before it is
	// dead-lettered; negative means never redeliver.
	MaxRedeliveries int
	// DefaultPrefetch is the unacked-message limit of client-ack
	// subscriptions that give no prefetch-count.
	DefaultPrefetch int
	// QueueMemoryBytes is the window of persistent messages a queue keeps
	// in memory; the rest wait in the store.
	QueueMemoryBytes int
	// MaxStoreBytes refuses persistent messages while the store is larger;
	// zero means no limit.
	MaxStoreBytes int64
	// DeadLetterExpired sends expired queue messages to the dead letter
	// queue instead of dropping them.
	DeadLetterExpired bool
	// Authenticate checks CONNECT credentials (login and passcode, or a
	// token the transport found in ConnInfo.Authorization) and returns who
	// the client is and what it may do. Nil lets everyone do anything.
	Authenticate func(info ConnInfo, login, passcode string) (Principal, error)
	// FailedLoginDelay slows down password guessing: a refused CONNECT
	// waits this long before its ERROR.
	FailedLoginDelay time.Duration
	// MaxConnectionsPerIP bounds concurrent connections from one address.
	MaxConnectionsPerIP int
	// MaxTransactions bounds open transactions per connection, and
	// MaxTransactionFrames the frames one transaction may hold.
	MaxTransactions, MaxTransactionFrames int
	// MaxQueueMessages and MaxQueueBytes bound a queue (0: unbounded). A
	// producer sending to a full queue waits up to SendBlockTimeout.
	MaxQueueMessages int
	MaxQueueBytes    int64
	// SlowConsumerTimeout is how long a topic subscriber may keep its
	// publishers waiting for it to take what it was sent before it is
	// disconnected as too slow.
	SlowConsumerTimeout time.Duration
	// MaxTransientQueueBytes bounds the non-persistent messages a queue
	// holds, which live only in memory: past it, producers of such
	// messages wait as for a full queue (0: the default, 64 MiB;
	// negative: unbounded).
	MaxTransientQueueBytes int64
	SendBlockTimeout       time.Duration
	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns the defaults the broker runs with.
func DefaultOptions() Options {
	return Options{
		Limits:           stomp.DefaultLimits(),
		MaxConnections:   100000,
		MaxSubscriptions: 1024,
		MaxOutboundBytes: 8 << 20,
		HeartbeatMin:     time.Second,
		HeartbeatMax:     time.Minute,
		HeartbeatGrace:   3,
		ConnectTimeout:   10 * time.Second,
		MaxRedeliveries:  10,
		DefaultPrefetch:  1000,
		QueueMemoryBytes: 16 << 20,
		FailedLoginDelay: 500 * time.Millisecond,

		MaxConnectionsPerIP:  10000,
		MaxTransactions:      64,
		MaxTransactionFrames: 10000,
		SendBlockTimeout:     30 * time.Second,

		MaxTransientQueueBytes: 64 << 20,
		SlowConsumerTimeout:    2 * time.Second,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	setInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setInt(&o.Limits.MaxBodyBytes, d.Limits.MaxBodyBytes)
	setInt(&o.Limits.MaxHeaderBytes, d.Limits.MaxHeaderBytes)
	setInt(&o.Limits.MaxHeaders, d.Limits.MaxHeaders)
	setInt(&o.MaxConnections, d.MaxConnections)
	setInt(&o.MaxSubscriptions, d.MaxSubscriptions)
	setInt(&o.MaxOutboundBytes, d.MaxOutboundBytes)
	setDur(&o.HeartbeatMin, d.HeartbeatMin)
	setDur(&o.HeartbeatMax, d.HeartbeatMax)
	setDur(&o.ConnectTimeout, d.ConnectTimeout)
	setInt(&o.DefaultPrefetch, d.DefaultPrefetch)
	setInt(&o.QueueMemoryBytes, d.QueueMemoryBytes)
	setInt(&o.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
	setInt(&o.MaxTransactions, d.MaxTransactions)
	setInt(&o.MaxTransactionFrames, d.MaxTransactionFrames)
	setDur(&o.SendBlockTimeout, d.SendBlockTimeout)
	setDur(&o.SlowConsumerTimeout, d.SlowConsumerTimeout)
	if o.MaxTransientQueueBytes == 0 {
		o.MaxTransientQueueBytes = d.MaxTransientQueueBytes
	}
	if o.HeartbeatGrace <= 0 {
		o.HeartbeatGrace = d.HeartbeatGrace
	}
	switch {
	case o.MaxRedeliveries == 0:
		o.MaxRedeliveries = d.MaxRedeliveries
	case o.MaxRedeliveries < 0:
		o.MaxRedeliveries = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Broker is the message router. It is safe for concurrent use.
type Broker struct {
	opts   Options
	log    *slog.Logger
	store  Store
	topics *topicIndex
	idBase string
	msgSeq atomic.Uint64
	conSeq atomic.Uint64

	mu        sync.Mutex
	sessions  map[*session]struct{}
	perIP     map[string]int
	clientIDs map[string]*session
	queues    map[string]*queue
	closing   bool
	sessWG    sync.WaitGroup

	durables   durables
	writer     storeWriter
	limits     limitCounters
	stats      counters
	topicNames sync.Map // topic name → *topicStats
	taps       taps
	started    time.Time

	timers timers

	// readBufs lends sessions their read buffers (*[]byte of
	// readBufSize), so connections waiting for input hold none.
	readBufs sync.Pool
}

// readBufSize is one read's worth of input: large enough that a busy
// publisher is read in few system calls.
const readBufSize = 16 << 10

type counters struct {
	published, delivered, expired, deadLettered atomic.Uint64
	slowConsumers                               atomic.Uint64
	acked, nacked, redelivered                  atomic.Uint64
	framesIn, framesOut                         [len(commandNames)]atomic.Uint64
}

// commandNames are the frame commands counted one by one; anything else
// counts as "other".
var commandNames = [...]string{
	stomp.CONNECT, stomp.STOMP, stomp.SEND, stomp.SUBSCRIBE, stomp.UNSUBSCRIBE,
	stomp.ACK, stomp.NACK, stomp.BEGIN, stomp.COMMIT, stomp.ABORT, stomp.DISCONNECT,
	stomp.CONNECTED, stomp.MESSAGE, stomp.RECEIPT, stomp.ERROR, "other",
}

func commandIndex(cmd string) int {
	for i, c := range commandNames {
		if c == cmd {
			return i
		}
	}
	return len(commandNames) - 1
}

func byCommand(cs *[len(commandNames)]atomic.Uint64) map[string]uint64 {
	out := make(map[string]uint64, len(commandNames))
	for i := range cs {
		if n := cs[i].Load(); n > 0 {
			out[commandNames[i]] = n
		}
	}
	return out
}

// New returns a broker that keeps persistent messages in st and reloads
// the queues st already holds.
func New(opts Options, st Store) (*Broker, error) {
	opts.fill()
	b := &Broker{
		opts:      opts,
		log:       opts.Logger,
		store:     st,
		topics:    newTopicIndex(),
		idBase:    strconv.FormatInt(time.Now().UnixNano(), 36),
		sessions:  make(map[*session]struct{}),
		perIP:     make(map[string]int),
		clientIDs: make(map[string]*session),
		queues:    make(map[string]*queue),
		started:   time.Now(),
	}
	b.timers.wake = make(chan struct{}, 1)
	b.readBufs.New = func() any {
		buf := make([]byte, readBufSize)
		return &buf
	}
	b.durables.m = make(map[string]*durable)
	b.writer.b = b
	b.writer.idle = sync.NewCond(&b.writer.mu)
	if err := b.recover(); err != nil {
		return nil, err
	}
	return b, nil
}

// recover rebuilds durable subscriptions and queues from the store. Each
// queue reads back only its first window of messages; the rest stay paged
// out. Messages handed out before and not acked come back marked
// redelivered.
func (b *Broker) recover() error {
	subs, err := b.store.Subscriptions()
	if err != nil {
		return err
	}
	for _, sub := range subs {
		b.addDurable(sub)
	}
	infos, err := b.store.Queues()
	if err != nil {
		return err
	}
	for _, info := range infos {
		q := b.queue(info.Name, true)
		q.mu.Lock()
		q.mark, q.recoveredMark = info.Dispatched, info.Dispatched
		q.paged = info.Count
		q.pageIn()
		q.mu.Unlock()
	}
	return nil
}

func (b *Broker) nextMessageID() string {
	return b.idBase + "-" + strconv.FormatUint(b.msgSeq.Add(1), 10)
}

// queue returns the named queue, creating it when create is set.
func (b *Broker) queue(name string, create bool) *queue {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queues[name]
	if q == nil && create {
		q = &queue{b: b, name: name}
		b.queues[name] = q
	}
	return q
}

func (b *Broker) dropQueue(q *queue) {
	b.mu.Lock()
	if b.queues[q.name] == q {
		delete(b.queues, q.name)
	}
	b.mu.Unlock()
}

// ErrStoreFull refuses a persistent message when the store is over
// MaxStoreBytes.
var ErrStoreFull = errors.New("message store is full")

// publish routes messages to their destinations: queues keep them, topics
// fan them out to live subscribers and to durable subscriptions' queues.
// Every persistent copy that a queue will hold is stored first, so a
// receipt sent after publish returns means the message is safe.
func (b *Broker) publish(ms []*message) error { return b.publishFrom(nil, ms) }

// publishFrom is publish on behalf of a client session, which is held
// back while a topic subscriber it has just delivered to is congested
// (see awaitSubscribers): a publisher goes no faster than its
// subscribers take its messages.
func (b *Broker) publishFrom(from *session, ms []*message) error {
	now := time.Now().UnixMilli()
	type route struct {
		m      *message
		queues []*queue   // queues that take m (or its copies)
		copies []*message // the message each of those queues holds
	}
	routes := make([]route, 0, len(ms))
	var recs []*store.Record
	var stored []*message
	for _, m := range ms {
		r := route{m: m}
		if isQueue(m.destination) {
			r.queues = []*queue{b.queue(m.destination, true)}
			r.copies = []*message{m}
		} else if !m.expired(now) {
			for _, d := range b.matchDurables(m.destination) {
				r.queues = append(r.queues, d.q)
				r.copies = append(r.copies, m.copyFor(d.q.name))
			}
		}
		if m.persistent {
			for _, c := range r.copies {
				recs = append(recs, c.record())
				stored = append(stored, c)
			}
		}
		routes = append(routes, r)
	}
	if len(recs) > 0 {
		if max := b.opts.MaxStoreBytes; max > 0 {
			if size, err := b.store.Size(); err != nil || size >= max {
				return fmt.Errorf("%w (max %d bytes)", ErrStoreFull, max)
			}
		}
		if err := b.store.Append(recs); err != nil {
			b.log.Error("storing persistent messages failed", "err", err)
			return fmt.Errorf("message not stored: %w", err)
		}
		for i, c := range stored {
			c.seq = recs[i].Seq
		}
	}
	var subs, congested []*topicSub
	for _, r := range routes {
		m := r.m
		b.stats.published.Add(1)
		b.notifyTaps(m)
		for i, q := range r.queues {
			q.enqueue(r.copies[i])
		}
		if isQueue(m.destination) {
			continue
		}
		ts := b.topicCounter(m.destination)
		ts.published.Add(1)
		if m.expired(now) {
			b.stats.expired.Add(1)
			continue
		}
		subs = b.topics.match(m.destination, subs[:0])
		for _, sub := range subs {
			ok, busy := sub.deliver(m)
			if ok {
				b.stats.delivered.Add(1)
				ts.delivered.Add(1)
				if busy && from != nil && sub.s != from && !slices.Contains(congested, sub) {
					congested = append(congested, sub)
				}
				continue
			}
			b.dropSlow(sub)
		}
	}
	if len(congested) > 0 {
		from.awaitSubscribers(congested)
	}
	return nil
}

// dropSlow disconnects a topic subscriber that cannot keep up.
func (b *Broker) dropSlow(sub *topicSub) {
	if sub.s.fail("slow consumer: subscription "+sub.id+" cannot keep up", "") {
		b.stats.slowConsumers.Add(1)
	}
}

// awaitSubscribers holds the publishing session s until each congested
// subscriber's outbound queue is relieved (see outbox). One that
// stays congested for SlowConsumerTimeout is disconnected as too slow, so
// a stalled client holds its publishers back only that long.
func (s *session) awaitSubscribers(congested []*topicSub) {
	deadline := time.NewTimer(s.b.opts.SlowConsumerTimeout)
	defer deadline.Stop()
	for _, sub := range congested {
		if !sub.s.out.waitRelieved(deadline.C, s.writerDone) {
			s.b.dropSlow(sub)
		}
	}
}

func (m *message) record() *store.Record {
	r := &store.Record{
		Queue: m.queue, ID: m.id, Body: m.wire[:m.bodyLen()],
		Priority: m.priority, Expires: m.expires, Timestamp: m.timestamp,
		Deliveries: m.deliveries,
	}
	r.Headers = make([][2]string, len(m.headers), len(m.headers)+1)
	for i, h := range m.headers {
		r.Headers[i] = [2]string{h.Key, h.Value}
	}
	if m.destination != m.queue {
		r.Headers = append(r.Headers, [2]string{destinationKey, m.destination})
	}
	return r
}

// messageFromRecord rebuilds a stored message held by queue name.
func messageFromRecord(r *store.Record, name string) *message {
	m := &message{
		id: r.ID, queue: name, priority: min(r.Priority, 9),
		expires: r.Expires, timestamp: r.Timestamp, persistent: true,
		deliveries: r.Deliveries, seq: r.Seq, tails: new(headTails),
	}
	m.destination = name
	m.headers = make([]stomp.Header, 0, len(r.Headers))
	for _, h := range r.Headers {
		if h[0] == destinationKey {
			m.destination = h[1]
			continue
		}
		m.headers = append(m.headers, stomp.Header{Key: h[0], Value: h[1]})
	}
	m.wire = append(r.Body[:len(r.Body):len(r.Body)], 0)
	m.binary = !utf8.Valid(r.Body)
	return m
}

// apply carries out what a queue change left to do once its lock is
// released: dead letters now, store bookkeeping in the background.
func (b *Broker) apply(q *queue, fx *effects) {
	b.stats.expired.Add(uint64(fx.expired))
	var ops []storeOp
	for _, m := range fx.deletes {
		if m.persistent && m.seq != 0 {
			ops = append(ops, storeOp{q: q, seq: m.seq, del: true})
		}
	}
	for _, m := range fx.redeliver {
		ops = append(ops, storeOp{q: q, seq: m.seq, deliveries: m.deliveries})
	}
	for _, d := range fx.dead {
		// The dead letter is stored before the original goes, so a
		// crash in between duplicates it rather than losing it.
		if dlq, ok := dlqName(q.name); ok && !q.temp {
			b.stats.deadLettered.Add(1)
			dm := d.m.withDestination(b.nextMessageID(), dlq, deathHeaders(d.m.destination, d.reason)...)
			if err := b.publish([]*message{dm}); err != nil {
				b.log.Error("dead-lettering failed; the message stays", "queue", q.name, "err", err)
				continue
			}
		} else {
			b.log.Warn("message dropped: no dead letter queue", "queue", q.name, "reason", d.reason)
		}
		if d.m.persistent && d.m.seq != 0 {
			ops = append(ops, storeOp{q: q, seq: d.m.seq, del: true})
		}
	}
	b.writer.add(ops...)
}

// Serve runs one client connection until it ends. It returns after the
// session has been cleaned up and the transport closed.
func (b *Broker) Serve(t Transport) {
	s := newSession(b, t)
	ip := hostOf(s.info.RemoteAddr)
	b.mu.Lock()
	refuse := ""
	switch {
	case b.closing:
		refuse = "server shutting down"
	case len(b.sessions) >= b.opts.MaxConnections:
		refuse = limitError("connection", b.opts.MaxConnections).Error()
		b.limits.hit("connections")
	case b.perIP[ip] >= b.opts.MaxConnectionsPerIP:
		refuse = limitError("connections per address", b.opts.MaxConnectionsPerIP).Error()
		b.limits.hit("connections-per-ip")
	default:
		b.sessions[s] = struct{}{}
		b.perIP[ip]++
		b.sessWG.Add(1)
	}
	b.mu.Unlock()
	if refuse != "" {
		s.refuse(refuse)
		return
	}
	defer b.sessWG.Done()
	s.run()
	b.mu.Lock()
	if b.perIP[ip]--; b.perIP[ip] <= 0 {
		delete(b.perIP, ip)
	}
	delete(b.sessions, s)
	b.mu.Unlock()
}

// claimClientID registers a CONNECT client-id; a second live connection
// with the same id is refused.
func (b *Broker) claimClientID(id string, s *session) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if other, ok := b.clientIDs[id]; ok && other != s {
		return false
	}
	b.clientIDs[id] = s
	return true
}

func (b *Broker) releaseClientID(id string, s *session) {
	b.mu.Lock()
	if b.clientIDs[id] == s {
		delete(b.clientIDs, id)
	}
	b.mu.Unlock()
}

// Shutdown stops taking connections, tells every client "server shutting
// down" after the frames already queued for it, and waits for sessions to
// end until ctx is done, when it closes the rest outright.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	all := make([]*session, 0, len(b.sessions))
	for s := range b.sessions {
		all = append(all, s)
	}
	b.mu.Unlock()
	for _, s := range all {
		s.fail("server shutting down", "")
	}
	done := make(chan struct{})
	go func() {
		b.sessWG.Wait()
		// Settled messages leave the store before it is closed, so a
		// clean restart redelivers nothing that was acked, and the
		// dispatch marks come down to what was really delivered.
		b.writer.flush()
		b.mu.Lock()
		qs := make([]*queue, 0, len(b.queues))
		for _, q := range b.queues {
			qs = append(qs, q)
		}
		b.mu.Unlock()
		for _, q := range qs {
			q.settleMark()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, s := range all {
			s.t.Close()
		}
		<-done
		return errors.New("shutdown: sessions closed before their frames were flushed")
	}
}

// Stats is a snapshot of broker-wide figures.
type Stats struct {
	Uptime        time.Duration
	Connections   int
	Queues        []QueueStats
	Subscriptions int // topic subscriptions
	Published     uint64
	Delivered     uint64
	Expired       uint64
	DeadLettered  uint64
	SlowConsumers uint64
	Acked         uint64
	Nacked        uint64
	Redelivered   uint64
	// FramesIn and FramesOut count frames by command.
	FramesIn, FramesOut map[string]uint64
	// Refusals counts what limits and permissions turned away, by name.
	Refusals map[string]uint64
}

// Stats returns current figures.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	st := Stats{Connections: len(b.sessions), Uptime: time.Since(b.started)}
	qs := make([]*queue, 0, len(b.queues))
	for _, q := range b.queues {
		qs = append(qs, q)
	}
	b.mu.Unlock()
	for _, q := range qs {
		st.Queues = append(st.Queues, q.stats())
	}
	st.Subscriptions = b.topics.count()
	st.Published = b.stats.published.Load()
	st.Delivered = b.stats.delivered.Load()
	st.Expired = b.stats.expired.Load()
	st.DeadLettered = b.stats.deadLettered.Load()
	st.SlowConsumers = b.stats.slowConsumers.Load()
	st.Refusals = b.limits.snapshot()
	st.Acked = b.stats.acked.Load()
	st.Nacked = b.stats.nacked.Load()
	st.Redelivered = b.stats.redelivered.Load()
	st.FramesIn = byCommand(&b.stats.framesIn)
	// Every MESSAGE is a delivery; counting it there keeps the fan-out
	// path free of another atomic per subscriber.
	b.stats.framesOut[commandIndex(stomp.MESSAGE)].Store(st.Delivered)
	st.FramesOut = byCommand(&b.stats.framesOut)
	return st
}
