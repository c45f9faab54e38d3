package cluster

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stampede-mq/stampede/broker"
)

// Durable subscriptions take their messages from the topic stream, which
// captures only the durable subjects (stp.d.…): a topic message is
// published there too only when some durable subscription, on any node,
// matches it, so topics nobody keeps cost no JetStream write. Every node
// learns the durable subscriptions' patterns from a key-value bucket it
// watches. A new subscription is in place once every node has seen it,
// so nothing published after its RECEIPT misses it.

const (
	durableBucket = "stampede-durables"
	askDurables   = "durables-seen"
	syncWait      = 2 * time.Second
)

type durableEntry struct {
	Name    string `json:"name"`
	Pattern string `json:"pattern"`
}

// durableIndex is this node's view of every durable subscription's
// pattern, and the bucket revision it reflects.
type durableIndex struct {
	mu       sync.RWMutex
	patterns map[string]func(string) bool // key → the pattern's matcher, parsed once
	rev      uint64
	changed  *sync.Cond
}

func newDurableIndex() *durableIndex {
	x := &durableIndex{patterns: make(map[string]func(string) bool)}
	x.changed = sync.NewCond(&x.mu)
	return x
}

// wanted reports whether some durable subscription matches dest.
func (x *durableIndex) wanted(dest string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, matches := range x.patterns {
		if matches(dest) {
			return true
		}
	}
	return false
}

func (x *durableIndex) apply(e jetstream.KeyValueEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e.Operation() == jetstream.KeyValuePut {
		var d durableEntry
		if json.Unmarshal(e.Value(), &d) == nil {
			x.patterns[e.Key()] = broker.TopicMatcher(d.Pattern)
		}
	} else {
		delete(x.patterns, e.Key())
	}
	x.rev = max(x.rev, e.Revision())
	x.changed.Broadcast()
}

// waitFor waits, up to syncWait, until the index reflects revision rev.
func (x *durableIndex) waitFor(rev uint64) bool {
	deadline := time.Now().Add(syncWait)
	t := time.AfterFunc(syncWait, func() {
		x.mu.Lock()
		x.changed.Broadcast()
		x.mu.Unlock()
	})
	defer t.Stop()
	x.mu.Lock()
	defer x.mu.Unlock()
	for x.rev < rev && time.Now().Before(deadline) {
		x.changed.Wait()
	}
	return x.rev >= rev
}

// watchDurables keeps the index up to date until the node closes.
func (n *Node) watchDurables(w jetstream.KeyWatcher) {
	defer n.done.Done()
	defer w.Stop()
	for {
		select {
		case <-n.stop:
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				n.durables.apply(e)
			}
		}
	}
}

// startDurables makes the bucket's watcher and this node's answer to
// "have you seen revision R".
func (n *Node) startDurables() error {
	w, err := n.durableKV.WatchAll(context.Background())
	if err != nil {
		return err
	}
	stop, err := n.Answer(askDurables, func(body []byte) []byte {
		rev, _ := strconv.ParseUint(string(body), 10, 64)
		if n.durables.waitFor(rev) {
			return []byte("ok")
		}
		return nil
	})
	if err != nil {
		w.Stop()
		return err
	}
	n.stopAnswers = append(n.stopAnswers, stop)
	n.done.Add(1)
	go n.watchDurables(w)
	return nil
}

// registerDurable records a durable subscription's pattern and waits until
// every node has seen it.
func (n *Node) registerDurable(name, pattern string) error {
	ctx, cancel := ctxTimeout()
	defer cancel()
	b, _ := json.Marshal(durableEntry{Name: name, Pattern: pattern})
	rev, err := n.durableKV.Put(ctx, key("d", name), b)
	if err != nil {
		return err
	}
	n.durables.waitFor(rev)
	nodes, err := n.Nodes()
	if err != nil {
		return err
	}
	answers, err := n.ask(askDurables, []byte(strconv.FormatUint(rev, 10)), syncWait+time.Second, len(nodes)-1)
	if err != nil {
		return err
	}
	if len(answers) < len(nodes)-1 {
		n.log.Warn("not every node confirmed a new durable subscription in time", "name", name, "confirmed", len(answers), "nodes", len(nodes))
	}
	return nil
}

func (n *Node) unregisterDurable(name string) error {
	ctx, cancel := ctxTimeout()
	defer cancel()
	return n.durableKV.Delete(ctx, key("d", name))
}
