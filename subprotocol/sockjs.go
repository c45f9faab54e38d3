package subprotocol

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"
	"github.com/stampede-mq/stampede/broker"
)

// SockJS defaults, those of the SockJS protocol and of sockjs-client.
const (
	DefaultSockJSHeartbeat       = 25 * time.Second
	DefaultSockJSDisconnectDelay = 5 * time.Second
	DefaultSockJSResponseLimit   = 128 << 10
	defaultSockJSMaxSendBytes    = 16 << 20
)

// SockJSOptions configures NewSockJSHandler. The zero value serves every
// transport the library offers, iframe-based ones aside, to same-host and
// loopback origins, with the SockJS protocol's default timings.
type SockJSOptions struct {
	// Prefix is the path the handler is mounted under; "" means "/sockjs".
	Prefix string
	// AllowedOrigins is the browser origin allow-list, with the same
	// meaning as WebSocketOptions.AllowedOrigins.
	AllowedOrigins []string
	// Credentials lets allowed cross-origin pages make requests with
	// cookies (Access-Control-Allow-Credentials). sockjs-client makes
	// every cross-origin XHR with credentials, /info included, so a
	// browser page on another origin needs it.
	Credentials bool
	// Logger receives refused requests; nil discards them.
	Logger *slog.Logger
	// WriteTimeout bounds each write to the client, and how long a batch
	// of frames may wait for a polling client to collect it; zero means
	// DefaultWriteTimeout and a negative value means no limit.
	WriteTimeout time.Duration
	// HeartbeatDelay is how often an open receiving request gets a SockJS
	// heart-beat, so that proxies do not close it as idle. Zero means
	// DefaultSockJSHeartbeat.
	HeartbeatDelay time.Duration
	// DisconnectDelay is how long a session may go without a receiving
	// request (a poll, a stream) before it is closed as vanished. Zero
	// means DefaultSockJSDisconnectDelay.
	DisconnectDelay time.Duration
	// ResponseLimit is how many bytes one streaming response carries
	// before the client has to open a new one (which lets it free what
	// the old one held). Zero means DefaultSockJSResponseLimit.
	ResponseLimit int
	// NoWebSocket turns off the SockJS WebSocket transport, for proxies
	// that pass WebSocket handshakes but break the connections.
	NoWebSocket bool
	// ClientURL is the sockjs-client script the iframe page loads; the
	// iframe-based transports (for browsers without CORS) are only
	// offered when it is set, since that script then runs with the
	// broker's origin.
	ClientURL string
	// MaxSendBytes bounds what the client sends at once: the body of a
	// send request or a WebSocket message (a batch of SockJS messages);
	// zero means 16 MiB.
	MaxSendBytes int64
	// ReadTimeout bounds how long the client may take to send one send
	// request's body or one WebSocket message, once it has begun; zero
	// means DefaultSockJSReadTimeout and a negative value means no limit.
	ReadTimeout time.Duration
	// MaxPendingBytesPerIP bounds the bytes of send bodies and WebSocket
	// messages one client address may have begun and not finished, all
	// sessions together; past it, the session that would exceed it is
	// closed. Zero means DefaultSockJSPendingBytesPerIP and a negative
	// value means no limit.
	MaxPendingBytesPerIP int64
}

