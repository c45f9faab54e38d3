package broker

import (
	"sync"
	"sync/atomic"
	"time"
)

// topicIndex finds every subscription, live or durable, that a published
// topic name reaches. Exact names are one map lookup, to the topic that
// holds them; wildcard patterns sit in a trie by word, as RabbitMQ's topic
// exchange keeps them, and a name is matched against all of them in one
// walk whose work is bounded by the trie's size times the name's words,
// however the patterns nest their wildcards.
type topicIndex struct {
	mu     sync.RWMutex
	topics map[string]*topic
	root   trieNode
	nwild  int // wildcard bindings in the trie

	durables atomic.Int64 // durable bindings anywhere, read without the lock
}

// hasDurables reports whether any durable subscription is bound.
func (x *topicIndex) hasDurables() bool { return x.durables.Load() > 0 }

// bindings are the subscriptions one name or pattern holds.
type bindings struct {
	live     map[*topicSub]struct{}
	durables map[*durable]struct{}
}

func (bs *bindings) empty() bool { return len(bs.live) == 0 && len(bs.durables) == 0 }

func (bs *bindings) add(sub *topicSub, d *durable) {
	if sub != nil {
		if bs.live == nil {
			bs.live = make(map[*topicSub]struct{})
		}
		bs.live[sub] = struct{}{}
	}
	if d != nil {
		if bs.durables == nil {
			bs.durables = make(map[*durable]struct{})
		}
		bs.durables[d] = struct{}{}
	}
}

func (bs *bindings) remove(sub *topicSub, d *durable) {
	delete(bs.live, sub)
	delete(bs.durables, d)
}

func (bs *bindings) collect(m *matches) {
	for sub := range bs.live {
		m.live = append(m.live, sub)
	}
	for d := range bs.durables {
		m.durables = append(m.durables, d)
	}
}

// matches are what one published name reaches.
type matches struct {
	live     []*topicSub
	durables []*durable
}

func (m *matches) reset() {
	clear(m.live)
	clear(m.durables)
	m.live, m.durables = m.live[:0], m.durables[:0]
}

// trieNode is one word of the wildcard patterns.
type trieNode struct {
	words map[string]*trieNode
	star  *trieNode // "*"
	hash  *trieNode // "#"
	bindings
}

func newTopicIndex() *topicIndex {
	return &topicIndex{topics: make(map[string]*topic)}
}

// lookup returns the topic of name if it exists.
func (x *topicIndex) lookup(name string) *topic {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.topics[name]
}

// bind adds a live subscription (sub) or a durable one (d) on p. It
// refuses, reporting false, a live one that would make a new topic past
// maxTopics (0: no limit).
func (x *topicIndex) bind(p pattern, sub *topicSub, d *durable, maxTopics int) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !p.wild {
		t := x.topics[p.dest]
		if t == nil {
			if sub != nil && maxTopics > 0 && len(x.topics) >= maxTopics {
				return false
			}
			t = &topic{name: p.dest}
			x.topics[p.dest] = t
		}
		t.lastUsed.Store(time.Now().UnixNano())
		t.add(sub, d)
	} else {
		x.bindWild(p, sub, d)
	}
	if d != nil {
		x.durables.Add(1)
	}
	return true
}

func (x *topicIndex) bindWild(p pattern, sub *topicSub, d *durable) {
	n := &x.root
	for _, w := range p.words {
		n = n.child(w, true)
	}
	n.add(sub, d)
	x.nwild++
}

// unbind removes what bind added; trie nodes left empty are pruned.
func (x *topicIndex) unbind(p pattern, sub *topicSub, d *durable) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if d != nil {
		x.durables.Add(-1)
	}
	if !p.wild {
		if t := x.topics[p.dest]; t != nil {
			t.remove(sub, d)
		}
		return
	}
	path := make([]*trieNode, 0, len(p.words)+1)
	n := &x.root
	path = append(path, n)
	for _, w := range p.words {
		if n = n.child(w, false); n == nil {
			return
		}
		path = append(path, n)
	}
	before := len(n.live) + len(n.durables)
	n.remove(sub, d)
	x.nwild -= before - len(n.live) - len(n.durables)
	for i := len(path) - 1; i > 0 && path[i].leaf(); i-- {
		path[i-1].drop(p.words[i-1])
	}
}

