package broker

import (
	"strings"
	"time"
)

// plan is where a batch of published messages goes, decided before
// anything is stored or delivered.
type plan struct {
	routes []route
	live   []*topicSub // the live subscribers of every route, by range
	now    int64       // ms: expiry is judged once, at routing

	// histDels are the store deletes of retained messages that the
	// messages of this plan pushed out of history.
	histDels []storeOp

	// In a cluster, what goes to the other nodes (cluster.go).
	shared, enqueue, inbox []*message
}

// route is one message's destinations.
type route struct {
	m       *message
	fanout  bool       // a topic message
	topic   *topic     // its topic, if recorded
	hist    *histEntry // its place in its topic's history, if kept
	expired bool       // a topic message dead on arrival
	queues  []*queue   // queues that keep m or a copy of it
	copies  []*message // the message each of those queues holds
	live    [2]int     // plan.live[live[0]:live[1]]: topic subscribers
}

// publish routes messages, stores every persistent copy a queue will hold
// and then delivers: a receipt sent after it returns means the message is
// safe. A client publisher is then held back while a topic subscriber it
// fed is congested (see pace): it goes no faster than they take its
// messages.
//
// Messages a topic's history keeps are published one batch at a time,
// from taking their positions to their delivery (histories.order): live
// subscribers then get them in position order.
func (r *local) publish(from *conn, ms []*message) error {
	if from != nil {
		from.inlining = from.writesInline(time.Now().UnixNano())
	}
	retained := r.hist.retains(ms)
	if retained {
		r.hist.order.Lock()
	}
	congested, err := r.publishRouted(from, ms)
	if retained {
		r.hist.order.Unlock()
	}
	if from != nil {
		for _, c := range from.inline {
			c.writeInline()
		}
		clear(from.inline)
		from.inline = from.inline[:0]
		from.inlining = false
		from.lastPublish = time.Now().UnixNano()
	}
	if err != nil {
		return err
	}
	r.pace(from, congested)
	return nil
}

func (r *local) publishRouted(from *conn, ms []*message) ([]*topicSub, error) {
	p, err := r.route(ms)
	if err != nil {
		return nil, err
	}
	defer r.writer.add(p.histDels...)
	if err := r.persist(p); err != nil {
		return nil, err
	}
	if err := r.share(p); err != nil {
		return nil, err
	}
	return r.deliver(from, p), nil
}

// route finds each message's destinations: the queue it names, or the
// topic with its live and durable subscriptions. Each durable
// subscription reached gets its own copy, held by its queue.
func (r *local) route(ms []*message) (*plan, error) {
	p := &plan{routes: make([]route, len(ms)), now: time.Now().UnixMilli()}
	if r.cl != nil {
		if err := r.keepShared(ms, p.now); err != nil {
			return nil, err
		}
	}
	var m matches
	for i, msg := range ms {
		rt := &p.routes[i]
		rt.m = msg
		if isQueue(msg.destination) {
			if r.cl != nil && r.routeShared(p, msg) {
				continue
			}
			q, err := r.queueFor(msg.destination)
			if err != nil {
				return nil, err
			}
			rt.queues = []*queue{q}
			rt.copies = []*message{msg}
			continue
		}
		m.reset()
		rt.fanout = true
		if r.cl == nil && !msg.expired(p.now) {
			// Kept before its subscribers are looked up: one that
			// subscribes meanwhile finds it in the history, if not
			// among the subscribers.
			rt.hist = r.hist.append(msg, &p.histDels)
		}
		if rt.topic = r.topics.match(msg.destination, &m); rt.topic != nil {
			r.touch(&rt.topic.lastUsed, p.now*int64(time.Millisecond))
		}
		if rt.expired = msg.expired(p.now); rt.expired {
			continue
		}
		if r.cl != nil {
			p.shared = append(p.shared, msg) // durable subscriptions included
		}
		for _, d := range m.durables {
			rt.queues = append(rt.queues, d.q)
			rt.copies = append(rt.copies, msg.copyFor(d.q.name))
		}
		rt.live[0] = len(p.live)
		p.live = append(p.live, m.live...)
		rt.live[1] = len(p.live)
	}
	return p, nil
}

// routeShared sends a queue message to the cluster unless it is for a
// temporary queue of this node's, and reports whether it did.
func (r *local) routeShared(p *plan, m *message) bool {
	if !strings.HasPrefix(m.destination, tempQueueNamePrefix) {
		p.enqueue = append(p.enqueue, m)
		return true
	}
	if r.queue(m.destination, false) != nil {
		return false
	}
	p.inbox = append(p.inbox, m)
	return true
}

// share hands the cluster what the plan sends to other nodes, and returns
// once the persistent part is stored there.
func (r *local) share(p *plan) error {
	if r.cl == nil {
		return nil
	}
	if len(p.shared) > 0 {
		if err := r.cl.PublishTopics(exportAll(p.shared)); err != nil {
			return err
		}
	}
	if len(p.enqueue) > 0 {
		if err := r.cl.Enqueue(exportAll(p.enqueue)); err != nil {
			return err
		}
	}
	if len(p.inbox) > 0 {
		if err := r.cl.SendInbox(exportAll(p.inbox)); err != nil {
			return err
		}
	}
	return nil
}
