package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stampede-mq/stampede/stomp"
)

// epoch is the origin of the tool's monotonic clock: stamps and window
// bounds are nanoseconds since it.
var epoch = time.Now()

func clock() int64 { return int64(time.Since(epoch)) }

// wsSubprotocols returns the WebSocket subprotocols for the STOMP
// versions offered, best first.
func wsSubprotocols(versions []string) []string {
	var ps []string
	for _, p := range []string{"v12.stomp", "v11.stomp", "v10.stomp"} {
		if slices.Contains(versions, p[1:2]+"."+p[2:3]) {
			ps = append(ps, p)
		}
	}
	return ps
}

// bufConn sits under both transports. After the WebSocket handshake every
// write lands in a buffer, so a publisher's batch of frames (still one
// WebSocket message per frame) leaves in one system call, and ACKs written
// while a read's worth of MESSAGEs is processed go out together: Read
// flushes whatever is pending before it blocks for more input.
type bufConn struct {
	net.Conn
	wmu    sync.Mutex // held across a batch of frames and its flush
	bmu    sync.Mutex // guards buf and spare
	buf    []byte
	spare  []byte
	direct atomic.Bool // write straight through (the HTTP upgrade)
	queued atomic.Bool // buf holds bytes

	lastRecv atomic.Int64 // clock() when the last read returned data
	maxGap   atomic.Int64 // longest silence between reads, in ns
}

// Write buffers p; it never blocks on the network, so gorilla's control
// replies written from the reader goroutine cannot stall it.
func (b *bufConn) Write(p []byte) (int, error) {
	if b.direct.Load() {
		return b.Conn.Write(p)
	}
	b.bmu.Lock()
	b.buf = append(b.buf, p...)
	b.queued.Store(true)
	b.bmu.Unlock()
	return len(p), nil
}

// SetWriteDeadline is a no-op: gorilla sets one per message, but writes
// only reach the socket in flush, and a stalled run is ended by closing
// the connection.
func (b *bufConn) SetWriteDeadline(time.Time) error { return nil }

// flush sends what is buffered. The caller holds wmu.
func (b *bufConn) flush() error {
	b.bmu.Lock()
	out := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.queued.Store(false)
	b.bmu.Unlock()
	var err error
	if len(out) > 0 {
		_, err = b.Conn.Write(out)
	}
	if cap(out) <= 1<<20 {
		b.bmu.Lock()
		b.spare = out[:0]
		b.bmu.Unlock()
	}
	return err
}

// Read flushes pending writes before it may block, then reads.
func (b *bufConn) Read(p []byte) (int, error) {
	if b.queued.Load() {
		b.wmu.Lock()
		err := b.flush()
		b.wmu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	n, err := b.Conn.Read(p)
	if n > 0 {
		now := clock()
		if prev := b.lastRecv.Swap(now); prev > 0 && now-prev > b.maxGap.Load() {
			b.maxGap.Store(now - prev)
		}
	}
	return n, err
}

// dialSpec says how to open one connection.
type dialSpec struct {
	target    target
	login     string
	passcode  string
	vhost     string
	versions  []string      // accept-version
	heartbeat time.Duration // offered both ways; 0 for none
	local     net.Addr      // source address, or nil
	idle      bool          // small buffers: thousands of these will mostly sit
	writeBuf  int           // WebSocket write buffer: the largest frame sent

	// Callbacks run on the connection's reader goroutine.
	onMessage func(c *conn, f *stomp.Frame, now int64)
	onReceipt func(id string, now int64)
	// onError sees ERROR frames and unexpected ends of the connection.
	onError func(c *conn, msg string)
}

// conn is one STOMP connection with its reader goroutine.
type conn struct {
	spec *dialSpec
	nc   *bufConn
	ws   *websocket.Conn
	dec  *stomp.Decoder
	emit func(*stomp.Frame) error
	now  int64 // receive time of the input being decoded

	// Set from CONNECTED before connected is closed.
	version      stomp.Version
	server       string
	hbToServer   time.Duration // how often the server wants to hear from us
	hbFromServer time.Duration // how often the server will send

	connected chan struct{}
	done      chan struct{} // the reader has returned
	err       error         // why, readable after done
	closing   atomic.Bool
}

// errServerError stops the reader after an ERROR frame, which ends the
// connection in STOMP.
var errServerError = errors.New("ERROR frame")

// dial connects and sends CONNECT, returning once CONNECTED arrived.
func dial(ctx context.Context, s *dialSpec) (*conn, error) {
	d := net.Dialer{LocalAddr: s.local}
	raw, err := d.DialContext(ctx, "tcp", s.target.addr)
	if err != nil {
		return nil, err
	}
	c := &conn{
		spec:      s,
		nc:        &bufConn{Conn: raw},
		dec:       stomp.NewDecoder(stomp.Limits{}),
		connected: make(chan struct{}),
		done:      make(chan struct{}),
	}
	c.emit = c.frame
	readBuf := 64 << 10
	if s.idle {
		readBuf = 1 << 10
	}
	if s.target.ws {
		if err := c.upgrade(ctx); err != nil {
			raw.Close()
			return nil, err
		}
	}
	go c.readLoop(readBuf)

	connect := stomp.New(stomp.CONNECT, "accept-version", strings.Join(s.versions, ","), "host", s.vhost)
	if s.login != "" || s.passcode != "" {
		connect.Add("login", s.login)
		connect.Add("passcode", s.passcode)
	}
	ms := strconv.FormatInt(s.heartbeat.Milliseconds(), 10)
	connect.Add("heart-beat", ms+","+ms)
	if err := c.send(stomp.Encode(connect, stomp.V12)); err != nil {
		c.abort()
		<-c.done
		return nil, err
	}
	select {
	case <-c.connected:
		return c, nil
	case <-c.done:
		c.abort()
		if errors.Is(c.err, errServerError) {
			return nil, fmt.Errorf("CONNECT refused")
		}
		return nil, fmt.Errorf("connection ended before CONNECTED: %w", c.err)
	case <-ctx.Done():
		c.abort()
		<-c.done
		return nil, fmt.Errorf("no CONNECTED: %w", context.Cause(ctx))
	}
}

// upgrade runs the WebSocket handshake over c.nc.
func (c *conn) upgrade(ctx context.Context) error {
	s := c.spec
	wd := websocket.Dialer{
		NetDialContext:  func(context.Context, string, string) (net.Conn, error) { return c.nc, nil },
		Subprotocols:    wsSubprotocols(s.versions),
		ReadBufferSize:  64 << 10,
		WriteBufferSize: max(4<<10, s.writeBuf+1024),
	}
	if s.idle {
		wd.ReadBufferSize = 1 << 10
		wd.WriteBufferSize = 1 << 10
		wd.WriteBufferPool = &sync.Pool{}
	}
	c.nc.direct.Store(true)
	ws, resp, err := wd.DialContext(ctx, s.target.url, http.Header{})
	c.nc.direct.Store(false)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("WebSocket handshake: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return fmt.Errorf("WebSocket handshake: %w", err)
	}
	ws.SetReadLimit(-1)
	c.ws = ws
	return nil
}

func (c *conn) readLoop(bufSize int) {
	defer close(c.done)
	buf := make([]byte, bufSize)
	var err error
	if c.ws != nil {
		err = c.readWS(buf)
	} else {
		err = c.readTCP(buf)
	}
	c.err = err
	if !c.closing.Load() && !errors.Is(err, errServerError) && c.spec.onError != nil {
		c.spec.onError(c, "connection lost: "+err.Error())
	}
	c.nc.Close()
}

func (c *conn) readTCP(buf []byte) error {
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			c.now = c.nc.lastRecv.Load()
			if ferr := c.dec.Feed(buf[:n], c.emit); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
	}
}

