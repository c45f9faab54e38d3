package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-stomp/stomp/v3"
)

// kickResumers runs kicker on the resume scripts' connections until the
// returned function is called; that stops it, waits for it and returns how
// many connections it closed. Calling it again returns the same count.
func kickResumers(t *testing.T, p *brokerProc) (stop func() int64) {
	ctx, cancel := context.WithCancel(t.Context())
	var kicks atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		kicker(ctx, p.HTTPURL, "resumer-", 700*time.Millisecond, &kicks, t.Logf)
	}()
	return func() int64 {
		cancel()
		<-done
		return kicks.Load()
	}
}

// kicker closes, from the server side as an operator would (DELETE
// /api/v1/connections/{id}), every connection whose client-id begins with
// prefix, every interval until ctx ends, and counts them.
func kicker(ctx context.Context, httpURL, prefix string, every time.Duration, kicks *atomic.Int64, logf func(string, ...any)) {
	hc := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path string, out any) error {
		req, err := http.NewRequestWithContext(ctx, method, httpURL+path, nil)
		if err != nil {
			return err
		}
		req.SetBasicAuth("guest", "guest")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		if out != nil {
			return json.NewDecoder(resp.Body).Decode(out)
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		var conns struct {
			Items []struct {
				ID       string `json:"id"`
				ClientID string `json:"client_id"`
			} `json:"items"`
		}
		if err := do("GET", "/api/v1/connections?q="+url.QueryEscape(prefix), &conns); err != nil {
			logf("listing connections: %v", err)
			continue
		}
		for _, c := range conns.Items {
			if !strings.HasPrefix(c.ClientID, prefix) {
				continue
			}
			if err := do("DELETE", "/api/v1/connections/"+url.PathEscape(c.ID)+"?reason=kicked+by+test", nil); err == nil {
				kicks.Add(1)
			}
		}
	}
}

// TestNodeSTOMPJSResume: STOMP.js subscribers in node, closed from the
// server side again and again while a publisher goes on, resume from the
// last message-id each saw and get every message exactly once, in order;
// the one on a wildcard in publication order across three topics.
func TestNodeSTOMPJSResume(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	p := startBroker(t, "--topic-history", "5000")
	stopKicking := kickResumers(t, p)
	res := runNodeScript(t, node, 90*time.Second, "resume", p.WSURL)
	kicks := stopKicking()
	t.Logf("%d connections closed by the test; %v", kicks, res)
	if kicks < 6 {
		t.Fatalf("only %d connections were closed", kicks)
	}
}

// TestBrowserSTOMPJSResume is TestNodeSTOMPJSResume in Chromium, with the
// browser's own WebSocket, from a page on another loopback origin.
func TestBrowserSTOMPJSResume(t *testing.T) {
	bundle := filepath.Join(jsDeps, "@stomp", "stompjs", "bundles", "stomp.umd.js")
	if _, err := os.Stat(bundle); err != nil {
		missingTool(t, "tests/"+bundle, "(cd tests/js && npm ci)")
	}
	p := startBroker(t, "--topic-history", "5000")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stomp.umd.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, bundle) })
	mux.HandleFunc("GET /resume-core.mjs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, filepath.Join("js", "resume-core.mjs"))
	})
	mux.Handle("GET /", http.FileServer(http.Dir(filepath.Join("js", "browser"))))
	page := httptest.NewServer(mux) // listens on 127.0.0.1
	defer page.Close()

	br := startChromium(t, 120*time.Second, 800, 600)
	stopKicking := kickResumers(t, p)
	defer stopKicking()

	if err := chromedp.Do(br.ctx, chromedp.Navigate(page.URL+"/resume.html?ws="+url.QueryEscape(p.WSURL))); err != nil {
		t.Fatal(err)
	}
	type results struct {
		Done    bool           `json:"done"`
		Error   string         `json:"error"`
		Summary map[string]any `json:"summary"`
	}
	var res results
	deadline := time.Now().Add(90 * time.Second)
	for !res.Done && time.Now().Before(deadline) {
		r, err := chromedp.Run(br.ctx, chromedp.Evaluate[results](`window.results || {}`))
		if err != nil {
			t.Fatalf("reading window.results: %v\nconsole:\n%s", err, br.consoleText())
		}
		res = r
		time.Sleep(200 * time.Millisecond)
	}
	if !res.Done {
		t.Fatalf("the page did not finish\nconsole:\n%s", br.consoleText())
	}
	if res.Error != "" {
		t.Fatalf("the page failed: %s\nconsole:\n%s", res.Error, br.consoleText())
	}
	kicks := stopKicking()
	t.Logf("%d connections closed by the test; %v", kicks, res.Summary)
	if kicks < 6 {
		t.Fatalf("only %d connections were closed", kicks)
	}
}

// Persistent messages a topic keeps survive kill -9 with their ids: a
// subscriber that saw some before the crash resumes after the restart
// from the last id it saw and gets the rest, with no gap reported.
func TestHistorySurvivesKill(t *testing.T) {
	t.Parallel()
	p := startBroker(t, "--topic-history", "100")
	pub := goConnect(t, p, tcpTransport)
	sub := subscribe(t, goConnect(t, p, tcpTransport), "/topic/kept", stomp.AckAuto)
	for i := range 3 {
		send(t, pub, "/topic/kept", strconv.Itoa(i), stomp.SendOpt.Header("persistent", "true"))
	}
	first := recv(t, sub).Header.Get("message-id")
	p.kill(t)

	p2 := restartBroker(t, p.DataDir, "--topic-history", "100")
	c := goConnect(t, p2, tcpTransport)
	again, err := c.Subscribe("/topic/kept", stomp.AckAuto, stomp.SubscribeOpt.Header("x-resume-after", first))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1", "2"} {
		m := recv(t, again)
		if string(m.Body) != want || m.Header.Get("x-replayed") != "true" || m.Header.Get("x-resume-gap") != "" {
			t.Fatalf("after the restart got %q %v, want %s replayed without a gap", m.Body, headerList(m.Header), want)
		}
	}
	send(t, goConnect(t, p2, tcpTransport), "/topic/kept", "3")
	if m := recv(t, again); string(m.Body) != "3" || m.Header.Get("x-replayed") != "" {
		t.Fatalf("live after the replay: %q %v", m.Body, headerList(m.Header))
	}
}
