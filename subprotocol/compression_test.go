package subprotocol

import (
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// waitingEcho echoes frames back the way the broker reads: it waits for
// input with WaitRead before every Read, so a compressed message must be
// finished there too.
func waitingEcho() Server {
	return serverFunc(func(tr broker.Transport) {
		dec := stomp.NewDecoder(stomp.Limits{MaxBodyBytes: 1 << 20})
		buf := make([]byte, 1024)
		for {
			if err := tr.(broker.ReadWaiter).WaitRead(); err != nil {
				return
			}
			n, err := tr.Read(buf)
			if ferr := dec.Feed(buf[:n], func(f *stomp.Frame) error {
				return tr.WriteFrames([]broker.Outbound{outbound(f)})
			}); ferr != nil || err != nil {
				return
			}
		}
	})
}

// TestCompression checks permessage-deflate: accepted only when enabled,
// compressed client messages read like any other, and broker messages
// compressed only from CompressMinBytes on.
func TestCompression(t *testing.T) {
	large := "SEND\ndestination:/topic/prices\n\n" + string(jsonBody(rand.New(rand.NewPCG(3, 3)), 2000)) + "\x00"
	small := "SEND\ndestination:/topic/prices\n\n{\"price\":12.5}\x00"
	for _, enabled := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[enabled], func(t *testing.T) {
			url := startWS(t, waitingEcho(), WebSocketOptions{Compression: enabled})
			var wire atomic.Int64
			conn := dialCounting(t, url, true, &wire, nil)
			defer conn.Close()
			// gorilla's client compresses everything it sends once the
			// extension is agreed.
			for _, tc := range []struct {
				name       string
				msg        string
				compressed bool
			}{
				{"large", large, enabled},
				{"small", small, false},
			} {
				before := wire.Load()
				if err := conn.WriteMessage(websocket.TextMessage, []byte(tc.msg)); err != nil {
					t.Fatal(err)
				}
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, data, err := conn.ReadMessage()
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				got := decodeOne(t, data)
				if want := tc.msg[strings.Index(tc.msg, "\n\n")+2 : len(tc.msg)-1]; string(got.Body) != want {
					t.Fatalf("%s: echoed body %q, want %q", tc.name, trunc(got.Body), trunc([]byte(want)))
				}
				onWire := wire.Load() - before
				if tc.compressed != (onWire < int64(len(data))) {
					t.Errorf("%s: %d bytes on the wire for a %d-byte message; compressed %v, want %v",
						tc.name, onWire, len(data), onWire < int64(len(data)), tc.compressed)
				}
			}
		})
	}
}

// TestCompressionNegotiation checks the handshake's answer.
func TestCompressionNegotiation(t *testing.T) {
	for _, tc := range []struct {
		enabled, offered bool
		want             string
	}{
		{false, true, ""},
		{true, false, ""},
		{true, true, "permessage-deflate"},
	} {
		url := startWS(t, waitingEcho(), WebSocketOptions{Compression: tc.enabled})
		d := websocket.Dialer{EnableCompression: tc.offered}
		conn, resp, err := d.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		got := resp.Header.Get("Sec-Websocket-Extensions")
		if !strings.HasPrefix(got, tc.want) || (tc.want == "" && got != "") {
			t.Errorf("enabled %v, offered %v: extensions %q, want %q", tc.enabled, tc.offered, got, tc.want)
		}
	}
}
