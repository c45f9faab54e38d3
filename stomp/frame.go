// Package stomp holds STOMP frames and their wire codec for protocol
// versions 1.0, 1.1 and 1.2: a push decoder that accepts input in arbitrary
// chunks and an encoder that appends to caller-owned buffers.
package stomp

import "strconv"

// Version is a STOMP protocol version.
type Version uint8

// Supported protocol versions, in ascending order.
const (
	V10 Version = iota + 1
	V11
	V12
)

// String returns the version as it appears in accept-version headers.
func (v Version) String() string {
	switch v {
	case V10:
		return "1.0"
	case V11:
		return "1.1"
	case V12:
		return "1.2"
	}
	return "unknown"
}

// ParseVersion parses "1.0", "1.1" or "1.2".
func ParseVersion(s string) (Version, bool) {
	switch s {
	case "1.0":
		return V10, true
	case "1.1":
		return V11, true
	case "1.2":
		return V12, true
	}
	return 0, false
}

// Client and server commands.
const (
	CONNECT     = "CONNECT"
	STOMP       = "STOMP"
	SEND        = "SEND"
	SUBSCRIBE   = "SUBSCRIBE"
	UNSUBSCRIBE = "UNSUBSCRIBE"
	ACK         = "ACK"
	NACK        = "NACK"
	BEGIN       = "BEGIN"
	COMMIT      = "COMMIT"
	ABORT       = "ABORT"
	DISCONNECT  = "DISCONNECT"

	CONNECTED = "CONNECTED"
	MESSAGE   = "MESSAGE"
	RECEIPT   = "RECEIPT"
	ERROR     = "ERROR"
)

// Header is one header line. Frames keep headers in wire order, repeats
// included; lookups return the first occurrence, as the spec requires.
type Header struct {
	Key, Value string
}

// Frame is one STOMP frame.
type Frame struct {
	Command string
	Headers []Header
	Body    []byte
}

// New returns a frame with the given command and key/value pairs.
func New(command string, kv ...string) *Frame {
	f := &Frame{Command: command, Headers: make([]Header, 0, len(kv)/2+2)}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Headers = append(f.Headers, Header{kv[i], kv[i+1]})
	}
	return f
}

// Get returns the value of the first header named key.
func (f *Frame) Get(key string) (string, bool) {
	for i := range f.Headers {
		if f.Headers[i].Key == key {
			return f.Headers[i].Value, true
		}
	}
	return "", false
}

// Value returns the value of the first header named key, or "".
func (f *Frame) Value(key string) string {
	v, _ := f.Get(key)
	return v
}

// Set replaces the first header named key (dropping later repeats) or
// appends it.
func (f *Frame) Set(key, value string) {
	for i := range f.Headers {
		if f.Headers[i].Key == key {
			f.Headers[i].Value = value
			f.delFrom(key, i+1)
			return
		}
	}
	f.Headers = append(f.Headers, Header{key, value})
}

// Add appends a header, even when one with the same key exists.
func (f *Frame) Add(key, value string) {
	f.Headers = append(f.Headers, Header{key, value})
}

// Del removes every header named key.
func (f *Frame) Del(key string) { f.delFrom(key, 0) }

func (f *Frame) delFrom(key string, start int) {
	out := f.Headers[:start]
	for _, h := range f.Headers[start:] {
		if h.Key != key {
			out = append(out, h)
		}
	}
	clear(f.Headers[len(out):])
	f.Headers = out
}

// Clone returns a deep copy of the header slice; the body is shared, as
// bodies are never modified once decoded.
func (f *Frame) Clone() *Frame {
	c := &Frame{Command: f.Command, Body: f.Body}
	c.Headers = append(make([]Header, 0, len(f.Headers)+4), f.Headers...)
	return c
}

// ContentLength reports the frame's content-length header, if present
// and valid.
func (f *Frame) ContentLength() (int, bool) {
	v, ok := f.Get("content-length")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
