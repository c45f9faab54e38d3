package subprotocol

import (
	"bufio"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/auth"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// The WebSocket subprotocols a client may offer. The versioned ones fix
// the STOMP version; the bare one leaves it to CONNECT's accept-version.
// supported is what a refused client is told.
const (
	protoV12  = "v12.stomp"
	protoV11  = "v11.stomp"
	protoV10  = "v10.stomp"
	protoAny  = "stomp"
	supported = protoV12 + ", " + protoV11 + ", " + protoV10 + " (or " + protoAny + " for any version)"
)

// WebSocketOptions configures NewWebSocketHandler. The zero value serves
// same-host and loopback origins with the default write timeout.
type WebSocketOptions struct {
	// AllowedOrigins lists the browser origins allowed besides the
	// broker's own host and loopback, as "scheme://host[:port]"; "*"
	// allows every origin.
	AllowedOrigins []string
	// Logger receives refused handshakes; nil discards them.
	Logger *slog.Logger
	// WriteTimeout bounds each message written to the client; zero means
	// DefaultWriteTimeout and a negative value means no limit.
	WriteTimeout time.Duration
	// OneFramePerMessage sends every frame as a WebSocket message of its
	// own. By default, frames queued together go out together in one
	// message (up to 32 KiB), which STOMP clients parse as a stream.
	OneFramePerMessage bool
	// Compression accepts permessage-deflate when the client offers it
	// (browsers always do). Each message is compressed on its own (no
	// context takeover), so an idle connection holds no compressor;
	// messages under CompressMinBytes go out as they are.
	Compression bool
}

// CompressMinBytes is the smallest message compressed when compression is
// on: below it, deflate's block overhead eats most of the gain, and the
// cost per message does not shrink with it.
const CompressMinBytes = 512

// NewWebSocketHandler returns the handler for STOMP over WebSocket (mounted
// at /ws). It checks the Origin, negotiates the subprotocol, upgrades the
// connection and hands it to srv, whose Serve then runs on a goroutine of
// its own.
func NewWebSocketHandler(srv Server, opts WebSocketOptions) http.Handler {
	h := &wsHandler{
		srv:          srv,
		log:          opts.Logger,
		writeTimeout: writeTimeout(opts.WriteTimeout),
		allowed:      make(map[string]bool, len(opts.AllowedOrigins)),
		coalesce:     !opts.OneFramePerMessage,
		compress:     opts.Compression,
		readBufs: &sync.Pool{New: func() any {
			buf := make([]byte, wsReadChunkSize)
			return &buf
		}},
		poller: newPoller(),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, o := range opts.AllowedOrigins {
		o = normalizeOrigin(o)
		switch {
		case o == "*":
			h.allowAll = true
		case o == "":
			// An empty entry, as a trailing comma in a flag leaves.
		default:
			if !strings.Contains(o, "://") && o != "null" {
				h.log.Warn("allowed origin has no scheme and will never match; write it as scheme://host[:port]", "origin", o)
			}
			h.allowed[o] = true
		}
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: h.writeTimeout,
		// The write buffer is only held while a message is being
		// written, which matters with many mostly idle connections.
		WriteBufferSize: wsWriteChunkSize,
		WriteBufferPool: &sync.Pool{},
		// Origin was checked before Upgrade, with its own response.
		CheckOrigin:       func(*http.Request) bool { return true },
		Error:             h.handshakeError,
		EnableCompression: opts.Compression,
	}
	return h
}

func writeTimeout(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultWriteTimeout
	case d < 0:
		return 0
	}
	return d
}

type wsHandler struct {
	srv          Server
	log          *slog.Logger
	writeTimeout time.Duration
	allowAll     bool
	allowed      map[string]bool // normalized origins
	upgrader     websocket.Upgrader
	coalesce     bool
	compress     bool
	readBufs     *sync.Pool // *[]byte of wsReadChunkSize, see wsHijacker
	poller       *poller    // waits on the sockets of quiet connections
}

func (h *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.originAllowed(r) {
		h.log.Info("websocket handshake refused: origin not allowed",
			"origin", r.Header.Get("Origin"), "host", r.Host, "remote", r.RemoteAddr)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	proto, versions, ok := negotiate(r.Header)
	if !ok {
		h.log.Info("websocket handshake refused: no supported subprotocol",
			"offered", r.Header.Values("Sec-Websocket-Protocol"), "remote", r.RemoteAddr)
		http.Error(w, "no supported WebSocket subprotocol offered; supported: "+supported, http.StatusBadRequest)
		return
	}
	var respHeader http.Header
	if proto != "" {
		// With Upgrader.Subprotocols unset, gorilla echoes this header.
		respHeader = http.Header{"Sec-Websocket-Protocol": {proto}}
	}
	hj := &wsHijacker{ResponseWriter: w, pool: h.readBufs}
	conn, err := h.upgrader.Upgrade(hj, r, respHeader)
	if err != nil {
		return // Upgrade has answered the request
	}
	t := &wsTransport{
		in:       msgReader{conn: conn},
		conn:     conn,
		ahead:    hj.conn,
		br:       hj.br,
		coalesce: h.coalesce,
		compress: h.compress,
		deadline: lazyDeadline{timeout: h.writeTimeout},
		info: broker.ConnInfo{
			Transport:   "ws",
			Subprotocol: proto,
			RemoteAddr:  r.RemoteAddr,
			Versions:    versions,
			// Non-browser clients may log in with a token on the
			// handshake; browsers cannot set this header.
			Authorization: bearerToken(r.Header.Get("Authorization")),
		},
	}
	if t.ahead != nil {
		t.in.more = t.buffered
		t.park = h.poller.slot(t.ahead.Conn)
	}
	// The handler returns while the session goes on, so the HTTP server's
	// request state and the stack it grew while serving the handshake are
	// freed instead of lasting as long as the connection.
	serve(h.srv, t, h.log)
}

// bearerToken returns the token of an "Authorization: Bearer" header, or
// "" for any other header.
func bearerToken(h string) string {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

func (h *wsHandler) handshakeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	h.log.Debug("websocket handshake failed", "status", status, "err", reason, "remote", r.RemoteAddr)
	w.Header().Set("Sec-Websocket-Version", "13")
	http.Error(w, reason.Error(), status)
}

// negotiate picks the subprotocol from the client's offer and the STOMP
// versions it allows. No offer at all is accepted (STOMP.js and many tools
// send none) and yields proto "". ok is false when every offered token is
// unknown.
func negotiate(h http.Header) (proto string, versions []stomp.Version, ok bool) {
	offered, best := false, 0
	for _, line := range h.Values("Sec-Websocket-Protocol") {
		for tok := range strings.SplitSeq(line, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" {
				continue
			}
			offered = true
			if r := protoRank(tok); r > best {
				// The constant, not tok: a substring would keep the
				// request's header block alive as long as the connection.
				best, proto = r, protoName(r)
			}
		}
	}
	if !offered {
		return "", nil, true
	}
	switch proto {
	case protoV12:
		versions = []stomp.Version{stomp.V12}
	case protoV11:
		versions = []stomp.Version{stomp.V11}
	case protoV10:
		versions = []stomp.Version{stomp.V10}
	}
	return proto, versions, best > 0
}

// protoName is the subprotocol of a rank protoRank gives.
func protoName(rank int) string {
	switch rank {
	case 4:
		return protoV12
	case 3:
		return protoV11
	case 2:
		return protoV10
	}
	return protoAny
}

// protoRank orders the known subprotocols, best highest; 0 is unknown.
func protoRank(p string) int {
	switch p {
	case protoV12:
		return 4
	case protoV11:
		return 3
	case protoV10:
		return 2
	case protoAny:
		return 1
	}
	return 0
}

// originAllowed applies the Origin policy. A request without Origin comes
// from a non-browser client, which cross-site rules do not concern.
func (h *wsHandler) originAllowed(r *http.Request) bool {
	values := r.Header.Values("Origin")
	if len(values) == 0 {
		return true
	}
	if h.allowAll || h.allowed[normalizeOrigin(values[0])] {
		return true
	}
	u, err := url.Parse(values[0])
	if err != nil || u.Host == "" {
		return false // includes the opaque origin "null"
	}
	return auth.IsLoopback(u.Hostname()) || sameHost(u, r.Host)
}

func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
}