// NewSockJSHandler returns the handler for STOMP over SockJS (mounted at
// /sockjs/): every SockJS session becomes a broker.Transport that srv
// serves, whatever SockJS transport carries it.
//
// SockJS messages are text. A frame whose body is not valid UTF-8 is sent
// with its body in base64, a content-transfer-encoding:base64 header and a
// content-length that counts the base64 text; header bytes that are not
// valid UTF-8 are replaced by U+FFFD and flagged with an x-invalid-utf8
// header. Nothing is dropped and the session goes on.
func NewSockJSHandler(srv Server, opts SockJSOptions) http.Handler {
	h := &sockjsHandler{
		srv:          srv,
		log:          opts.Logger,
		prefix:       opts.Prefix,
		credentials:  opts.Credentials,
		writeTimeout: writeTimeout(opts.WriteTimeout),
		maxSend:      opts.MaxSendBytes,
		iframe:       opts.ClientURL != "",
		readTimeout:  opts.ReadTimeout,
		pending:      newPendingBytes(opts.MaxPendingBytesPerIP),
		live:         make(map[string]*sockjsTransport),
		registered:   make(chan struct{}),
		inflight:     make(map[string]int),
	}
	if h.readTimeout == 0 {
		h.readTimeout = DefaultSockJSReadTimeout
	}
	if opts.MaxPendingBytesPerIP == 0 {
		h.pending.limit = DefaultSockJSPendingBytesPerIP
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.prefix == "" {
		h.prefix = "/sockjs"
	}
	h.prefix = strings.TrimSuffix(h.prefix, "/")
	if h.maxSend <= 0 {
		h.maxSend = defaultSockJSMaxSendBytes
	}
	// The WebSocket handler holds the origin rule; building one (with
	// no logger, since the /ws one already warns about bad entries)
	// keeps both endpoints on exactly the same rule.
	h.origins = NewWebSocketHandler(srv, WebSocketOptions{AllowedOrigins: opts.AllowedOrigins}).(*wsHandler)

	lib := sockjs.Options{
		SockJSURL:             opts.ClientURL,
		ResponseLimit:         DefaultSockJSResponseLimit,
		Websocket:             !opts.NoWebSocket,
		WebsocketWriteTimeout: h.writeTimeout,
		HeartbeatDelay:        opts.HeartbeatDelay,
		DisconnectDelay:       opts.DisconnectDelay,
		// Origins were checked before the library sees the request;
		// CORS headers are for browsers, which always send Origin.
		CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") != "" },
		WebsocketUpgrader: &websocket.Upgrader{
			HandshakeTimeout: h.writeTimeout,
			WriteBufferPool:  &sync.Pool{},
			CheckOrigin:      func(*http.Request) bool { return true },
		},
	}
	if opts.ResponseLimit > 0 {
		lib.ResponseLimit = uint32(min(opts.ResponseLimit, 1<<31))
	}
	if lib.HeartbeatDelay <= 0 {
		lib.HeartbeatDelay = DefaultSockJSHeartbeat
	}
	if lib.DisconnectDelay <= 0 {
		lib.DisconnectDelay = DefaultSockJSDisconnectDelay
	}
	h.lib = sockjs.NewHandler(h.prefix, lib, h.serveSession)
	return h
}

type sockjsHandler struct {
	srv          Server
	lib          *sockjs.Handler
	log          *slog.Logger
	prefix       string
	origins      *wsHandler
	credentials  bool
	writeTimeout time.Duration
	maxSend      int64
	readTimeout  time.Duration // <= 0: none
	pending      *pendingBytes
	iframe       bool

	mu         sync.Mutex
	live       map[string]*sockjsTransport // HTTP sessions by SockJS session id
	registered chan struct{}               // closed (and replaced) when live gains one
	inflight   map[string]int              // receiving requests by session id
}

func (h *sockjsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.origins.originAllowed(r) {
		h.log.Info("sockjs request refused: origin not allowed",
			"origin", r.Header.Get("Origin"), "host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, h.prefix)
	if strings.HasPrefix(rest, "/iframe") && !h.iframe {
		http.NotFound(w, r)
		return
	}
	// /{server}/{session}/{transport}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	var session, kind string
	if len(parts) == 3 {
		session, kind = parts[1], parts[2]
	}
	switch kind {
	case "websocket":
		// The library sets a write deadline on the connection but reads
		// whole messages without a size limit; the connection it gets
		// enforces one.
		h.lib.ServeHTTP(&wsLimitResponse{ResponseWriter: w, h: h, addr: remoteHost(r.RemoteAddr)}, r)
		return
	case "xhr_send", "jsonp_send":
		if r.Method != http.MethodPost {
			break
		}
		sr, held, ok := h.limitSend(w, r, session, kind)
		defer h.pending.give(remoteHost(r.RemoteAddr), held)
		if !ok {
			return
		}
		r = sr
	}
	rw := &sockjsResponse{ResponseWriter: w, h: h, rc: http.NewResponseController(w)}
	env, receiving := frameEnvelope(kind, r)
	if !receiving {
		h.lib.ServeHTTP(rw, r)
		rw.deadline()
		return
	}
	rw.session, rw.data, rw.conflict = session, env+"a[", env+"c[2010,"
	h.receiving(session, +1)
	defer h.receiving(session, -1)
	for attempt := 1; ; attempt++ {
		rw.lastTry = attempt == maxAttachTries
		h.lib.ServeHTTP(rw, r)
		if !rw.retry {
			break
		}
		// The library lets go of the previous receiver on a goroutine
		// of its own, after that request has been answered; a client
		// that polls again at once can beat it, and would be refused
		// as a second connection. Let it catch up, then try again
		// without repeating what was already written.
		rw.retry = false
		rw.skip = preludeWrites(kind)
		time.Sleep(time.Millisecond)
	}
	// net/http still has to finish the response; it clears the deadline
	// after that.
	rw.deadline()
}

// maxAttachTries bounds the retries of a receiving request the library
// refused while the session's previous one was being let go.
const maxAttachTries = 200

// frameEnvelope is how a receiving request's response wraps each SockJS
// frame, up to the frame's first byte; receiving is false for requests
// that carry no frames to the client.
func frameEnvelope(kind string, r *http.Request) (env string, receiving bool) {
	switch kind {
	case "xhr", "xhr_streaming":
		return "", true
	case "eventsource":
		return "data: ", true
	case "htmlfile":
		return "<script>\np(\"", true
	case "jsonp":
		if c := r.URL.Query().Get("c"); c != "" {
			return c + "(\"", true
		}
	}
	return "", false
}

// preludeWrites is how many writes a receiving request makes before its
// first frame.
func preludeWrites(kind string) int {
	switch kind {
	case "xhr_streaming", "eventsource", "htmlfile":
		return 1
	}
	return 0
}

// receiving counts the receiving requests of a session in progress.
func (h *sockjsHandler) receiving(session string, delta int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.inflight[session] + delta; n > 0 {
		h.inflight[session] = n
	} else {
		delete(h.inflight, session)
	}
}

// alone reports whether the session has one receiving request in progress.
func (h *sockjsHandler) alone(session string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inflight[session] == 1
}

// limitSend reads the body of a send request, which the library would
// read without limit, and only for a session in progress: before that,
// nothing the client sends has been buffered. A body that cannot be read
// whole (too large, too slow, over the address's share of pending bytes)
// cannot be half delivered (the STOMP stream would be cut mid-frame) nor
// dropped silently (the library would answer 204 to a body it failed to
// read), so the request gets an error and the session is closed. held is
// what the caller gives back to h.pending once the library is done.
func (h *sockjsHandler) limitSend(w http.ResponseWriter, r *http.Request, session, kind string) (_ *http.Request, held int64, ok bool) {
	if r.Body == nil {
		return r, 0, true
	}
	t := h.liveSession(session)
	if t == nil {
		// An empty batch instead of what the client sent: the library
		// answers it as it answers for any unknown session (404, with
		// its CORS headers), and nothing the client sent is read. The
		// request is a copy, so that net/http still sees the unread
		// body and does not wait for it either.
		empty := "[]"
		if kind == "jsonp_send" {
			empty = "d=%5B%5D"
		}
		w.Header().Set("Connection", "close")
		lr := *r
		lr.Body, lr.ContentLength = io.NopCloser(strings.NewReader(empty)), int64(len(empty))
		return &lr, 0, true
	}
	body, held, err := h.readSend(w, r)
	if err == nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		return r, held, true
	}
	status, msg := http.StatusBadRequest, "reading the request failed"
	switch err {
	case errSendTooLarge:
		status, msg = http.StatusRequestEntityTooLarge, "messages too large (limit "+strconv.FormatInt(h.maxSend, 10)+" bytes per request)"
	case errPendingLimit:
		status, msg = http.StatusServiceUnavailable, "too many bytes in transit from this address (limit "+strconv.FormatInt(h.pending.limit, 10)+")"
	case errSendTimeout:
		status, msg = http.StatusRequestTimeout, "request body not received within "+h.readTimeout.String()
	}
	h.log.Info("sockjs send refused; closing the session", "reason", msg, "remote", r.RemoteAddr, "session", session)
	w.Header().Set("Connection", "close") // rather than read the rest of the body
	http.Error(w, msg, status)
	t.Close()
	return r, held, false
}

// liveSession returns the transport of an HTTP session in progress,
// waiting up to sessionWait for one the library has just opened.
func (h *sockjsHandler) liveSession(id string) *sockjsTransport {
	timeout := time.NewTimer(sessionWait)
	defer timeout.Stop()
	for {
		h.mu.Lock()
		t, registered := h.live[id], h.registered
		h.mu.Unlock()
		if t != nil {
			return t
		}
		select {
		case <-registered:
		case <-timeout.C:
			return nil
		}
	}
}

// flushed tells the session's transport that its receiver has just
// written what the library held for it.
func (h *sockjsHandler) flushed(session string) {
	h.mu.Lock()
	t := h.live[session]
	h.mu.Unlock()
	if t != nil {
		t.markFlushed()
	}
}

// serveSession runs one SockJS session, once its first receiving
// request has arrived (or its WebSocket is open).
func (h *sockjsHandler) serveSession(s sockjs.Session) {
	kind := s.ReceiverType()
	t := &sockjsTransport{
		sess:         s,
		sync:         kind == sockjs.ReceiverTypeWebsocket || kind == sockjs.ReceiverTypeRawWebsocket,
		writeTimeout: h.writeTimeout,
		done:         make(chan struct{}),
		flushCh:      make(chan struct{}),
		info: broker.ConnInfo{
			Transport:   "sockjs",
			Subprotocol: receiverName(kind),
			RemoteAddr:  s.Request().RemoteAddr,
		},
	}
	if !t.sync {
		h.mu.Lock()
		h.live[s.ID()] = t
		close(h.registered)
		h.registered = make(chan struct{})
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			if h.live[s.ID()] == t {
				delete(h.live, s.ID())
			}
			h.mu.Unlock()
		}()
	}
	defer t.Close()
	// The library runs this on a goroutine of its own, outside net/http's
	// recovery: one session's bug must not take down the process.
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("panic serving sockjs session", "remote", t.info.RemoteAddr, "transport", t.info.Subprotocol, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	h.srv.Serve(t)
}

// receiverName names a SockJS transport as sockjs-client does.
func receiverName(k sockjs.ReceiverType) string {
	switch k {
	case sockjs.ReceiverTypeWebsocket, sockjs.ReceiverTypeRawWebsocket:
		return "websocket"
	case sockjs.ReceiverTypeXHRStreaming:
		return "xhr-streaming"
	case sockjs.ReceiverTypeXHR:
		return "xhr-polling"
	case sockjs.ReceiverTypeEventSource:
		return "eventsource"
	case sockjs.ReceiverTypeHtmlFile:
		return "htmlfile"
	case sockjs.ReceiverTypeJSONP:
		return "jsonp-polling"
	}
	return "sockjs"
}

// sockjsResponse wraps the response to a SockJS HTTP request: it bounds
// every write with the write timeout (the library writes streaming
// responses without one), keeps credentials out of CORS answers unless
// configured, and, on a receiving request, reports each written "a"
// frame to the session's transport and catches a refusal to retry.
type sockjsResponse struct {
	http.ResponseWriter
	h           *sockjsHandler
	rc          *http.ResponseController
	session     string
	data        string // how an "a" frame starts; "" if not receiving
	conflict    string // how the "another connection still open" frame starts
	headed      bool
	wroteHeader bool
	retry       bool // the library refused to attach; the request is retried
	lastTry     bool
	skip        int // writes to swallow: a retried request's prelude
}

func (w *sockjsResponse) head() {
	if w.headed {
		return
	}
	w.headed = true
	hdr := w.ResponseWriter.Header()
	if hdr.Get("Access-Control-Allow-Origin") != "" && !w.h.credentials {
		hdr.Del("Access-Control-Allow-Credentials")
	}
	// Answers, preflights included (cached for a year), depend on Origin.
	hdr.Add("Vary", "Origin")
}

func (w *sockjsResponse) deadline() {
	if w.h.writeTimeout > 0 {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.h.writeTimeout))
	}
}

