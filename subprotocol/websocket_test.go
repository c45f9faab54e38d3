package subprotocol

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// infoServer reports each session's ConnInfo and ends the session.
func infoServer(infos chan<- broker.ConnInfo) Server {
	return serverFunc(func(tr broker.Transport) { infos <- tr.Info() })
}

func TestNegotiation(t *testing.T) {
	const v12, v11, v10 = stomp.V12, stomp.V11, stomp.V10
	tests := []struct {
		name     string
		offer    []string // header lines; nil sends none
		want     string
		versions []stomp.Version
		status   int // 0: upgrade expected
	}{
		{name: "all three", offer: []string{"v12.stomp, v11.stomp, v10.stomp"}, want: "v12.stomp", versions: []stomp.Version{v12}},
		{name: "any order", offer: []string{"v10.stomp,v12.stomp , v11.stomp"}, want: "v12.stomp", versions: []stomp.Version{v12}},
		{name: "v11 and v10", offer: []string{"v10.stomp, v11.stomp"}, want: "v11.stomp", versions: []stomp.Version{v11}},
		{name: "v11 only", offer: []string{"v11.stomp"}, want: "v11.stomp", versions: []stomp.Version{v11}},
		{name: "v10 only", offer: []string{"v10.stomp"}, want: "v10.stomp", versions: []stomp.Version{v10}},
		{name: "bare stomp", offer: []string{"stomp"}, want: "stomp"},
		{name: "bare and versioned", offer: []string{"stomp, v11.stomp"}, want: "v11.stomp", versions: []stomp.Version{v11}},
		{name: "versioned beats bare", offer: []string{"v10.stomp, stomp"}, want: "v10.stomp", versions: []stomp.Version{v10}},
		{name: "separate header lines", offer: []string{"v10.stomp", "v12.stomp"}, want: "v12.stomp", versions: []stomp.Version{v12}},
		{name: "unknown among known", offer: []string{"mqtt, v11.stomp, wamp.2.json"}, want: "v11.stomp", versions: []stomp.Version{v11}},
		{name: "no header", offer: nil, want: ""},
		{name: "unknown only", offer: []string{"mqtt"}, status: http.StatusBadRequest},
		{name: "several unknown", offer: []string{"mqtt, wamp.2.json"}, status: http.StatusBadRequest},
		{name: "wrong case is unknown", offer: []string{"V12.STOMP"}, status: http.StatusBadRequest},
	}
	infos := make(chan broker.ConnInfo, 1)
	url := startWS(t, infoServer(infos), WebSocketOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{}
			if tc.offer != nil {
				hdr["Sec-Websocket-Protocol"] = tc.offer
			}
			conn, resp, err := websocket.DefaultDialer.Dial(url, hdr)
			if tc.status != 0 {
				if err == nil {
					conn.Close()
					t.Fatalf("upgraded with %q, want HTTP %d", conn.Subprotocol(), tc.status)
				}
				if resp == nil || resp.StatusCode != tc.status {
					t.Fatalf("err %v, response %v; want HTTP %d", err, resp, tc.status)
				}
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), "v12.stomp, v11.stomp, v10.stomp") {
					t.Errorf("body %q does not name the supported subprotocols", body)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v (response %v)", err, resp)
			}
			defer conn.Close()
			if got := conn.Subprotocol(); got != tc.want {
				t.Errorf("subprotocol %q, want %q", got, tc.want)
			}
			info := <-infos
			want := broker.ConnInfo{Transport: "ws", Subprotocol: tc.want, Versions: tc.versions}
			if info.Transport != want.Transport || info.Subprotocol != want.Subprotocol || !slices.Equal(info.Versions, want.Versions) {
				t.Errorf("info %+v, want %+v", info, want)
			}
			if !strings.HasPrefix(info.RemoteAddr, "127.0.0.1:") {
				t.Errorf("remote addr %q", info.RemoteAddr)
			}
		})
	}
}

