package broker

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

func requireHeader(f *stomp.Frame, key string) (string, error) {
	v, ok := f.Get(key)
	if !ok {
		return "", errors.New("missing " + key + " header")
	}
	return v, nil
}

func destinationError(dest string, err error) error {
	return errors.New(err.Error() + ": " + strconv.Quote(dest))
}

// onSend handles a SEND. Outside a transaction the message joins the
// batch flushSends publishes, and batched is set.
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
	tx, err := s.txFor(f)
	if err != nil {
		return false, err
	}
	if kind == kindTempQueue {
		dest = s.tempQueue(dest).name
	}
	s.msgsIn.Add(1)
	m := newMessage(s.b.nextMessageID(), dest, f, time.Now())
	if err := s.rewriteReplyTo(m); err != nil {
		return false, err
	}
	if tx != nil {
		tx.actions = append(tx.actions, txAction{send: m})
		return false, nil
	}
	if kind != kindTopic {
		if err := s.b.queue(dest, true).waitForRoom(m.persistent, s.b.opts.SendBlockTimeout, s.writerDone); err != nil {
			return false, err
		}
	}
	s.sends = append(s.sends, m)
	s.sendReceipts = append(s.sendReceipts, f.Value("receipt"))
	if len(s.sends) >= maxSendBatch {
		return true, s.flushSends()
	}
	return true, nil
}

// maxSendBatch bounds how many SENDs are published together.
const maxSendBatch = 256

// flushSends publishes the SENDs gathered from one read of the
// connection, and then sends their receipts. Publishing them together
// puts all their persistent messages in one store commit: a client that
// keeps many receipted SENDs in flight is not held to one commit per
// message. Order is kept: any other frame flushes the SENDs before it.
func (s *session) flushSends() error {
	if len(s.sends) == 0 {
		return nil
	}
	err := s.b.publishFrom(s, s.sends)
	receipts := s.sendReceipts
	clear(s.sends)
	s.sends, s.sendReceipts = s.sends[:0], receipts[:0]
	if err != nil {
		s.fail(err.Error(), receipts[0])
		return errStop
	}
	for _, r := range receipts {
		if r != "" {
			s.sendControl(stomp.New(stomp.RECEIPT, "receipt-id", r))
		}
	}
	return nil
}

// txFor returns the transaction a frame names, if any, checking that it
// exists and has room for one more frame.
func (s *session) txFor(f *stomp.Frame) (*transaction, error) {
	id, ok := f.Get("transaction")
	if !ok {
		return nil, nil
	}
	tx := s.txs[id]
	if tx == nil {
		return nil, errors.New("unknown transaction " + strconv.Quote(id))
	}
	if len(tx.actions) >= s.b.opts.MaxTransactionFrames {
		s.b.limits.hit("transaction-frames")
		return nil, limitError("frames per transaction", s.b.opts.MaxTransactionFrames)
	}
	return tx, nil
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
		q := s.tempQueue(h.Value)
		if !s.subscribedTo(q) {
			if _, err := s.subscribeQueue(h.Value, h.Value, q, ackAuto, 0); err != nil {
				return err
			}
		}
		m.headers[i].Value = q.name
	}
	return nil
}

// tempQueue returns this connection's queue for /temp-queue/NAME.
func (s *session) tempQueue(dest string) *queue {
	if q := s.temps[dest]; q != nil {
		return q
	}
	if s.temps == nil {
		s.temps = make(map[string]*queue)
	}
	name := queuePrefix + "tmp." + s.id + "." + strings.TrimPrefix(dest, tempQueuePrefix)
	q := s.b.queue(name, true)
	q.temp = true
	s.temps[dest] = q
	return q
}

func (s *session) subscribedTo(q *queue) bool {
	for _, sub := range s.subs {
		if sub.cons != nil && sub.cons.q == q {
			return true
		}
	}
	return false
}

