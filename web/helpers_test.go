package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitFor = 5 * time.Second

// env is a broker with the web server in front of it on a loopback
// httptest server.
type env struct {
	t   *testing.T
	b   *broker.Broker
	srv *Server
	ts  *httptest.Server
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	return newEnvWith(t, opts, broker.Options{})
}

// newEnvWith is newEnv with a broker configured by bopts.
func newEnvWith(t *testing.T, opts Options, bopts broker.Options) *env {
	t.Helper()
	b, err := broker.New(bopts, store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	opts.Broker = b
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Mount(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		b.Shutdown(ctx)
	})
	return &env{t: t, b: b, srv: srv, ts: ts}
}

// req is one request to the test server.
type req struct {
	method, path, body string
	basic              bool // guest/guest
	user, pass         string
	cookie             *http.Cookie
	csrf               string
	header             map[string]string
}

func (e *env) do(r req) *http.Response {
	e.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, e.ts.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.basic {
		hr.SetBasicAuth("guest", "guest")
	}
	if r.user != "" {
		hr.SetBasicAuth(r.user, r.pass)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	if r.csrf != "" {
		hr.Header.Set(csrfHeader, r.csrf)
	}
	if strings.HasPrefix(r.path, "/api/") && (r.method == http.MethodPost || r.method == http.MethodPut) {
		hr.Header.Set("Content-Type", "application/json") // as the console sends
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// call does r and checks the status; it decodes a JSON answer into out.
func (e *env) call(r req, status int, out any) {
	e.t.Helper()
	resp := e.do(r)
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", r.method, r.path, resp.StatusCode, status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", r.method, r.path, data, err)
		}
	}
}

// apiError checks that r fails with status and a JSON error body.
func (e *env) apiError(r req, status int) string {
	e.t.Helper()
	var body struct{ Error string }
	e.call(r, status, &body)
	if body.Error == "" {
		e.t.Fatalf("%s %s: no error message", r.method, r.path)
	}
	return body.Error
}

// fakeConn is a client connection served by the broker in process.
type fakeConn struct {
	t      *testing.T
	toB    *io.PipeWriter
	fromC  *io.PipeReader
	frames chan *stomp.Frame
	closed chan struct{}
	once   sync.Once
	info   broker.ConnInfo
	served chan struct{}
}

func (c *fakeConn) Read(p []byte) (int, error) { return c.fromC.Read(p) }

func (c *fakeConn) WriteFrames(frames []broker.Outbound) error {
	for _, f := range frames {
		data := append(append([]byte(nil), f.Head...), f.Body...)
		var out []*stomp.Frame
		dec := stomp.NewDecoder(stomp.Limits{MaxBodyBytes: 64 << 20})
		if err := dec.Feed(data, func(fr *stomp.Frame) error { out = append(out, fr); return nil }); err != nil {
			return err
		}
		for _, fr := range out {
			select {
			case c.frames <- fr:
			case <-c.closed:
				return io.ErrClosedPipe
			}
		}
	}
	return nil
}

func (c *fakeConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.fromC.CloseWithError(io.EOF)
	})
	return nil
}

func (c *fakeConn) Info() broker.ConnInfo { return c.info }

// connect opens a STOMP 1.2 session with the broker; extra headers go on
// CONNECT.
func connect(t *testing.T, b *broker.Broker, kv ...string) *fakeConn {
	t.Helper()
	pr, pw := io.Pipe()
	c := &fakeConn{
		t: t, toB: pw, fromC: pr, frames: make(chan *stomp.Frame, 1024), closed: make(chan struct{}),
		info:   broker.ConnInfo{Transport: "tcp", RemoteAddr: "127.0.0.1:40000"},
		served: make(chan struct{}),
	}
	go func() {
		defer close(c.served)
		b.Serve(c)
	}()
	t.Cleanup(func() {
		c.Close()
		<-c.served
	})
	c.send(stomp.CONNECT, "", append([]string{"accept-version", "1.2", "host", "x"}, kv...)...)
	c.expect(stomp.CONNECTED)
	return c
}

func (c *fakeConn) send(cmd, body string, kv ...string) {
	c.t.Helper()
	f := stomp.New(cmd, kv...)
	f.Body = []byte(body)
	// The broker reads all the time, so a pipe write returns promptly;
	// writing here, not in a goroutine, keeps frames in order.
	if _, err := c.toB.Write(stomp.Encode(f, stomp.V12)); err != nil {
		c.t.Fatalf("sending %s: %v", cmd, err)
	}
}

// sendSync sends a frame with a receipt and waits for it.
func (c *fakeConn) sendSync(cmd, body string, kv ...string) {
	c.t.Helper()
	c.send(cmd, body, append(kv, "receipt", "r-"+cmd)...)
	c.expect(stomp.RECEIPT)
}

func (c *fakeConn) expect(cmd string) *stomp.Frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		if f.Command != cmd {
			c.t.Fatalf("got %s %v %q, want %s", f.Command, f.Headers, f.Body, cmd)
		}
		return f
	case <-time.After(waitFor):
		c.t.Fatalf("no %s within %v", cmd, waitFor)
	}
	return nil
}

func (c *fakeConn) expectNothing(d time.Duration) {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected %s %v %q", f.Command, f.Headers, f.Body)
	case <-time.After(d):
	}
}