func TestOriginCheck(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		host    string // request Host; empty keeps the server's address
		origin  string // empty sends none
		ok      bool
	}{
		{name: "no origin", ok: true},
		{name: "no origin with list", allowed: []string{"https://app.example.com"}, ok: true},
		{name: "same host", host: "broker.example.com", origin: "http://broker.example.com", ok: true},
		{name: "same host https", host: "broker.example.com", origin: "https://broker.example.com", ok: true},
		{name: "same host default port spelled", host: "broker.example.com:443", origin: "https://broker.example.com", ok: true},
		{name: "same host and port", host: "broker.example.com:8080", origin: "http://broker.example.com:8080", ok: true},
		{name: "same host other case", host: "broker.example.com", origin: "http://Broker.Example.COM", ok: true},
		{name: "same host other port", host: "broker.example.com:8080", origin: "http://broker.example.com:9090", ok: false},
		{name: "same host origin on odd port", host: "broker.example.com", origin: "http://broker.example.com:8080", ok: false},
		{name: "localhost", host: "broker.example.com", origin: "http://localhost:3000", ok: true},
		{name: "loopback v4", host: "broker.example.com", origin: "http://127.0.0.2:5173", ok: true},
		{name: "loopback v6", host: "broker.example.com", origin: "http://[::1]:8080", ok: true},
		{name: "foreign", host: "broker.example.com", origin: "https://evil.example", ok: false},
		{name: "look-alike localhost", host: "broker.example.com", origin: "http://localhost.evil.example", ok: false},
		{name: "opaque origin", host: "broker.example.com", origin: "null", ok: false},
		{name: "star", allowed: []string{"*"}, host: "broker.example.com", origin: "https://evil.example", ok: true},
		{name: "listed", allowed: []string{"https://app.example.com"}, host: "broker.example.com", origin: "https://app.example.com", ok: true},
		{name: "listed, spelled loosely", allowed: []string{" HTTPS://App.Example.com/ "}, host: "broker.example.com", origin: "https://app.example.com", ok: true},
		{name: "not listed", allowed: []string{"https://app.example.com"}, host: "broker.example.com", origin: "https://other.example.com", ok: false},
		{name: "listed without that port", allowed: []string{"https://app.example.com"}, host: "broker.example.com", origin: "https://app.example.com:8443", ok: false},
		{name: "list keeps same host", allowed: []string{"https://app.example.com"}, host: "broker.example.com", origin: "https://broker.example.com", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			infos := make(chan broker.ConnInfo, 1)
			url := startWS(t, infoServer(infos), WebSocketOptions{AllowedOrigins: tc.allowed})
			hdr := http.Header{}
			if tc.host != "" {
				hdr.Set("Host", tc.host)
			}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(url, hdr)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused (%v, %v), want upgrade", err, resp)
				}
				<-infos
				conn.Close()
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("upgraded, want 403")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("err %v, response %v; want 403", err, resp)
			}
			if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "origin") {
				t.Errorf("body %q does not say why", body)
			}
		})
	}
}

func TestNotAWebSocketRequest(t *testing.T) {
	url := startWS(t, serverFunc(func(broker.Transport) { t.Error("served a plain GET") }), WebSocketOptions{})
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

// TestMessageKinds checks that replies are text only when the client
// writes text and the frame is UTF-8 throughout.
func TestMessageKinds(t *testing.T) {
	type step struct {
		kind    int
		payload string
		want    int // kind of the echoed message
	}
	const text, binary = websocket.TextMessage, websocket.BinaryMessage
	big := "SEND\ndestination:/q\ncontent-length:1048576\n\n" + strings.Repeat("\xff", 1<<20) + "\x00"
	tests := []struct {
		name  string
		steps []step
	}{
		{"text in, text out", []step{{text, "SEND\ndestination:/q\n\nhello\x00", text}}},
		{"text in, binary body out as binary", []step{{text, "SEND\ndestination:/q\ncontent-length:4\n\n\xff\x00\xfe\x01\x00", binary}}},
		{"binary in, binary out", []step{{binary, "SEND\ndestination:/q\n\nhello\x00", binary}}},
		{"non-UTF-8 header out as binary", []step{{text, "SEND\ndestination:/q\nx-id:\xc3\x28\n\nhello\x00", binary}}},
		{"follows the latest kind", []step{
			{binary, "SEND\ndestination:/q\n\n1\x00", binary},
			{text, "SEND\ndestination:/q\n\n2\x00", text},
			{text, "SEND\ndestination:/q\n\n\xff\x00", binary},
			{text, "SEND\ndestination:/q\n\n3\x00", text},
		}},
		{"UTF-8 multibyte stays text", []step{{text, "SEND\ndestination:/q\n\nnaïve ☃\x00", text}}},
		{"one MiB binary body", []step{{binary, big, binary}}},
	}
	url := startWS(t, echoServer(), WebSocketOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for i, s := range tc.steps {
				if err := conn.WriteMessage(s.kind, []byte(s.payload)); err != nil {
					t.Fatal(err)
				}
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				kind, data, err := conn.ReadMessage()
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if kind != s.want {
					t.Errorf("step %d: reply kind %d, want %d", i, kind, s.want)
				}
				sent, got := decodeOne(t, []byte(s.payload)), decodeOne(t, data)
				if got.Command != sent.Command || !bytes.Equal(got.Body, sent.Body) || got.Value("x-id") != sent.Value("x-id") {
					t.Errorf("step %d: echo %q, want the frame of %q", i, trunc(data), trunc([]byte(s.payload)))
				}
			}
		})
	}
}

