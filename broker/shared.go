package broker

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// In a cluster, a queue's messages (and a durable subscription's) live in
// the cluster, not in this node. While this node has consumers of one, a
// local queue of the same name stands in for it: a puller fetches from the
// cluster as many messages as the local consumers have room for, and the
// local queue hands them out, tracks acks, redelivers and dead-letters as
// on a single node. Settling a message settles its lease (effects.go).

const (
	// fetchWait bounds one fetch, so a puller notices it is stopped.
	fetchWait = 500 * time.Millisecond
	// extendEvery is how often, at most, held messages are reported as
	// in progress; a third of the lease time when that is shorter, so
	// the cluster never hands them to another node while held here.
	extendEvery = 5 * time.Second
)

// puller feeds one shared queue from the cluster.
type puller struct {
	q      *queue
	feed   Feed
	filter *pattern      // a durable subscription's: what it takes
	wake   chan struct{} // a slot freed up
	stop   chan struct{}
	done   chan struct{}
}

func newPuller(q *queue, feed Feed) *puller {
	return &puller{q: q, feed: feed, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// nudge tells the puller the queue may have room.
func (p *puller) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *puller) run() {
	defer close(p.done)
	every := min(extendEvery, p.feed.LeaseTime()/3)
	lastExtend := time.Now()
	backoff := time.Duration(0)
	for {
		if time.Since(lastExtend) >= every {
			p.q.extendLeases()
			lastExtend = time.Now()
		}
		if n := p.q.room(); n > 0 {
			err := p.feed.Fetch(n, fetchWait, func(xs []*Envelope) { p.q.enqueueLeased(p, xs) })
			if err == nil {
				backoff = 0
			} else {
				// A consumer just made may not answer for a moment (its
				// leader is being elected): retry soon, then less often,
				// so that this node is not left out meanwhile.
				backoff = min(max(2*backoff, 20*time.Millisecond), fetchWait)
				level := slog.LevelDebug
				if backoff == fetchWait {
					level = slog.LevelWarn // not a passing election
				}
				p.q.r.log.Log(context.Background(), level, "fetching from the cluster failed", "queue", p.q.name, "err", err)
				select {
				case <-p.stop:
					return
				case <-time.After(backoff):
				}
			}
			select {
			case <-p.stop:
				return
			default:
				continue
			}
		}
		select {
		case <-p.wake:
		case <-time.After(every):
		case <-p.stop:
			return
		}
	}
}

// room is how many more messages the local consumers could take now.
func (q *queue) room() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := -q.depth
	for _, c := range q.consumers {
		if c.mode == ackAuto {
			n += c.prefetch
		} else {
			n += c.prefetch - len(c.unacked)
		}
	}
	return n
}

// enqueueLeased takes messages p fetched; once p no longer feeds the
// queue they go straight back.
func (q *queue) enqueueLeased(p *puller, xs []*Envelope) {
	q.mu.Lock()
	if q.removed || q.pull != p {
		q.mu.Unlock()
		for _, x := range xs {
			x.Lease.Release()
		}
		return
	}
	var skip []*Envelope
	for _, x := range xs {
		if p.filter != nil && !p.filter.matches(x.Destination) {
			skip = append(skip, x) // a broader subject's catch
			continue
		}
		q.enqueued++
		q.pushBack(imported(x, q.name))
	}
	q.mu.Unlock()
	for _, x := range skip {
		x.Lease.Ack()
	}
	q.dispatch()
}

// extendLeases keeps the leases on every message this node holds.
func (q *queue) extendLeases() {
	var ls []Lease
	q.mu.Lock()
	for _, level := range q.levels {
		for _, m := range level {
			ls = append(ls, m.lease)
		}
	}
	for _, c := range q.consumers {
		for _, d := range c.unacked {
			ls = append(ls, d.m.lease)
		}
	}
	q.mu.Unlock()
	for _, l := range ls {
		if l != nil {
			l.Extend()
		}
	}
}

// sharedConsumer attaches a consumer to the local stand-in of a shared
// queue or durable subscription, starting its puller the first time. A
// queue this node's store still holds from running alone is the stand-in
// too: its own messages go out beside the cluster's.
func (r *local) sharedConsumer(name string, sub *subscription, filter *pattern, open func() (Feed, error)) error {
	for {
		q := r.queue(name, true)
		if err := q.ensurePuller(filter, open); err != nil {
			return err
		}
		q.mu.Lock()
		if q.removed || q.pull == nil {
			// Forgotten or closed while its feed was opened: again.
			q.mu.Unlock()
			continue
		}
		sub.cons = &consumer{subscription: sub, q: q}
		q.consumers = append(q.consumers, sub.cons)
		q.mu.Unlock()
		q.dispatch()
		return nil
	}
}

