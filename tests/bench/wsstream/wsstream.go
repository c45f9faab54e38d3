// Package wsstream turns a WebSocket connection into the byte stream a
// STOMP client or server reads and writes, for the benchmark helpers in
// tests/bench. It depends on gorilla/websocket only, so the helpers build
// against any broker whatever state the rest of the tree is in.
package wsstream

import (
	"io"

	"github.com/gorilla/websocket"
)

// Stream reads the payloads of the messages received, back to back (STOMP
// frames may be split across messages or share one), and writes each
// Write as one text message. One goroutine may read while another writes.
type Stream struct {
	c *websocket.Conn
	r io.Reader
}

// New returns c as a stream.
func New(c *websocket.Conn) *Stream { return &Stream{c: c} }

// Read reads payload bytes, moving on to the next message as each ends.
func (s *Stream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			_, r, err := s.c.NextReader()
			if err != nil {
				return 0, err
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if err == io.EOF {
			s.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends p as one text message.
func (s *Stream) Write(p []byte) (int, error) {
	if err := s.c.WriteMessage(websocket.TextMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the connection.
func (s *Stream) Close() error { return s.c.Close() }