// TestWriteFramesMessages checks how a batch becomes messages: by default
// consecutive frames of one kind share a message, up to the size bound;
// with OneFramePerMessage every Outbound, heart-beats included, is a
// message of its own. Either way each frame keeps its kind.
func TestWriteFramesMessages(t *testing.T) {
	body := []byte("shared\x00")
	big := bytes.Repeat([]byte("b"), wsWriteChunkSize-40)
	batch := []broker.Outbound{
		{Head: []byte("\n")},
		{Head: []byte("MESSAGE\ndestination:/topic/a\n\n"), Body: body},
		{}, // nothing to send
		{Head: []byte("MESSAGE\ndestination:/topic/b\n\n"), Body: body},
		{Head: []byte("MESSAGE\ndestination:/topic/c\ncontent-length:1\n\n"), Body: []byte("\x80\x00"), Binary: true},
		{Head: []byte("MESSAGE\ndestination:/topic/d\n\n"), Body: body},
		{Head: []byte("MESSAGE\ndestination:/topic/e\n\n"), Body: append(big, 0)},
	}
	type msg struct {
		kind int
		data string
	}
	var (
		a    = "MESSAGE\ndestination:/topic/a\n\nshared\x00"
		b    = "MESSAGE\ndestination:/topic/b\n\nshared\x00"
		c    = "MESSAGE\ndestination:/topic/c\ncontent-length:1\n\n\x80\x00"
		d    = "MESSAGE\ndestination:/topic/d\n\nshared\x00"
		e    = "MESSAGE\ndestination:/topic/e\n\n" + string(big) + "\x00"
		text = websocket.TextMessage
		bin  = websocket.BinaryMessage
	)
	for _, tc := range []struct {
		name string
		opts WebSocketOptions
		want []msg
	}{
		{"coalesced", WebSocketOptions{}, []msg{
			{text, "\n" + a + b},
			{bin, c},
			{text, d}, // e would take the message past wsWriteChunkSize
			{text, e},
		}},
		{"one frame per message", WebSocketOptions{OneFramePerMessage: true}, []msg{
			{text, "\n"}, {text, a}, {text, b}, {bin, c}, {text, d}, {text, e},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startWS(t, serverFunc(func(tr broker.Transport) {
				if err := tr.WriteFrames(batch); err != nil {
					t.Error(err)
				}
				_, _ = io.Copy(io.Discard, tr) // until the client closes
			}), tc.opts)
			conn, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for i, w := range tc.want {
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				kind, data, err := conn.ReadMessage()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if kind != w.kind || string(data) != w.data {
					t.Errorf("message %d: kind %d %q, want kind %d %q", i, kind, trunc(data), w.kind, trunc([]byte(w.data)))
				}
			}
		})
	}
}

