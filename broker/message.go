package broker

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/stampede-mq/stampede/stomp"
)

// message is one published message. Everything but deliveries and the
// store sequence is immutable once built, so deliveries to many
// subscribers share it, body included.
type message struct {
	id          string
	destination string         // where it was sent: the MESSAGE destination header
	queue       string         // the queue that holds it, its store key
	headers     []stomp.Header // user headers, as sent
	wire        []byte         // body followed by the frame's NUL
	binary      bool           // body is not valid UTF-8
	priority    uint8
	expires     int64 // ms since epoch, 0 = never
	timestamp   int64 // ms since epoch
	persistent  bool
	lease       Lease // held for this node by a shared queue (cluster)

	// tails caches the shared end of the MESSAGE head, per version;
	// copies of a message for other queues share it.
	tails *headTails

	// Guarded by the owning queue's lock.
	deliveries     uint32
	maybeDelivered bool   // read back after a restart from before the dispatch mark
	seq            uint64 // store sequence, 0 when not stored

	// hseq is a retained topic message's position in history (history.go),
	// 0 for others; set before the message is routed, then immutable.
	hseq uint64
}

func (m *message) bodyLen() int { return len(m.wire) - 1 }

func (m *message) expired(nowMs int64) bool { return m.expires != 0 && nowMs >= m.expires }

// settledElsewhere reports whether settling m must be recorded outside
// memory: in the store, or in the shared queue that leased it.
func (m *message) settledElsewhere() bool { return m.persistent || m.lease != nil }

// size approximates the memory a queued message holds.
func (m *message) size() int {
	n := len(m.wire) + 96
	for _, h := range m.headers {
		n += len(h.Key) + len(h.Value) + 32
	}
	return n
}

type headTails [3]atomic.Pointer[[]byte]

// headers a client may not set: the broker sets them on MESSAGE, on dead
// letters, or (SockJS) to say how it carried a frame.
func reservedHeader(k string) bool {
	switch k {
	case "destination", "message-id", "subscription", "ack", "receipt",
		"transaction", "content-length", "redelivered", "timestamp",
		"x-original-destination", "x-death-reason",
		"content-transfer-encoding", "x-invalid-utf8",
		streamOffsetHeader, "x-replayed", "x-resume-gap":
		return true
	}
	return false
}

// checkHeaderNames refuses a header name that some receiver could not
// read back as one name: STOMP 1.0 has no escaping, so a colon in a name
// would split it into another header there (content-length\c1 arriving
// as content-length:1:), and a line break would start another.
func checkHeaderNames(hs []stomp.Header) error {
	for _, h := range hs {
		if strings.ContainsAny(h.Key, ":\n\r") {
			return errors.New("header name " + strconv.Quote(h.Key) + " contains a colon or a line break")
		}
	}
	return nil
}

// newMessage builds a message from a SEND frame.
func newMessage(id, dest string, f *stomp.Frame, now time.Time) *message {
	nowMs := now.UnixMilli()
	m := &message{id: id, destination: dest, queue: dest, priority: 4, timestamp: nowMs, tails: new(headTails)}
	m.headers = make([]stomp.Header, 0, len(f.Headers))
	seen := make(map[string]struct{}, len(f.Headers))
	for _, h := range f.Headers {
		if reservedHeader(h.Key) {
			continue
		}
		if _, dup := seen[h.Key]; dup {
			continue // the first occurrence wins
		}
		seen[h.Key] = struct{}{}
		m.headers = append(m.headers, h)
		switch h.Key {
		case "priority":
			if p, err := strconv.Atoi(h.Value); err == nil {
				m.priority = uint8(min(max(p, 0), 9))
			}
		case "expires":
			if e, err := strconv.ParseInt(h.Value, 10, 64); err == nil && e > 0 {
				m.expires = earliest(m.expires, e)
			}
		case "expiration":
			if ttl, err := strconv.ParseInt(h.Value, 10, 64); err == nil && ttl >= 0 {
				m.expires = earliest(m.expires, nowMs+ttl)
			}
		case "persistent":
			m.persistent = h.Value == "true"
		}
	}
	m.wire = make([]byte, len(f.Body)+1)
	copy(m.wire, f.Body)
	m.binary = !utf8.Valid(f.Body)
	return m
}