func (w *sockjsResponse) WriteHeader(code int) {
	if w.wroteHeader {
		return // a retried request's second attempt
	}
	w.wroteHeader = true
	w.head()
	w.ResponseWriter.WriteHeader(code)
}

func (w *sockjsResponse) Write(p []byte) (int, error) {
	if w.skip > 0 {
		w.skip--
		return len(p), nil
	}
	if w.conflict != "" && !w.lastTry && bytes.HasPrefix(p, []byte(w.conflict)) && w.h.alone(w.session) {
		w.retry = true
		return len(p), nil
	}
	w.wroteHeader = true
	w.head()
	w.deadline()
	n, err := w.ResponseWriter.Write(p)
	if err == nil && w.data != "" && bytes.HasPrefix(p, []byte(w.data)) {
		w.h.flushed(w.session)
	}
	return n, err
}

// Flush is what the library calls to push a streamed frame out; a failure
// (the deadline) makes net/http cancel the request, which closes the
// session.
func (w *sockjsResponse) Flush() {
	if w.retry {
		return
	}
	w.wroteHeader = true
	w.head()
	w.deadline()
	_ = w.rc.Flush()
}

func (w *sockjsResponse) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	errSockJSClosed   = errors.New("sockjs: session closed")
	errSockJSNotTaken = errors.New("sockjs: client did not collect its messages in time")
)

