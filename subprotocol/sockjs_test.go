package subprotocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// startSockJS serves srv at /sockjs/ on a loopback test server and
// returns the server's base URL (http://127.0.0.1:PORT).
func startSockJS(t *testing.T, srv Server, opts SockJSOptions) string {
	t.Helper()
	if opts.DisconnectDelay == 0 {
		// Short, so that sessions left behind are gone before goleak looks.
		opts.DisconnectDelay = 200 * time.Millisecond
	}
	mux := http.NewServeMux()
	mux.Handle("/sockjs/", NewSockJSHandler(srv, opts))
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		// The library reaps a session the disconnect delay after its
		// last request.
		time.Sleep(opts.DisconnectDelay + 300*time.Millisecond)
	})
	return ts.URL
}

// sjClient speaks the SockJS HTTP transports by hand.
type sjClient struct {
	t    *testing.T
	base string // http://HOST/sockjs/000/SESSION
	hc   *http.Client
}

var sjSeq atomic.Int64

func newSJClient(t *testing.T, server string) *sjClient {
	return &sjClient{
		t:    t,
		base: server + "/sockjs/000/s" + strconv.FormatInt(sjSeq.Add(1), 10),
		hc:   &http.Client{Timeout: 10 * time.Second},
	}
}

func (c *sjClient) do(method, path, body string, hdr ...string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	return resp, string(b)
}

// poll does one xhr-polling request and returns the SockJS frame.
func (c *sjClient) poll() string {
	c.t.Helper()
	resp, body := c.do("POST", "/xhr", "")
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("poll: %s %q", resp.Status, body)
	}
	return strings.TrimSuffix(body, "\n")
}

// send posts messages with xhr_send.
func (c *sjClient) send(msgs ...string) {
	c.t.Helper()
	b, _ := json.Marshal(msgs)
	resp, body := c.do("POST", "/xhr_send", string(b))
	if resp.StatusCode != http.StatusNoContent {
		c.t.Fatalf("xhr_send: %s %q", resp.Status, body)
	}
}

// messages decodes an "a" frame.
func messages(t *testing.T, frame string) []string {
	t.Helper()
	if !strings.HasPrefix(frame, "a[") {
		t.Fatalf("not a message frame: %q", frame)
	}
	var out []string
	if err := json.Unmarshal([]byte(frame[1:]), &out); err != nil {
		t.Fatalf("bad message frame %q: %v", frame, err)
	}
	return out
}

// pollMessages polls until n messages have arrived, skipping heart-beats.
func (c *sjClient) pollMessages(n int) []string {
	c.t.Helper()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("got %d of %d messages", len(got), n)
		}
		f := c.poll()
		if f == "h" {
			continue
		}
		got = append(got, messages(c.t, f)...)
	}
	return got
}

// chanServer hands each transport to the test and waits until the test
// lets it go (by closing release or the transport ending).
type chanServer struct {
	conns   chan broker.Transport
	release chan struct{}
}

func newChanServer() *chanServer {
	return &chanServer{conns: make(chan broker.Transport, 4), release: make(chan struct{})}
}

func (s *chanServer) Serve(t broker.Transport) {
	s.conns <- t
	<-s.release
}

func (s *chanServer) next(t *testing.T) broker.Transport {
	t.Helper()
	select {
	case tr := <-s.conns:
		return tr
	case <-time.After(5 * time.Second):
		t.Fatal("no session reached the server")
		return nil
	}
}

// openPolled starts a SockJS endpoint with opts in front of a chanServer,
// opens a session with a first poll, and returns the client and the
// session's transport. Serve returns when the test ends, before the
// endpoint is torn down.
func openPolled(t *testing.T, opts SockJSOptions) (*sjClient, broker.Transport) {
	t.Helper()
	srv := newChanServer()
	base := startSockJS(t, srv, opts)
	t.Cleanup(func() { close(srv.release) }) // runs before startSockJS's cleanup
	c := newSJClient(t, base)
	c.poll()
	return c, srv.next(t)
}

