package broker

import (
	"errors"
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
	clientID  string
	subs      map[string]*subscription
	subsByNum map[int]*subscription
	subNum    int
	txs       map[string]*transaction
	temps     map[string]*queue // by /temp-queue/NAME

	start      time.Time
	connected  atomic.Bool
	lastRead   atomic.Int64 // unix ns
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
func (tx *transaction) commit(b *Broker) error {
	var batch []*message
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := b.publish(batch)
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
		out:        newOutbox(b.opts.MaxOutboundBytes),
		dec:        stomp.NewDecoder(b.opts.Limits),
		subs:       make(map[string]*subscription),
		subsByNum:  make(map[int]*subscription),
		txs:        make(map[string]*transaction),
		start:      now,
		writerDone: make(chan struct{}),
	}
	s.lastRead.Store(now.UnixNano())
	return s
}

// run serves the connection until it ends and everything is cleaned up.
func (s *session) run() {
	go s.writeLoop()
	s.readLoop()
	s.out.closeAfter(nil)
	s.cleanup()
	<-s.writerDone
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
	buf := make([]byte, 16<<10)
	for {
		n, err := s.t.Read(buf)
		if n > 0 {
			s.lastRead.Store(time.Now().UnixNano())
			if ferr := s.dec.Feed(buf[:n], s.handle); ferr != nil {
				if ferr != errStop {
					s.fail(ferr.Error(), s.dec.FailedReceipt())
				}
				return
			}
		}
		if err != nil {
			return
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
	var err error
	switch f.Command {
	case stomp.SEND:
		err = s.onSend(f)
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
	s.out.wake() // the write loop re-reads heart-beat settings
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

// writeLoop is the only writer to the transport. It sends queued frames
// in batches, sends heart-beats when the connection is otherwise idle, and
// closes connections that miss CONNECT or fall silent.
func (s *session) writeLoop() {
	defer close(s.writerDone)
	defer s.t.Close()
	defer func() {
		if p := recover(); p != nil {
			s.b.log.Error("panic in session writer", "conn", s.id, "panic", p, "stack", string(debug.Stack()))
			s.out.closeAfter(nil)
		}
	}()
	var batch []Outbound
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	lastWrite := time.Now()
	for {
		var done bool
		batch, done = s.out.take(batch)
		if len(batch) > 0 {
			err := s.t.WriteFrames(batch)
			n := 0
			for _, f := range batch {
				n += f.Len()
			}
			clear(batch)
			if err != nil {
				s.out.closeAfter(nil)
				return
			}
			lastWrite = time.Now()
			for _, q := range s.out.written(n) {
				q.dispatch()
			}
			continue
		}
		if done {
			return
		}
		timer.Reset(s.untilTick(lastWrite))
		select {
		case <-s.out.notify:
		case <-timer.C:
			if !s.tick(lastWrite) {
				if err := s.t.WriteFrames([]Outbound{{Head: []byte{'\n'}}}); err != nil {
					s.out.closeAfter(nil)
					return
				}
				lastWrite = time.Now()
			}
		}
	}
}

// heartBeatLead makes server heart-beats go out a little before the
// interval ends, so network delay does not make them late.
const heartBeatLead = 5

func (s *session) untilTick(lastWrite time.Time) time.Duration {
	now := time.Now()
	next := time.Hour
	if !s.connected.Load() {
		next = min(next, s.start.Add(s.b.opts.ConnectTimeout).Sub(now))
	}
	if out := time.Duration(s.hbOut.Load()); out > 0 {
		next = min(next, lastWrite.Add(out-out/heartBeatLead).Sub(now))
	}
	if in := time.Duration(s.hbIn.Load()); in > 0 {
		next = min(next, time.Unix(0, s.lastRead.Load()).Add(s.grace(in)).Sub(now))
	}
	return max(next, time.Millisecond)
}

func (s *session) grace(in time.Duration) time.Duration {
	return time.Duration(float64(in) * s.b.opts.HeartbeatGrace)
}

// tick checks the timers. It returns false when a heart-beat is due.
func (s *session) tick(lastWrite time.Time) bool {
	now := time.Now()
	if !s.connected.Load() && now.Sub(s.start) >= s.b.opts.ConnectTimeout {
		s.fail("no CONNECT frame within "+s.b.opts.ConnectTimeout.String(), "")
		return true
	}
	if in := time.Duration(s.hbIn.Load()); in > 0 && now.Sub(time.Unix(0, s.lastRead.Load())) >= s.grace(in) {
		s.fail("heart-beat timeout: nothing received for "+s.grace(in).String(), "")
		return true
	}
	if out := time.Duration(s.hbOut.Load()); out > 0 && now.Sub(lastWrite) >= out-out/heartBeatLead {
		return false
	}
	return true
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
