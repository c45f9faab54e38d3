package broker

import (
	"errors"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// errStop ends a session's read loop once its last frame has been queued.
var errStop = errors.New("session ends")

// serverName goes in CONNECTED's server header.
const serverName = "Stampede/0.1"

// session is one client connection: a read loop (the goroutine that
// called Serve) decodes and handles frames; a write loop drains the
// outbox to the transport and keeps heart-beat time. Fields without a
// note belong to the read loop.
type session struct {
	b    *Broker
	t    Transport
	info ConnInfo
	id   string
	out  *outbox
	dec  *stomp.Decoder

	// version is set once at CONNECT, before any subscription exists, so
	// the goroutines that deliver to this session only ever see it set.
	version   stomp.Version
	user      string
	principal Principal // nil when no authentication is configured
	// lastWritable is the destination principal last allowed a SEND to.
	lastWritable string
	clientID     string
	subs         map[string]*subscription
	subsByNum    map[int]*subscription
	subNum       int
	txs          map[string]*transaction
	temps        map[string]*queue // by /temp-queue/NAME
	sends        []*message        // SENDs of the current read, see flushSends
	sendReceipts []string          // the receipt each of them asked for, or ""

	start      time.Time
	connected  atomic.Bool
	lastRead   atomic.Int64 // unix ns
	lastWrite  atomic.Int64 // unix ns
	timer      timerEntry   // see timers
	hbIn       atomic.Int64 // ns the client may stay silent (before grace), 0 = off
	hbOut      atomic.Int64 // ns between server heart-beats, 0 = off
	writerDone chan struct{}

	// Figures for operators.
	nsubs   atomic.Int32
	msgsIn  atomic.Uint64
	msgsOut atomic.Uint64
}

// subscription is a client subscription: to a topic or to a queue.
type subscription struct {
	id      string
	dest    string
	mode    ackMode
	topic   *topicSub
	cons    *consumer
	durable *durable // set when cons consumes a durable subscription
}

// transaction holds a client's SENDs and ACK/NACKs until COMMIT. Each
// action is a message to publish or a settlement to make.
type transaction struct {
	actions []txAction
}

type txAction struct {
	send   *message
	settle func() error
}

// commit carries out the actions in order. Consecutive SENDs are
// published together, so their persistent messages share one store write.
func (tx *transaction) commit(s *session) error {
	var batch []*message
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.b.publishFrom(s, batch)
		batch = nil
		return err
	}
	for _, a := range tx.actions {
		if a.send != nil {
			batch = append(batch, a.send)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := a.settle(); err != nil {
			return err
		}
	}
	return flush()
}

func newSession(b *Broker, t Transport) *session {
	now := time.Now()
	s := &session{
		b: b, t: t, info: t.Info(),
		id:         "c" + strconv.FormatUint(b.conSeq.Add(1), 10),
		dec:        stomp.NewDecoder(b.opts.Limits),
		start:      now,
		timer:      timerEntry{index: -1},
		writerDone: make(chan struct{}),
	}
	s.out = newOutbox(b.opts.MaxOutboundBytes, func() { go s.writeLoop() })
	s.lastRead.Store(now.UnixNano())
	s.lastWrite.Store(now.UnixNano())
	return s
}

// run serves the connection until it ends and everything is cleaned up.
func (s *session) run() {
	s.b.timers.set(s, s.start.Add(s.b.opts.ConnectTimeout).UnixNano())
	s.readLoop()
	s.out.closeAfter(nil)
	s.cleanup()
	<-s.writerDone
	s.b.timers.end(s)
}

// readLoop reads and handles frames until the connection ends. A panic
// while handling one is this session's alone: it is logged with its stack
// and the session closes, as any other error would close it.
func (s *session) readLoop() {
	defer func() {
		if p := recover(); p != nil {
			s.b.log.Error("panic in session", "conn", s.id, "remote", s.info.RemoteAddr, "panic", p, "stack", string(debug.Stack()))
			s.fail("internal error", "")
		}
	}()
	waiter, _ := s.t.(ReadWaiter)
	var buf *[]byte
	defer func() {
		if buf != nil {
			s.b.readBufs.Put(buf)
		}
	}()
	for {
		if buf == nil {
			if waiter != nil {
				if err := waiter.WaitRead(); err != nil {
					return
				}
			}
			buf = s.b.readBufs.Get().(*[]byte)
		}
		n, err := s.t.Read(*buf)
		if n > 0 {
			s.lastRead.Store(time.Now().UnixNano())
			ferr := s.dec.Feed((*buf)[:n], s.handle)
			// SENDs before a decoding error are as good as any.
			if serr := s.flushSends(); serr != nil {
				return
			}
			if ferr != nil {
				if ferr != errStop {
					s.fail(ferr.Error(), s.dec.FailedReceipt())
				}
				return
			}
		}
		if err != nil {
			return
		}
		// A short read most likely emptied the socket: hand the buffer
		// back while waiting for more, unless the transport cannot wait
		// without one.
		if waiter != nil && n < len(*buf) {
			s.b.readBufs.Put(buf)
			buf = nil
		}
	}
}

// refuse tells a connection the broker will not serve it, and closes it.
func (s *session) refuse(msg string) {
	s.t.WriteFrames([]Outbound{s.errorFrame(msg, "")})
	s.t.Close()
}

func (s *session) errorFrame(msg, receiptID string) Outbound {
	f := stomp.New(stomp.ERROR, "message", msg)
	if receiptID != "" {
		f.Add("receipt-id", receiptID)
	}
	f.Add("content-type", "text/plain")
	f.Body = []byte(msg + "\n")
	// Before CONNECTED the client knows no escaping rules; raw headers
	// are what every version reads. Seeing connected set orders the read
	// of version after its one write.
	v := stomp.V10
	if s.connected.Load() {
		v = s.version
	}
	return Outbound{Head: stomp.AppendHead(nil, f, v), Body: append(f.Body, 0)}
}

// fail sends an ERROR after whatever is queued and closes the connection.
// Any goroutine may call it; only the first call has an effect, and it
// reports whether this call was that one.
func (s *session) fail(msg, receiptID string) bool {
	ob := s.errorFrame(msg, receiptID)
	if !s.out.closeAfter(&ob) {
		return false
	}
	// What is queued ahead of the ERROR gets a little while to go out; a
	// client that takes nothing (a stalled slow consumer) is cut off then
	// rather than when a write finally times out.
	time.AfterFunc(failGrace, func() {
		select {
		case <-s.writerDone:
		default:
			s.t.Close()
		}
	})
	s.b.stats.framesOut[commandIndex(stomp.ERROR)].Add(1)
	s.b.log.Info("closing connection with ERROR", "conn", s.id, "remote", s.info.RemoteAddr, "message", msg)
	return true
}

// protocolError answers a frame with ERROR and ends the session.
func (s *session) protocolError(f *stomp.Frame, msg string) error {
	s.fail(msg, f.Value("receipt"))
	return errStop
}

func (s *session) sendControl(f *stomp.Frame) {
	s.b.stats.framesOut[commandIndex(f.Command)].Add(1)
	s.out.push(Outbound{Head: stomp.AppendHead(nil, f, s.version), Body: []byte{0}}, true)
}

// handle processes one decoded frame.
func (s *session) handle(f *stomp.Frame) error {
	s.b.stats.framesIn[commandIndex(f.Command)].Add(1)
	if s.out.isClosing() {
		// Failed from elsewhere (slow consumer, heart-beat, shutdown):
		// nothing the client sends after its ERROR takes effect.
		return errStop
	}
	if !s.connected.Load() {
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
	var err error
	switch f.Command {
	case stomp.SEND:
		var batched bool
		if batched, err = s.onSend(f); batched {
			return err // its receipt comes with flushSends
		}
		if err != nil {
			// The SENDs before it are good: publish them first.
			if ferr := s.flushSends(); ferr != nil {
				return ferr
			}
		}
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
		s.out.closeAfter(nil)
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
	if r, ok := f.Get("receipt"); ok {
		s.sendControl(stomp.New(stomp.RECEIPT, "receipt-id", r))
	}
}

var supported = []stomp.Version{stomp.V12, stomp.V11, stomp.V10}

// negotiate picks the highest version both the client and the transport
// allow. A CONNECT without accept-version is a 1.0 client.
func negotiate(accept string, allowed []stomp.Version) (stomp.Version, bool) {
	offered := map[stomp.Version]bool{}
	if accept == "" {
		offered[stomp.V10] = true
	}
	for _, p := range strings.Split(accept, ",") {
		if v, ok := stomp.ParseVersion(strings.TrimSpace(p)); ok {
			offered[v] = true
		}
	}
	for _, v := range supported {
		if offered[v] && (len(allowed) == 0 || containsVersion(allowed, v)) {
			return v, true
		}
	}
	return 0, false
}

func containsVersion(vs []stomp.Version, v stomp.Version) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func versionList(vs []stomp.Version) string {
	if len(vs) == 0 {
		vs = supported
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

func (s *session) onConnect(f *stomp.Frame) error {
	v, ok := negotiate(f.Value("accept-version"), s.info.Versions)
	if !ok {
		list := versionList(s.info.Versions)
		e := stomp.New(stomp.ERROR, "version", list, "message", "unsupported protocol version: supported versions are "+list, "content-type", "text/plain")
		if r, ok := f.Get("receipt"); ok {
			e.Add("receipt-id", r)
		}
		e.Body = []byte("Supported protocol versions are " + list + "\n")
		s.out.closeAfter(&Outbound{Head: stomp.AppendHead(nil, e, stomp.V10), Body: append(e.Body, 0)})
		return errStop
	}
	cx, cy, err := parseHeartBeat(f.Value("heart-beat"))
	if err != nil {
		return s.protocolError(f, err.Error())
	}
	s.user = f.Value("login")
	if auth := s.b.opts.Authenticate; auth != nil {
		p, err := auth(s.info, s.user, f.Value("passcode"))
		if err != nil {
			// Which part was wrong stays in the log, never in the
			// ERROR, and the secret goes nowhere.
			s.b.log.Warn("login refused", "conn", s.id, "remote", s.info.RemoteAddr, "login", s.user, "reason", err)
			s.b.limits.hit("login")
			time.Sleep(s.b.opts.FailedLoginDelay)
			return s.protocolError(f, ErrAccessRefused.Error())
		}
		s.principal = p
		s.user = p.Name()
	}
	if id := f.Value("client-id"); id != "" {
		if !s.b.claimClientID(id, s) {
			return s.protocolError(f, "client-id already connected: "+id)
		}
		s.clientID = id
	}
	s.version = v
	s.dec.SetVersion(v)
	// The server sends at the rate the client asked to receive and
	// expects the rate the client offered to send, each clamped to the
	// configured bounds; zero (not wanted / cannot) stays zero.
	sx, sy := s.clamp(cy), s.clamp(cx)
	s.hbOut.Store(int64(sx))
	s.hbIn.Store(int64(sy))
	c := stomp.New(stomp.CONNECTED,
		"version", v.String(),
		"heart-beat", strconv.FormatInt(sx.Milliseconds(), 10)+","+strconv.FormatInt(sy.Milliseconds(), 10),
		"server", serverName,
		"session", s.id)
	s.connected.Store(true)
	s.sendControl(c)
	// From the CONNECT deadline to the heart-beats, if any.
	s.b.timers.set(s, s.checkTimers(time.Now().UnixNano()))
	return nil
}

func parseHeartBeat(h string) (cx, cy time.Duration, err error) {
	if h == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(h, ",")
	x, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 31)
	y, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 31)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, errors.New("invalid heart-beat header " + strconv.Quote(h))
	}
	return time.Duration(x) * time.Millisecond, time.Duration(y) * time.Millisecond, nil
}

func (s *session) clamp(d time.Duration) time.Duration {
	if d == 0 {
		return 0
	}
	return min(max(d, s.b.opts.HeartbeatMin), s.b.opts.HeartbeatMax)
}

// writeLoop is the only writer to the transport. The outbox starts it
// when there is something to send; it sends what is queued, in batches,
// and ends once the queue is empty, closing the transport if the session
// is closing.
func (s *session) writeLoop() {
	defer func() {
		if p := recover(); p != nil {
			s.b.log.Error("panic in session writer", "conn", s.id, "panic", p, "stack", string(debug.Stack()))
			s.out.abandon()
			s.closeTransport()
		}
	}()
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for {
		batch, done, wake := s.out.take()
		switch {
		case done:
			s.closeTransport()
			return
		case wake != nil:
			if linger == nil {
				linger = time.NewTimer(writerLinger)
			} else {
				linger.Reset(writerLinger)
			}
			select {
			case <-wake:
			case <-linger.C:
				if s.out.stop() {
					return
				}
			}
			continue
		}
		if err := s.t.WriteFrames(batch); err != nil {
			s.out.abandon()
			s.closeTransport()
			return
		}
		s.lastWrite.Store(time.Now().UnixNano())
		for _, q := range s.out.written(batch) {
			q.dispatch()
		}
	}
}

// failGrace is how long a failed session's output may take to go out.
const failGrace = 5 * time.Second

// writerLinger is how long a write loop with nothing to send waits for
// more before it ends.
const writerLinger = 20 * time.Millisecond

// closeTransport ends the connection; only the write loop that finds the
// outbox closed (or breaks it) calls it, once.
func (s *session) closeTransport() {
	s.t.Close()
	close(s.writerDone)
}

// heartBeatLead makes server heart-beats go out a little before the
// interval ends, so network delay does not make them late.
const heartBeatLead = 5

func (s *session) grace(in time.Duration) time.Duration {
	return time.Duration(float64(in) * s.b.opts.HeartbeatGrace)
}

// checkTimers runs the session's time checks at now (unix ns): it closes a
// connection that missed its CONNECT deadline or fell silent, and queues a
// heart-beat when one is due. It returns when to check next, 0 for never.
func (s *session) checkTimers(now int64) int64 {
	if s.out.isClosing() {
		return 0
	}
	next := int64(math.MaxInt64)
	if !s.connected.Load() {
		deadline := s.start.Add(s.b.opts.ConnectTimeout).UnixNano()
		if now >= deadline {
			s.fail("no CONNECT frame within "+s.b.opts.ConnectTimeout.String(), "")
			return 0
		}
		next = deadline
	}
	if in := time.Duration(s.hbIn.Load()); in > 0 {
		grace := s.grace(in)
		deadline := s.lastRead.Load() + int64(grace)
		if now >= deadline {
			s.fail("heart-beat timeout: nothing received for "+grace.String(), "")
			return 0
		}
		next = min(next, deadline)
	}
	if out := s.hbOut.Load(); out > 0 {
		every := out - out/heartBeatLead
		due := s.lastWrite.Load() + every
		if now >= due {
			s.out.push(Outbound{Head: []byte{'\n'}}, true)
			due = now + every
		}
		next = min(next, due)
	}
	if next == math.MaxInt64 {
		return 0
	}
	return next
}

// cleanup runs after the read loop ends: subscriptions go (unacked queue
// messages back to their queues), transactions are dropped, temporary
// queues are deleted.
// It may run twice (DISCONNECT, then the end of the read loop).
func (s *session) cleanup() {
	for id, sub := range s.subs {
		s.unsubscribe(sub)
		delete(s.subs, id)
	}
	clear(s.txs)
	for name, q := range s.temps {
		s.b.dropQueue(q)
		q.purge()
		delete(s.temps, name)
	}
	if s.clientID != "" {
		s.b.releaseClientID(s.clientID, s)
	}
}