func TestSockJSInfo(t *testing.T) {
	t.Parallel()
	for _, ws := range []bool{true, false} {
		base := startSockJS(t, echoServer(), SockJSOptions{NoWebSocket: !ws})
		resp, err := http.Get(base + "/sockjs/info")
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			WebSocket    bool     `json:"websocket"`
			CookieNeeded bool     `json:"cookie_needed"`
			Origins      []string `json:"origins"`
			Entropy      *int64   `json:"entropy"`
		}
		err = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("info: %s, %v", resp.Status, err)
		}
		if info.WebSocket != ws || info.CookieNeeded || info.Entropy == nil {
			t.Errorf("info with websocket=%v: %+v", ws, info)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-cache") {
			t.Errorf("info Cache-Control %q, want no caching", cc)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("info Content-Type %q", ct)
		}
		if a := resp.Header.Get("Access-Control-Allow-Origin"); a != "" {
			t.Errorf("CORS header %q without an Origin", a)
		}
	}

	base := startSockJS(t, echoServer(), SockJSOptions{})
	for path, want := range map[string]int{
		"/sockjs/":            200, // the SockJS greeting
		"/sockjs/iframe.html": 404, // no client URL configured
		"/sockjs/nothing":     404,
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, want)
		}
	}
	withIframe := startSockJS(t, echoServer(), SockJSOptions{ClientURL: "/static/sockjs.min.js"})
	resp, err := http.Get(withIframe + "/sockjs/iframe.html")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `src="/static/sockjs.min.js"`) {
		t.Errorf("iframe page with a client URL: %s %q", resp.Status, b)
	}
}

func TestSockJSOriginsAndCORS(t *testing.T) {
	t.Parallel()
	base := startSockJS(t, echoServer(), SockJSOptions{AllowedOrigins: []string{"https://app.example.com"}})
	host := strings.TrimPrefix(base, "http://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://localhost:3000", true},
		{"http://127.0.0.1:9", true},
		{"http://" + host, true},
		{"https://app.example.com", true},
		{"https://APP.example.com/", true},
		{"https://evil.example.com", false},
		{"null", false},
	} {
		for _, req := range []struct{ method, path string }{
			{"GET", "/sockjs/info"},
			{"OPTIONS", "/sockjs/info"},
			{"OPTIONS", "/sockjs/000/x/xhr_send"},
			{"POST", "/sockjs/000/x/xhr_send"},
		} {
			r, _ := http.NewRequest(req.method, base+req.path, strings.NewReader(`["x"]`))
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			r.Header.Set("Access-Control-Request-Headers", "content-type")
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			what := fmt.Sprintf("%s %s from %q", req.method, req.path, tc.origin)
			acao := resp.Header.Get("Access-Control-Allow-Origin")
			switch {
			case !tc.ok:
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: %s, want 403", what, resp.Status)
				}
				if acao != "" {
					t.Errorf("%s: refused but Access-Control-Allow-Origin %q", what, acao)
				}
			case resp.StatusCode == http.StatusForbidden:
				t.Errorf("%s: refused", what)
			case tc.origin == "" && acao != "":
				t.Errorf("%s: CORS answer %q to a request without Origin", what, acao)
			case tc.origin != "" && acao != tc.origin:
				t.Errorf("%s: Access-Control-Allow-Origin %q, want the origin", what, acao)
			}
			if c := resp.Header.Get("Access-Control-Allow-Credentials"); c != "" {
				t.Errorf("%s: credentials allowed (%q) without being configured", what, c)
			}
			if tc.ok && tc.origin != "" && !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("%s: no Vary: Origin", what)
			}
		}
	}

	// A refused origin cannot open a SockJS WebSocket either.
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/sockjs/000/w/websocket"
	_, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://evil.example.com"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("websocket from a refused origin: err %v, response %v", err, resp)
	}

	creds := startSockJS(t, echoServer(), SockJSOptions{Credentials: true})
	r, _ := http.NewRequest("GET", creds+"/sockjs/info", nil)
	r.Header.Set("Origin", "http://localhost:8000")
	resp, err = http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8000" {
		t.Errorf("with credentials configured: %v", resp.Header)
	}

	all := startSockJS(t, echoServer(), SockJSOptions{AllowedOrigins: []string{"*"}})
	r, _ = http.NewRequest("GET", all+"/sockjs/info", nil)
	r.Header.Set("Origin", "https://anywhere.example")
	resp, err = http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://anywhere.example" {
		t.Errorf("with *: %s %v", resp.Status, resp.Header)
	}
}

