package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// wsRaw is a WebSocket client that sees message boundaries and kinds,
// which the STOMP clients hide.
type wsRaw struct {
	t testing.TB
	c *websocket.Conn

	// Frames read but not yet returned: one message may carry several.
	pending     []*rawFrame
	pendingKind int
}

// dialWSRaw opens a WebSocket to the broker offering protocols (none when
// empty) with extra handshake headers. It returns the handshake response
// and error as they are, for the negotiation tests.
func dialWSRaw(t testing.TB, p *brokerProc, protocols []string, hdr http.Header) (*wsRaw, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: waitFor}
	c, resp, err := d.DialContext(ctx, p.WSURL, hdr)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.Close() })
	return &wsRaw{t: t, c: c}, resp, nil
}

func mustDialWSRaw(t testing.TB, p *brokerProc, protocols ...string) *wsRaw {
	t.Helper()
	w, _, err := dialWSRaw(t, p, protocols, nil)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	return w
}

func (w *wsRaw) write(kind int, s string) {
	w.t.Helper()
	w.c.SetWriteDeadline(time.Now().Add(waitFor))
	if err := w.c.WriteMessage(kind, []byte(s)); err != nil {
		w.t.Fatalf("websocket write: %v", err)
	}
}

func (w *wsRaw) text(s string)   { w.t.Helper(); w.write(websocket.TextMessage, s) }
func (w *wsRaw) binary(s string) { w.t.Helper(); w.write(websocket.BinaryMessage, s) }

// readMsg reads one message within d.
func (w *wsRaw) readMsg(d time.Duration) (int, []byte, error) {
	w.c.SetReadDeadline(time.Now().Add(d))
	return w.c.ReadMessage()
}

// frame returns the next frame and the kind of the message it came in.
// Messages holding only heart-beats are skipped; a message holding several
// frames (the broker sends frames queued together in one message) yields
// them one by one.
func (w *wsRaw) frame() (int, *rawFrame) {
	w.t.Helper()
	deadline := time.Now().Add(waitFor)
	for len(w.pending) == 0 {
		kind, data, err := w.readMsg(time.Until(deadline))
		if err != nil {
			w.t.Fatalf("websocket read: %v", err)
		}
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			f, err := readRawFrame(r, nil)
			if err == io.EOF {
				break
			}
			if err != nil {
				w.t.Fatalf("parsing %q: %v", data, err)
			}
			w.pending = append(w.pending, f)
		}
		w.pendingKind = kind
	}
	f := w.pending[0]
	w.pending = w.pending[1:]
	return w.pendingKind, f
}

func (w *wsRaw) expect(cmd string) *rawFrame {
	w.t.Helper()
	_, f := w.frame()
	if f.Command != cmd {
		w.t.Fatalf("got %s, want %s", f, cmd)
	}
	return f
}

// expectClosed reads until the server ends the connection, which must
// happen within d.
func (w *wsRaw) expectClosed(d time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, data, err := w.readMsg(time.Until(deadline))
		if err == nil {
			continue
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			w.t.Fatalf("connection still open after %v (last message %q)", d, data)
		}
		return
	}
}

const connectFrame12 = "CONNECT\naccept-version:1.2\nhost:/\n\n\x00"

