package broker

import (
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/stampede-mq/stampede/stomp"
)

// serverName goes in CONNECTED's server header.
const serverName = "Stampede/0.1"

// session is the STOMP side of a connection: who the client is, its
// subscriptions, transactions and temporary queues, and what each frame
// it sends means. Its connection's read loop calls it, one frame at a
// time; what it publishes and subscribes to goes through its router.
type session struct {
	b *Broker
	c *conn
	r router

	// Set at CONNECT by the read loop, before conn.connected; others read
	// them only after seeing connected.
	user      string
	principal Principal // nil when no authentication is configured
	clientID  string

	// Read loop only.
	lastWritable string // the destination principal last allowed a SEND to
	subs         map[string]*subscription
	subsByNum    map[int]*subscription
	subNum       int
	txs          map[string]*transaction
	txBytes      int64             // held by all of txs
	temps        map[string]string // /temp-queue/NAME → the queue's name
	tempKey      string            // the random part of their names
	sends        []*message        // SENDs of the current read, see flushSends
	sendReceipts []string          // the receipt each of them asked for, or ""
	// receiptAwaitsStore: the frame being handled settled messages, so
	// its RECEIPT waits for the store.
	receiptAwaitsStore bool
	// receiptHeaders go on the RECEIPT of the frame being handled.
	receiptHeaders []string

	nsubs atomic.Int32 // for operators
}

// subscription is a client subscription: to a topic name or pattern, to a
// queue, or durable (a topic subscription whose messages wait in a queue
// while the client is away). The router attaches what serves it.
type subscription struct {
	conn        *conn // where its deliveries go
	id          string
	num         int // the session's number for it, prefixes ack ids
	dest        string
	kind        destKind
	mode        ackMode
	prefetch    int
	queue       string    // the queue a queue subscription consumes
	durableName string    // set when a topic subscription is durable
	owner       string    // of a durable subscription: the user
	reader      Principal // see topicSub.reader
	// replay, on a live topic subscription, is the history it asks for;
	// resumeGap says whether a resume found what it asked no longer kept.
	replay    *replayRequest
	resumeGap bool

	topic   *topicSub
	cons    *consumer
	durable *durable
}

func newSession(b *Broker, c *conn) *session {
	return &session{b: b, c: c, r: b.router}
}

// owner is who the session's durable subscriptions and client-id belong
// to: the logged-in user, or nobody when no logins are configured.
func (s *session) owner() string {
	if s.principal == nil {
		return ""
	}
	return s.user
}

// protocolError answers a frame with ERROR and ends the session.
func (s *session) protocolError(f *stomp.Frame, msg string) error {
	s.c.fail(msg, f.Value("receipt"))
	return errStop
}

// handle processes one decoded frame.
func (s *session) handle(f *stomp.Frame) error {
	s.b.stats.framesIn[commandIndex(f.Command)].Add(1)
	if s.c.out.isClosing() {
		// Failed from elsewhere (slow consumer, heart-beat, shutdown):
		// nothing the client sends after its ERROR takes effect.
		return errStop
	}
	if !s.c.connected.Load() {
		if f.Command != stomp.CONNECT && f.Command != stomp.STOMP {
			return s.protocolError(f, "expected CONNECT or STOMP frame, got "+quoteCommand(f.Command))
		}
		return s.onConnect(f)
	}
	if _, inTx := f.Get("transaction"); f.Command != stomp.SEND || inTx {
		if err := s.flushSends(); err != nil {
			return err
		}
	}
	if f.Command == stomp.SEND {
		return s.handleSend(f)
	}
	var err error
	switch f.Command {
	case stomp.SUBSCRIBE:
		err = s.onSubscribe(f)
	case stomp.UNSUBSCRIBE:
		err = s.onUnsubscribe(f)
	case stomp.ACK:
		err = s.onAck(f, true)
	case stomp.NACK:
		err = s.onAck(f, false)
	case stomp.BEGIN, stomp.COMMIT, stomp.ABORT:
		err = s.onTransaction(f)
	case stomp.DISCONNECT:
		// Let go of everything before the RECEIPT: a client that
		// reconnects as soon as it has it must find its client-id and
		// durable subscriptions free and its unacked messages requeued.
		s.cleanup()
		s.receipt(f)
		s.c.receipts.flushed(s.c)
		s.c.out.closeAfter(nil)
		return errStop
	case stomp.CONNECT, stomp.STOMP:
		err = errors.New("already connected")
	default:
		err = errors.New("unknown command " + quoteCommand(f.Command))
	}
	if err != nil {
		return s.protocolError(f, err.Error())
	}
	s.receipt(f)
	return nil
}

func quoteCommand(c string) string {
	if len(c) > 32 {
		c = c[:32] + "..."
	}
	return strconv.Quote(c)
}

func (s *session) receipt(f *stomp.Frame) {
	r, ok := f.Get("receipt")
	if !ok {
		return
	}
	rf := stomp.New(stomp.RECEIPT, append([]string{"receipt-id", r}, s.receiptHeaders...)...)
	s.receiptHeaders = nil
	if s.receiptAwaitsStore {
		s.receiptAwaitsStore = false
		s.c.answerWhenDurable(rf, s.r)
		return
	}
	s.c.answer(rf)
}

// cleanup runs after the read loop ends: subscriptions go (unacked queue
// messages back to their queues), transactions are dropped, temporary
// queues are deleted. It may run twice (DISCONNECT, then the end of the
// read loop).
func (s *session) cleanup() {
	for id, sub := range s.subs {
		s.unsubscribe(sub)
		delete(s.subs, id)
	}
	clear(s.txs)
	s.txBytes = 0
	for dest, name := range s.temps {
		s.r.closeTemp(name)
		delete(s.temps, dest)
	}
	if s.clientID != "" {
		s.b.releaseClientID(s.clientID, s)
	}
}