// TestSockJSXHRPolling exchanges STOMP frames over raw xhr-polling: the
// stream in is the concatenation of the client's messages, whatever their
// split, and each frame out is one message.
func TestSockJSXHRPolling(t *testing.T) {
	t.Parallel()
	srv := newChanServer()
	defer close(srv.release)
	base := startSockJS(t, srv, SockJSOptions{})
	c := newSJClient(t, base)
	if f := c.poll(); f != "o" {
		t.Fatalf("first poll: %q, want o", f)
	}
	tr := srv.next(t)
	info := tr.Info()
	if info.Transport != "sockjs" || info.Subprotocol != "xhr-polling" || !strings.HasPrefix(info.RemoteAddr, "127.0.0.1:") || info.Versions != nil {
		t.Errorf("ConnInfo %+v", info)
	}

	// One frame split over two messages, then two in one. A send
	// returns once the server has read its messages.
	var got []string
	errc := make(chan error, 1)
	go func() {
		errc <- decodeAll(tr, 7, func(f *stomp.Frame) error {
			got = append(got, f.Value("destination")+"="+string(f.Body))
			if len(got) == 3 {
				return io.EOF
			}
			return nil
		})
	}()
	c.send("SEND\ndestination:/queue/a\n\nhel", "lo\x00")
	c.send("SEND\ndestination:/queue/b\n\n1\x00SEND\ndestination:/queue/c\n\n2\x00")
	if err := <-errc; err != io.EOF {
		t.Fatalf("reading: %v", err)
	}
	if want := "/queue/a=hello /queue/b=1 /queue/c=2"; strings.Join(got, " ") != want {
		t.Errorf("read %q, want %q", got, want)
	}

	// A batch written while no poll is open waits for the next poll.
	frames := []broker.Outbound{
		outbound(frameWithBody(stomp.New(stomp.MESSAGE, "destination", "/queue/a", "x-n", "1"), "one")),
		outbound(frameWithBody(stomp.New(stomp.MESSAGE, "destination", "/queue/a", "x-n", "2"), "twö")),
	}
	werr := make(chan error, 1)
	go func() { werr <- tr.WriteFrames(frames) }()
	time.Sleep(50 * time.Millisecond)
	msgs := c.pollMessages(2)
	if err := <-werr; err != nil {
		t.Fatalf("WriteFrames: %v", err)
	}
	for i, m := range msgs {
		f := decodeOne(t, []byte(m))
		if f.Value("x-n") != strconv.Itoa(i+1) || string(f.Body) != []string{"one", "twö"}[i] {
			t.Errorf("message %d: %q", i, m)
		}
	}

	// Closing ends the session with a close frame.
	if err := tr.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if f := c.poll(); f != `c[1000,"Normal closure"]` {
		t.Errorf("poll after Close: %q", f)
	}
	if n, err := tr.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Errorf("Read after Close: %d, %v", n, err)
	}
}

// frameWithBody sets f's body.
func frameWithBody(f *stomp.Frame, body string) *stomp.Frame {
	f.Body = []byte(body)
	return f
}

