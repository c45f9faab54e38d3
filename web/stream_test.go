package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

func brokerMessage(body []byte) broker.Message {
	return broker.Message{ID: "m1", Destination: "/queue/x", Body: body, Timestamp: time.Now()}
}

// event is one Server-Sent Event.
type event struct {
	name, data string
}

// openStream starts an event stream; events arrive on the channel until
// the test ends.
func openStream(t *testing.T, e *env, path string) <-chan event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := http.NewRequestWithContext(ctx, "GET", e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s: %d %v", path, resp.StatusCode, resp.Header)
	}
	ch := make(chan event, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			case line == "" && ev.name != "":
				ch <- ev
				ev = event{}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return ch
}

func next(t *testing.T, ch <-chan event, name string) event {
	t.Helper()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended before %q", name)
			}
			if ev.name == name {
				return ev
			}
		case <-time.After(waitFor):
			t.Fatalf("no %q event within %v", name, waitFor)
		}
	}
}

func TestTailDoesNotConsume(t *testing.T) {
	e := newEnv(t, Options{})
	c := connect(t, e.b)
	c.sendSync(stomp.SUBSCRIBE, "", "id", "1", "destination", "/queue/jobs")

	events := openStream(t, e, "/api/v1/destinations/%2Fqueue%2Fjobs/tail")
	next(t, events, "ready")
	for _, body := range []string{"one", "two"} {
		e.call(req{method: "POST", path: "/api/v1/destinations/%2Fqueue%2Fjobs/messages", basic: true,
			body: `{"headers": {"x": "y"}, "body": "` + body + `"}`}, http.StatusCreated, nil)
	}
	for _, want := range []string{"one", "two"} {
		var m messageJSON
		if err := json.Unmarshal([]byte(next(t, events, "message").data), &m); err != nil {
			t.Fatal(err)
		}
		if m.Body != want || m.Headers["x"] != "y" || m.Destination != "/queue/jobs" {
			t.Fatalf("tailed %+v, want body %q", m, want)
		}
		// The consumer still gets every message.
		if f := c.expect(stomp.MESSAGE); string(f.Body) != want {
			t.Fatalf("consumer got %q, want %q", f.Body, want)
		}
	}

	// A topic nobody publishes to yet can be tailed too.
	topic := openStream(t, e, "/api/v1/destinations/%2Ftopic%2Fnews/tail")
	next(t, topic, "ready")
	if err := e.b.Publish("/topic/news", nil, []byte("extra")); err != nil {
		t.Fatal(err)
	}
	if data := next(t, topic, "message").data; !strings.Contains(data, `"extra"`) {
		t.Fatalf("topic tail %s", data)
	}
	e.apiError(req{path: "/api/v1/destinations/queue/tail", basic: true}, http.StatusBadRequest)
	e.apiError(req{path: "/api/v1/destinations/%2Fbad%2Fx/tail", basic: true}, http.StatusBadRequest)
	e.apiError(req{path: "/api/v1/destinations/%2Fqueue%2Fjobs/tail"}, http.StatusUnauthorized)
}

// stalledWriter is a ResponseWriter whose client stops reading after the
// first event: writes block until release is closed.
type stalledWriter struct {
	header  http.Header
	mu      sync.Mutex
	buf     strings.Builder
	release chan struct{}
}

func (w *stalledWriter) Header() http.Header { return w.header }
func (w *stalledWriter) WriteHeader(int)     {}
func (w *stalledWriter) Flush()              {}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	stalled := strings.Contains(w.buf.String(), "event: ready")
	w.mu.Unlock()
	if stalled {
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *stalledWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestTailDropsForASlowReader(t *testing.T) {
	e := newEnv(t, Options{})
	w := &stalledWriter{header: http.Header{}, release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, "GET", "/api/v1/destinations/%2Fqueue%2Fbusy/tail", nil)
	r.RemoteAddr = "127.0.0.1:1234"
	r.SetBasicAuth("guest", "guest")
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.ServeHTTP(w, r)
	}()
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(w.String(), "event: ready") {
		if time.Now().After(deadline) {
			t.Fatal("tail did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The publisher never waits for the stalled reader.
	start := time.Now()
	const n = tailBuffer + 100
	for range n {
		if err := e.b.Publish("/queue/busy", nil, []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("publishing %d messages took %v", n, d)
	}
	close(w.release)
	// Every message is either shown or counted as dropped.
	var got, dropped int
	for {
		out := w.String()
		got = strings.Count(out, "event: message")
		if i := strings.LastIndex(out, "event: dropped\ndata: "); i >= 0 {
			var d struct{ Dropped int }
			line := strings.SplitN(out[i+len("event: dropped\ndata: "):], "\n", 2)[0]
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatal(err)
			}
			dropped = d.Dropped
		}
		if got+dropped == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if dropped < n-tailBuffer-1 || got+dropped != n {
		t.Fatalf("%d shown + %d dropped, want %d in all, at least %d dropped", got, dropped, n, n-tailBuffer-1)
	}
}

func TestOverviewStream(t *testing.T) {
	e := newEnv(t, Options{})
	// Let the sampler take its first point.
	time.Sleep(50 * time.Millisecond)
	events := openStream(t, e, "/api/v1/overview/stream")
	var past []sample
	if err := json.Unmarshal([]byte(next(t, events, "history").data), &past); err != nil {
		t.Fatal(err)
	}
	if len(past) == 0 {
		t.Fatal("empty history")
	}
	connect(t, e.b)
	if err := e.b.Publish("/queue/x", nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var s sample
	if err := json.Unmarshal([]byte(next(t, events, "sample").data), &s); err != nil {
		t.Fatal(err)
	}
	if s.T <= past[len(past)-1].T || s.Connections != 1 || s.MessagesIn != 1 || s.Waiting != 1 || s.In <= 0 {
		t.Fatalf("sample %+v after %+v", s, past[len(past)-1])
	}
}

func TestSamplerKeepsAWindow(t *testing.T) {
	e := newEnv(t, Options{})
	sp := newSampler(e.b, time.Hour, 5)
	now := time.Unix(1000, 0)
	for i := range 8 {
		sp.take(now.Add(time.Duration(i) * time.Second))
	}
	h := sp.history()
	if len(h) != 5 || h[0].T != now.Add(3*time.Second).UnixMilli() || h[4].T != now.Add(7*time.Second).UnixMilli() {
		t.Fatalf("history %+v", h)
	}
	if last, ok := sp.latest(); !ok || last.T != h[4].T {
		t.Fatalf("latest %+v", last)
	}
}
