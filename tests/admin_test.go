package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// adminClient calls the broker's HTTP endpoints as a script would.
type adminClient struct {
	t    *testing.T
	base string
}

// call sends a request (as guest/guest when auth is set) and returns the
// status and body. Redirects are not followed.
func (a adminClient) call(method, path, body string, auth bool) (int, http.Header, []byte) {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth("guest", "guest")
	}
	if method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := &http.Client{Timeout: waitFor, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, data
}

// json calls and decodes a JSON answer, failing unless the status is want.
func (a adminClient) json(method, path, body string, want int, out any) {
	a.t.Helper()
	status, _, data := a.call(method, path, body, true)
	if status != want {
		a.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

// metric reads one unlabelled sample from /metrics.
func (a adminClient) metric(name string) float64 {
	a.t.Helper()
	status, _, data := a.call("GET", "/metrics", "", false)
	if status != http.StatusOK {
		a.t.Fatalf("/metrics: %d", status)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				a.t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	a.t.Fatalf("/metrics has no %s", name)
	return 0
}

type adminDestination struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Depth     int    `json:"depth"`
	Consumers int    `json:"consumers"`
	Enqueued  uint64 `json:"enqueued"`
}

// TestAdminAPI drives the JSON API, /metrics and /readyz of the real
// binary the way an operator's script would, with STOMP clients on the
// other side to see what the calls do.
func TestAdminAPI(t *testing.T) {
	p := startBroker(t)
	a := adminClient{t: t, base: p.HTTPURL}

	if status, h, _ := a.call("GET", "/", "", false); status != http.StatusFound || h.Get("Location") != "/admin/" {
		t.Fatalf("/: %d %s", status, h.Get("Location"))
	}
	if status, _, body := a.call("GET", "/readyz", "", false); status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	if status, _, _ := a.call("GET", "/healthz", "", false); status != http.StatusOK {
		t.Fatalf("/healthz: %d", status)
	}
	if status, h, _ := a.call("GET", "/api/v1/overview", "", false); status != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("overview without credentials: %d", status)
	}
	if status, h, _ := a.call("GET", "/admin/", "", false); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/admin/login") {
		t.Fatalf("console without login: %d %s", status, h.Get("Location"))
	}
	published := a.metric("stampede_messages_published_total")
	commits := a.metric("stampede_store_commit_seconds_count")

	producer := goConnect(t, p, tcpTransport)
	send(t, producer, "/queue/admin-api", "one")
	send(t, producer, "/queue/admin-api", "two", stomp.SendOpt.Header("persistent", "true"))
	// The persistent one went through a store commit, which the fsync
	// latency histogram saw.
	if got := a.metric("stampede_store_commit_seconds_count") - commits; got < 1 {
		t.Errorf("store commit histogram moved by %v after a persistent send", got)
	}
	const path = "/api/v1/destinations/%2Fqueue%2Fadmin-api"
	var d adminDestination
	a.json("GET", path, "", http.StatusOK, &d)
	if d.Name != "/queue/admin-api" || d.Type != "queue" || d.Depth != 2 || d.Enqueued != 2 {
		t.Fatalf("destination %+v", d)
	}
	if got := a.metric("stampede_messages_published_total") - published; got != 2 {
		t.Errorf("published counter moved by %v, want 2", got)
	}

	var peek struct {
		Messages []struct {
			Body    string            `json:"body"`
			Headers map[string]string `json:"headers"`
		} `json:"messages"`
	}
	a.json("GET", path+"/messages?limit=5", "", http.StatusOK, &peek)
	if len(peek.Messages) != 2 || peek.Messages[0].Body != "one" || peek.Messages[1].Body != "two" {
		t.Fatalf("peek %+v", peek)
	}

	// Purge: a consumer that comes later gets nothing of it.
	var purged struct {
		Purged int `json:"purged"`
	}
	a.json("DELETE", path+"/messages", "", http.StatusOK, &purged)
	if purged.Purged != 2 {
		t.Fatalf("purged %d", purged.Purged)
	}
	consumer := goConnect(t, p, tcpTransport)
	sub := subscribe(t, consumer, "/queue/admin-api", stomp.AckAuto)
	expectNothing(t, sub, 300*time.Millisecond)

	// Publish through the API reaches the consumer.
	a.json("POST", path+"/messages", `{"headers": {"x-from": "api"}, "body": "three"}`, http.StatusCreated, nil)
	if m := recv(t, sub); string(m.Body) != "three" || m.Header.Get("x-from") != "api" {
		t.Fatalf("got %q %v", m.Body, headerList(m.Header))
	}

	// Delete: the queue's consumer is told and disconnected.
	a.json("DELETE", path, "", http.StatusNoContent, nil)
	expectError(t, sub, "deleted")
	if status, _, _ := a.call("GET", path, "", true); status != http.StatusNotFound {
		t.Fatalf("deleted queue: %d", status)
	}
	if status, _, _ := a.call("GET", "/api/v1/destinations/queue-without-prefix", "", true); status != http.StatusBadRequest {
		t.Fatalf("bad name: %d", status)
	}

	// Close a connection: that client is disconnected with an ERROR.
	victim := goConnect(t, p, tcpTransport, stomp.ConnOpt.Header("client-id", "admin-api-victim"))
	victimSub := subscribe(t, victim, "/queue/admin-api-victim", stomp.AckAuto)
	var conns struct {
		Total int `json:"total"`
		Items []struct {
			ID       string `json:"id"`
			ClientID string `json:"client_id"`
		} `json:"items"`
	}
	a.json("GET", "/api/v1/connections?q=admin-api-victim", "", http.StatusOK, &conns)
	if conns.Total != 1 || conns.Items[0].ClientID != "admin-api-victim" {
		t.Fatalf("connections %+v", conns)
	}
	a.json("DELETE", "/api/v1/connections/"+conns.Items[0].ID+"?reason=closed+by+test", "", http.StatusNoContent, nil)
	expectError(t, victimSub, "closed by test")
}

// expectError waits for sub to end with an error that mentions text.
func expectError(t *testing.T, sub *stomp.Subscription, text string) {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			return // go-stomp closed the subscription: disconnected
		}
		if m.Err == nil {
			t.Fatalf("got message %q, want an error", m.Body)
		}
		if !strings.Contains(m.Err.Error(), text) {
			t.Fatalf("error %q does not mention %q", m.Err, text)
		}
	case <-time.After(waitFor):
		t.Fatalf("no error within %v", waitFor)
	}
}

// TestAdminPProf checks that --pprof exposes pprof to admins only, and that
// it is off by default.
func TestAdminPProf(t *testing.T) {
	off := adminClient{t: t, base: startBroker(t).HTTPURL}
	if status, _, _ := off.call("GET", "/debug/pprof/", "", true); status != http.StatusNotFound {
		t.Fatalf("pprof without --pprof: %d", status)
	}
	on := adminClient{t: t, base: startBroker(t, "--pprof").HTTPURL}
	if status, _, _ := on.call("GET", "/debug/pprof/", "", false); status != http.StatusUnauthorized {
		t.Fatalf("pprof without credentials: %d", status)
	}
	if status, _, body := on.call("GET", "/debug/pprof/goroutine?debug=1", "", true); status != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("pprof as admin: %d", status)
	}
}
