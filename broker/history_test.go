package broker

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// bodies reads n MESSAGEs and returns their bodies.
func bodies(c *client, n int) []string {
	c.t.Helper()
	var out []string
	for range n {
		out = append(out, string(c.expect(stomp.MESSAGE).Body))
	}
	return out
}

func TestHistoryLastN(t *testing.T) {
	b := newBroker(t, Options{TopicHistory: 3})
	pub := connect(t, b)
	for i := range 5 {
		publish(pub, "/topic/h", "m"+strconv.Itoa(i))
	}
	sub := connect(t, b)
	sub.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/h", "x-history", "10", "receipt", "r")
	if r := sub.expectReceipt(); r.Value("x-resume") != "ok" {
		t.Fatalf("RECEIPT %v, want x-resume:ok", r.Headers)
	}
	var last *stomp.Frame
	for i := 2; i < 5; i++ {
		last = sub.expect(stomp.MESSAGE)
		if string(last.Body) != "m"+strconv.Itoa(i) || last.Value("x-replayed") != "true" {
			t.Fatalf("replayed %v %q, want m%d marked replayed", last.Headers, last.Body, i)
		}
		if last.Value("message-id") != last.Value("x-stream-offset") {
			t.Fatalf("message-id %q, x-stream-offset %q: want the same position", last.Value("message-id"), last.Value("x-stream-offset"))
		}
	}
	publish(pub, "/topic/h", "live")
	if m := sub.expect(stomp.MESSAGE); string(m.Body) != "live" || m.Value("x-replayed") != "" {
		t.Fatalf("live %v %q", m.Headers, m.Body)
	}
	// A plain SUBSCRIBE never replays.
	plain := connect(t, b)
	subscribe(plain, "id", "1", "destination", "/topic/h")
	plain.expectNothing(50 * time.Millisecond)
}

func TestHistoryResumeAfterAndGap(t *testing.T) {
	b := newBroker(t, Options{TopicHistory: 3})
	pub := connect(t, b)
	sub := connect(t, b)
	subscribe(sub, "id", "1", "destination", "/topic/r")
	publish(pub, "/topic/r", "a")
	seen := sub.expect(stomp.MESSAGE).Value("message-id")
	sub.close()
	publish(pub, "/topic/r", "b")
	publish(pub, "/topic/r", "c")

	again := connect(t, b)
	again.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/r", "x-resume-after", seen, "receipt", "r")
	if r := again.expectReceipt(); r.Value("x-resume") != "ok" {
		t.Fatalf("RECEIPT %v, want x-resume:ok", r.Headers)
	}
	if got := bodies(again, 2); fmt.Sprint(got) != "[b c]" {
		t.Fatalf("resumed with %v, want [b c]", got)
	}
	again.expectNothing(50 * time.Millisecond)

	// Three more push a out and b with it: resuming after a now has a gap.
	for _, s := range []string{"d", "e", "f"} {
		publish(pub, "/topic/r", s)
	}
	late := connect(t, b)
	late.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/r", "x-resume-after", seen, "receipt", "r")
	if r := late.expectReceipt(); r.Value("x-resume") != "gap" {
		t.Fatalf("RECEIPT %v, want x-resume:gap", r.Headers)
	}
	first := late.expect(stomp.MESSAGE)
	if string(first.Body) != "d" || first.Value("x-resume-gap") != "true" {
		t.Fatalf("first after a gap: %v %q", first.Headers, first.Body)
	}
	if got := bodies(late, 2); fmt.Sprint(got) != "[e f]" {
		t.Fatalf("then %v", got)
	}
	// An id this broker never gave: everything, marked as a gap.
	odd := connect(t, b)
	odd.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/r", "x-resume-after", "nonsense", "receipt", "r")
	if r := odd.expectReceipt(); r.Value("x-resume") != "gap" {
		t.Fatalf("RECEIPT %v, want x-resume:gap", r.Headers)
	}
	if m := odd.expect(stomp.MESSAGE); m.Value("x-resume-gap") != "true" || string(m.Body) != "d" {
		t.Fatalf("%v %q", m.Headers, m.Body)
	}
}