func earliest(cur, e int64) int64 {
	if cur == 0 || e < cur {
		return e
	}
	return cur
}

// withDestination returns a copy of m bound for another destination, as
// a fresh message (dead-lettering); extra headers are added.
func (m *message) withDestination(id, dest string, extra ...stomp.Header) *message {
	c := &message{
		id: id, destination: dest, queue: dest, wire: m.wire, binary: m.binary,
		priority: m.priority, expires: m.expires, timestamp: m.timestamp,
		persistent: m.persistent, tails: new(headTails),
	}
	c.headers = make([]stomp.Header, 0, len(m.headers)+len(extra))
	for _, h := range m.headers {
		drop := false
		for _, e := range extra {
			drop = drop || e.Key == h.Key
		}
		if !drop {
			c.headers = append(c.headers, h)
		}
	}
	c.headers = append(c.headers, extra...)
	return c
}

// copyFor returns a copy of m held by another queue (a durable
// subscription's): same id, headers and body, its own delivery state.
func (m *message) copyFor(queue string) *message {
	return &message{
		id: m.id, destination: m.destination, queue: queue, headers: m.headers,
		wire: m.wire, binary: m.binary, priority: m.priority, expires: m.expires,
		timestamp: m.timestamp, persistent: m.persistent, tails: m.tails, hseq: m.hseq,
	}
}

// appendMessageHead encodes the MESSAGE head for one delivery: the few
// headers that differ per subscriber, then the rest, encoded once per
// protocol version and shared by every delivery of the message. extra is
// header lines that only this delivery carries (a replay's), or "".
func appendMessageHead(dst []byte, m *message, v stomp.Version, subID, ackID string, redelivered bool, extra string) []byte {
	tail := m.headTail(v)
	if dst == nil {
		dst = make([]byte, 0, len(tail)+len(m.destination)+len(m.id)+len(subID)+len(ackID)+80)
	}
	dst = append(dst, "MESSAGE\n"...)
	dst = stomp.AppendHeader(dst, "destination", m.destination, v)
	dst = stomp.AppendHeader(dst, "message-id", m.id, v)
	dst = stomp.AppendHeader(dst, "subscription", subID, v)
	if ackID != "" && v >= stomp.V12 {
		dst = stomp.AppendHeader(dst, "ack", ackID, v)
	}
	if redelivered {
		dst = append(dst, "redelivered:true\n"...)
	}
	dst = append(dst, extra...)
	return append(dst, tail...)
}

// headTail returns the user headers, content-length, timestamp and the
// blank line that end every MESSAGE head of m in version v.
func (m *message) headTail(v stomp.Version) []byte {
	slot := &m.tails[v-stomp.V10]
	if t := slot.Load(); t != nil {
		return *t
	}
	var t []byte
	for _, h := range m.headers {
		t = stomp.AppendHeader(t, h.Key, h.Value, v)
	}
	t = append(t, "content-length:"...)
	t = strconv.AppendInt(t, int64(m.bodyLen()), 10)
	t = append(t, "\ntimestamp:"...)
	t = strconv.AppendInt(t, m.timestamp, 10)
	t = append(t, "\n\n"...)
	// Racing deliveries may both encode it; either result is the same.
	slot.Store(&t)
	return t
}

// idSource makes message ids unique to this broker's run: a base from the
// start time and a sequence.
type idSource struct {
	base string
	seq  atomic.Uint64
}

func (s *idSource) next() string {
	return s.base + "-" + strconv.FormatUint(s.seq.Add(1), 10)
}