// TestSockJSReceivers checks every HTTP receiving transport: the messages
// arrive in order and each write returns once its receiver has taken it
// (so a broken hand-over detection would show as a timeout here).
func TestSockJSReceivers(t *testing.T) {
	t.Parallel()
	const n = 60
	body := func(i int) string { return strings.Repeat("é", i*3) + "%+&<>\"\\\n\r%25" }
	for _, tc := range []struct {
		kind, method, query string
		receiver            sockjs.ReceiverType
		polling             bool
		// frames extracts the complete SockJS frames from a response.
		frames func(resp string) []string
	}{
		{"xhr_streaming", "POST", "", sockjs.ReceiverTypeXHRStreaming, false, terminated("\n", nil)},
		{"eventsource", "GET", "", sockjs.ReceiverTypeEventSource, false, terminated("\r\n\r\n", func(s string) string {
			s, _ = strings.CutPrefix(strings.TrimLeft(s, "\r\n"), "data: ")
			u, err := url.PathUnescape(s) // what decodeURI does in sockjs-client
			if err != nil {
				t.Errorf("eventsource data %q: %v", s, err)
			}
			return u
		})},
		{"htmlfile", "GET", "?c=cb", sockjs.ReceiverTypeHtmlFile, false, scriptCalls(regexp.MustCompile(`<script>\np\(("(?:[^"\\]|\\.)*")\);\n</script>`))},
		{"xhr", "POST", "", sockjs.ReceiverTypeXHR, true, terminated("\n", nil)},
		{"jsonp", "GET", "?c=cb", sockjs.ReceiverTypeJSONP, true, scriptCalls(regexp.MustCompile(`cb\(("(?:[^"\\]|\\.)*")\);`))},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			srv := newChanServer()
			defer close(srv.release)
			base := startSockJS(t, srv, SockJSOptions{WriteTimeout: 3 * time.Second, ResponseLimit: 4096})
			c := newSJClient(t, base)

			// Each receiving request reports its frames as they come,
			// then nil when its response ends.
			frames := make(chan []string, 16)
			request := func() {
				defer func() { frames <- nil }()
				req, _ := http.NewRequest(tc.method, c.base+"/"+tc.kind+tc.query, nil)
				resp, err := c.hc.Do(req)
				if err != nil {
					t.Errorf("%s: %v", tc.kind, err)
					return
				}
				defer resp.Body.Close()
				var acc strings.Builder
				seen := 0
				buf := make([]byte, 4096)
				for {
					k, err := resp.Body.Read(buf)
					acc.Write(buf[:k])
					if all := tc.frames(acc.String()); len(all) > seen {
						frames <- all[seen:]
						seen = len(all)
					}
					if err != nil {
						return
					}
				}
			}

			go request()
			tr := srv.next(t)
			if want := receiverName(tc.receiver); tr.Info().Subprotocol != want {
				t.Errorf("Subprotocol %q, want %q", tr.Info().Subprotocol, want)
			}
			werr := make(chan error, 1)
			go func() {
				for i := range n {
					f := stomp.New(stomp.MESSAGE, "destination", "/topic/t", "n", strconv.Itoa(i))
					f.Body = []byte(body(i))
					start := time.Now()
					if err := tr.WriteFrames([]broker.Outbound{outbound(f)}); err != nil {
						werr <- fmt.Errorf("frame %d after %v: %w", i, time.Since(start), err)
						return
					}
				}
				werr <- nil
			}()
			var got []string
			open := true
			deadline := time.After(15 * time.Second)
			for len(got) < n || werr != nil {
				select {
				case fs := <-frames:
					if fs == nil { // the response ended: a new one, as clients do
						open = len(got) < n
						if open {
							go request()
						}
						continue
					}
					for _, f := range fs {
						switch {
						case strings.HasPrefix(f, "a["):
							got = append(got, messages(t, f)...)
						case strings.HasPrefix(f, "c["):
							t.Fatalf("closed: %s", f)
						}
					}
				case err := <-werr:
					if err != nil {
						t.Fatalf("WriteFrames: %v (got %d messages)", err, len(got))
					}
					werr = nil
				case <-deadline:
					t.Fatalf("got %d of %d messages", len(got), n)
				}
			}
			for i, m := range got {
				f := decodeOne(t, []byte(m))
				if f.Value("n") != strconv.Itoa(i) || string(f.Body) != body(i) {
					t.Fatalf("message %d: %q", i, m)
				}
			}
			tr.Close()
			for open { // an open stream ends with the session
				select {
				case fs := <-frames:
					open = fs != nil
				case <-time.After(5 * time.Second):
					t.Fatal("the open response did not end after Close")
				}
			}
		})
	}
}

// terminated splits a response into the frames that end with sep, each
// passed through decode when given.
func terminated(sep string, decode func(string) string) func(string) []string {
	return func(b string) []string {
		parts := strings.Split(b, sep)
		parts = parts[:len(parts)-1] // incomplete, or empty
		if decode != nil {
			for i := range parts {
				parts[i] = decode(parts[i])
			}
		}
		return parts
	}
}

func scriptCalls(re *regexp.Regexp) func(string) []string {
	return func(b string) []string {
		var out []string
		for _, m := range re.FindAllStringSubmatch(b, -1) {
			var s string
			if err := json.Unmarshal([]byte(m[1]), &s); err == nil {
				out = append(out, s)
			}
		}
		return out
	}
}