// boundTo returns the live subscriptions made on exactly pattern.
func (x *topicIndex) boundTo(dest string) []*topicSub {
	p := parsePattern(dest)
	x.mu.RLock()
	defer x.mu.RUnlock()
	var bs *bindings
	if !p.wild {
		if t := x.topics[p.dest]; t != nil {
			bs = &t.bindings
		}
	} else {
		n := &x.root
		for _, w := range p.words {
			if n = n.child(w, false); n == nil {
				return nil
			}
		}
		bs = &n.bindings
	}
	if bs == nil {
		return nil
	}
	out := make([]*topicSub, 0, len(bs.live))
	for sub := range bs.live {
		if sub.pattern.dest == dest {
			out = append(out, sub)
		}
	}
	return out
}

// match adds to m every subscription a published name reaches, and
// returns the name's topic if one is recorded.
func (x *topicIndex) match(name string, m *matches) *topic {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t := x.topics[name]
	if t != nil {
		t.collect(m)
	}
	if x.nwild > 0 {
		w := trieWalk{words: topicWords(name), m: m}
		w.visit(&x.root, 0)
	}
	return t
}

// count reports how many subscriptions a name reaches.
func (x *topicIndex) count(name string) int {
	var m matches
	x.match(name, &m)
	return len(m.live) + len(m.durables)
}

// subscriptions counts the live subscriptions in the index.
func (x *topicIndex) subscriptions() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.root.countLive()
	for _, t := range x.topics {
		n += len(t.live)
	}
	return n
}

func (n *trieNode) child(w string, create bool) *trieNode {
	slot := &n.star
	switch w {
	case "*":
	case "#":
		slot = &n.hash
	default:
		c := n.words[w]
		if c == nil && create {
			if n.words == nil {
				n.words = make(map[string]*trieNode)
			}
			c = &trieNode{}
			n.words[w] = c
		}
		return c
	}
	if *slot == nil && create {
		*slot = &trieNode{}
	}
	return *slot
}

func (n *trieNode) drop(w string) {
	switch w {
	case "*":
		n.star = nil
	case "#":
		n.hash = nil
	default:
		delete(n.words, w)
	}
}

func (n *trieNode) leaf() bool {
	return n.empty() && len(n.words) == 0 && n.star == nil && n.hash == nil
}

func (n *trieNode) countLive() int {
	c := len(n.live)
	for _, ch := range n.words {
		c += ch.countLive()
	}
	if n.star != nil {
		c += n.star.countLive()
	}
	if n.hash != nil {
		c += n.hash.countLive()
	}
	return c
}

// trieWalk matches one name against the trie. A state is a node and how
// many words have been consumed to reach it; each is visited once, which
// bounds the walk and reports each binding once. Only "#" can reach a
// state twice, so the visited set is made when the first "#" is entered.
type trieWalk struct {
	words []string
	m     *matches
	seen  map[trieState]struct{}
	steps int // states entered, which tests hold to the bound
}

type trieState struct {
	n *trieNode
	i int
}

// visit enters node n having consumed words[:i]; hash is set when n is a
// "#" node, which may go on consuming words.
func (w *trieWalk) visit(n *trieNode, i int) {
	w.steps++
	if i == len(w.words) {
		n.collect(w.m)
	} else {
		if c := n.words[w.words[i]]; c != nil {
			w.visit(c, i+1)
		}
		if n.star != nil {
			w.visit(n.star, i+1)
		}
	}
	if n.hash != nil {
		w.visitHash(n.hash, i)
	}
}

// visitHash enters the "#" node h at every position from i on: "#" takes
// zero or more words.
func (w *trieWalk) visitHash(h *trieNode, i int) {
	if w.seen == nil {
		w.seen = make(map[trieState]struct{})
	}
	for ; i <= len(w.words); i++ {
		s := trieState{h, i}
		if _, ok := w.seen[s]; ok {
			return // later positions were entered from there
		}
		w.seen[s] = struct{}{}
		w.visitAfterHash(h, i)
	}
}

// visitAfterHash goes on from "#" node h once it has taken words up to i.
func (w *trieWalk) visitAfterHash(h *trieNode, i int) {
	w.steps++
	if i == len(w.words) {
		h.collect(w.m)
	} else {
		if c := h.words[w.words[i]]; c != nil {
			w.visit(c, i+1)
		}
		if h.star != nil {
			w.visit(h.star, i+1)
		}
	}
	// A "#" directly after "#" never exists: parsePattern collapses runs.
}

// all returns the topics at one moment.
func (x *topicIndex) all() []*topic {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]*topic, 0, len(x.topics))
	for _, t := range x.topics {
		out = append(out, t)
	}
	return out
}

// forget drops a topic's figures, and the topic itself when nothing is
// subscribed to its exact name; it reports whether the topic was known.
func (x *topicIndex) forget(name string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.topics[name]
	if t == nil {
		return false
	}
	if t.empty() {
		delete(x.topics, name)
	} else {
		t.published.Store(0)
		t.delivered.Store(0)
	}
	return true
}
