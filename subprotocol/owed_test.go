//go:build linux

package subprotocol

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// tryFrame is frame i of a try-write test: big enough that a few hundred
// of them fill a loopback socket.
func tryFrame(i int) broker.Outbound {
	f := stomp.New(stomp.MESSAGE, "destination", "/topic/t", "seq", fmt.Sprint(i))
	f.Body = bytes.Repeat([]byte{'a' + byte(i%26)}, 8<<10)
	return outbound(f)
}

// fillTrying try-writes frames from *next on, one batch of 3 at a time,
// until tw owes bytes, then a few batches more (which all wait behind
// what is owed). Its peer is not reading, so a try that waited would hang.
func fillTrying(t *testing.T, tw broker.TryWriter, next *int) {
	t.Helper()
	if !tw.CanTryWrite() {
		t.Fatal("CanTryWrite is false on a plain socket")
	}
	extra := 3
	for ; extra > 0; *next += 3 {
		if *next > 100_000 {
			t.Fatal("a socket nobody reads took 800 MiB without owing")
		}
		owed, err := tw.TryWriteFrames([]broker.Outbound{tryFrame(*next), tryFrame(*next + 1), tryFrame(*next + 2)})
		if err != nil {
			t.Fatal(err)
		}
		if owed {
			extra--
		}
	}
}

// wsPair connects a client to a WebSocket server and returns the
// server's transport, which reads and discards, and the client.
func wsPair(t *testing.T, opts WebSocketOptions) (broker.Transport, *websocket.Conn) {
	t.Helper()
	trs := make(chan broker.Transport, 1)
	url := startWS(t, serverFunc(func(tr broker.Transport) {
		trs <- tr
		_, _ = io.Copy(io.Discard, tr)
	}), opts)
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return <-trs, conn
}

// decodeFrom decodes what read returns, on a goroutine of its own, until
// read fails; the channel never fills, so the writes a test makes
// meanwhile wait only on the socket.
func decodeFrom(read func() ([]byte, error)) <-chan *stomp.Frame {
	frames := make(chan *stomp.Frame, 1<<17)
	go func() {
		defer close(frames)
		dec := stomp.NewDecoder(stomp.Limits{MaxBodyBytes: 1 << 20})
		for {
			data, err := read()
			if len(data) > 0 && dec.Feed(data, func(f *stomp.Frame) error { frames <- f; return nil }) != nil {
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return frames
}

// checkFrames reads frames 0..n-1, whole and in order, from frames.
func checkFrames(t *testing.T, frames <-chan *stomp.Frame, n int) {
	t.Helper()
	for i := range n {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("stream ended at frame %d of %d", i, n)
			}
			want := tryFrame(i)
			if f.Value("seq") != fmt.Sprint(i) || len(f.Body) != len(want.Body)-1 || f.Body[0] != want.Body[0] {
				t.Fatalf("frame %d arrived as seq %s with %d bytes", i, f.Value("seq"), len(f.Body))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("frame %d of %d did not arrive", i, n)
		}
	}
}

// TestTryWriteWebSocket: writes that never wait, to a client that reads
// nothing, and then a blocking write, reach it whole and in order.
func TestTryWriteWebSocket(t *testing.T) {
	tr, conn := wsPair(t, WebSocketOptions{OneFramePerMessage: true})
	tw := tr.(broker.TryWriter)
	next := 0
	fillTrying(t, tw, &next)

	frames := decodeFrom(func() ([]byte, error) {
		_, data, err := conn.ReadMessage()
		return data, err
	})
	// What is owed goes first, on the write loop's next write; with
	// nothing else to send, WriteFrames sends just that.
	if err := tr.WriteFrames(nil); err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteFrames([]broker.Outbound{tryFrame(next)}); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, frames, next+1)
}

// TestTryWriteTCP is TestTryWriteWebSocket over plain STOMP.
func TestTryWriteTCP(t *testing.T) {
	sc, client := socketPair(t)
	tr := newTCPTransport(sc, nil)
	defer func() { client.Close(); tr.Close() }()
	next := 0
	fillTrying(t, tr, &next)

	buf := make([]byte, 64<<10)
	frames := decodeFrom(func() ([]byte, error) {
		n, err := client.Read(buf)
		return buf[:n], err
	})
	// A blocking write sends what is owed before its own frames.
	if err := tr.WriteFrames([]broker.Outbound{tryFrame(next)}); err != nil {
		t.Fatal(err)
	}
	if err := tr.WriteFrames(nil); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, frames, next+1)
}

// TestTryWriteAfterIdle: a write that never waits still works once the
// connection has been quiet for longer than its write timeout (the
// runtime refuses every write once a socket's deadline has passed).
func TestTryWriteAfterIdle(t *testing.T) {
	const timeout = 50 * time.Millisecond
	check := func(t *testing.T, tr broker.Transport, frames <-chan *stomp.Frame) {
		t.Helper()
		if err := tr.WriteFrames([]broker.Outbound{tryFrame(0)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * timeout)
		if _, err := tr.(broker.TryWriter).TryWriteFrames([]broker.Outbound{tryFrame(1)}); err != nil {
			t.Fatalf("TryWriteFrames after a quiet spell: %v", err)
		}
		checkFrames(t, frames, 2)
	}
	t.Run("tcp", func(t *testing.T) {
		sc, client := socketPair(t)
		tr := newTCPTransport(sc, nil)
		tr.deadline.timeout = timeout
		defer func() { client.Close(); tr.Close() }()
		buf := make([]byte, 64<<10)
		check(t, tr, decodeFrom(func() ([]byte, error) {
			n, err := client.Read(buf)
			return buf[:n], err
		}))
	})
	t.Run("websocket", func(t *testing.T) {
		tr, conn := wsPair(t, WebSocketOptions{WriteTimeout: timeout})
		check(t, tr, decodeFrom(func() ([]byte, error) {
			_, data, err := conn.ReadMessage()
			return data, err
		}))
	})
}