// sameHost reports whether the origin names the host the request was sent
// to. A request Host without a port means the client used its scheme's
// default port; which scheme cannot be known here (a TLS-terminating proxy
// hides it), so an origin on either default port, 80 or 443, matches.
func sameHost(origin *url.URL, reqHost string) bool {
	req := url.URL{Host: reqHost}
	if !strings.EqualFold(origin.Hostname(), req.Hostname()) {
		return false
	}
	op := origin.Port()
	if op == "" {
		switch strings.ToLower(origin.Scheme) {
		case "http", "ws":
			op = "80"
		case "https", "wss":
			op = "443"
		}
	}
	if rp := req.Port(); rp != "" {
		return op == rp
	}
	return op == "80" || op == "443"
}

// wsTransport is a broker.Transport over one WebSocket connection.
type wsTransport struct {
	in       msgReader
	conn     *websocket.Conn
	ahead    *readAheadConn // under conn; nil if the hijack was refused
	br       *bufio.Reader  // conn's own buffer, over ahead
	coalesce bool
	compress bool         // permessage-deflate may have been negotiated
	deadline lazyDeadline // for writes; no limit when its timeout is 0
	info     broker.ConnInfo
	park     parking // the socket's place in the handler's poller

	closed atomic.Bool
}

// Read streams the payloads of the client's messages, whatever their
// boundaries; the broker's decoder enforces frame limits as bytes arrive.
func (t *wsTransport) Read(p []byte) (int, error) { return t.in.Read(p) }

