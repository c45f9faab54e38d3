package broker

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// Topic history: a topic whose retention says so keeps its latest
// messages, so that a subscriber that reconnects can ask for what it
// missed. Every retained message gets a position from one broker-wide
// sequence, assigned in the order messages are delivered: its message-id
// and its x-stream-offset are that position, so positions compare across
// topics (a wildcard resumes in publication order) and a client needs
// nothing but the last message-id it saw.
//
// Memory is bounded twice: each topic by its retention (count, age,
// bytes), and all of them together by Options.MaxHistoryBytes, which drops
// the oldest retained message anywhere first. Topics that retain nothing
// never reach this file: publishing to them costs what it did before.

// historyPrefix names the store queues that keep the persistent messages
// of a topic's history: /history//topic/NAME.
const historyPrefix = "/history/"

// topicOverhead is what one topic's history costs beyond its messages,
// counted against the broker-wide bound so that many small histories are
// bounded too.
const topicOverhead = 256

// streamOffsetHeader carries a retained message's position on every
// MESSAGE, as RabbitMQ streams do.
const streamOffsetHeader = "x-stream-offset"

// TopicHistory is how much history the topics a pattern matches keep.
type TopicHistory struct {
	// Match is a topic destination or pattern, wildcards as in SUBSCRIBE.
	Match string
	// Count is how many messages each matching topic keeps; 0 keeps none.
	Count int
	// Age drops messages older than this; 0 leaves age unbounded.
	Age time.Duration
	// Bytes bounds each matching topic's history; 0 leaves only the
	// broker-wide bound.
	Bytes int64
}

// retention is what one topic keeps.
type retention struct {
	count int
	age   time.Duration
	bytes int64
}

type historyRule struct {
	p   pattern
	ret retention
}

// histories holds every topic's history.
type histories struct {
	rules []historyRule // first match wins
	all   retention     // topics no rule matches
	max   int64
	// cl, in a cluster, holds the history instead: the nodes share it,
	// and no ring is kept here (history_shared.go).
	cl Cluster

	// order is held by a publisher of retained messages from the moment
	// they get their positions until they are delivered: subscribers
	// then see them in position order, so the last message-id a client
	// saw is a place to resume from, with nothing before it still to come.
	order sync.Mutex

	mu     sync.Mutex
	seq    uint64 // the last position given
	topics map[string]*history
	// oldest and newest end the list of every retained message, in
	// position order: the global bound drops from its front.
	oldest, newest *histEntry
	bytes          int64
	// forgotten is the newest position dropped with a whole topic's
	// history, and forgottenAt its timestamp: a topic whose history was
	// forgotten may have had anything up to there.
	forgotten   uint64
	forgottenAt int64
}

// history is one topic's retained messages, oldest first.
type history struct {
	name    string
	ret     retention
	entries []*histEntry
	bytes   int64
	// dropped is the newest position no longer retained, droppedAt its
	// timestamp: a resume from before it has a gap.
	dropped   uint64
	droppedAt int64
}

type histEntry struct {
	m          *message
	t          *history
	size       int64
	stored     uint64 // its store record's sequence, 0 when not stored
	gone       bool
	prev, next *histEntry
}

func newHistories(o *Options) (*histories, error) {
	h := &histories{
		all: retention{count: o.TopicHistory}, max: o.MaxHistoryBytes,
		topics: make(map[string]*history),
		seq:    uint64(time.Now().UnixMicro()),
	}
	for _, rule := range o.TopicHistoryRules {
		if kind, err := parseDestination(rule.Match, true); err != nil || kind != kindTopic {
			return nil, errors.New("topic history: " + strconv.Quote(rule.Match) + " is not a topic destination or pattern")
		}
		h.rules = append(h.rules, historyRule{parsePattern(rule.Match), retention{rule.Count, rule.Age, rule.Bytes}})
	}
	return h, nil
}

