package broker

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// local is the router of a single broker: topics fan out from an index in
// memory, queues and durable subscriptions live in memory with their
// persistent messages in the store. Publishing is route (route.go),
// persist (persist.go), deliver (deliver.go); flow control is in flow.go.
type local struct {
	opts   *Options
	log    *slog.Logger
	store  Store
	stats  *counters
	limits *limitCounters
	ids    *idSource
	taps   *taps
	topics *topicIndex
	hist   *histories

	mu        sync.Mutex
	queues    map[string]*queue
	lastSweep atomic.Int64 // unix ns, see sweep

	durables durables
	writer   storeWriter

	// In a cluster (cl set): the patterns this node listens to, and its
	// temporary queues' inboxes (shared.go).
	cl      Cluster
	watchMu sync.Mutex
	watches map[string]*watch
	inboxes map[string]func() // guarded by mu
}

func newLocal(b *Broker, st Store) *local {
	r := &local{
		opts: &b.opts, log: b.log, store: st, stats: &b.stats, limits: &b.limits,
		ids: &b.ids, taps: &b.taps, topics: newTopicIndex(),
		queues: make(map[string]*queue),
		cl:     b.opts.Cluster, watches: make(map[string]*watch), inboxes: make(map[string]func()),
	}
	r.durables.m = make(map[string]*durable)
	r.writer.r = r
	r.writer.idle = sync.NewCond(&r.writer.mu)
	return r
}

// recover rebuilds durable subscriptions and queues from the store. Each
// queue reads back only its first window of messages; the rest stay paged
// out. Messages handed out before and not acked come back marked
// redelivered.
func (r *local) recover() error {
	subs, err := r.store.Subscriptions()
	if err != nil {
		return err
	}
	for _, sub := range subs {
		r.addDurable(sub)
	}
	infos, err := r.store.Queues()
	if err != nil {
		return err
	}
	for _, info := range infos {
		if strings.HasPrefix(info.Name, historyPrefix) {
			continue // recoverHistory's
		}
		q := r.queue(info.Name, true)
		q.mu.Lock()
		q.mark, q.recoveredMark = info.Dispatched, info.Dispatched
		q.paged = info.Count
		q.pageIn()
		q.mu.Unlock()
	}
	return r.recoverHistory(infos)
}

// queue returns the named queue, creating it when create is set.
func (r *local) queue(name string, create bool) *queue {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[name]
	if q == nil && create {
		q = &queue{r: r, name: name}
		r.queues[name] = q
	}
	return q
}

func (r *local) dropQueue(q *queue) {
	r.mu.Lock()
	if r.queues[q.name] == q {
		delete(r.queues, q.name)
	}
	r.mu.Unlock()
}

// allQueues returns the queues at one moment.
func (r *local) allQueues() []*queue {
	r.mu.Lock()
	defer r.mu.Unlock()
	qs := make([]*queue, 0, len(r.queues))
	for _, q := range r.queues {
		qs = append(qs, q)
	}
	return qs
}

func (r *local) openTemp(name string) error {
	if err := r.roomForQueue(name); err != nil {
		return err
	}
	r.mu.Lock()
	q := r.queues[name]
	if q == nil {
		// temp is set before the queue is visible to anyone else.
		q = &queue{r: r, name: name, temp: true}
		r.queues[name] = q
	}
	r.mu.Unlock()
	if r.cl != nil {
		return r.openInbox(name, q)
	}
	return nil
}

// bindLive adds a live topic subscription to the index, within the limit
// of topics tracked by exact name.
func (r *local) bindLive(sub *topicSub) error {
	if r.topics.bind(sub.pattern, sub, nil, r.opts.MaxTopics) {
		return nil
	}
	r.sweep(true)
	if r.topics.bind(sub.pattern, sub, nil, r.opts.MaxTopics) {
		return nil
	}
	r.limits.hit("topics")
	return limitError("topics", r.opts.MaxTopics)
}

func (r *local) closeTemp(name string) {
	if r.cl != nil {
		r.closeInbox(name)
	}
	if q := r.queue(name, false); q != nil {
		r.dropQueue(q)
		q.purge()
	}
}

func (r *local) subscribe(sub *subscription) error {
	switch {
	case r.cl != nil && sub.kind == kindTopic && sub.durableName != "":
		return r.subscribeSharedDurable(sub)
	case r.cl != nil && sub.kind != kindTopic && !sub.isTemp():
		return r.sharedConsumer(sub.queue, sub, nil, func() (Feed, error) { return r.cl.Consume(sub.queue) })
	case sub.kind == kindTopic && sub.durableName != "":
		d, err := r.claimDurable(sub.durableName, sub.dest, sub.owner)
		if err != nil {
			return err
		}
		sub.durable = d
		sub.cons = &consumer{subscription: sub, q: d.q}
		d.q.addConsumer(sub.cons)
	case sub.kind == kindTopic:
		sub.topic = &topicSub{subscription: sub, pattern: parsePattern(sub.dest), reader: sub.reader}
		sub.topic.holding.Store(sub.replay != nil)
		if err := r.bindLive(sub.topic); err != nil {
			return err
		}
		if r.cl != nil {
			if err := r.watch(sub.dest); err != nil {
				r.topics.unbind(sub.topic.pattern, sub.topic, nil)
				return err
			}
		}
		if sub.replay != nil {
			var err error
			if sub.resumeGap, err = r.replay(sub.topic, *sub.replay); err != nil {
				r.unsubscribe(sub)
				return errors.New("reading the topic's history failed: " + err.Error())
			}
		}
		return nil
	default:
		q, err := r.queueFor(sub.queue)
		if err != nil {
			return err
		}
		sub.cons = &consumer{subscription: sub, q: q}
		q.addConsumer(sub.cons)
	}
	return nil
}

func (r *local) unsubscribe(sub *subscription) {
	if sub.topic != nil {
		r.topics.unbind(sub.topic.pattern, sub.topic, nil)
		sub.topic.drop()
		if r.cl != nil {
			r.unwatch(sub.dest)
		}
		return
	}
	sub.cons.q.removeConsumer(sub.cons)
	r.closeIfUnused(sub.cons.q)
	if r.cl != nil && sub.durableName != "" {
		r.cl.ReleaseClientID(durableClaim(sub.durableName))
	}
	if sub.durable != nil {
		r.releaseDurable(sub.durable)
	}
}

func (r *local) settle(sub *subscription, match func(*delivery) bool, cumulative, ack, requeue bool) error {
	if sub.topic != nil {
		return sub.topic.settle(match, cumulative)
	}
	return sub.cons.q.settle(sub.cons, match, cumulative, ack, requeue)
}

func (r *local) holds(sub *subscription, match func(*delivery) bool) bool {
	if sub.topic != nil {
		return sub.topic.hasPending(match)
	}
	return sub.cons.q.hasPending(sub.cons, match)
}

// whenDurable waits, without blocking, for the store writes settlements
// left to the background.
// In a cluster, acks to shared queues must be confirmed too.
func (r *local) whenDurable(fn func()) {
	if r.cl == nil {
		r.writer.whenWritten(fn)
		return
	}
	r.writer.whenWritten(func() { r.cl.WhenSettled(fn) })
}

func (r *local) forgetDurable(name, owner string) error {
	if r.cl != nil {
		return r.cl.ForgetDurable(name, owner)
	}
	return r.deleteDurable(name, owner, false)
}

// settleMarks, at a clean shutdown, writes what is pending and brings
// every dispatch mark down to what was really handed out.
func (r *local) settleMarks() {
	r.writer.flush()
	for _, q := range r.allQueues() {
		q.settleMark()
	}
}
