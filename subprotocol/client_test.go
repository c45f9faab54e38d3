package subprotocol

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	gostomp "github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// scriptedServer is just enough of a STOMP server for a client library:
// CONNECTED for CONNECT, MESSAGE to the subscriber of a SEND's destination,
// RECEIPT for every frame asking for one. It reports each session's
// ConnInfo and negotiated version.
type scriptedServer struct {
	sessions chan<- session
}

type session struct {
	info    broker.ConnInfo
	version stomp.Version
}

func (s scriptedServer) Serve(tr broker.Transport) {
	info := tr.Info()
	version := stomp.V10
	subs := map[string]string{} // destination → subscription id
	seq := 0
	_ = decodeAll(tr, 4096, func(f *stomp.Frame) error {
		var out []*stomp.Frame
		switch f.Command {
		case stomp.CONNECT, stomp.STOMP:
			for v := range strings.SplitSeq(f.Value("accept-version"), ",") {
				pv, ok := stomp.ParseVersion(v)
				if ok && pv > version && (info.Versions == nil || pv == info.Versions[0]) {
					version = pv
				}
			}
			s.sessions <- session{info, version}
			out = append(out, stomp.New(stomp.CONNECTED, "version", version.String(), "heart-beat", "0,0"))
		case stomp.SUBSCRIBE:
			subs[f.Value("destination")] = f.Value("id")
		case stomp.UNSUBSCRIBE:
			for d, id := range subs {
				if id == f.Value("id") {
					delete(subs, d)
				}
			}
		case stomp.SEND:
			if id, ok := subs[f.Value("destination")]; ok {
				seq++
				m := stomp.New(stomp.MESSAGE, "destination", f.Value("destination"), "subscription", id,
					"message-id", strings.Repeat("m", seq), "content-type", f.Value("content-type"))
				m.Body = f.Body
				out = append(out, m)
			}
		}
		if r, ok := f.Get("receipt"); ok {
			out = append(out, stomp.New(stomp.RECEIPT, "receipt-id", r))
		}
		batch := make([]broker.Outbound, len(out))
		for i, o := range out {
			batch[i] = outbound(o)
			batch[i].Head = stomp.AppendHead(nil, o, version)
		}
		return tr.WriteFrames(batch)
	})
}