// sockjsTransport is a broker.Transport over one SockJS session.
//
// Outbound bounds: the library queues what is sent while no receiving
// request is open (between two polls) without limit. So after each batch
// WriteFrames waits, up to the write timeout, until a receiving request
// has taken what the library holds; meanwhile the broker's bounded outbox
// queues the rest, and its slow-consumer rules apply as on any connection.
type sockjsTransport struct {
	sess         sockjs.Session
	sync         bool // WebSocket: Send writes at once, nothing waits in the library
	writeTimeout time.Duration
	info         broker.ConnInfo
	rest         string // of the message being read
	closed       atomic.Bool
	done         chan struct{} // closed by Close

	mu      sync.Mutex
	queued  uint64        // messages handed to the library
	flushed uint64        // of those, how many a receiver has taken
	flushCh chan struct{} // closed (and replaced) when flushed moves while waited on
	waiting bool
}

// Read streams the text of the client's SockJS messages.
func (t *sockjsTransport) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for t.rest == "" {
		msg, err := t.sess.Recv()
		if err != nil {
			if t.closed.Load() {
				return 0, net.ErrClosed
			}
			return 0, io.EOF // the client closed, or vanished and timed out
		}
		t.rest = msg
	}
	n := copy(p, t.rest)
	t.rest = t.rest[n:]
	return n, nil
}

