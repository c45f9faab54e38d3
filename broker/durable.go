package broker

import (
	"errors"
	"strings"
	"sync"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// durablePrefix names the queues durable subscriptions keep their
// messages in. Clients cannot send to or subscribe to it directly.
const durablePrefix = "/durable/"

// destinationKey carries a durable copy's topic name in its stored
// headers. A NUL can never appear in a header read from a client.
const destinationKey = "\x00destination"

// durable is a durable topic subscription: a queue that collects every
// message published to matching topics, whether or not its subscriber is
// connected.
type durable struct {
	name     string
	pattern  string
	words    []string
	wildcard bool
	q        *queue
	active   bool // guarded by durables.mu
}

type durables struct {
	mu sync.RWMutex
	m  map[string]*durable
}

// addDurable registers a subscription read from the store or just made.
func (b *Broker) addDurable(sub store.Subscription) *durable {
	d := &durable{name: sub.Name, pattern: sub.Destination, wildcard: hasWildcard(sub.Destination)}
	d.words = strings.Split(strings.TrimPrefix(sub.Destination, topicPrefix), ".")
	d.q = b.queue(sub.Queue, true)
	b.durables.mu.Lock()
	b.durables.m[d.name] = d
	b.durables.mu.Unlock()
	return d
}

// matchDurables returns the durable subscriptions a topic name reaches.
func (b *Broker) matchDurables(dest string) []*durable {
	b.durables.mu.RLock()
	defer b.durables.mu.RUnlock()
	if len(b.durables.m) == 0 {
		return nil
	}
	var out []*durable
	var words []string
	for _, d := range b.durables.m {
		if !d.wildcard {
			if d.pattern == dest {
				out = append(out, d)
			}
			continue
		}
		if words == nil {
			words = strings.Split(strings.TrimPrefix(dest, topicPrefix), ".")
		}
		if matchWords(d.words, words) {
			out = append(out, d)
		}
	}
	return out
}

// durableName names a durable subscription as DESIGN says: the client's
// own name for it, else its client-id and subscription id.
func durableName(f *stomp.Frame, clientID, subID string) (string, error) {
	for _, k := range []string{"x-queue-name", "activemq.subscriptionName"} {
		if v := f.Value(k); v != "" {
			return v, nil
		}
	}
	if clientID == "" {
		return "", errors.New("a durable subscription needs a client-id on CONNECT or an x-queue-name header")
	}
	return clientID + "." + subID, nil
}

// claimDurable finds or creates the durable subscription name on pattern
// and marks it active. A subscription whose topic changed starts afresh.
func (b *Broker) claimDurable(name, pattern string) (*durable, error) {
	b.durables.mu.Lock()
	d := b.durables.m[name]
	if d != nil && d.active {
		b.durables.mu.Unlock()
		return nil, errors.New("durable subscription " + name + " is already active")
	}
	if d != nil && d.pattern != pattern {
		b.durables.mu.Unlock()
		if err := b.deleteDurable(name); err != nil {
			return nil, err
		}
		b.durables.mu.Lock()
		d = nil
	}
	if d == nil {
		b.durables.mu.Unlock()
		sub := store.Subscription{Name: name, Destination: pattern, Queue: durablePrefix + name}
		if err := b.store.PutSubscription(sub); err != nil {
			return nil, err
		}
		d = b.addDurable(sub)
		b.durables.mu.Lock()
	}
	d.active = true
	b.durables.mu.Unlock()
	return d, nil
}

func (b *Broker) releaseDurable(d *durable) {
	b.durables.mu.Lock()
	d.active = false
	b.durables.mu.Unlock()
}

// deleteDurable removes a durable subscription and what it collected.
func (b *Broker) deleteDurable(name string) error {
	b.durables.mu.Lock()
	d := b.durables.m[name]
	if d != nil && d.active {
		b.durables.mu.Unlock()
		return errors.New("durable subscription " + name + " is active")
	}
	delete(b.durables.m, name)
	b.durables.mu.Unlock()
	if d == nil {
		return nil
	}
	if err := b.store.DeleteSubscription(name); err != nil {
		return err
	}
	b.dropQueue(d.q)
	d.q.purge()
	return b.store.DeleteQueue(d.q.name)
}

// DeleteDurable removes an offline durable subscription and the messages
// it holds; an active one is refused.
func (b *Broker) DeleteDurable(name string) error {
	b.durables.mu.RLock()
	_, ok := b.durables.m[name]
	b.durables.mu.RUnlock()
	if !ok {
		return ErrNotFound
	}
	return b.deleteDurable(name)
}

// DurableInfo describes a durable subscription.
type DurableInfo struct {
	Name        string
	Destination string
	Pending     int // messages waiting
	Active      bool
}

// Durables lists the durable subscriptions, online and offline.
func (b *Broker) Durables() []DurableInfo {
	b.durables.mu.RLock()
	ds := make([]*durable, 0, len(b.durables.m))
	active := make([]bool, 0, len(b.durables.m))
	for _, d := range b.durables.m {
		ds = append(ds, d)
		active = append(active, d.active)
	}
	b.durables.mu.RUnlock()
	out := make([]DurableInfo, len(ds))
	for i, d := range ds {
		out[i] = DurableInfo{Name: d.name, Destination: d.pattern, Pending: d.q.stats().Depth, Active: active[i]}
	}
	return out
}