// WaitRead blocks until there is input, holding no buffer while the
// client is quiet: between messages and with nothing buffered, it waits
// on the socket itself.
func (t *wsTransport) WaitRead() error {
	if t.ahead == nil || !t.in.between() || t.buffered() {
		return nil
	}
	return waitReadable(t.ahead.Conn)
}

// WaitReadFor is WaitRead for at most d.
func (t *wsTransport) WaitReadFor(d time.Duration) (bool, error) {
	if t.ahead == nil || !t.in.between() || t.buffered() {
		return true, nil
	}
	return waitReadableFor(t.ahead.Conn, d)
}

// ParkRead leaves the wait for input to the handler's poller when the
// client is quiet: between messages, with nothing buffered.
func (t *wsTransport) ParkRead(resume func()) bool {
	if t.ahead == nil || !t.in.between() || t.buffered() {
		return false
	}
	return t.park.park(resume)
}

// buffered reports whether input has been read from the socket and not
// yet consumed, so reading on will not block.
func (t *wsTransport) buffered() bool { return t.br.Buffered() > 0 || t.ahead.buffered() }

// WriteFrames sends the frames in as few messages as it may: consecutive
// frames of the same kind share a message up to wsWriteChunkSize, unless
// every frame must go alone. Text is used only when it is safe and
// wanted: browsers drop the connection on a text message that is not
// UTF-8, and a client that writes binary expects binary back.
func (t *wsTransport) WriteFrames(frames []broker.Outbound) error {
	if err := t.writeFrames(frames); err != nil {
		return err
	}
	if t.ahead == nil || t.ahead.owed == nil || !t.ahead.owed.owes() {
		return nil
	}
	// Something owed and nothing after it (which would have sent it
	// first): send it now.
	if at, moved := t.deadline.next(); moved {
		t.conn.SetWriteDeadline(at) // gorilla's own, for its next message
	}
	return t.ahead.owed.flush(t.deadline.at)
}

// TryWriteFrames sends the frames as far as the socket takes them at once
// (broker.TryWriter); the rest is owed, and WriteFrames sends it first.
func (t *wsTransport) TryWriteFrames(frames []broker.Outbound) (owed bool, err error) {
	if !t.CanTryWrite() {
		return false, errors.ErrUnsupported
	}
	t.ahead.trying.Store(true)
	err = t.writeFrames(frames)
	t.ahead.trying.Store(false)
	if err != nil {
		return false, err
	}
	return t.ahead.owed.owes(), nil
}

// CanTryWrite reports whether TryWriteFrames works on this connection: it
// does over a plain socket, not over TLS.
func (t *wsTransport) CanTryWrite() bool {
	return t.ahead != nil && t.ahead.owed != nil
}

func (t *wsTransport) writeFrames(frames []broker.Outbound) error {
	for len(frames) > 0 {
		if frames[0].Len() == 0 {
			frames = frames[1:]
			continue
		}
		kind := t.kind(&frames[0])
		n, size := 1, frames[0].Len()
		for t.coalesce && n < len(frames) && size+frames[n].Len() <= wsWriteChunkSize && t.kind(&frames[n]) == kind {
			size += frames[n].Len()
			n++
		}
		if t.compress {
			// A no-op unless the client accepted the extension.
			t.conn.EnableWriteCompression(size >= CompressMinBytes)
		}
		if err := t.writeMessage(kind, frames[:n]); err != nil {
			return err
		}
		frames = frames[n:]
	}
	return nil
}

func (t *wsTransport) kind(f *broker.Outbound) int {
	if f.Binary || t.in.binary.Load() || !utf8.Valid(f.Head) {
		return websocket.BinaryMessage
	}
	return websocket.TextMessage
}

// writeMessage sends frames as one message.
func (t *wsTransport) writeMessage(kind int, frames []broker.Outbound) error {
	if t.deadline.timeout > 0 {
		// Kept ahead as messages go out, so a long batch to a slow but
		// live peer is judged by progress, not total size.
		if at, moved := t.deadline.next(); moved {
			if err := t.conn.SetWriteDeadline(at); err != nil {
				return err
			}
		}
	}
	w, err := t.conn.NextWriter(kind)
	if err != nil {
		return err
	}
	for i := range frames {
		if _, err := w.Write(frames[i].Head); err != nil {
			return err
		}
		if _, err := w.Write(frames[i].Body); err != nil {
			return err
		}
	}
	return w.Close()
}

// Close sends a close frame, so a browser sees an orderly end (1000)
// rather than an abnormal one (1006), then closes the socket, which
// unblocks Read and WriteFrames. Only the first call acts; later and
// concurrent ones return nil at once rather than wait on its I/O.
func (t *wsTransport) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	t.park.cancel()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = t.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
	return t.conn.Close()
}

// Info describes the connection.
func (t *wsTransport) Info() broker.ConnInfo { return t.info }