// TestSockJSText covers the rule for what SockJS cannot carry as text.
func TestSockJSText(t *testing.T) {
	t.Parallel()
	bin := []byte{0xff, 0x00, 'a', 0xc3}
	for _, tc := range []struct {
		name string
		out  broker.Outbound
		want string
	}{
		{"text", outbound(frameWithBody(stomp.New(stomp.MESSAGE, "destination", "/queue/a"), "héllo")),
			"MESSAGE\ndestination:/queue/a\ncontent-length:6\n\nhéllo\x00"},
		{"heart-beat", broker.Outbound{Head: []byte("\n")}, "\n"},
		{"binary", outbound(frameWithBody(stomp.New(stomp.MESSAGE, "destination", "/queue/a", "content-type", "application/octet-stream"), string(bin))),
			"MESSAGE\ncontent-transfer-encoding:base64\ncontent-length:8\ndestination:/queue/a\ncontent-type:application/octet-stream\n\n" +
				base64.StdEncoding.EncodeToString(bin) + "\x00"},
		{"binary flag unset", broker.Outbound{Head: []byte("MESSAGE\ncontent-length:4\n\n"), Body: append(bin, 0)},
			"MESSAGE\ncontent-transfer-encoding:base64\ncontent-length:8\n\n" + base64.StdEncoding.EncodeToString(bin) + "\x00"},
		{"binary without content-length", broker.Outbound{Head: []byte("MESSAGE\nx:1\n\n"), Body: []byte{0xfe, 0}, Binary: true},
			"MESSAGE\ncontent-transfer-encoding:base64\ncontent-length:4\nx:1\n\n/g==\x00"},
		{"header not UTF-8", broker.Outbound{Head: []byte("MESSAGE\nx-name:a\xffb\n\n"), Body: []byte("ok\x00")},
			"MESSAGE\nx-invalid-utf8:headers\nx-name:a\uFFFDb\n\nok\x00"},
	} {
		got := sockjsText(&tc.out)
		if got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
		if !strings.HasSuffix(got, "\x00") && tc.name != "heart-beat" {
			t.Errorf("%s: lost the NUL", tc.name)
		}
	}
}

// TestSockJSBinaryDelivery sends a body that is not UTF-8 through a poll
// and decodes it the way a client would.
func TestSockJSBinaryDelivery(t *testing.T) {
	t.Parallel()
	c, tr := openPolled(t, SockJSOptions{})
	body := make([]byte, 256)
	for i := range body {
		body[i] = byte(i)
	}
	f := stomp.New(stomp.MESSAGE, "destination", "/queue/bin", "subscription", "0")
	f.Body = body
	go tr.WriteFrames([]broker.Outbound{outbound(f), outbound(frameWithBody(stomp.New(stomp.RECEIPT, "receipt-id", "r1"), ""))})
	msgs := c.pollMessages(2)
	got := decodeOne(t, []byte(msgs[0]))
	if got.Value("content-transfer-encoding") != "base64" {
		t.Fatalf("no content-transfer-encoding: %q", msgs[0])
	}
	raw, err := base64.StdEncoding.DecodeString(string(got.Body))
	if err != nil || !bytes.Equal(raw, body) {
		t.Fatalf("body %q does not decode to the original (%v)", got.Body, err)
	}
	if got.Value("content-length") != strconv.Itoa(len(got.Body)) {
		t.Errorf("content-length %q for a %d byte body", got.Value("content-length"), len(got.Body))
	}
	if r := decodeOne(t, []byte(msgs[1])); r.Command != stomp.RECEIPT {
		t.Errorf("the session did not go on: %q", msgs[1])
	}
}

// TestSockJSUncollected bounds what the library holds: a client that
// stops polling makes the next write fail after the write timeout.
func TestSockJSUncollected(t *testing.T) {
	t.Parallel()
	c, tr := openPolled(t, SockJSOptions{WriteTimeout: 300 * time.Millisecond, DisconnectDelay: 2 * time.Second})
	start := time.Now()
	err := tr.WriteFrames([]broker.Outbound{outbound(frameWithBody(stomp.New(stomp.MESSAGE, "destination", "/queue/a"), "x"))})
	if !errors.Is(err, errSockJSNotTaken) {
		t.Fatalf("WriteFrames with nobody polling: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("WriteFrames failed after %v, want about the write timeout", d)
	}
	tr.Close()
	if f := c.poll(); !strings.HasPrefix(f, "c[") {
		t.Errorf("poll after Close: %q", f)
	}
}

// TestSockJSVanished: a session whose client stops polling is closed after
// the disconnect delay, and the server's Read sees the end.
func TestSockJSVanished(t *testing.T) {
	t.Parallel()
	_, tr := openPolled(t, SockJSOptions{DisconnectDelay: 150 * time.Millisecond})
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := tr.Read(make([]byte, 64))
		done <- err
	}()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("Read: %v, want io.EOF", err)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("session ended after %v, before the disconnect delay", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5s after the client vanished")
	}
	tr.Close()
}

func TestSockJSSendTooLarge(t *testing.T) {
	t.Parallel()
	c, tr := openPolled(t, SockJSOptions{MaxSendBytes: 1000})
	b, _ := json.Marshal([]string{strings.Repeat("x", 2000)})
	resp, body := c.do("POST", "/xhr_send", string(b))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized send: %s %q", resp.Status, body)
	}
	if _, err := tr.Read(make([]byte, 10)); err == nil {
		t.Error("the session went on after an oversized send")
	}
}