// on reports whether any topic may keep history.
func (h *histories) on() bool {
	if h.all.count > 0 {
		return true
	}
	for _, r := range h.rules {
		if r.ret.count > 0 {
			return true
		}
	}
	return false
}

// retentionOf is what the topic name keeps. The rules never change, so
// this needs no lock.
func (h *histories) retentionOf(name string) retention {
	for _, r := range h.rules {
		if r.p.matches(name) {
			return r.ret
		}
	}
	return h.all
}

// retains reports whether any of ms is a topic message to keep.
func (h *histories) retains(ms []*message) bool {
	for _, m := range ms {
		if !isQueue(m.destination) && h.retentionOf(m.destination).count > 0 {
			return true
		}
	}
	return false
}

// parsePosition reads the position a message-id or x-stream-offset names;
// ok is false for anything that is not one.
func parsePosition(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0
}

// append keeps m in its topic's history, giving it the next position as
// message-id and x-stream-offset, and returns its entry, or nil when the
// topic keeps nothing. Messages pushed out to make room leave their store
// deletes in dels. The caller holds order.
func (h *histories) append(m *message, dels *[]storeOp) *histEntry {
	ret := h.retentionOf(m.destination)
	if ret.count <= 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	m.setPosition(h.seq)
	e := h.keep(m, ret)
	h.trim(e.t, time.Now().UnixMilli(), dels)
	return e
}

// setPosition makes pos m's message-id and x-stream-offset.
func (m *message) setPosition(pos uint64) {
	m.hseq = pos
	m.id = strconv.FormatUint(pos, 10)
	hs := make([]stomp.Header, len(m.headers), len(m.headers)+1)
	copy(hs, m.headers)
	m.headers = append(hs, stomp.Header{Key: streamOffsetHeader, Value: m.id})
}

// keep links m into its topic's history and the global list.
func (h *histories) keep(m *message, ret retention) *histEntry {
	t := h.topics[m.destination]
	if t == nil {
		t = &history{name: m.destination, ret: ret, dropped: h.forgotten, droppedAt: h.forgottenAt}
		h.topics[m.destination] = t
		h.bytes += topicOverhead
	}
	e := &histEntry{m: m, t: t, size: int64(m.size() + 64)}
	t.entries = append(t.entries, e)
	t.bytes += e.size
	h.bytes += e.size
	e.prev = h.newest
	if h.newest != nil {
		h.newest.next = e
	} else {
		h.oldest = e
	}
	h.newest = e
	return e
}

// trim drops what t's retention and the global bound no longer allow,
// oldest first.
func (h *histories) trim(t *history, nowMs int64, dels *[]storeOp) {
	for len(t.entries) > 0 && (len(t.entries) > t.ret.count ||
		(t.ret.bytes > 0 && t.bytes > t.ret.bytes) || t.entries[0].aged(nowMs)) {
		h.drop(t.entries[0], dels)
	}
	for h.oldest != nil && (h.bytes > h.max || h.oldest.aged(nowMs)) {
		h.drop(h.oldest, dels)
	}
}

// aged reports whether e is older than its topic keeps messages.
func (e *histEntry) aged(nowMs int64) bool {
	return e.t.ret.age > 0 && nowMs-e.m.timestamp > e.t.ret.age.Milliseconds()
}

// drop removes e, which is its topic's oldest entry.
func (h *histories) drop(e *histEntry, dels *[]storeOp) {
	t := e.t
	e.gone = true
	t.entries[0] = nil
	t.entries = t.entries[1:]
	t.bytes -= e.size
	h.bytes -= e.size
	t.dropped, t.droppedAt = max(t.dropped, e.m.hseq), max(t.droppedAt, e.m.timestamp)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		h.oldest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		h.newest = e.prev
	}
	e.prev, e.next = nil, nil
	if e.stored != 0 {
		*dels = append(*dels, storeOp{name: historyPrefix + t.name, seq: e.stored, del: true})
	}
	if len(t.entries) == 0 {
		delete(h.topics, t.name)
		h.bytes -= topicOverhead
		h.forgotten, h.forgottenAt = max(h.forgotten, t.dropped), max(h.forgottenAt, t.droppedAt)
	}
}

