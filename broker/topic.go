package broker

import (
	"strings"
	"sync"
)

// topicSub is one subscription to a topic name or pattern.
type topicSub struct {
	s        *session
	id       string // the client's subscription id
	num      int    // the session's number for it, prefixes ack ids
	pattern  string // full destination, /topic/...
	words    []string
	wildcard bool
	mode     ackMode
	prefetch int

	mu      sync.Mutex
	ackSeq  uint64
	pending []delivery // client modes: delivered, not yet acked
}

// topicIndex finds the subscriptions a published name reaches. Exact names
// are a map lookup; wildcard patterns are matched word by word.
type topicIndex struct {
	mu    sync.RWMutex
	exact map[string]map[*topicSub]struct{}
	wild  map[*topicSub]struct{}
}

func newTopicIndex() *topicIndex {
	return &topicIndex{exact: make(map[string]map[*topicSub]struct{}), wild: make(map[*topicSub]struct{})}
}

func (t *topicIndex) add(sub *topicSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sub.wildcard {
		t.wild[sub] = struct{}{}
		return
	}
	set := t.exact[sub.pattern]
	if set == nil {
		set = make(map[*topicSub]struct{})
		t.exact[sub.pattern] = set
	}
	set[sub] = struct{}{}
}

func (t *topicIndex) remove(sub *topicSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sub.wildcard {
		delete(t.wild, sub)
		return
	}
	if set := t.exact[sub.pattern]; set != nil {
		delete(set, sub)
		if len(set) == 0 {
			delete(t.exact, sub.pattern)
		}
	}
}

// match appends to buf every subscription that dest reaches.
func (t *topicIndex) match(dest string, buf []*topicSub) []*topicSub {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for sub := range t.exact[dest] {
		buf = append(buf, sub)
	}
	if len(t.wild) > 0 {
		words := strings.Split(strings.TrimPrefix(dest, topicPrefix), ".")
		for sub := range t.wild {
			if matchWords(sub.words, words) {
				buf = append(buf, sub)
			}
		}
	}
	return buf
}

// count reports how many subscriptions the index holds.
func (t *topicIndex) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := len(t.wild)
	for _, set := range t.exact {
		n += len(set)
	}
	return n
}

// matchWords matches a dot-separated name against a pattern where "*" is
// exactly one word and "#" is zero or more.
func matchWords(pattern, name []string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case "#":
			rest := pattern[1:]
			for i := 0; i <= len(name); i++ {
				if matchWords(rest, name[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(name) == 0 {
				return false
			}
		default:
			if len(name) == 0 || name[0] != pattern[0] {
				return false
			}
		}
		pattern, name = pattern[1:], name[1:]
	}
	return len(name) == 0
}

// deliver hands a published message to this subscription. It reports
// false when the subscriber cannot keep up, and otherwise whether its
// connection is congested.
func (sub *topicSub) deliver(m *message) (ok, congested bool) {
	ackID := ""
	if sub.mode != ackAuto {
		sub.mu.Lock()
		if len(sub.pending) >= sub.prefetch {
			sub.mu.Unlock()
			return false, false
		}
		sub.ackSeq++
		ackID = makeAckID(sub.num, sub.ackSeq)
		sub.pending = append(sub.pending, delivery{ackID: ackID, m: m})
		sub.mu.Unlock()
	}
	head := appendMessageHead(nil, m, sub.s.version, sub.id, ackID, false)
	ok, congested = sub.s.out.pushCongested(Outbound{Head: head, Body: m.wire, Binary: m.binary}, false)
	if ok {
		sub.s.msgsOut.Add(1)
	}
	return ok, congested
}

// settle acks or nacks pending deliveries. Topic messages are not
// redelivered: a NACK simply drops them.
func (sub *topicSub) settle(match func(*delivery) bool, cumulative bool) error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	i := findDelivery(sub.pending, match)
	if i < 0 {
		return errUnknownAck
	}
	sub.pending = removeSettled(sub.pending, i, cumulative)
	return nil
}

func (sub *topicSub) hasPending(match func(*delivery) bool) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return findDelivery(sub.pending, match) >= 0
}