func dialSockJSWebSocket(t *testing.T, base string, dialer ...*websocket.Dialer) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/sockjs/000/w" + strconv.FormatInt(sjSeq.Add(1), 10) + "/websocket"
	d := websocket.DefaultDialer
	if len(dialer) > 0 {
		d = dialer[0]
	}
	ws, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, m, err := ws.ReadMessage()
	if err != nil || string(m) != "o" {
		t.Fatalf("open frame: %q, %v", m, err)
	}
	return ws
}

func TestSockJSWebSocket(t *testing.T) {
	t.Parallel()
	infos := make(chan broker.ConnInfo, 1)
	srv := serverFunc(func(tr broker.Transport) {
		infos <- tr.Info()
		echoServer().Serve(tr)
	})
	base := startSockJS(t, srv, SockJSOptions{})
	ws := dialSockJSWebSocket(t, base)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`["SEND\ndestination:/queue/a\n\nhi\u0000SEND\ndestination:/queue/b\n\n", "yo\u0000"]`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		_, m, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		if string(m) == "h" {
			continue
		}
		for _, s := range messages(t, string(m)) {
			f := decodeOne(t, []byte(s))
			got = append(got, f.Value("destination")+"="+string(f.Body))
		}
	}
	if strings.Join(got, " ") != "/queue/a=hi /queue/b=yo" {
		t.Errorf("echoed %q", got)
	}
	if info := <-infos; info.Transport != "sockjs" || info.Subprotocol != "websocket" {
		t.Errorf("ConnInfo %+v", info)
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}

// TestSockJSWebSocketMessageLimit: the library reads whole WebSocket
// messages; one over the limit, whole or fragmented, ends the session
// before it is buffered.
func TestSockJSWebSocketMessageLimit(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 4)
	srv := serverFunc(func(tr broker.Transport) {
		_, err := io.Copy(io.Discard, tr)
		ended <- err
	})
	base := startSockJS(t, srv, SockJSOptions{MaxSendBytes: 1000})

	ws := dialSockJSWebSocket(t, base)
	small, _ := json.Marshal([]string{strings.Repeat("s", 900)})
	if err := ws.WriteMessage(websocket.TextMessage, small); err != nil {
		t.Fatal(err)
	}
	ws.WriteMessage(websocket.PingMessage, nil)
	select {
	case err := <-ended:
		t.Fatalf("a message within the limit ended the session: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	big, _ := json.Marshal([]string{strings.Repeat("b", 5000)})
	ws.WriteMessage(websocket.TextMessage, big)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("an oversized message did not end the session")
	}

	// Fragments add up: a small write buffer makes the client send
	// 1200 bytes as several frames.
	ws = dialSockJSWebSocket(t, base, &websocket.Dialer{WriteBufferSize: 300})
	w, err := ws.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("f"), 1200))
	w.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("an oversized fragmented message did not end the session")
	}
}

// TestSockJSSecondReceiver: a second receiving request while one is open
// is refused as SockJS says (the retry for a receiver being let go must
// not hide a real second connection), and the first one goes on.
func TestSockJSSecondReceiver(t *testing.T) {
	t.Parallel()
	c, tr := openPolled(t, SockJSOptions{})
	first := make(chan string, 1)
	go func() { first <- c.poll() }() // held open: nothing to deliver yet
	time.Sleep(100 * time.Millisecond)
	if f := c.poll(); f != `c[2010,"Another connection still open"]` {
		t.Errorf("second poll: %q", f)
	}
	if err := tr.WriteFrames([]broker.Outbound{outbound(frameWithBody(stomp.New(stomp.MESSAGE, "destination", "/queue/a"), "x"))}); err != nil {
		t.Fatalf("WriteFrames: %v", err)
	}
	if m := messages(t, <-first); len(m) != 1 {
		t.Errorf("first poll got %q", m)
	}
	tr.Close()
	c.poll()
}

// TestSockJSPanic: a panic in a session is logged, not fatal.
func TestSockJSPanic(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	srv := serverFunc(func(broker.Transport) { panic("session bug") })
	base := startSockJS(t, srv, SockJSOptions{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	c := newSJClient(t, base)
	c.poll()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := logs.String()
		mu.Unlock()
		if strings.Contains(s, "session bug") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no panic logged: %q", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f := c.poll(); !strings.HasPrefix(f, "c[") {
		t.Errorf("poll after the panic: %q", f)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