func TestReadAcrossMessages(t *testing.T) {
	type msg struct {
		kind int
		data string
	}
	txt := func(s ...string) []msg {
		var m []msg
		for _, d := range s {
			m = append(m, msg{websocket.TextMessage, d})
		}
		return m
	}
	type frame struct{ cmd, dest, body string }
	tests := []struct {
		name string
		msgs []msg
		want []frame
	}{
		{"frame split over two messages", txt("SEND\ndestination:/q\n\nhel", "lo\x00"), []frame{{"SEND", "/q", "hello"}}},
		{"split inside the head", txt("SE", "ND\ndest", "ination:/q\n", "\nx\x00"), []frame{{"SEND", "/q", "x"}}},
		{"two frames in one message", txt("SEND\ndestination:/a\n\n1\x00SEND\ndestination:/b\n\n2\x00"),
			[]frame{{"SEND", "/a", "1"}, {"SEND", "/b", "2"}}},
		{"one and a half, then the rest", txt("SEND\ndestination:/a\n\n1\x00SEND\ndestin", "ation:/b\n\n2\x00"),
			[]frame{{"SEND", "/a", "1"}, {"SEND", "/b", "2"}}},
		{"heart-beats alone", txt("\n", "SEND\ndestination:/q\n\nx\x00", "\n", "\r\n", "SEND\ndestination:/r\n\ny\x00"),
			[]frame{{"SEND", "/q", "x"}, {"SEND", "/r", "y"}}},
		{"empty message inside a frame", txt("SEND\n", "", "destination:/q\n\nx\x00"), []frame{{"SEND", "/q", "x"}}},
		{"kinds mixed within a frame", []msg{
			{websocket.TextMessage, "SEND\ndestination:/q\ncontent-length:3\n\na"},
			{websocket.BinaryMessage, "\x00b\x00"},
		}, []frame{{"SEND", "/q", "a\x00b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames := make(chan *stomp.Frame, 10)
			url := startWS(t, serverFunc(func(tr broker.Transport) {
				// A tiny buffer also splits each message across reads.
				_ = decodeAll(tr, 3, func(f *stomp.Frame) error { frames <- f; return nil })
				close(frames)
			}), WebSocketOptions{})
			conn, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.msgs {
				if err := conn.WriteMessage(m.kind, []byte(m.data)); err != nil {
					t.Fatal(err)
				}
			}
			conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			var got []frame
			for f := range frames {
				got = append(got, frame{f.Command, f.Value("destination"), string(f.Body)})
			}
			conn.Close()
			if !slices.Equal(got, tc.want) {
				t.Errorf("frames %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReadEndsOnClose checks how Read reports the end of the stream: an
// orderly close is io.EOF, and Close unblocks a pending Read.
func TestReadEndsOnClose(t *testing.T) {
	t.Run("client closes", func(t *testing.T) {
		errc := make(chan error, 1)
		url := startWS(t, serverFunc(func(tr broker.Transport) {
			_, err := io.Copy(io.Discard, tr)
			if err == nil {
				err = io.EOF // io.Copy hides io.EOF
			}
			errc <- err
		}), WebSocketOptions{})
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
		if err := <-errc; err != io.EOF {
			t.Errorf("Read ended with %v, want io.EOF", err)
		}
		conn.Close()
	})
	t.Run("server closes", func(t *testing.T) {
		url := startWS(t, serverFunc(func(tr broker.Transport) {
			if ended, err := closeDuringRead(tr); !ended {
				t.Error("Close did not unblock Read")
			} else if err == nil {
				t.Error("Read returned no error after Close")
			}
			if err := tr.WriteFrames([]broker.Outbound{{Head: []byte("\n")}}); err == nil {
				t.Error("WriteFrames after Close succeeded")
			}
		}), WebSocketOptions{})
		conn, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err = conn.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("client read %v, want a normal close", err)
		}
	})
}

// TestWriteTimeout checks that a peer that stops reading cannot block the
// writer past the write timeout.
func TestWriteTimeout(t *testing.T) {
	errc := make(chan error, 1)
	url := startWS(t, serverFunc(func(tr broker.Transport) {
		body := bytes.Repeat([]byte("x"), 8<<20)
		f := broker.Outbound{Head: []byte("MESSAGE\ndestination:/q\n\n"), Body: body}
		var err error
		for i := 0; i < 32 && err == nil; i++ {
			err = tr.WriteFrames([]broker.Outbound{f})
		}
		errc <- err
	}), WebSocketOptions{WriteTimeout: 200 * time.Millisecond})
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	select {
	case err := <-errc:
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("WriteFrames ended with %v, want a timeout", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("WriteFrames still blocked")
	}
}