func (s *session) onSubscribe(f *stomp.Frame) error {
	dest, err := requireHeader(f, "destination")
	if err != nil {
		return err
	}
	id, ok := f.Get("id")
	if !ok {
		if s.version >= stomp.V11 {
			return errors.New("missing id header")
		}
		id = dest // STOMP 1.0 subscriptions may go unnamed
	}
	if _, dup := s.subs[id]; dup {
		return errors.New("duplicate subscription id " + strconv.Quote(id))
	}
	if len(s.subs) >= s.b.opts.MaxSubscriptions {
		s.b.limits.hit("subscriptions")
		return errors.New("subscription limit reached (max " + strconv.Itoa(s.b.opts.MaxSubscriptions) + " per connection)")
	}
	kind, err := parseDestination(dest, true)
	if err != nil {
		return destinationError(dest, err)
	}
	if kind != kindTempQueue {
		if err := s.checkRead(dest); err != nil {
			return err
		}
	}
	var mode ackMode
	switch a := f.Value("ack"); a {
	case "", "auto":
		mode = ackAuto
	case "client":
		mode = ackClient
	case "client-individual":
		mode = ackIndividual
	default:
		return errors.New("invalid ack mode " + strconv.Quote(a))
	}
	prefetch := s.b.opts.DefaultPrefetch
	if p, ok := f.Get("prefetch-count"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return errors.New("invalid prefetch-count " + strconv.Quote(p))
		}
		prefetch = n
	}
	if kind == kindTopic && isDurable(f) {
		name, err := durableName(f, s.clientID, id)
		if err != nil {
			return err
		}
		d, err := s.b.claimDurable(name, dest)
		if err != nil {
			return err
		}
		sub, err := s.subscribeQueue(id, dest, d.q, mode, prefetch)
		if err != nil {
			s.b.releaseDurable(d)
			return err
		}
		sub.durable = d
		return nil
	}
	switch kind {
	case kindTopic:
		s.subNum++
		ts := &topicSub{
			s: s, id: id, num: s.subNum, pattern: dest, mode: mode, prefetch: prefetch,
			wildcard: hasWildcard(dest),
		}
		if ts.wildcard {
			ts.words = strings.Split(strings.TrimPrefix(dest, topicPrefix), ".")
		}
		s.addSub(&subscription{id: id, dest: dest, mode: mode, topic: ts}, ts.num)
		s.b.topics.add(ts)
		if !ts.wildcard {
			s.b.topicCounter(dest)
		}
		return nil
	case kindTempQueue:
		_, err := s.subscribeQueue(id, dest, s.tempQueue(dest), mode, prefetch)
		return err
	default:
		_, err := s.subscribeQueue(id, dest, s.b.queue(dest, true), mode, prefetch)
		return err
	}
}

// isDurable tells a durable topic subscription: durable:true (RabbitMQ,
// DESIGN) or an ActiveMQ subscription name.
func isDurable(f *stomp.Frame) bool {
	return f.Value("durable") == "true" || f.Value("activemq.subscriptionName") != ""
}

func (s *session) addSub(sub *subscription, num int) {
	if s.subs == nil {
		// Made on first use: many connections only publish.
		s.subs = make(map[string]*subscription)
		s.subsByNum = make(map[int]*subscription)
	}
	s.subs[sub.id] = sub
	s.subsByNum[num] = sub
	s.nsubs.Add(1)
}

func (s *session) subscribeQueue(id, dest string, q *queue, mode ackMode, prefetch int) (*subscription, error) {
	if _, dup := s.subs[id]; dup {
		return nil, errors.New("duplicate subscription id " + strconv.Quote(id))
	}
	s.subNum++
	c := &consumer{s: s, q: q, id: id, num: s.subNum, mode: mode, prefetch: prefetch}
	sub := &subscription{id: id, dest: dest, mode: mode, cons: c}
	s.addSub(sub, c.num)
	q.addConsumer(c)
	return sub, nil
}

func (s *session) onUnsubscribe(f *stomp.Frame) error {
	id, ok := f.Get("id")
	if !ok {
		if s.version >= stomp.V11 {
			return errors.New("missing id header")
		}
		if id, ok = f.Get("destination"); !ok {
			return errors.New("missing id or destination header")
		}
	}
	sub := s.subs[id]
	forget := f.Value("durable") == "true"
	if sub == nil {
		if forget {
			// Deleting a durable subscription that is offline.
			name, err := durableName(f, s.clientID, id)
			if err != nil {
				return err
			}
			return s.b.deleteDurable(name)
		}
		return errors.New("no subscription with id " + strconv.Quote(id))
	}
	s.unsubscribe(sub)
	delete(s.subs, id)
	if forget && sub.durable != nil {
		return s.b.deleteDurable(sub.durable.name)
	}
	return nil
}

