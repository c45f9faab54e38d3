package subprotocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// DialOption configures Dial.
type DialOption func(*dialConfig)

type dialConfig struct {
	protocols []string
	header    http.Header
	dialer    *websocket.Dialer
}

// WithSubprotocols sets the subprotocols offered in the handshake, in
// order of preference, instead of v12.stomp, v11.stomp, v10.stomp. With
// none, no Sec-WebSocket-Protocol header is sent.
func WithSubprotocols(protocols ...string) DialOption {
	return func(c *dialConfig) { c.protocols = slices.Clone(protocols) }
}

// WithHeader adds request headers to the handshake, such as Origin,
// Authorization or Cookie.
func WithHeader(h http.Header) DialOption {
	return func(c *dialConfig) {
		for k, vs := range h {
			for _, v := range vs {
				c.header.Add(k, v)
			}
		}
	}
}

// WithDialer dials with d (for TLS settings, proxies, timeouts) instead of
// a default dialer. Its Subprotocols field is ignored; use WithSubprotocols.
func WithDialer(d *websocket.Dialer) DialOption {
	return func(c *dialConfig) { c.dialer = d }
}

// Dial opens a STOMP over WebSocket connection to url (ws:// or wss://).
// The result is a byte stream for a STOMP client such as go-stomp's
// stomp.Connect: each Write goes out as one WebSocket message, binary when
// it is not valid UTF-8 and text otherwise, and Read yields the payloads of
// incoming messages back to back. Read and Write may each be used by one
// goroutine at a time; Close may be called from any goroutine.
func Dial(ctx context.Context, url string, opts ...DialOption) (io.ReadWriteCloser, error) {
	cfg := dialConfig{
		protocols: []string{protoV12, protoV11, protoV10},
		header:    http.Header{},
	}
	for _, o := range opts {
		o(&cfg)
	}
	d := defaultDialer()
	if cfg.dialer != nil {
		d = *cfg.dialer
	}
	d.Subprotocols = cfg.protocols
	conn, resp, err := d.DialContext(ctx, url, cfg.header)
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			// The server's refusal says why (origin, subprotocol).
			var b strings.Builder
			_, _ = io.Copy(&b, io.LimitReader(resp.Body, 512))
			return nil, fmt.Errorf("subprotocol: dial %s: %w: %s %s", url, err, resp.Status, strings.TrimSpace(b.String()))
		}
		return nil, fmt.Errorf("subprotocol: dial %s: %w", url, err)
	}
	// Browsers enforce this; a Go client should not quietly accept a
	// protocol it never offered.
	if p := conn.Subprotocol(); p != "" && !slices.Contains(cfg.protocols, p) {
		conn.Close()
		return nil, fmt.Errorf("subprotocol: dial %s: server chose subprotocol %q, which was not offered", url, p)
	}
	return &clientConn{in: msgReader{conn: conn}, conn: conn}, nil
}

// defaultDialer is the dialer Dial uses unless given one.
func defaultDialer() websocket.Dialer {
	return websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 45 * time.Second}
}

// clientConn is the client end of a STOMP over WebSocket connection.
type clientConn struct {
	in   msgReader
	conn *websocket.Conn

	closed atomic.Bool
}

func (c *clientConn) Read(p []byte) (int, error) { return c.in.Read(p) }

// Write sends p as one message. There is no write deadline: a broker
// applying backpressure may rightly hold a producer for a while, and Close
// unblocks a stuck write.
func (c *clientConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	kind := websocket.TextMessage
	if !utf8.Valid(p) {
		kind = websocket.BinaryMessage
	}
	if err := c.conn.WriteMessage(kind, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a close frame and closes the socket. Only the first call
// acts; later ones return nil.
func (c *clientConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
	return c.conn.Close()
}