func TestDialGoStomp(t *testing.T) {
	tests := []struct {
		name        string
		opts        []DialOption
		subprotocol string
		version     gostomp.Version
	}{
		{"default offer", nil, "v12.stomp", gostomp.V12},
		{"v11 offered", []DialOption{WithSubprotocols("v11.stomp")}, "v11.stomp", gostomp.V11},
		{"bare stomp", []DialOption{WithSubprotocols("stomp")}, "stomp", gostomp.V12},
		{"no subprotocol header", []DialOption{WithSubprotocols()}, "", gostomp.V12},
		{"browser-like origin", []DialOption{WithHeader(http.Header{"Origin": {"http://localhost:3000"}})}, "v12.stomp", gostomp.V12},
	}
	sessions := make(chan session, 1)
	url := startWS(t, scriptedServer{sessions}, WebSocketOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := Dial(ctx, url, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := gostomp.Connect(conn)
			if err != nil {
				conn.Close()
				t.Fatal(err)
			}
			defer sc.MustDisconnect()
			s := <-sessions
			if s.info.Subprotocol != tc.subprotocol || sc.Version() != tc.version {
				t.Errorf("subprotocol %q version %s, want %q %s", s.info.Subprotocol, sc.Version(), tc.subprotocol, tc.version)
			}

			sub, err := sc.Subscribe("/queue/a", gostomp.AckAuto)
			if err != nil {
				t.Fatal(err)
			}
			bodies := []struct {
				ctype string
				body  []byte
			}{
				{"text/plain", []byte("hello ☃")},
				{"application/octet-stream", []byte{0xff, 0x00, 0xfe, 0x01}},
				{"application/octet-stream", bytes.Repeat([]byte{0xc3}, 10000)}, // larger than go-stomp's write buffer
			}
			for _, b := range bodies {
				// Receipt makes Send wait for the RECEIPT.
				if err := sc.Send("/queue/a", b.ctype, b.body, gostomp.SendOpt.Receipt); err != nil {
					t.Fatal(err)
				}
				select {
				case m := <-sub.C:
					if m.Err != nil {
						t.Fatal(m.Err)
					}
					if !bytes.Equal(m.Body, b.body) || m.ContentType != b.ctype {
						t.Errorf("received %s %q, want %s %q", m.ContentType, trunc(m.Body), b.ctype, trunc(b.body))
					}
				case <-ctx.Done():
					t.Fatal("no MESSAGE")
				}
			}
			// No sub.Unsubscribe(): go-stomp v3.1.3 sometimes misses the
			// wake-up for its UNSUBSCRIBE receipt (closeChannel broadcasts
			// without the mutex its waiter holds) and reports a timeout
			// against any server, a plain TCP one included.
			if err := sc.Disconnect(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	tests := []struct {
		name string
		opts []DialOption
		want string
	}{
		{"unknown subprotocol", []DialOption{WithSubprotocols("mqtt")}, "v12.stomp, v11.stomp, v10.stomp"},
		{"foreign origin", []DialOption{WithHeader(http.Header{"Origin": {"https://evil.example"}})}, "403"},
	}
	url := startWS(t, serverFunc(func(broker.Transport) { t.Error("refused handshake was served") }), WebSocketOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := Dial(context.Background(), url, tc.opts...)
			if err == nil {
				conn.Close()
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// wsRead is what one Read of the server's transport returned, with the
// message kind it reported.
type wsRead struct {
	data   string
	binary bool
}

// recordReads starts a server whose transport, after delay, reads with a
// buffer of size until the client goes, sending each read to the channel.
func recordReads(t *testing.T, delay time.Duration, size int) (string, <-chan wsRead) {
	reads := make(chan wsRead, 100)
	url := startWS(t, serverFunc(func(tr broker.Transport) {
		ws := tr.(*wsTransport)
		time.Sleep(delay)
		buf := make([]byte, size)
		for {
			n, err := tr.Read(buf)
			if n > 0 {
				reads <- wsRead{string(buf[:n]), ws.in.binary.Load()}
			}
			if err != nil {
				break
			}
		}
		close(reads)
	}), WebSocketOptions{})
	return url, reads
}

// TestDialMessageKinds checks that the adapter writes text only for UTF-8
// and that reads stream message payloads back to back.
func TestDialMessageKinds(t *testing.T) {
	type read = wsRead
	url, reads := recordReads(t, 0, 64)
	conn, err := Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"SEND\n\ntext\x00", "SEND\n\n\xff\x00", "\n"} {
		if _, err := conn.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	want := []read{{"SEND\n\ntext\x00", false}, {"SEND\n\n\xff\x00", true}, {"\n", false}}
	var got []read
	for r := range reads {
		got = append(got, r)
	}
	if len(got) != len(want) {
		t.Fatalf("reads %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("read %d: %q binary=%v, want %q binary=%v", i, got[i].data, got[i].binary, want[i].data, want[i].binary)
		}
	}
}

// TestReadJoinsBufferedMessages checks that messages which have already
// arrived are read together, so their frames are handled as one batch,
// and that a read stops where the message kind changes.
func TestReadJoinsBufferedMessages(t *testing.T) {
	type read = wsRead
	url, reads := recordReads(t, 200*time.Millisecond, 64<<10) // every message arrives first
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for i := range 50 {
		m := fmt.Sprintf("SEND\ndestination:/queue/a\nn:%d\n\n\x00", i)
		text.WriteString(m)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte("SEND\n\n\xff\x00")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	conn.Close()
	want := []read{{text.String(), false}, {"SEND\n\n\xff\x00", true}}
	var got []read
	for r := range reads {
		got = append(got, r)
	}
	if len(got) != len(want) {
		t.Fatalf("%d reads, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("read %d: %q binary=%v, want %q binary=%v", i, got[i].data, got[i].binary, want[i].data, want[i].binary)
		}
	}
}