func (s *session) unsubscribe(sub *subscription) {
	s.nsubs.Add(-1)
	if sub.topic != nil {
		s.b.topics.remove(sub.topic)
		delete(s.subsByNum, sub.topic.num)
		return
	}
	delete(s.subsByNum, sub.cons.num)
	sub.cons.q.removeConsumer(sub.cons)
	if sub.durable != nil {
		s.b.releaseDurable(sub.durable)
	}
}

// ackTarget finds the subscription and delivery an ACK or NACK names: by
// the ack header's id in 1.2, by message-id (and subscription) before.
func (s *session) ackTarget(f *stomp.Frame) (*subscription, func(*delivery) bool, error) {
	if s.version >= stomp.V12 {
		id, err := requireHeader(f, "id")
		if err != nil {
			return nil, nil, err
		}
		num, _, _ := strings.Cut(id, "-")
		n, err := strconv.Atoi(num)
		sub := s.subsByNum[n]
		if err != nil || sub == nil || sub.mode == ackAuto {
			return nil, nil, errors.New("unknown ack id " + strconv.Quote(id))
		}
		match := func(d *delivery) bool { return d.ackID == id }
		if !sub.hasPending(match) {
			return nil, nil, errors.New("unknown ack id " + strconv.Quote(id))
		}
		return sub, match, nil
	}
	msgID, err := requireHeader(f, "message-id")
	if err != nil {
		return nil, nil, err
	}
	match := func(d *delivery) bool { return d.m.id == msgID }
	subID, hasSub := f.Get("subscription")
	if !hasSub && s.version >= stomp.V11 {
		return nil, nil, errors.New("missing subscription header")
	}
	for id, sub := range s.subs {
		if (!hasSub || id == subID) && sub.mode != ackAuto && sub.hasPending(match) {
			return sub, match, nil
		}
	}
	return nil, nil, errors.New("unknown message-id " + strconv.Quote(msgID))
}

func (sub *subscription) hasPending(match func(*delivery) bool) bool {
	if sub.topic != nil {
		return sub.topic.hasPending(match)
	}
	return sub.cons.q.hasPending(sub.cons, match)
}

func (s *session) onAck(f *stomp.Frame, ack bool) error {
	tx, err := s.txFor(f)
	if err != nil {
		return err
	}
	sub, match, err := s.ackTarget(f)
	if err != nil {
		return err
	}
	cumulative := sub.mode == ackClient
	requeue := f.Value("requeue") != "false"
	settle := func() error {
		if sub.topic != nil {
			return sub.topic.settle(match, cumulative)
		}
		return sub.cons.q.settle(sub.cons, match, cumulative, ack, requeue)
	}
	if tx != nil {
		// Settled at COMMIT; by then an earlier cumulative ACK in the
		// same transaction may have covered it, which is fine.
		tx.actions = append(tx.actions, txAction{settle: func() error {
			if err := settle(); err != nil && !errors.Is(err, errUnknownAck) {
				return err
			}
			return nil
		}})
		return nil
	}
	if err := settle(); err != nil {
		return err
	}
	s.durableReceipt(f)
	return nil
}

// durableReceipt makes a RECEIPT for an ACK or NACK mean that the store
// agrees: the settled message will not come back after a crash. Without
// a receipt, the store catches up in the background.
func (s *session) durableReceipt(f *stomp.Frame) {
	if _, ok := f.Get("receipt"); ok {
		s.b.writer.flush()
	}
}

func (s *session) onTransaction(f *stomp.Frame) error {
	id, err := requireHeader(f, "transaction")
	if err != nil {
		return err
	}
	tx := s.txs[id]
	if f.Command == stomp.BEGIN {
		if tx != nil {
			return errors.New("transaction " + strconv.Quote(id) + " already begun")
		}
		if len(s.txs) >= s.b.opts.MaxTransactions {
			s.b.limits.hit("transactions")
			return limitError("open transactions", s.b.opts.MaxTransactions)
		}
		if s.txs == nil {
			s.txs = make(map[string]*transaction)
		}
		s.txs[id] = &transaction{}
		return nil
	}
	if tx == nil {
		return errors.New("unknown transaction " + strconv.Quote(id))
	}
	delete(s.txs, id)
	if f.Command == stomp.ABORT {
		return nil
	}
	if err := tx.commit(s); err != nil {
		return err
	}
	s.durableReceipt(f)
	return nil
}