// replayMode is what a SUBSCRIBE asks to be replayed.
type replayMode uint8

const (
	replayLast  replayMode = iota // the last n (x-history)
	replayAfter                   // after position pos (x-resume-after)
	replayFrom                    // from position pos on (x-stream-offset offset=)
	replaySince                   // published at ms or later (x-history-since)
	replayNone                    // nothing, live only (x-stream-offset next)
)

// replayRequest is a SUBSCRIBE's history header, parsed.
type replayRequest struct {
	mode replayMode
	n    int
	pos  uint64
	ms   int64
	// resume: the client names a position it has reached, so the
	// RECEIPT says whether the replay joins it without a gap.
	resume bool
	// unknown: the position named is not one this broker gave.
	unknown bool
}

// parseReplay reads a SUBSCRIBE's history headers, nil when it has none.
func parseReplay(f *stomp.Frame) (*replayRequest, error) {
	if v, ok := f.Get("x-resume-after"); ok {
		pos, ok := parsePosition(v)
		return &replayRequest{mode: replayAfter, pos: pos, resume: true, unknown: !ok}, nil
	}
	if v, ok := f.Get("x-history-since"); ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return nil, errors.New("invalid x-history-since " + strconv.Quote(v) + ": want ms since the epoch")
		}
		return &replayRequest{mode: replaySince, ms: ms, resume: true}, nil
	}
	if v, ok := f.Get("x-history"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, errors.New("invalid x-history " + strconv.Quote(v) + ": want a count")
		}
		return &replayRequest{mode: replayLast, n: n}, nil
	}
	if v, ok := f.Get("x-stream-offset"); ok {
		return parseStreamOffset(v)
	}
	return nil, nil
}

// parseStreamOffset reads RabbitMQ's stream header: first, last, next,
// offset=N or timestamp=S (seconds).
func parseStreamOffset(v string) (*replayRequest, error) {
	bad := errors.New("invalid x-stream-offset " + strconv.Quote(v) + ": want first, last, next, offset=N or timestamp=S")
	switch v {
	case "first":
		return &replayRequest{mode: replayFrom}, nil
	case "last":
		return &replayRequest{mode: replayLast, n: 1}, nil
	case "next":
		return &replayRequest{mode: replayNone}, nil
	}
	if s, ok := strings.CutPrefix(v, "offset="); ok {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, bad
		}
		return &replayRequest{mode: replayFrom, pos: n, resume: true}, nil
	}
	if s, ok := strings.CutPrefix(v, "timestamp="); ok {
		secs, err := strconv.ParseInt(s, 10, 64)
		if err != nil || secs < 0 {
			return nil, bad
		}
		return &replayRequest{mode: replaySince, ms: secs * 1000, resume: true}, nil
	}
	return nil, bad
}

