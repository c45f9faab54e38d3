// Package subprotocol carries STOMP between clients and the broker: STOMP
// over WebSocket (the v1x.stomp subprotocols, for STOMP.js and other
// browser clients), plain STOMP over TCP, a WebSocket dialer that lets Go
// STOMP clients such as go-stomp talk to the WebSocket endpoint, and
// Connect and Subscribe, which give go-stomp defaults that cannot hang.
//
// Each accepted connection becomes a broker.Transport handed to a Server;
// the transports adapt sockets and WebSocket messages to the broker's byte
// stream in, whole frames out.
package subprotocol

import (
	"io"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/broker"
)

// Server runs one client session on a transport. Serve blocks until the
// session ends; the caller closes the transport afterwards. The broker
// satisfies it.
type Server interface {
	Serve(t broker.Transport)
}

// starter is a Server that can start a session without blocking, as the
// broker does (broker.Broker.Start): then no goroutine waits for a session
// whose client is quiet.
type starter interface {
	Start(t broker.Transport, ended func())
}

// serve runs a session on t and closes t once it is over. A Server that
// cannot start sessions runs on a goroutine of its own, where a panic is
// logged rather than taking down every other connection, as net/http does
// for handlers.
func serve(srv Server, t broker.Transport, log *slog.Logger) {
	if s, ok := srv.(starter); ok {
		s.Start(t, func() { t.Close() })
		return
	}
	go func() {
		defer t.Close()
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic serving stomp connection", "remote", t.Info().RemoteAddr, "transport", t.Info().Transport, "panic", p, "stack", string(debug.Stack()))
			}
		}()
		srv.Serve(t)
	}()
}

// DefaultWriteTimeout bounds one write to a peer unless configured
// otherwise, so a dead peer cannot hold the session's writer forever.
const DefaultWriteTimeout = 10 * time.Second

// closeGrace bounds the attempt to send a WebSocket close frame before the
// socket is torn down, so Close stays prompt even when the peer is stuck.
const closeGrace = time.Second

// msgReader turns the payloads of successive WebSocket messages into one
// byte stream. Only one goroutine may call Read; the kind of the latest
// message may be consulted from any goroutine.
type msgReader struct {
	conn   *websocket.Conn
	more   func() bool // input is buffered: reading on will not block; nil: unknown
	cur    io.Reader   // the message being read, nil between messages
	curBin bool        // cur is a binary message
	err    error       // sticky: gorilla panics after many reads of a failed conn
	binary atomic.Bool // the kind of the bytes last returned
}

// Read fills p from as many messages as have arrived: it blocks only
// until it has something, then goes on while more input is buffered, so
// a client that sends many small messages at once is read (and its
// frames handled) together. One read never mixes text and binary.
func (m *msgReader) Read(p []byte) (int, error) {
	n := 0
	for m.err == nil && n < len(p) {
		if n > 0 && (m.more == nil || !m.more()) {
			break
		}
		if m.cur == nil {
			kind, r, err := m.conn.NextReader()
			if err != nil {
				m.err = streamError(err)
				break
			}
			m.cur, m.curBin = r, kind == websocket.BinaryMessage
		}
		if n == 0 {
			m.binary.Store(m.curBin)
		} else if m.curBin != m.binary.Load() {
			break
		}
		k, err := m.cur.Read(p[n:])
		n += k
		switch {
		case err == io.EOF:
			m.cur = nil // an empty message, or the end of one: go on to the next
		case err != nil:
			m.err = streamError(err)
		}
	}
	if n > 0 {
		return n, nil // an error waits for the next call
	}
	return 0, m.err
}

// between reports whether the reader stands between two messages. A
// message whose bytes have all been read is finished here, which a Read
// would otherwise only do on its next call.
func (m *msgReader) between() bool {
	if m.cur == nil {
		return true
	}
	if m.err != nil {
		return false
	}
	_, err := m.cur.Read(nil)
	switch {
	case err == io.EOF:
		m.cur = nil
		return true
	case err != nil:
		m.err = streamError(err)
	}
	return false
}

// streamError maps an orderly WebSocket close to io.EOF, so readers see
// the end of the stream rather than a failure.
func streamError(err error) error {
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return io.EOF
	}
	return err
}