func TestWebSocketNegotiation(t *testing.T) {
	p := startBroker(t)
	cases := []struct {
		name      string
		protocols []string
		accept    string
		wantProto string
		wantCmd   string // CONNECTED or ERROR
		wantVer   string // CONNECTED version, or a version the ERROR must list
	}{
		{"all offered picks v12", []string{"v12.stomp", "v11.stomp", "v10.stomp"}, "1.0,1.1,1.2", "v12.stomp", "CONNECTED", "1.2"},
		{"order does not matter", []string{"v10.stomp", "v11.stomp", "v12.stomp"}, "1.0,1.1,1.2", "v12.stomp", "CONNECTED", "1.2"},
		{"v11 and v10 picks v11", []string{"v10.stomp", "v11.stomp"}, "1.0,1.1,1.2", "v11.stomp", "CONNECTED", "1.1"},
		{"only v10 limits CONNECT to 1.0", []string{"v10.stomp"}, "1.0,1.1,1.2", "v10.stomp", "CONNECTED", "1.0"},
		{"v11 with accept-version 1.2 is refused", []string{"v11.stomp"}, "1.2", "v11.stomp", "ERROR", "1.1"},
		{"no protocol header", nil, "1.0,1.1,1.2", "", "CONNECTED", "1.2"},
		{"no protocol header, accept 1.1", nil, "1.1", "", "CONNECTED", "1.1"},
		{"bare stomp token", []string{"stomp"}, "1.1", "stomp", "CONNECTED", "1.1"},
		{"unknown tokens ignored beside a known one", []string{"mqtt", "v12.stomp"}, "1.2", "v12.stomp", "CONNECTED", "1.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, resp, err := dialWSRaw(t, p, tc.protocols, nil)
			if err != nil {
				t.Fatalf("dial: %v (status %v)", err, resp)
			}
			if got := w.c.Subprotocol(); got != tc.wantProto {
				t.Fatalf("subprotocol %q, want %q", got, tc.wantProto)
			}
			w.text("CONNECT\naccept-version:" + tc.accept + "\nhost:/\n\n\x00")
			_, f := w.frame()
			if f.Command != tc.wantCmd {
				t.Fatalf("got %s, want %s", f, tc.wantCmd)
			}
			switch tc.wantCmd {
			case "CONNECTED":
				if got := f.Value("version"); got != tc.wantVer {
					t.Fatalf("version %q, want %q", got, tc.wantVer)
				}
				// The session works at that version.
				w.text("SEND\ndestination:/topic/neg\nreceipt:r1\n\nx\x00")
				if r := w.expect("RECEIPT"); r.Value("receipt-id") != "r1" {
					t.Fatalf("receipt %s", r)
				}
			case "ERROR":
				if f.Value("message") == "" {
					t.Errorf("ERROR without message: %s", f)
				}
				if v := f.Value("version"); !strings.Contains(v, tc.wantVer) {
					t.Errorf("ERROR version header %q does not list %s", v, tc.wantVer)
				}
				w.expectClosed(waitFor)
			}
		})
	}

	t.Run("only unknown protocols", func(t *testing.T) {
		_, resp, err := dialWSRaw(t, p, []string{"mqtt", "v13.stomp"}, nil)
		if err == nil {
			t.Fatal("upgrade accepted")
		}
		if resp == nil {
			t.Fatalf("no HTTP response: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
		if !strings.Contains(string(body), "v12.stomp") {
			t.Errorf("body %q does not name v12.stomp", body)
		}
	})
}

func TestWebSocketOrigin(t *testing.T) {
	p := startBroker(t)
	cases := []struct {
		origin string
		want   int
	}{
		{"http://evil.example", http.StatusForbidden},
		{"https://evil.example:443", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"http://localhost:3000", http.StatusSwitchingProtocols},
		{"http://127.0.0.1:5173", http.StatusSwitchingProtocols},
		{"http://[::1]:8080", http.StatusSwitchingProtocols},
		{strings.Replace(p.HTTPURL, "127.0.0.1", "localhost", 1), http.StatusSwitchingProtocols},
	}
	for _, tc := range cases {
		t.Run(tc.origin, func(t *testing.T) {
			w, resp, err := dialWSRaw(t, p, []string{"v12.stomp"}, http.Header{"Origin": {tc.origin}})
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (err %v)", resp.StatusCode, tc.want, err)
			}
			if w != nil {
				w.text(connectFrame12)
				w.expect("CONNECTED")
			}
		})
	}
}

// TestWebSocketFraming covers how frames map onto WebSocket messages.
func TestWebSocketFraming(t *testing.T) {
	p := startBroker(t)

	t.Run("two frames in one message", func(t *testing.T) {
		w := mustDialWSRaw(t, p, "v12.stomp")
		w.text(connectFrame12)
		w.expect("CONNECTED")
		w.text("SUBSCRIBE\nid:s\ndestination:/topic/ws.two\n\n\x00" +
			"SEND\ndestination:/topic/ws.two\nreceipt:r1\n\nboth\x00")
		m := w.expect("MESSAGE")
		if string(m.Body) != "both" {
			t.Fatalf("body %q", m.Body)
		}
		if r := w.expect("RECEIPT"); r.Value("receipt-id") != "r1" {
			t.Fatalf("receipt %s", r)
		}
	})

	t.Run("one frame over three messages", func(t *testing.T) {
		w := mustDialWSRaw(t, p, "v12.stomp")
		w.text("CONNECT\naccept-ver")
		w.text("sion:1.2\nhost:/\n")
		w.text("\n\x00")
		w.expect("CONNECTED")
		w.text("SUBSCRIBE\nid:s\ndestination:/topic/ws.split\n\n\x00")
		w.text("SEND\ndestin")
		w.text("ation:/topic/ws.split\ncontent-length:5\nreceipt:r1\n\nhel")
		w.text("lo\x00")
		m := w.expect("MESSAGE")
		if string(m.Body) != "hello" {
			t.Fatalf("body %q", m.Body)
		}
		w.expect("RECEIPT")
	})

	t.Run("heart-beat messages alone", func(t *testing.T) {
		w := mustDialWSRaw(t, p, "v12.stomp")
		w.text("\n")
		w.text("\r\n")
		w.text(connectFrame12)
		w.expect("CONNECTED")
		for range 3 {
			w.text("\n")
		}
		w.text("\r\n")
		w.text("SEND\ndestination:/topic/ws.hb\nreceipt:r1\n\nx\x00")
		w.text("\n")
		if r := w.expect("RECEIPT"); r.Value("receipt-id") != "r1" {
			t.Fatalf("receipt %s", r)
		}
	})

	t.Run("binary messages in", func(t *testing.T) {
		w := mustDialWSRaw(t, p, "v12.stomp")
		w.binary(connectFrame12)
		kind, f := w.frame()
		if f.Command != "CONNECTED" {
			t.Fatalf("got %s", f)
		}
		if kind != websocket.BinaryMessage {
			t.Errorf("CONNECTED came as message kind %d; the server should reply in the kind the client used (binary)", kind)
		}
		w.binary("SUBSCRIBE\nid:s\ndestination:/topic/ws.bin\n\n\x00SEND\ndestination:/topic/ws.bin\n\nhi\x00")
		if m := w.expect("MESSAGE"); string(m.Body) != "hi" {
			t.Fatalf("body %q", m.Body)
		}
	})

	t.Run("message kind follows the body", func(t *testing.T) {
		sub := mustDialWSRaw(t, p, "v12.stomp")
		sub.text(connectFrame12)
		sub.expect("CONNECTED")
		sub.text("SUBSCRIBE\nid:s\ndestination:/topic/ws.kind\nreceipt:r\n\n\x00")
		sub.expect("RECEIPT")
		pub := mustDialWSRaw(t, p, "v12.stomp")
		pub.text(connectFrame12)
		pub.expect("CONNECTED")
		notUTF8 := "\xff\xfe\x00\x80binary"
		pub.binary("SEND\ndestination:/topic/ws.kind\ncontent-length:" + strconv.Itoa(len(notUTF8)) + "\n\n" + notUTF8 + "\x00")
		pub.text("SEND\ndestination:/topic/ws.kind\n\nh\u00e9llo \u2713\x00")

		kind, m := sub.frame()
		if string(m.Body) != notUTF8 {
			t.Fatalf("body %q, want %q", m.Body, notUTF8)
		}
		if kind != websocket.BinaryMessage {
			t.Errorf("a body that is not UTF-8 came in message kind %d, want binary", kind)
		}
		kind, m = sub.frame()
		if string(m.Body) != "h\u00e9llo \u2713" {
			t.Fatalf("body %q", m.Body)
		}
		if kind != websocket.TextMessage {
			t.Errorf("a UTF-8 body to a text client came in message kind %d, want text", kind)
		}
		if !utf8.Valid(m.Body) {
			t.Errorf("body not UTF-8")
		}
	})
}