func TestHistoryWildcardResumeInPublicationOrder(t *testing.T) {
	b := newBroker(t, Options{TopicHistoryRules: []TopicHistory{{Match: "/topic/w.#", Count: 100}}})
	pub := connect(t, b)
	publish(pub, "/topic/w.a", "0")
	sub := connect(t, b)
	sub.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/w.*", "x-history", "1", "receipt", "r")
	sub.expectReceipt()
	from := sub.expect(stomp.MESSAGE).Value("message-id")
	var want []string
	for i := range 9 {
		dest := "/topic/w." + string(rune('a'+i%3))
		publish(pub, dest, strconv.Itoa(i+1))
		want = append(want, strconv.Itoa(i+1))
	}
	publish(pub, "/topic/other", "not kept")
	again := connect(t, b)
	again.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/w.*", "x-resume-after", from, "receipt", "r")
	again.expectReceipt()
	if got := bodies(again, 9); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("wildcard resume gave %v, want %v", got, want)
	}
}

func TestHistorySinceAndStreamOffset(t *testing.T) {
	b := newBroker(t, Options{TopicHistory: 10})
	pub := connect(t, b)
	for _, s := range []string{"a", "b", "c"} {
		publish(pub, "/topic/s", s)
	}
	sub := connect(t, b)
	sub.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/s", "x-stream-offset", "first", "receipt", "r")
	sub.expectReceipt()
	ms := []*stomp.Frame{sub.expect(stomp.MESSAGE), sub.expect(stomp.MESSAGE), sub.expect(stomp.MESSAGE)}
	ts := ms[0].Value("timestamp")

	cases := []struct{ k, v, want string }{
		{"x-stream-offset", "last", "[c]"},
		{"x-stream-offset", "offset=" + ms[1].Value("x-stream-offset"), "[b c]"},
		{"x-history-since", ts, "[a b c]"},
	}
	for _, c := range cases {
		cl := connect(t, b)
		cl.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/s", c.k, c.v, "receipt", "r")
		cl.expectReceipt()
		got := bodies(cl, len(c.want)/2)
		if fmt.Sprint(got) != c.want {
			t.Errorf("%s:%s gave %v, want %s", c.k, c.v, got, c.want)
		}
	}
	next := connect(t, b)
	next.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/s", "x-stream-offset", "next", "receipt", "r")
	next.expectReceipt()
	next.expectNothing(50 * time.Millisecond)
	future := connect(t, b)
	future.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/s", "x-history-since", "99999999999999", "receipt", "r")
	future.expectReceipt()
	future.expectNothing(50 * time.Millisecond)
}

// A subscriber that resumes while a publisher goes on gets every message
// exactly once, in order: what the history gives, then what is live.
func TestHistoryResumeWhilePublishing(t *testing.T) {
	b := newBroker(t, Options{TopicHistory: 100000})
	pub := connect(t, b)
	const total = 3000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			pub.sendBody(stomp.SEND, strconv.Itoa(i), "destination", "/topic/busy")
		}
		pub.send(stomp.SEND, "destination", "/topic/busy", "receipt", "done")
	}()
	next := 0
	last := ""
	for round := 0; next < total; round++ {
		c := connect(t, b)
		kv := []string{"id", "1", "destination", "/topic/busy", "receipt", "r"}
		if last != "" {
			kv = append(kv, "x-resume-after", last)
		} else {
			kv = append(kv, "x-history", "100000")
		}
		c.send(stomp.SUBSCRIBE, kv...)
		if r := c.expectReceipt(); r.Value("x-resume") != "ok" {
			t.Fatalf("round %d: RECEIPT %v", round, r.Headers)
		}
		for range 200 {
			if next == total {
				break
			}
			m := c.expect(stomp.MESSAGE)
			if string(m.Body) != strconv.Itoa(next) {
				t.Fatalf("round %d: got %q, want %d", round, m.Body, next)
			}
			next++
			last = m.Value("message-id")
		}
		c.close()
	}
	wg.Wait()
	pub.expectReceipt()
}

// History stays within the broker-wide bound however many topics keep it,
// and the oldest goes first.
func TestHistoryBoundedAcrossTopics(t *testing.T) {
	const maxBytes = 1 << 20
	b := newBroker(t, Options{TopicHistory: 100, MaxHistoryBytes: maxBytes})
	body := make([]byte, 200)
	for i := range 10000 {
		m := newMessage(b.ids.next(), "/topic/many."+strconv.Itoa(i), &stomp.Frame{Body: body}, time.Now())
		if err := b.router.publish(nil, []*message{m}); err != nil {
			t.Fatal(err)
		}
		if bytes, _ := b.local.hist.size(); bytes > maxBytes {
			t.Fatalf("after %d topics the history holds %d bytes, over %d", i+1, bytes, maxBytes)
		}
	}
	_, topics := b.local.hist.size()
	if topics == 0 || topics >= 10000 {
		t.Fatalf("%d topics kept", topics)
	}
	if _, ok := b.local.hist.latest("/topic/many.0", 1); ok {
		t.Fatal("the oldest topic's history outlived newer ones")
	}
	if ms, ok := b.local.hist.latest("/topic/many.9999", 10); !ok || len(ms) != 1 {
		t.Fatal("the newest message is not kept")
	}
}

