package subprotocol

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/store"
)

// rawClient is a STOMP client with nothing but its socket, so that what
// a test measures in this process is the broker's side.
type rawClient struct {
	conn net.Conn
	ws   bool
	br   *bufio.Reader
}

// dialRaw connects to addr over TCP, or over WebSocket at /ws with a
// handshake written by hand, and exchanges CONNECT for CONNECTED with
// heart-beats off, so the connection then stays quiet.
func dialRaw(tb testing.TB, addr string, ws bool) *rawClient {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rc := &rawClient{conn: c, ws: ws, br: bufio.NewReaderSize(c, 256)}
	if ws {
		fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
			"Sec-WebSocket-Protocol: v12.stomp\r\n\r\n", addr)
		status, err := rc.br.ReadString('\n')
		if err != nil || !strings.Contains(status, " 101 ") {
			tb.Fatalf("handshake: %q, %v", status, err)
		}
		for {
			line, err := rc.br.ReadString('\n')
			if err != nil {
				tb.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
		}
	}
	rc.send(tb, "CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n\n\x00")
	if f := rc.frame(tb); !strings.HasPrefix(f, "CONNECTED\n") {
		tb.Fatalf("got %q", f)
	}
	c.SetDeadline(time.Time{})
	return rc
}

// send writes one frame: a masked text message over WebSocket (with a
// zero mask, which leaves the payload as it is).
func (rc *rawClient) send(tb testing.TB, frame string) {
	tb.Helper()
	p := []byte(frame)
	if rc.ws {
		if len(p) > 125 {
			tb.Fatal("frame too long for this client")
		}
		p = append([]byte{0x81, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
	}
	if _, err := rc.conn.Write(p); err != nil {
		tb.Fatal(err)
	}
}

// frame reads up to the end of the next STOMP frame.
func (rc *rawClient) frame(tb testing.TB) string {
	tb.Helper()
	r := io.Reader(rc.br)
	if rc.ws {
		var head [2]byte
		if _, err := io.ReadFull(rc.br, head[:]); err != nil {
			tb.Fatal(err)
		}
		n := int64(head[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			io.ReadFull(rc.br, ext[:])
			n = int64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			tb.Fatal("message too long for this client")
		}
		r = io.LimitReader(rc.br, n)
	}
	var out bytes.Buffer
	for {
		var b [1]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			tb.Fatalf("reading a frame: %v (so far %q)", err, out.String())
		}
		if b[0] == 0 {
			return out.String()
		}
		out.WriteByte(b[0])
	}
}

// startIdleBroker serves a broker over TCP and WebSocket and returns both
// addresses.
func startIdleBroker(tb testing.TB) (tcpAddr, wsAddr string) {
	tb.Helper()
	b, err := broker.New(broker.DefaultOptions(), store.NewMemory())
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ServeTCP(ln, b, TCPOptions{})
	}()
	ts := httptest.NewServer(NewWebSocketHandler(b, WebSocketOptions{}))
	tb.Cleanup(func() {
		ln.Close()
		<-served
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			tb.Error(err)
		}
		ts.Close()
	})
	return ln.Addr().String(), strings.TrimPrefix(ts.URL, "http://")
}

// openIdle opens n quiet connections and waits until the broker holds no
// goroutine for any of them, which it must come to once they are parked.
// It returns the connections and the number of goroutines left per
// connection.
func openIdle(tb testing.TB, addr string, ws bool, n int) ([]*rawClient, float64) {
	tb.Helper()
	before := runtime.NumGoroutine()
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = dialRaw(tb, addr, ws)
	}
	// Writers linger briefly after CONNECTED and HTTP handlers return
	// after the upgrade: wait for them, with a bound for a broken build.
	extra := runtime.NumGoroutine() - before
	for end := time.Now().Add(30 * time.Second); extra > n/100 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
		extra = runtime.NumGoroutine() - before
	}
	return clients, float64(max(extra, 0)) / float64(n)
}

// TestIdleConnectionsHoldNoGoroutine checks that quiet connections, over
// TCP and WebSocket, wait in the transport's poller rather than on
// goroutines of their own, and that each is still served afterwards.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("connections park without a goroutine only on Linux")
	}
	tcpAddr, wsAddr := startIdleBroker(t)
	for _, tc := range []struct {
		name string
		addr string
		ws   bool
	}{{"tcp", tcpAddr, false}, {"ws", wsAddr, true}} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 100
			clients, perConn := openIdle(t, tc.addr, tc.ws, n)
			if perConn > 0.05 {
				t.Errorf("%.2f goroutines held per idle connection", perConn)
			}
			for _, c := range clients {
				c.conn.SetDeadline(time.Now().Add(30 * time.Second))
				c.send(t, "DISCONNECT\nreceipt:bye\n\n\x00")
			}
			for i, c := range clients {
				if f := c.frame(t); !strings.HasPrefix(f, "RECEIPT\nreceipt-id:bye\n") {
					t.Fatalf("connection %d: got %q", i, f)
				}
				c.conn.Close()
			}
		})
	}
}

// BenchmarkIdleConnMemory reports what a quiet connection costs the
// broker in this process: heap and goroutine stack per connection, after
// a collection, with the clients' side reduced to their sockets.
//
//	go test -run '^$' -bench IdleConnMemory -benchtime 1x ./subprotocol
func BenchmarkIdleConnMemory(b *testing.B) {
	tcpAddr, wsAddr := startIdleBroker(b)
	for _, tc := range []struct {
		name string
		addr string
		ws   bool
	}{{"tcp", tcpAddr, false}, {"ws", wsAddr, true}} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				const n = 2000
				g0 := runtime.NumGoroutine()
				heap0, stack0 := memInUse()
				clients, goroutines := openIdle(b, tc.addr, tc.ws, n)
				heap1, stack1 := memInUse()
				b.ReportMetric(float64(heap1-heap0)/n, "heap-B/conn")
				// Stacks the previous run freed may still count in
				// stack0, which can make a difference near zero negative.
				b.ReportMetric(float64(max(stack1-stack0, 0))/n, "stack-B/conn")
				b.ReportMetric(goroutines, "goroutines/conn")
				for _, c := range clients {
					c.conn.Close()
				}
				// The next run starts from a broker without them.
				for end := time.Now().Add(30 * time.Second); runtime.NumGoroutine() > g0 && time.Now().Before(end); {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
}

// memInUse is the live heap and the goroutine stacks after collections.
func memInUse() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse), int64(m.StackInuse)
}