// WriteFrames sends each frame as one SockJS message.
func (t *sockjsTransport) WriteFrames(frames []broker.Outbound) error {
	for i := range frames {
		if frames[i].Len() == 0 {
			continue
		}
		msg := sockjsText(&frames[i])
		// Counted before Send: a receiver may take it while Send still
		// runs, and counting it late could make us wait for nothing.
		t.mu.Lock()
		t.queued++
		t.mu.Unlock()
		if err := t.sess.Send(msg); err != nil {
			return err
		}
	}
	if t.sync {
		return nil
	}
	t.mu.Lock()
	target := t.queued
	t.mu.Unlock()
	return t.awaitFlush(target, t.writeTimeout, t.done)
}

func (t *sockjsTransport) markFlushed() {
	t.mu.Lock()
	t.flushed = t.queued
	if t.waiting {
		t.waiting = false
		close(t.flushCh)
		t.flushCh = make(chan struct{})
	}
	t.mu.Unlock()
}

// awaitFlush waits until a receiver has taken the first target messages,
// the session ends, stop is closed, or d (when positive) passes.
func (t *sockjsTransport) awaitFlush(target uint64, d time.Duration, stop <-chan struct{}) error {
	var timeout <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		timeout = tm.C
	}
	for {
		t.mu.Lock()
		if t.flushed >= target {
			t.mu.Unlock()
			return nil
		}
		t.waiting = true
		ch := t.flushCh
		t.mu.Unlock()
		select {
		case <-ch:
		case <-t.sess.Context().Done():
			return errSockJSClosed
		case <-stop:
			return net.ErrClosed
		case <-timeout:
			return errSockJSNotTaken
		}
	}
}