// Persistent retained messages come back after a restart with the same
// ids, and positions go on from there.
func TestHistorySurvivesRestart(t *testing.T) {
	st := store.NewMemory()
	opts := Options{TopicHistory: 2}
	b, err := New(opts, st)
	if err != nil {
		t.Fatal(err)
	}
	pub := connect(t, b)
	for _, s := range []string{"a", "b", "c"} {
		publish(pub, "/topic/p", s, "persistent", "true")
	}
	publish(pub, "/topic/p", "transient")
	sub := connect(t, b)
	sub.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/p", "x-history", "5", "receipt", "r")
	sub.expectReceipt()
	c := sub.expect(stomp.MESSAGE)
	sub.expect(stomp.MESSAGE)
	pub.close()
	sub.close()
	if n := storedCount(t, st, historyPrefix+"/topic/p"); n != 1 {
		t.Fatalf("store holds %d retained messages, want 1 (c; a and b were pushed out)", n)
	}

	b2, err := New(opts, st)
	if err != nil {
		t.Fatal(err)
	}
	again := connect(t, b2)
	again.send(stomp.SUBSCRIBE, "id", "1", "destination", "/topic/p", "x-history", "5", "receipt", "r")
	again.expectReceipt()
	m := again.expect(stomp.MESSAGE)
	if string(m.Body) != "c" || m.Value("message-id") != c.Value("message-id") {
		t.Fatalf("after restart: %v %q, want c as %s", m.Headers, m.Body, c.Value("message-id"))
	}
	p2 := connect(t, b2)
	publish(p2, "/topic/p", "d")
	d := again.expect(stomp.MESSAGE)
	if pd, _ := parsePosition(d.Value("message-id")); pd <= mustPosition(t, c.Value("message-id")) {
		t.Fatalf("position %s after restart is not past %s", d.Value("message-id"), c.Value("message-id"))
	}
}

func mustPosition(t *testing.T, s string) uint64 {
	t.Helper()
	p, ok := parsePosition(s)
	if !ok {
		t.Fatalf("%q is not a position", s)
	}
	return p
}

// Topics without history keep the ids and headers they always had.
func TestNoHistoryNoPosition(t *testing.T) {
	b := newBroker(t, Options{TopicHistoryRules: []TopicHistory{{Match: "/topic/kept", Count: 5}}})
	sub := connect(t, b)
	subscribe(sub, "id", "1", "destination", "/topic/plain")
	pub := connect(t, b)
	publish(pub, "/topic/plain", "x", "x-stream-offset", "forged")
	m := sub.expect(stomp.MESSAGE)
	if m.Value("x-stream-offset") != "" {
		t.Fatalf("%v", m.Headers)
	}
	if _, ok := parsePosition(m.Value("message-id")); ok {
		t.Fatalf("message-id %q looks like a position", m.Value("message-id"))
	}
}

// The broker-wide bound is on real memory: 10,000 topics publishing far
// more than it leave the live heap grown by about the bound, not by what
// was published.
func TestHistoryMemoryIsBounded(t *testing.T) {
	const maxBytes = 8 << 20
	b := newBroker(t, Options{TopicHistory: 100, MaxHistoryBytes: maxBytes})
	live := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := live()
	body := make([]byte, 512)
	for round := range 20 {
		for i := range 10000 {
			m := newMessage(b.ids.next(), "/topic/mem."+strconv.Itoa(i), &stomp.Frame{Body: body}, time.Now())
			if err := b.router.publish(nil, []*message{m}); err != nil {
				t.Fatal(err)
			}
		}
		_ = round
	}
	grown := int64(live()) - int64(before)
	held, topics := b.local.hist.size()
	t.Logf("published %d MB to 10,000 topics; history counts %d bytes in %d topics; live heap grew %d bytes (bound %d)",
		20*10000*len(body)>>20, held, topics, grown, maxBytes)
	if grown > maxBytes*5/4 {
		t.Fatalf("live heap grew by %d bytes, past the %d-byte bound", grown, maxBytes)
	}
}