// snapshot returns what req asks of the topics p matches, oldest first,
// the last position given so far (live messages up to it are in the
// snapshot or were never retained), and whether a resume has a gap.
func (h *histories) snapshot(p pattern, req replayRequest) (ms []*message, upto uint64, gap bool) {
	nowMs := time.Now().UnixMilli()
	h.mu.Lock()
	defer h.mu.Unlock()
	upto = h.seq
	var dropped uint64
	var droppedAt int64
	var ts []*history
	if !p.wild {
		if t := h.topics[p.dest]; t != nil {
			ts = append(ts, t)
		} else {
			dropped, droppedAt = h.forgotten, h.forgottenAt
		}
	} else {
		dropped, droppedAt = h.forgotten, h.forgottenAt
		for name, t := range h.topics {
			if p.matches(name) {
				ts = append(ts, t)
			}
		}
	}
	if req.mode == replayNone {
		return nil, upto, false
	}
	for _, t := range ts {
		dropped, droppedAt = max(dropped, t.dropped), max(droppedAt, t.droppedAt)
		for _, e := range t.entries {
			if !e.aged(nowMs) && !e.m.expired(nowMs) && req.wants(e.m) {
				ms = append(ms, e.m)
			}
		}
	}
	if len(ts) > 1 {
		slices.SortFunc(ms, func(a, b *message) int { return compareUint(a.hseq, b.hseq) })
	}
	switch req.mode {
	case replayLast:
		ms = ms[max(0, len(ms)-req.n):]
	case replayAfter:
		gap = req.unknown || req.pos > upto || dropped > req.pos
	case replayFrom:
		gap = req.resume && dropped >= req.pos
	case replaySince:
		gap = droppedAt >= req.ms
	}
	if gap && req.mode == replayAfter {
		// An unknown position: what is retained is all there is.
		ms = ms[:0]
		for _, t := range ts {
			for _, e := range t.entries {
				if !e.aged(nowMs) && !e.m.expired(nowMs) && (req.unknown || req.pos > upto || e.m.hseq > req.pos) {
					ms = append(ms, e.m)
				}
			}
		}
		if len(ts) > 1 {
			slices.SortFunc(ms, func(a, b *message) int { return compareUint(a.hseq, b.hseq) })
		}
	}
	return ms, upto, gap
}

// wants reports whether m falls in the part of a history req asks for;
// replayLast takes its count afterwards.
func (req *replayRequest) wants(m *message) bool {
	switch req.mode {
	case replayAfter:
		return req.unknown || m.hseq > req.pos
	case replayFrom:
		return m.hseq >= req.pos
	case replaySince:
		return m.timestamp >= req.ms
	}
	return true
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// latest returns up to limit of a topic's newest retained messages,
// oldest first, for operators.
func (h *histories) latest(name string, limit int) ([]*message, bool) {
	if h.cl != nil {
		ms, _, _, err := h.sharedSnapshot(parsePattern(name), replayRequest{mode: replayLast, n: limit})
		return ms, err == nil && len(ms) > 0
	}
	nowMs := time.Now().UnixMilli()
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		return nil, false
	}
	var out []*message
	for _, e := range t.entries[max(0, len(t.entries)-limit):] {
		if !e.aged(nowMs) {
			out = append(out, e.m)
		}
	}
	return out, true
}

// size reports the bytes and topics the histories hold.
func (h *histories) size() (bytes int64, topics int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bytes, len(h.topics)
}

// historyRecord is the store record of a retained persistent message.
func (e *histEntry) record() *store.Record {
	rec := e.m.record()
	rec.Queue = historyPrefix + e.t.name
	return rec
}

// recoverHistory reads back the persistent messages topics kept, as far
// as today's retention keeps them, and makes sure positions given from
// now on follow theirs.
func (r *local) recoverHistory(infos []store.QueueInfo) error {
	h := r.hist
	var ms []*message
	for _, info := range infos {
		name, ok := strings.CutPrefix(info.Name, historyPrefix)
		if !ok {
			continue
		}
		if h.retentionOf(name).count <= 0 {
			if err := r.store.DeleteQueue(info.Name); err != nil {
				return err
			}
			continue
		}
		err := r.store.Scan(info.Name, 0, 0, func(rec *store.Record) error {
			// m.seq holds the record's sequence until the entry does.
			m := messageFromRecord(rec, name)
			if pos, ok := parsePosition(rec.ID); ok {
				m.hseq = pos
				ms = append(ms, m)
				h.seq = max(h.seq, pos)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	slices.SortFunc(ms, func(a, b *message) int { return compareUint(a.hseq, b.hseq) })
	var dels []storeOp
	h.mu.Lock()
	nowMs := time.Now().UnixMilli()
	for _, m := range ms {
		e := h.keep(m, h.retentionOf(m.destination))
		e.stored, m.seq = m.seq, 0
		h.trim(e.t, nowMs, &dels)
	}
	h.mu.Unlock()
	r.writer.add(dels...)
	return nil
}