// Close ends the session with a SockJS close frame, after giving a
// polling client a moment to collect what was sent last (an ERROR, a
// RECEIPT), since the library drops messages still queued at close.
// Only the first call acts; later ones return nil.
func (t *sockjsTransport) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	if !t.sync {
		t.mu.Lock()
		target := t.queued
		t.mu.Unlock()
		_ = t.awaitFlush(target, closeGrace, nil)
	}
	close(t.done)
	if err := t.sess.Close(1000, "Normal closure"); err != nil && !errors.Is(err, sockjs.ErrSessionNotOpen) {
		return err
	}
	return nil
}

// Info describes the connection.
func (t *sockjsTransport) Info() broker.ConnInfo { return t.info }

// sockjsText turns a frame into the text of one SockJS message. SockJS
// carries text only, and the library would turn bytes that are not UTF-8
// into U+FFFD when it encodes the message as JSON. So a body that is not
// valid UTF-8 goes as base64, marked with content-transfer-encoding:base64
// and with content-length counting the base64 text; header bytes that are
// not UTF-8 are replaced (they cannot be carried) and the frame says so in
// x-invalid-utf8:headers. Both new headers come first, so they win over
// any a publisher set (the first occurrence of a header counts).
func sockjsText(f *broker.Outbound) string {
	head, body := f.Head, f.Body
	binary := f.Binary || !utf8.Valid(body)
	badHead := !utf8.Valid(head)
	if !binary && !badHead {
		var b strings.Builder
		b.Grow(len(head) + len(body))
		b.Write(head)
		b.Write(body)
		return b.String()
	}
	raw := body
	if len(raw) > 0 && raw[len(raw)-1] == 0 {
		raw = raw[:len(raw)-1]
	}
	if binary {
		n := base64.StdEncoding.EncodedLen(len(raw))
		enc := make([]byte, n+1)
		base64.StdEncoding.Encode(enc, raw)
		body = enc // with its NUL terminator
	}
	var b strings.Builder
	b.Grow(len(head) + len(body) + 80)
	cmd, headers, _ := bytes.Cut(head, []byte{'\n'})
	b.Write(cmd)
	b.WriteByte('\n')
	if binary {
		b.WriteString("content-transfer-encoding:base64\ncontent-length:")
		b.WriteString(strconv.Itoa(len(body) - 1))
		b.WriteByte('\n')
	}
	if badHead {
		b.WriteString("x-invalid-utf8:headers\n")
	}
	for line := range bytes.Lines(headers) {
		if binary && bytes.HasPrefix(line, []byte("content-length:")) {
			continue // it counted the raw body
		}
		if badHead {
			b.WriteString(strings.ToValidUTF8(string(line), "\uFFFD"))
		} else {
			b.Write(line)
		}
	}
	b.Write(body)
	return b.String()
}