// ensurePuller starts the queue's puller if it has none. Opening a feed
// asks the cluster, so no lock but the queue's own opening lock is held
// meanwhile.
func (q *queue) ensurePuller(filter *pattern, open func() (Feed, error)) error {
	q.opening.Lock()
	defer q.opening.Unlock()
	q.mu.Lock()
	has := q.pull != nil
	q.mu.Unlock()
	if has {
		return nil
	}
	feed, err := open()
	if err != nil {
		return err
	}
	p := newPuller(q, feed)
	p.filter = filter
	q.mu.Lock()
	if q.removed {
		q.mu.Unlock()
		feed.Close()
		return nil
	}
	q.pull = p
	q.mu.Unlock()
	go p.run()
	return nil
}

// subscribeSharedDurable resumes a durable subscription kept by the
// cluster. One subscriber in the whole cluster may have it at a time: it
// is claimed as a client-id is.
func (r *local) subscribeSharedDurable(sub *subscription) error {
	claim := durableClaim(sub.durableName)
	ok, err := r.cl.ClaimClientID(claim)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("durable subscription " + sub.durableName + " is already active")
	}
	p := parsePattern(sub.dest)
	err = r.sharedConsumer(durablePrefix+sub.durableName, sub, &p, func() (Feed, error) {
		return r.cl.ConsumeDurable(sub.durableName, sub.dest, sub.owner)
	})
	if err != nil {
		r.cl.ReleaseClientID(claim)
	}
	return err
}

// durableClaim is the claim that makes a durable subscription's
// subscriber the only one; a NUL keeps it apart from every client-id.
func durableClaim(name string) string { return "\x00durable\x00" + name }

// closeIfUnused stops a shared queue's puller once the queue's last
// consumer here has gone, and gives back what it had leased. The stand-in
// is forgotten unless it holds messages of its own.
func (r *local) closeIfUnused(q *queue) {
	r.mu.Lock()
	q.mu.Lock()
	p := q.pull
	if p == nil || len(q.consumers) > 0 {
		q.mu.Unlock()
		r.mu.Unlock()
		return
	}
	q.pull = nil
	var back, own []*message
	for m := q.popFront(); m != nil; m = q.popFront() {
		if m.lease != nil {
			back = append(back, m)
		} else {
			own = append(own, m)
		}
	}
	q.pushFront(own)
	if q.depth == 0 && q.paged == 0 && r.queues[q.name] == q {
		q.removed = true
		delete(r.queues, q.name)
	}
	q.mu.Unlock()
	r.mu.Unlock()
	close(p.stop)
	<-p.done
	p.feed.Close()
	for _, m := range back {
		m.lease.Release()
	}
}

// watch makes this node hear other nodes' messages on pattern while a
// live subscription here uses it.
func (r *local) watch(pattern string) error {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	w := r.watches[pattern]
	if w == nil {
		stop, err := r.cl.WatchTopics(pattern, func(x *Envelope) { r.deliverRemote(pattern, x) },
			func() { r.lostRemote(pattern) })
		if err != nil {
			return err
		}
		w = &watch{stop: stop}
		r.watches[pattern] = w
	}
	w.refs++
	return nil
}

func (r *local) unwatch(pattern string) {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	w := r.watches[pattern]
	if w == nil {
		return
	}
	if w.refs--; w.refs == 0 {
		delete(r.watches, pattern)
		w.stop()
	}
}

// watch is one pattern this node listens to in the cluster.
type watch struct {
	refs int
	stop func()
}

// deliverRemote fans another node's topic message out to the live
// subscriptions here made on pattern: each watched pattern hears its own
// copy, so subscriptions on other patterns get theirs from those. A
// pattern may be carried by a broader subject, so the name is checked
// against it once.
func (r *local) deliverRemote(pattern string, x *Envelope) {
	subs := r.topics.boundTo(pattern)
	if len(subs) == 0 || !subs[0].pattern.matches(x.Destination) {
		return
	}
	m := imported(x, "")
	if m.expired(time.Now().UnixMilli()) {
		r.stats.expired.Add(1)
		return
	}
	t := r.topics.lookup(m.destination)
	for _, sub := range subs {
		r.deliverTo(nil, sub, m, t)
	}
}

// lostRemote disconnects the subscriptions on pattern when this node
// fell behind the other nodes' publishers and lost messages for them: a
// subscriber is told, as one that falls behind on its own is, rather
// than missing messages unawares.
func (r *local) lostRemote(pattern string) {
	for _, sub := range r.topics.boundTo(pattern) {
		if sub.conn.failSlow("slow consumer: this node fell behind the cluster's publishers on " + pattern + "; messages were lost") {
			r.stats.slowConsumers.Add(1)
		}
	}
}

// openInbox makes a temporary queue reachable from other nodes.
func (r *local) openInbox(name string, q *queue) error {
	stop, err := r.cl.OpenInbox(name, func(x *Envelope) { q.enqueue(imported(x, name)) })
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.inboxes[name] = stop
	r.mu.Unlock()
	return nil
}

func (r *local) closeInbox(name string) {
	r.mu.Lock()
	stop := r.inboxes[name]
	delete(r.inboxes, name)
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}
