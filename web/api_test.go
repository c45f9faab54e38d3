package web

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

func TestOverview(t *testing.T) {
	e := newEnv(t, Options{StoreSize: func() (int64, error) { return 4096, nil }})
	c := connect(t, e.b, "login", "alice")
	c.sendSync(stomp.SUBSCRIBE, "", "id", "1", "destination", "/topic/news")
	c.sendSync(stomp.SEND, "a", "destination", "/queue/orders")
	c.sendSync(stomp.SEND, "b", "destination", "/queue/orders")

	var o overviewJSON
	e.call(req{path: "/api/v1/overview", basic: true}, http.StatusOK, &o)
	if o.Connections != 1 || o.Sessions.ByTransport["tcp"] != 1 || o.Sessions.ByVersion["1.2"] != 1 ||
		o.Destinations != 2 || o.Queues != 1 || o.Topics != 1 || o.MessagesIn != 2 || o.MessagesWaiting != 2 ||
		o.TopicSubscriptions != 1 || o.StoreBytes == nil || *o.StoreBytes != 4096 || o.Go.HeapBytes == 0 ||
		o.UptimeSeconds <= 0 || o.Go.Goroutines == 0 {
		t.Fatalf("overview %+v", o)
	}
}

func TestConnections(t *testing.T) {
	e := newEnv(t, Options{})
	alice := connect(t, e.b, "login", "alice", "client-id", "app-1", "heart-beat", "0,10000")
	connect(t, e.b, "login", "bob")
	alice.sendSync(stomp.SUBSCRIBE, "", "id", "1", "destination", "/queue/work")

	var list page[connectionJSON]
	e.call(req{path: "/api/v1/connections", basic: true}, http.StatusOK, &list)
	if list.Total != 2 || len(list.Items) != 2 || list.Items[0].User != "alice" {
		t.Fatalf("connections %+v", list)
	}
	a := list.Items[0]
	if a.ClientID != "app-1" || a.Transport != "tcp" || a.Version != "1.2" || a.Subscriptions != 1 ||
		a.HeartBeatOutMs != 10000 || a.OutboundMax == 0 || a.RemoteAddr != "127.0.0.1:40000" || a.ConnectedAt.IsZero() {
		t.Fatalf("alice %+v", a)
	}
	e.call(req{path: "/api/v1/connections?q=BOB", basic: true}, http.StatusOK, &list)
	if list.Total != 1 || list.Items[0].User != "bob" {
		t.Fatalf("filtered %+v", list)
	}
	e.call(req{path: "/api/v1/connections?sort=user&order=desc&limit=1", basic: true}, http.StatusOK, &list)
	if list.Total != 2 || len(list.Items) != 1 || list.Items[0].User != "bob" {
		t.Fatalf("sorted %+v", list)
	}

	var one connectionJSON
	e.call(req{path: "/api/v1/connections/" + a.ID, basic: true}, http.StatusOK, &one)
	if one.ID != a.ID || one.User != "alice" {
		t.Fatalf("one %+v", one)
	}
	e.apiError(req{path: "/api/v1/connections/nope", basic: true}, http.StatusNotFound)
	e.apiError(req{method: "DELETE", path: "/api/v1/connections/nope", basic: true}, http.StatusNotFound)

	// Closing one: the client reads why, and the connection goes.
	e.call(req{method: "DELETE", path: "/api/v1/connections/" + a.ID + "?reason=maintenance%0Anow", basic: true}, http.StatusNoContent, nil)
	if m := alice.expect(stomp.ERROR).Value("message"); m != "maintenance now" {
		t.Fatalf("ERROR message %q", m)
	}
	deadline := time.Now().Add(waitFor)
	for {
		e.call(req{path: "/api/v1/connections", basic: true}, http.StatusOK, &list)
		if list.Total == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed connection still listed: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestListQueries(t *testing.T) {
	e := newEnv(t, Options{})
	for i := range 25 {
		for range i%4 + 1 {
			if err := e.b.Publish(fmt.Sprintf("/queue/q%02d", i), nil, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	var list page[destinationJSON]
	e.call(req{path: "/api/v1/destinations?limit=10&offset=20", basic: true}, http.StatusOK, &list)
	if list.Total != 25 || len(list.Items) != 5 || list.Items[0].Name != "/queue/q20" || list.Offset != 20 || list.Limit != 10 {
		t.Fatalf("page %+v", list)
	}
	e.call(req{path: "/api/v1/destinations?sort=depth&order=desc&limit=3", basic: true}, http.StatusOK, &list)
	if list.Items[0].Depth != 4 || list.Items[0].Name != "/queue/q03" || list.Items[2].Name != "/queue/q11" {
		t.Fatalf("by depth %+v", list.Items)
	}
	e.call(req{path: "/api/v1/destinations?offset=100", basic: true}, http.StatusOK, &list)
	if list.Total != 25 || list.Items == nil || len(list.Items) != 0 {
		t.Fatalf("past the end %+v", list)
	}
	e.call(req{path: "/api/v1/destinations?q=Q1&type=queue", basic: true}, http.StatusOK, &list)
	if list.Total != 10 {
		t.Fatalf("filtered %+v", list)
	}
	e.call(req{path: "/api/v1/destinations?type=topic", basic: true}, http.StatusOK, &list)
	if list.Total != 0 {
		t.Fatalf("topics %+v", list)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "offset=-1", "sort=colour", "order=up", "type=table"} {
		e.apiError(req{path: "/api/v1/destinations?" + q, basic: true}, http.StatusBadRequest)
	}
	e.apiError(req{path: "/api/v1/connections?sort=depth", basic: true}, http.StatusBadRequest)
	e.apiError(req{path: "/api/v1/subscriptions?durable=maybe", basic: true}, http.StatusBadRequest)
}

func TestDestinationNames(t *testing.T) {
	e := newEnv(t, Options{})
	if err := e.b.Publish("/queue/a.b-c_d/e", nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var d destinationJSON
	e.call(req{path: "/api/v1/destinations/%2Fqueue%2Fa.b-c_d%2Fe", basic: true}, http.StatusOK, &d)
	if d.Name != "/queue/a.b-c_d/e" || d.Type != "queue" || d.Depth != 1 || d.Enqueued != 1 || d.OldestAgeSeconds <= 0 {
		t.Fatalf("destination %+v", d)
	}
	for _, bad := range []string{"queue%2Fa", "%2Fnowhere%2Fa", "%2Fqueue%2F", "%2Fqueue%2Fa%20b", "%2Fqueue%2Fa%2A",
		"%2Ftemp-queue%2Fr", "%2Fqueue%2F" + strings.Repeat("x", 250)} {
		for _, path := range []string{"/api/v1/destinations/" + bad, "/api/v1/destinations/" + bad + "/messages"} {
			e.apiError(req{path: path, basic: true}, http.StatusBadRequest)
		}
	}
	e.apiError(req{path: "/api/v1/destinations/%2Fqueue%2Fnone", basic: true}, http.StatusNotFound)
	e.apiError(req{path: "/api/v1/destinations/%2Ftopic%2Fnone", basic: true}, http.StatusNotFound)
	e.apiError(req{path: "/api/v1/destinations/%2Fqueue%2Fnone/messages", basic: true}, http.StatusNotFound)
	e.apiError(req{method: "DELETE", path: "/api/v1/destinations/%2Fqueue%2Fnone", basic: true}, http.StatusNotFound)
	e.apiError(req{method: "DELETE", path: "/api/v1/destinations/%2Fqueue%2Fnone/messages", basic: true}, http.StatusNotFound)
	// Unescaped slashes are a different path, which is no endpoint.
	e.apiError(req{path: "/api/v1/destinations/queue/a", basic: true}, http.StatusNotFound)
	e.apiError(req{path: "/api/v1/nothing", basic: true}, http.StatusNotFound)

	resp := e.do(req{method: "PUT", path: "/api/v1/destinations/%2Fqueue%2Fa", basic: true})
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, DELETE" ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("PUT: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestPeekPublishPurgeDelete(t *testing.T) {
	e := newEnv(t, Options{})
	const path = "/api/v1/destinations/%2Fqueue%2Forders"
	e.call(req{method: "POST", path: path + "/messages", basic: true,
		body: `{"headers": {"priority": "9", "x-kind": "test"}, "body": "first"}`}, http.StatusCreated, nil)
	binary := []byte{0xff, 0x00, 0xfe}
	e.call(req{method: "POST", path: path + "/messages", basic: true,
		body: `{"body_base64": "` + base64.StdEncoding.EncodeToString(binary) + `"}`}, http.StatusCreated, nil)

	var peek struct {
		Destination string
		Messages    []messageJSON
	}
	e.call(req{path: path + "/messages", basic: true}, http.StatusOK, &peek)
	if len(peek.Messages) != 2 {
		t.Fatalf("peek %+v", peek)
	}
	m := peek.Messages[0]
	if m.Body != "first" || m.Headers["x-kind"] != "test" || m.Priority != 9 || m.Size != 5 || m.ID == "" || m.Timestamp.IsZero() {
		t.Fatalf("first %+v", m)
	}
	if b, _ := base64.StdEncoding.DecodeString(peek.Messages[1].BodyBase64); string(b) != string(binary) || peek.Messages[1].Body != "" {
		t.Fatalf("binary %+v", peek.Messages[1])
	}
	e.call(req{path: path + "/messages?limit=1", basic: true}, http.StatusOK, &peek)
	if len(peek.Messages) != 1 {
		t.Fatalf("limit=1 gave %d", len(peek.Messages))
	}
	var d destinationJSON
	e.call(req{path: path, basic: true}, http.StatusOK, &d)
	if d.Depth != 2 {
		t.Fatalf("peek consumed: depth %d", d.Depth)
	}
	for _, bad := range []string{"limit=0", "limit=x", "limit=5000"} {
		e.apiError(req{path: path + "/messages?" + bad, basic: true}, http.StatusBadRequest)
	}
	for _, body := range []string{``, `nope`, `{"body": 1}`, `{"colour": "red"}`, `{"body": "a", "body_base64": "YQ=="}`,
		`{"body_base64": "%%%"}`, `{"headers": {"a:b": "c"}}`, `{"headers": {"a": "b\nc"}}`, `{"headers": {"": "c"}}`, `{} {}`} {
		e.apiError(req{method: "POST", path: path + "/messages", body: body, basic: true}, http.StatusBadRequest)
	}
	e.apiError(req{method: "POST", path: "/api/v1/destinations/%2Ftopic%2Fa.%2A/messages", body: `{}`, basic: true}, http.StatusBadRequest)
	e.apiError(req{method: "POST", path: path + "/messages", body: `{"body": "` + strings.Repeat("x", maxPublishBytes) + `"}`, basic: true},
		http.StatusRequestEntityTooLarge)

	// Purge: what waited is gone, and a consumer gets nothing of it.
	var purged struct{ Purged int }
	e.call(req{method: "DELETE", path: path + "/messages", basic: true}, http.StatusOK, &purged)
	if purged.Purged != 2 {
		t.Fatalf("purged %d", purged.Purged)
	}
	c := connect(t, e.b)
	c.sendSync(stomp.SUBSCRIBE, "", "id", "1", "destination", "/queue/orders")
	c.expectNothing(100 * time.Millisecond)

	// Publishing from the API reaches the consumer like any SEND.
	e.call(req{method: "POST", path: path + "/messages", body: `{"headers": {"x-from": "api"}, "body": "live"}`, basic: true}, http.StatusCreated, nil)
	if f := c.expect(stomp.MESSAGE); string(f.Body) != "live" || f.Value("x-from") != "api" || f.Value("destination") != "/queue/orders" {
		t.Fatalf("message %v %q", f.Headers, f.Body)
	}

	// Delete: the queue is gone and its consumer is told.
	e.call(req{method: "DELETE", path: path, basic: true}, http.StatusNoContent, nil)
	if msg := c.expect(stomp.ERROR).Value("message"); !strings.Contains(msg, "deleted") {
		t.Fatalf("ERROR %q", msg)
	}
	e.apiError(req{path: path, basic: true}, http.StatusNotFound)

	// Topics without history hold nothing to peek or purge; deleting
	// forgets their figures.
	// One is listed once subscribed to, and for a while after.
	sub := connect(t, e.b)
	sub.sendSync(stomp.SUBSCRIBE, "", "id", "s", "destination", "/topic/t")
	if err := e.b.Publish("/topic/t", nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	sub.expect(stomp.MESSAGE)
	sub.sendSync(stomp.UNSUBSCRIBE, "", "id", "s")
	var none struct{ Messages []messageJSON }
	e.call(req{path: "/api/v1/destinations/%2Ftopic%2Ft/messages", basic: true}, http.StatusOK, &none)
	if len(none.Messages) != 0 {
		t.Fatalf("a topic without history shows %+v", none.Messages)
	}
	e.apiError(req{method: "DELETE", path: "/api/v1/destinations/%2Ftopic%2Ft/messages", basic: true}, http.StatusBadRequest)
	e.call(req{method: "DELETE", path: "/api/v1/destinations/%2Ftopic%2Ft", basic: true}, http.StatusNoContent, nil)
	e.apiError(req{path: "/api/v1/destinations/%2Ftopic%2Ft", basic: true}, http.StatusNotFound)
}

func TestLongBodiesAreCut(t *testing.T) {
	long := strings.Repeat("é", maxShownBody) // two bytes each
	m := messageOf(brokerMessage([]byte(long)))
	if !m.Truncated || m.Size != len(long) || len(m.Body) > maxShownBody || m.Body == "" || m.BodyBase64 != "" {
		t.Fatalf("cut text: truncated=%v size=%d shown=%d base64=%d", m.Truncated, m.Size, len(m.Body), len(m.BodyBase64))
	}
	m = messageOf(brokerMessage([]byte("short")))
	if m.Truncated || m.Body != "short" {
		t.Fatalf("short %+v", m)
	}
}

func TestSubscriptions(t *testing.T) {
	e := newEnv(t, Options{})
	c := connect(t, e.b, "client-id", "app")
	c.sendSync(stomp.SUBSCRIBE, "", "id", "1", "destination", "/queue/jobs")
	c.sendSync(stomp.SUBSCRIBE, "", "id", "2", "destination", "/topic/news")
	c.sendSync(stomp.SUBSCRIBE, "", "id", "3", "destination", "/topic/prices", "durable", "true")
	if err := e.b.Publish("/queue/jobs", nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	var list page[Subscription]
	e.call(req{path: "/api/v1/subscriptions", basic: true}, http.StatusOK, &list)
	byDest := map[string]Subscription{}
	for _, s := range list.Items {
		byDest[s.Destination+fmt.Sprint(s.Durable)] = s
	}
	if s := byDest["/queue/jobsfalse"]; s.Type != "queue" || s.Consumers != 1 || !s.Online {
		t.Fatalf("queue consumer %+v in %+v", s, list.Items)
	}
	if s := byDest["/topic/newsfalse"]; s.Type != "topic" || s.Consumers != 1 {
		t.Fatalf("topic subscriber %+v in %+v", s, list.Items)
	}
	if s := byDest["/topic/pricestrue"]; s.Name != "app.3" || !s.Online {
		t.Fatalf("durable %+v in %+v", s, list.Items)
	}

	// Offline, the durable subscription collects a backlog.
	c.Close()
	deadline := time.Now().Add(waitFor)
	for {
		if err := e.b.Publish("/topic/prices", nil, []byte("p")); err != nil {
			t.Fatal(err)
		}
		e.call(req{path: "/api/v1/subscriptions?durable=true", basic: true}, http.StatusOK, &list)
		if list.Total == 1 && !list.Items[0].Online && list.Items[0].Backlog > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("durable subscription while offline: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its queue is the broker's own, not a destination clients name.
	var dests page[destinationJSON]
	e.call(req{path: "/api/v1/destinations", basic: true}, http.StatusOK, &dests)
	for _, d := range dests.Items {
		if !publicName(d.Name) {
			t.Errorf("destinations list %q", d.Name)
		}
	}
}

func TestReadyz(t *testing.T) {
	var notReady error
	e := newEnv(t, Options{Ready: func() error { return notReady }})
	resp := e.do(req{path: "/readyz"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ready: %d", resp.StatusCode)
	}
	notReady = errors.New("store closed")
	resp = e.do(req{path: "/readyz"})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "store closed") {
		t.Fatalf("not ready: %d %s", resp.StatusCode, body)
	}
	e.call(req{method: "POST", path: "/readyz"}, http.StatusMethodNotAllowed, nil)
	resp = e.do(req{path: "/"})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/admin/" {
		t.Fatalf("/: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestPProf(t *testing.T) {
	off := newEnv(t, Options{})
	off.call(req{path: "/debug/pprof/", basic: true}, http.StatusNotFound, nil)

	on := newEnv(t, Options{PProf: true})
	on.call(req{path: "/debug/pprof/"}, http.StatusUnauthorized, nil)
	on.call(req{path: "/debug/pprof/", basic: true}, http.StatusOK, nil)
	on.call(req{path: "/debug/pprof/goroutine?debug=1", basic: true}, http.StatusOK, nil)
	on.call(req{path: "/debug/pprof/cmdline", basic: true}, http.StatusOK, nil)
}

// A topic's history is peeked as a queue is: its latest retained
// messages, oldest first, without anyone taking them.
func TestPeekTopicHistory(t *testing.T) {
	e := newEnvWith(t, Options{}, broker.Options{TopicHistory: 3})
	for _, body := range []string{"a", "b", "c", "d"} {
		if err := e.b.Publish("/topic/kept", nil, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var peek struct{ Messages []messageJSON }
	e.call(req{path: "/api/v1/destinations/%2Ftopic%2Fkept/messages?limit=2", basic: true}, http.StatusOK, &peek)
	if len(peek.Messages) != 2 || peek.Messages[0].Body != "c" || peek.Messages[1].Body != "d" {
		t.Fatalf("peek %+v, want c and d", peek.Messages)
	}
	e.apiError(req{path: "/api/v1/destinations/%2Ftopic%2Fnever/messages", basic: true}, http.StatusNotFound)
}
