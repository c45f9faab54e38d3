package subprotocol

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/broker"
)

// jsonBody is a JSON document of about size bytes, with varied values the
// way application messages have them (a constant body would compress far
// better than anything real).
func jsonBody(r *rand.Rand, size int) []byte {
	type item struct {
		ID       string  `json:"id"`
		Symbol   string  `json:"symbol"`
		Price    float64 `json:"price"`
		Quantity int     `json:"quantity"`
		Side     string  `json:"side"`
		Time     int64   `json:"timestamp"`
	}
	var items []item
	for {
		it := item{
			ID:       fmt.Sprintf("%016x", r.Uint64()),
			Symbol:   []string{"AAPL", "MSFT", "GOOG", "AMZN", "TSLA"}[r.IntN(5)],
			Price:    float64(r.IntN(100000)) / 100,
			Quantity: r.IntN(1000),
			Side:     []string{"buy", "sell"}[r.IntN(2)],
			Time:     1_700_000_000_000 + r.Int64N(1e9),
		}
		next, _ := json.Marshal(append(items, it))
		if len(next) > size && len(items) > 0 {
			break
		}
		items = append(items, it)
		if len(next) >= size {
			break
		}
	}
	b, _ := json.Marshal(items)
	return b
}

// messageFrame is a MESSAGE as the broker encodes one, body included.
func messageFrame(i int, body []byte) broker.Outbound {
	head := fmt.Sprintf("MESSAGE\ndestination:/topic/prices\ncontent-type:application/json\n"+
		"subscription:sub-0\nmessage-id:T_%d\ntimestamp:1700000000000\ncontent-length:%d\n\n", i, len(body))
	return broker.Outbound{Head: []byte(head), Body: append(body[:len(body):len(body)], 0)}
}

// countingConn counts the bytes read from the network.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// dialCounting opens a WebSocket to url that offers permessage-deflate
// when compress is set, and counts every byte it receives.
// The socket itself is sent on raw, when it is not nil.
func dialCounting(b testing.TB, url string, compress bool, n *atomic.Int64, raw chan<- net.Conn) *websocket.Conn {
	d := websocket.Dialer{
		EnableCompression: compress,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := countingConn{Conn: c, n: n}
			if raw != nil {
				raw <- cc
			}
			return cc, nil
		},
	}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	return conn
}

// BenchmarkWebSocketDelivery measures what permessage-deflate costs the
// broker per delivered MESSAGE with a JSON body, and what it saves on the
// wire. Frames go out one per WriteFrames call (a subscriber receiving one
// message at a time, the worst case for compression) or 16 at a time (a
// burst, coalesced into one WebSocket message). The socket is a sink that
// counts bytes, so ns/op is the broker's CPU alone, system calls aside.
//
//	go test -run '^$' -bench WebSocketDelivery -benchmem ./subprotocol
func BenchmarkWebSocketDelivery(b *testing.B) {
	for _, size := range []int{150, 1000, 4000} {
		for _, batch := range []int{1, 16} {
			for _, compress := range []bool{false, true} {
				name := fmt.Sprintf("json=%dB/batch=%d/compression=%v", size, batch, compress)
				b.Run(name, func(b *testing.B) { benchDelivery(b, size, batch, compress) })
			}
		}
	}
}

