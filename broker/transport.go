package broker

import (
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// Transport is one client connection as the broker sees it: a byte stream
// in, whole frames out. The broker knows nothing of sockets or WebSocket
// messages; transports adapt those to this.
type Transport interface {
	// Read returns inbound bytes. Frame and message boundaries carry no
	// meaning: the broker's decoder takes any split.
	Read(p []byte) (int, error)
	// WriteFrames sends frames in order. Only the session's write loop
	// calls it, never concurrently and never with a lock held.
	WriteFrames(frames []Outbound) error
	// Close ends the connection and unblocks Read and WriteFrames.
	Close() error
	// Info describes the connection.
	Info() ConnInfo
}

// ReadWaiter is implemented by transports that can wait for input without
// holding a buffer. A session then borrows its read buffer from a pool
// only while input is arriving, so an idle connection holds none.
type ReadWaiter interface {
	// WaitRead blocks until Read would return without blocking: input,
	// the end of the stream or an error. It returns an error only when
	// the connection has failed or been closed.
	WaitRead() error
}

// ReadParker is implemented by transports that can wait for input with no
// goroutine at all: the session's read loop then ends while its client is
// quiet and a new one takes over once input arrives, so an idle
// connection holds no goroutine stack. Sessions started with Start use
// it; one run with Serve still has its caller's goroutine waiting.
type ReadParker interface {
	// ParkRead arranges for resume to run once, on a goroutine of its
	// own, when Read would not block: there is input, the stream has
	// ended or failed, or Close has been called. It reports false,
	// having arranged nothing, when the transport cannot wait that way
	// now (input is already buffered, the connection is not a socket);
	// the caller then waits as it otherwise would. After true, the
	// caller must leave the connection to resume.
	ParkRead(resume func()) bool
	// WaitReadFor is WaitRead for at most d: it reports false when no
	// input came in that time. A connection that has just been busy
	// waits a moment this way before it parks, since parking and
	// resuming cost system calls and a new goroutine per wake-up.
	WaitReadFor(d time.Duration) (ready bool, err error)
}

// TryWriter is implemented by transports that can send without blocking.
// A client's publish then writes its topic deliveries itself to
// subscribers whose connections have nothing else going out, rather than
// waking each one's write loop: at low rates that hand-off, a goroutine
// wake-up per subscriber, is much of what a delivery waits for.
type TryWriter interface {
	// CanTryWrite reports whether TryWriteFrames works on this
	// connection (over TLS, say, it does not).
	CanTryWrite() bool
	// TryWriteFrames sends frames as far as the connection takes them at
	// once, never waiting. What it does not take is kept, in order, and
	// sent first by the next WriteFrames, which may be called with no
	// frames just for that; owed reports whether anything was kept. The
	// rule of WriteFrames holds: one writer at a time, no lock held.
	TryWriteFrames(frames []Outbound) (owed bool, err error)
}

// Outbound is one encoded frame: its head (command, headers, blank line)
// and its body with the terminating NUL. A message fanned out to many
// subscribers shares one Body slice; only the head differs.
type Outbound struct {
	Head []byte
	Body []byte
	// Binary is set when the body is not valid UTF-8, so a WebSocket
	// transport must send the frame as a binary message.
	Binary bool
}

// Len is the number of bytes the frame takes on the wire.
func (o Outbound) Len() int { return len(o.Head) + len(o.Body) }

// ConnInfo describes a client connection.
type ConnInfo struct {
	// Transport names the carrier: "tcp", "ws" or "sockjs".
	Transport string
	// Subprotocol is the negotiated WebSocket subprotocol, if any.
	Subprotocol string
	// RemoteAddr is the peer's address, host:port.
	RemoteAddr string
	// Versions, when not empty, bounds the STOMP versions CONNECT may
	// choose (a WebSocket subprotocol fixes them).
	Versions []stomp.Version
	// Authorization is a credential the transport received outside STOMP,
	// such as the token of an "Authorization: Bearer" handshake header.
	Authorization string
}
