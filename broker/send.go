package broker

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// maxSendBatch bounds how many SENDs are published together.
const maxSendBatch = 256

// handleSend handles a SEND frame. Outside a transaction its message joins
// the batch flushSends publishes, and its receipt waits for that.
func (s *session) handleSend(f *stomp.Frame) error {
	if len(s.sends) == 0 {
		// Between batches, so that what was read is published first.
		s.b.alarm.wait(s.c.writerDone)
	}
	batched, err := s.onSend(f)
	if batched {
		return err
	}
	if err != nil {
		// The SENDs before it are good: publish them first.
		if ferr := s.flushSends(); ferr != nil {
			return ferr
		}
		return s.protocolError(f, err.Error())
	}
	s.receipt(f)
	return nil
}

// onSend builds a SEND's message and reports whether it joined the batch.
func (s *session) onSend(f *stomp.Frame) (batched bool, err error) {
	dest, err := requireHeader(f, "destination")
	if err != nil {
		return false, err
	}
	kind, err := parseDestination(dest, false)
	if err != nil {
		return false, destinationError(dest, err)
	}
	if kind != kindTempQueue {
		if err := s.checkWrite(dest); err != nil {
			return false, err
		}
	}
	if err := checkHeaderNames(f.Headers); err != nil {
		return false, err
	}
	tx, err := s.txFor(f)
	if err != nil {
		return false, err
	}
	if kind == kindTempQueue {
		if dest, err = s.tempQueue(dest); err != nil {
			return false, err
		}
	}
	s.c.msgsIn.Add(1)
	m := newMessage(s.b.ids.next(), dest, f, time.Now())
	if err := s.rewriteReplyTo(m); err != nil {
		return false, err
	}
	if tx != nil {
		return false, s.hold(tx, m)
	}
	if err := s.r.admit(dest, m.persistent, s.c.writerDone); err != nil {
		return false, err
	}
	s.sends = append(s.sends, m)
	s.sendReceipts = append(s.sendReceipts, f.Value("receipt"))
	if len(s.sends) >= maxSendBatch {
		return true, s.flushSends()
	}
	return true, nil
}

// flushSends publishes the SENDs gathered from one read of the
// connection, and then sends their receipts. Publishing them together
// puts all their persistent messages in one store commit: a client that
// keeps many receipted SENDs in flight is not held to one commit per
// message. Order is kept: any other frame flushes the SENDs before it.
func (s *session) flushSends() error {
	if len(s.sends) == 0 {
		return nil
	}
	err := s.r.publish(s.c, s.sends)
	receipts := s.sendReceipts
	clear(s.sends)
	s.sends, s.sendReceipts = s.sends[:0], receipts[:0]
	if err != nil {
		s.c.fail(err.Error(), receipts[0])
		return errStop
	}
	for _, r := range receipts {
		if r != "" {
			s.c.answer(stomp.New(stomp.RECEIPT, "receipt-id", r))
		}
	}
	return nil
}

// rewriteReplyTo turns a reply-to naming one of this connection's
// temporary queues into a name any connection can send to, and makes
// sure replies reach this connection.
func (s *session) rewriteReplyTo(m *message) error {
	for i, h := range m.headers {
		if h.Key != "reply-to" {
			continue
		}
		if !strings.HasPrefix(h.Value, tempQueuePrefix) {
			// Replies will come back there: the sender must be allowed
			// to read it.
			if err := s.checkRead(h.Value); err != nil {
				return err
			}
			continue
		}
		if _, err := parseDestination(h.Value, false); err != nil {
			return destinationError(h.Value, err)
		}
		name, err := s.tempQueue(h.Value)
		if err != nil {
			return err
		}
		if !s.consumes(name) {
			sub := &subscription{id: h.Value, dest: h.Value, kind: kindTempQueue, mode: ackAuto, queue: name}
			if err := s.subscribe(sub); err != nil {
				return err
			}
		}
		m.headers[i].Value = name
	}
	return nil
}

// tempQueue returns the name of this connection's queue for
// /temp-queue/NAME, opening it on first use.
func (s *session) tempQueue(dest string) (string, error) {
	if name, ok := s.temps[dest]; ok {
		return name, nil
	}
	if len(s.temps) >= s.b.opts.MaxTempQueues {
		s.b.limits.hit("temp-queues")
		return "", limitError("temporary queues per connection", s.b.opts.MaxTempQueues)
	}
	if s.temps == nil {
		s.temps = make(map[string]string)
	}
	if s.tempKey == "" {
		// Others learn these names only from reply-to headers: they must
		// not be able to guess them and consume another's replies.
		key := make([]byte, 12)
		rand.Read(key)
		s.tempKey = hex.EncodeToString(key)
	}
	name := tempQueueNamePrefix + s.tempKey + "." + strings.TrimPrefix(dest, tempQueuePrefix)
	if err := s.r.openTemp(name); err != nil {
		return "", err
	}
	s.temps[dest] = name
	return name, nil
}

// consumes reports whether the session subscribes to the named queue.
func (s *session) consumes(queue string) bool {
	for _, sub := range s.subs {
		if sub.kind != kindTopic && sub.queue == queue {
			return true
		}
	}
	return false
}