func benchDelivery(b *testing.B, size, batch int, compress bool) {
	r := rand.New(rand.NewPCG(1, uint64(size)))
	frames := make([]broker.Outbound, 64)
	var bodyBytes int
	for i := range frames {
		body := jsonBody(r, size)
		bodyBytes += len(body)
		frames[i] = messageFrame(i, body)
	}
	done := make(chan struct{})
	sink := &sinkConn{closed: make(chan struct{})}
	srv := serverFunc(func(tr broker.Transport) {
		defer close(done)
		sink.n.Store(0)
		b.ReportAllocs()
		b.ResetTimer()
		out := make([]broker.Outbound, batch)
		for i := 0; i < b.N; i += batch {
			out = out[:min(batch, b.N-i)]
			for j := range out {
				out[j] = frames[(i+j)%len(frames)]
			}
			if err := tr.WriteFrames(out); err != nil {
				b.Error(err)
				return
			}
		}
		b.StopTimer()
	})
	req := httptest.NewRequest(http.MethodGet, "/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
	NewWebSocketHandler(srv, WebSocketOptions{Compression: compress}).ServeHTTP(&sinkWriter{conn: sink}, req)
	<-done
	close(sink.closed)
	b.ReportMetric(float64(sink.n.Load())/float64(b.N), "wire-B/msg")
	b.ReportMetric(float64(bodyBytes)/float64(len(frames)), "body-B/msg")
}

// sinkConn is a socket that swallows and counts what is written to it and
// has nothing to read until it is closed.
type sinkConn struct {
	n      atomic.Int64
	closed chan struct{}
}

func (c *sinkConn) Read([]byte) (int, error)         { <-c.closed; return 0, io.EOF }
func (c *sinkConn) Write(p []byte) (int, error)      { c.n.Add(int64(len(p))); return len(p), nil }
func (c *sinkConn) Close() error                     { return nil }
func (c *sinkConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *sinkConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *sinkConn) SetDeadline(time.Time) error      { return nil }
func (c *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *sinkConn) SetWriteDeadline(time.Time) error { return nil }

// sinkWriter is a ResponseWriter whose connection can be hijacked.
type sinkWriter struct {
	httptest.ResponseRecorder
	conn net.Conn
}

func (w *sinkWriter) Header() http.Header {
	if w.HeaderMap == nil {
		w.HeaderMap = http.Header{}
	}
	return w.HeaderMap
}

func (w *sinkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// BenchmarkWebSocketConnMemory measures the heap a connection holds, with
// and without compression: idle, once it has carried a message each way
// (what a broker with many quiet browser tabs pays), and stalled, while
// the broker's writes to it block because the client has stopped reading
// (a background tab, a dead mobile link); and busy, while the broker
// writes to all of them at once (a fan-out burst) and each write that the
// scheduler preempts holds its compressor. Both ends live in this process;
// the difference between the two settings is what compression adds.
//
//	go test -run '^$' -bench WebSocketConnMemory -benchtime 1x ./subprotocol
func BenchmarkWebSocketConnMemory(b *testing.B) {
	for _, compress := range []bool{false, true} {
		b.Run(fmt.Sprintf("compression=%v", compress), func(b *testing.B) {
			for range b.N {
				idle, busy, stalled := connMemory(b, 200, compress)
				b.ReportMetric(idle, "idle-heap-B/conn")
				b.ReportMetric(busy, "busy-heap-B/conn")
				b.ReportMetric(stalled, "stalled-heap-B/conn")
			}
		})
	}
}

// connMemory opens conns connections and returns the heap per connection
// while they are idle, just after the server starts writing to all of
// them at once, and once its writes to them are blocked.
func connMemory(b *testing.B, conns int, compress bool) (idle, busy, stalled float64) {
	body := jsonBody(rand.New(rand.NewPCG(2, 2)), 1000)
	var served, writing sync.WaitGroup
	flood := make(chan struct{})
	url := startSmallBufferWS(b, serverFunc(func(tr broker.Transport) {
		defer writing.Done()
		buf := make([]byte, 4096)
		_, err := tr.Read(buf)
		tr.(*wsTransport).in.between() // as WaitRead does: ends the message
		if err == nil {
			err = tr.WriteFrames([]broker.Outbound{messageFrame(0, body)})
		}
		served.Done()
		if err != nil {
			return
		}
		<-flood
		burst := make([]broker.Outbound, 16)
		for i := range burst {
			burst[i] = messageFrame(i, body)
		}
		for tr.WriteFrames(burst) == nil {
		}
	}), WebSocketOptions{Compression: compress, WriteTimeout: time.Minute})
	served.Add(conns)
	writing.Add(conns)
	before := heapInUse()
	clients := make([]*websocket.Conn, conns)
	for i := range clients {
		var n atomic.Int64
		c := dialCounting(b, url, compress, &n, nil)
		clients[i] = c
		_ = c.NetConn().(countingConn).Conn.(*net.TCPConn).SetReadBuffer(smallSocketBuffer)
		if err := c.WriteMessage(websocket.TextMessage, append([]byte("SEND\ndestination:/topic/x\n\n"), append(body, 0)...)); err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	served.Wait()
	idle = float64(heapInUse()-before) / float64(conns)
	close(flood)
	time.Sleep(20 * time.Millisecond)
	busy = float64(heapInUse()-before) / float64(conns)
	time.Sleep(2 * time.Second) // until every socket buffer is full and the writes block
	stalled = float64(heapInUse()-before) / float64(conns)
	for _, c := range clients {
		c.Close()
	}
	writing.Wait()
	return idle, busy, stalled
}

// smallSocketBuffer keeps the kernel from absorbing megabytes per
// connection, so a client that stops reading stalls the broker's writes
// within a second.
const smallSocketBuffer = 16 << 10

// startSmallBufferWS is startWS with small socket send buffers.
func startSmallBufferWS(b *testing.B, srv Server, opts WebSocketOptions) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{
		Handler: NewWebSocketHandler(srv, opts),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			_ = c.(*net.TCPConn).SetWriteBuffer(smallSocketBuffer)
			return ctx
		},
	}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	return "ws://" + ln.Addr().String() + "/ws"
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