// TestWebSocketHeartBeats runs the slow heart-beat checks in parallel.
func TestWebSocketHeartBeats(t *testing.T) {
	p := startBroker(t)

	t.Run("server sends heart-beats while idle", func(t *testing.T) {
		t.Parallel()
		w := mustDialWSRaw(t, p, "v12.stomp")
		w.text("CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,1000\n\n\x00")
		c := w.expect("CONNECTED")
		if got := c.Value("heart-beat"); got != "1000,0" {
			t.Fatalf("CONNECTED heart-beat %q, want 1000,0", got)
		}
		start := time.Now()
		beats := 0
		var last time.Time
		for time.Since(start) < 3*time.Second {
			_, data, err := w.readMsg(time.Until(start.Add(3 * time.Second)))
			if err != nil {
				var ne interface{ Timeout() bool }
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				t.Fatalf("read: %v", err)
			}
			if s := string(data); s != "\n" && s != "\r\n" {
				t.Fatalf("idle connection got %q, want only heart-beats", data)
			}
			if !last.IsZero() && time.Since(last) > 1500*time.Millisecond {
				t.Errorf("heart-beats %v apart, want about 1s", time.Since(last))
			}
			last = time.Now()
			beats++
		}
		if beats < 2 {
			t.Fatalf("%d heart-beats in 3s with heart-beat:0,1000, want at least 2", beats)
		}
	})

	t.Run("silent client is disconnected after the grace", func(t *testing.T) {
		t.Parallel()
		w := mustDialWSRaw(t, p, "v12.stomp")
		w.text("CONNECT\naccept-version:1.2\nhost:/\nheart-beat:1000,0\n\n\x00")
		c := w.expect("CONNECTED")
		if got := c.Value("heart-beat"); got != "0,1000" {
			t.Fatalf("CONNECTED heart-beat %q, want 0,1000", got)
		}
		start := time.Now()
		_, f := w.frame()
		elapsed := time.Since(start)
		if f.Command != "ERROR" || f.Value("message") == "" {
			t.Fatalf("got %s, want ERROR with a message", f)
		}
		// Default grace is 3 intervals: never early, and not much late.
		if elapsed < 2500*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("silent client dropped after %v, want about 3s", elapsed)
		}
		w.expectClosed(waitFor)
	})

	t.Run("client heart-beats keep the connection", func(t *testing.T) {
		t.Parallel()
		w := mustDialWSRaw(t, p, "v12.stomp")
		w.text("CONNECT\naccept-version:1.2\nhost:/\nheart-beat:1000,0\n\n\x00")
		w.expect("CONNECTED")
		// 4.5s is past the 3s grace; EOLs alone must count as traffic.
		for range 9 {
			time.Sleep(500 * time.Millisecond)
			w.text("\n")
		}
		w.text("SEND\ndestination:/topic/ws.alive\nreceipt:alive\n\nx\x00")
		if r := w.expect("RECEIPT"); r.Value("receipt-id") != "alive" {
			t.Fatalf("receipt %s", r)
		}
	})
}
