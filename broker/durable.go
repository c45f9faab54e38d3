package broker

import (
	"errors"
	"strconv"
	"sync"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// durablePrefix names the queues durable subscriptions keep their
// messages in. Clients cannot send to or subscribe to it directly.
const durablePrefix = "/durable/"

// durable is a durable topic subscription: a queue that collects every
// message published to matching topics, whether or not its subscriber is
// connected. It is bound in the topic index beside live subscriptions.
type durable struct {
	name    string
	pattern pattern
	owner   string // the user who made it: only they may use or delete it
	q       *queue
	active  bool // guarded by durables.mu
}

// errNotOwner refuses a durable subscription to anyone but its owner,
// saying no more than that it exists.
func errNotOwner(name string) error {
	return errAccess("read", "durable subscription "+name+" (another user's)")
}

// durables are the durable subscriptions by name.
type durables struct {
	mu sync.RWMutex
	m  map[string]*durable
}

// addDurable registers a subscription read from the store or just made.
func (r *local) addDurable(sub store.Subscription) *durable {
	d := &durable{name: sub.Name, pattern: parsePattern(sub.Destination), owner: sub.Owner, q: r.queue(sub.Queue, true)}
	r.durables.mu.Lock()
	defer r.durables.mu.Unlock()
	if had := r.durables.m[d.name]; had != nil {
		return had // made meanwhile by a racing claim
	}
	r.durables.m[d.name] = d
	r.topics.bind(d.pattern, nil, d, 0)
	return d
}

// durableName names a durable subscription as DESIGN says: the client's
// own name for it, else its client-id and subscription id.
// The name keys the subscription in the store, which bounds keys: it is
// held to a destination's length.
func durableName(f *stomp.Frame, clientID, subID string) (string, error) {
	name := ""
	for _, k := range []string{"x-queue-name", "activemq.subscriptionName"} {
		if name = f.Value(k); name != "" {
			break
		}
	}
	if name == "" {
		if clientID == "" {
			return "", errors.New("a durable subscription needs a client-id on CONNECT or an x-queue-name header")
		}
		name = clientID + "." + subID
	}
	if len(name) > maxDestLen {
		return "", errors.New("durable subscription name longer than " + strconv.Itoa(maxDestLen) + " bytes")
	}
	return name, nil
}

// claimDurable finds or creates the durable subscription name on dest
// for owner and marks it active. A subscription whose topic changed
// starts afresh.
func (r *local) claimDurable(name, dest, owner string) (*durable, error) {
	for {
		d, stale, err := r.tryClaim(name, dest, owner)
		if err != nil || d != nil {
			return d, err
		}
		if stale {
			if err := r.deleteDurable(name, owner, false); err != nil {
				return nil, err
			}
			continue
		}
		r.durables.mu.RLock()
		full := len(r.durables.m) >= r.opts.MaxDurables
		r.durables.mu.RUnlock()
		if full {
			r.limits.hit("durable-subscriptions")
			return nil, limitError("durable subscriptions", r.opts.MaxDurables)
		}
		sub := store.Subscription{Name: name, Destination: dest, Queue: durablePrefix + name, Owner: owner}
		if err := r.store.PutSubscription(sub); err != nil {
			return nil, err
		}
		r.addDurable(sub)
	}
}

// tryClaim marks an existing, inactive subscription on dest active. It
// reports stale for one on another destination, and nothing when there is
// none yet.
func (r *local) tryClaim(name, dest, owner string) (d *durable, stale bool, err error) {
	r.durables.mu.Lock()
	defer r.durables.mu.Unlock()
	d = r.durables.m[name]
	switch {
	case d == nil:
		return nil, false, nil
	case d.owner != owner:
		return nil, false, errNotOwner(name)
	case d.active:
		return nil, false, errors.New("durable subscription " + name + " is already active")
	case d.pattern.dest != dest:
		return nil, true, nil
	}
	d.active = true
	return d, false, nil
}

func (r *local) releaseDurable(d *durable) {
	r.durables.mu.Lock()
	d.active = false
	r.durables.mu.Unlock()
}

// deleteDurable removes a durable subscription and what it collected,
// when owner made it or an operator (anyOwner) asks.
func (r *local) deleteDurable(name, owner string, anyOwner bool) error {
	r.durables.mu.Lock()
	d := r.durables.m[name]
	if d != nil && !anyOwner && d.owner != owner {
		r.durables.mu.Unlock()
		return errNotOwner(name)
	}
	if d != nil && d.active {
		r.durables.mu.Unlock()
		return errors.New("durable subscription " + name + " is active")
	}
	delete(r.durables.m, name)
	r.durables.mu.Unlock()
	if d == nil {
		return nil
	}
	r.topics.unbind(d.pattern, nil, d)
	if err := r.store.DeleteSubscription(name); err != nil {
		return err
	}
	r.dropQueue(d.q)
	d.q.purge()
	return r.store.DeleteQueue(d.q.name)
}

// DeleteDurable removes an offline durable subscription and the messages
// it holds; an active one is refused.
func (b *Broker) DeleteDurable(name string) error {
	b.local.durables.mu.RLock()
	_, ok := b.local.durables.m[name]
	b.local.durables.mu.RUnlock()
	if !ok {
		return ErrNotFound
	}
	return b.local.deleteDurable(name, "", true)
}

// DurableInfo describes a durable subscription.
type DurableInfo struct {
	Name        string
	Destination string
	Pending     int // messages waiting
	Active      bool
	Owner       string // the user who made it, "" without logins
}

// Durables lists the durable subscriptions, online and offline.
func (b *Broker) Durables() []DurableInfo {
	r := b.local
	r.durables.mu.RLock()
	out := make([]DurableInfo, 0, len(r.durables.m))
	qs := make([]*queue, 0, len(r.durables.m))
	for _, d := range r.durables.m {
		out = append(out, DurableInfo{Name: d.name, Destination: d.pattern.dest, Active: d.active, Owner: d.owner})
		qs = append(qs, d.q)
	}
	r.durables.mu.RUnlock()
	for i, q := range qs {
		out[i].Pending = q.stats().Depth
	}
	return out
}