func (c *conn) readWS(buf []byte) error {
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		for {
			n, err := r.Read(buf)
			if n > 0 {
				c.now = c.nc.lastRecv.Load()
				if ferr := c.dec.Feed(buf[:n], c.emit); ferr != nil {
					return ferr
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
	}
}

// frame handles one decoded frame on the reader goroutine.
func (c *conn) frame(f *stomp.Frame) error {
	switch f.Command {
	case stomp.MESSAGE:
		if c.spec.onMessage != nil {
			c.spec.onMessage(c, f, c.now)
		}
	case stomp.RECEIPT:
		if c.spec.onReceipt != nil {
			c.spec.onReceipt(f.Value("receipt-id"), c.now)
		}
	case stomp.CONNECTED:
		c.connectedFrame(f)
	case stomp.ERROR:
		msg := f.Value("message")
		if msg == "" {
			msg = strings.TrimSpace(string(f.Body))
		}
		if c.spec.onError != nil {
			c.spec.onError(c, "ERROR frame: "+msg)
		}
		return errServerError
	}
	return nil
}

func (c *conn) connectedFrame(f *stomp.Frame) {
	select {
	case <-c.connected:
		return // a second CONNECTED: ignore
	default:
	}
	v, ok := stomp.ParseVersion(f.Value("version"))
	if !ok {
		v = stomp.V10
	}
	c.version = v
	c.dec.SetVersion(v)
	c.server = f.Value("server")
	if hb := c.spec.heartbeat; hb > 0 {
		sx, sy := parseHeartBeat(f.Value("heart-beat"))
		if sy > 0 {
			c.hbToServer = max(hb, sy)
		}
		if sx > 0 {
			c.hbFromServer = max(hb, sx)
		}
	}
	close(c.connected)
}

// parseHeartBeat reads a "sx,sy" heart-beat header; anything malformed
// counts as no heart-beats.
func parseHeartBeat(h string) (sx, sy time.Duration) {
	a, b, ok := strings.Cut(h, ",")
	if !ok {
		return 0, 0
	}
	x, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	y, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || x < 0 || y < 0 {
		return 0, 0
	}
	return time.Duration(x) * time.Millisecond, time.Duration(y) * time.Millisecond
}

// put queues one frame (one WebSocket message). The caller holds
// c.nc.wmu and flushes, or leaves the flush to the reader's next Read.
func (c *conn) put(frame []byte) error {
	if c.ws != nil {
		return c.ws.WriteMessage(websocket.TextMessage, frame)
	}
	_, err := c.nc.Write(frame)
	return err
}

// send writes one frame now.
func (c *conn) send(frame []byte) error {
	c.nc.wmu.Lock()
	defer c.nc.wmu.Unlock()
	if err := c.put(frame); err != nil {
		return err
	}
	return c.nc.flush()
}

// heartbeat sends one heart-beat EOL.
func (c *conn) heartbeat() error { return c.send(eol) }

var (
	eol        = []byte{'\n'}
	disconnect = []byte("DISCONNECT\n\n\x00")
)

// close says DISCONNECT (without waiting for a receipt) and closes.
func (c *conn) close() {
	if !c.closing.Swap(true) {
		// Best effort, and bounded: the peer may have stopped reading.
		c.nc.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.send(disconnect)
	}
	c.nc.Close()
}

// abort closes without a word, e.g. when the run times out.
func (c *conn) abort() {
	c.closing.Store(true)
	c.nc.Close()
}
