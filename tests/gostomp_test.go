package tests

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// goStompScenario is one client-visible behaviour, run once per transport.
// Destinations are suffixed with n, unique per run, so runs sharing a
// broker cannot see each other's messages.
type goStompScenario struct {
	name string
	run  func(t *testing.T, p *brokerProc, tr stompTransport, n string)
}

// TestGoStomp runs the go-stomp client against the broker over TCP and
// over WebSocket (subprotocol.Dial). The broker allows 2 redeliveries so
// the dead-letter scenario stays short.
func TestGoStomp(t *testing.T) {
	p := startBroker(t, "--max-redeliveries", "2")
	for _, tr := range stompTransports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			for _, sc := range goStompScenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, p, tr, tr.name+"."+strings.ReplaceAll(sc.name, "/", "."))
				})
			}
		})
	}
}

var goStompScenarios = []goStompScenario{
	{"topic-fanout", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/topic/news." + n
		a, b, pub := goConnect(t, p, tr), goConnect(t, p, tr), goConnect(t, p, tr)
		sa, sb := subscribe(t, a, dest, stomp.AckAuto), subscribe(t, b, dest, stomp.AckAuto)
		for i := range 3 {
			send(t, pub, dest, "m"+strconv.Itoa(i))
		}
		for _, s := range []*stomp.Subscription{sa, sb} {
			for i := range 3 {
				if got, want := recvBody(t, s), "m"+strconv.Itoa(i); got != want {
					t.Fatalf("subscriber got %q, want %q (in order)", got, want)
				}
			}
		}
	}},
	{"topic-wildcards", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		stocks, logs := "stocks"+strings.ReplaceAll(n, ".", "_"), "logs"+strings.ReplaceAll(n, ".", "_")
		c, pub := goConnect(t, p, tr), goConnect(t, p, tr)
		star := subscribe(t, c, "/topic/"+stocks+".*.nyse", stomp.AckAuto)
		hash := subscribe(t, c, "/topic/"+logs+".#", stomp.AckAuto)
		sends := []string{
			stocks + ".ibm.nyse",                // * is one word
			stocks + ".nyse",                    // * is not zero words
			stocks + ".ibm.x.nyse",              // * is not two words
			stocks + ".ibm.nasdaq",              // last word differs
			stocks + "x.ibm.nyse",               // first word differs
			logs,                                // # is zero words too
			logs + ".app",                       // one word
			logs + ".app.error.disk",            // several words
			logs + "x.app",                      // first word differs
			"other." + logs + ".app",            // pattern is anchored
			stocks + ".ibm.nyse.extra",          // no trailing words for *
			stocks + ".goog.nyse",               // match
			logs + ".end", stocks + ".end.nyse", // sentinels
		}
		for _, d := range sends {
			send(t, pub, "/topic/"+d, d)
		}
		check := func(sub *stomp.Subscription, want []string) {
			t.Helper()
			var got []string
			for {
				b := recvBody(t, sub)
				got = append(got, b)
				if strings.Contains(b, ".end") {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s received %v, want %v", sub.Destination(), got, want)
			}
		}
		check(star, []string{stocks + ".ibm.nyse", stocks + ".goog.nyse", stocks + ".end.nyse"})
		check(hash, []string{logs, logs + ".app", logs + ".app.error.disk", logs + ".end"})
	}},
	{"queue-competing-consumers", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/queue/work." + n
		a, b, pub := goConnect(t, p, tr), goConnect(t, p, tr), goConnect(t, p, tr)
		sa, sb := subscribe(t, a, dest, stomp.AckAuto), subscribe(t, b, dest, stomp.AckAuto)
		for i := range 10 {
			send(t, pub, dest, strconv.Itoa(i))
		}
		seen := map[string]int{}
		per := map[*stomp.Subscription]int{}
		deadline := time.After(waitFor)
		for len(seen) < 10 {
			select {
			case m := <-sa.C:
				seen[string(m.Body)]++
				per[sa]++
			case m := <-sb.C:
				seen[string(m.Body)]++
				per[sb]++
			case <-deadline:
				t.Fatalf("received %d distinct of 10 messages: %v", len(seen), seen)
			}
		}
		expectNothing(t, sa, 200*time.Millisecond)
		expectNothing(t, sb, 10*time.Millisecond)
		for body, k := range seen {
			if k != 1 {
				t.Errorf("message %s delivered %d times", body, k)
			}
		}
		if per[sa] == 0 || per[sb] == 0 {
			t.Errorf("round robin: consumers got %d and %d messages, want both some", per[sa], per[sb])
		}
	}},
	{"queue-holds-until-consumer", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/queue/hold." + n
		pub := goConnect(t, p, tr)
		for i := range 3 {
			send(t, pub, dest, "m"+strconv.Itoa(i))
		}
		sub := subscribe(t, goConnect(t, p, tr), dest, stomp.AckAuto)
		for i := range 3 {
			if got, want := recvBody(t, sub), "m"+strconv.Itoa(i); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}},
	{"ack-client-cumulative", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/queue/cumulative." + n
		pub := goConnect(t, p, tr)
		for i := 1; i <= 3; i++ {
			send(t, pub, dest, "m"+strconv.Itoa(i))
		}
		c := goConnect(t, p, tr)
		sub := subscribe(t, c, dest, stomp.AckClient)
		var last *stomp.Message
		for i := 1; i <= 3; i++ {
			last = recv(t, sub)
		}
		if err := c.Ack(last); err != nil {
			t.Fatal(err)
		}
		barrier(t, c)
		if err := c.Disconnect(); err != nil {
			t.Fatalf("disconnect: %v", err)
		}
		// Anything unacked would be back at the head of the queue,
		// ahead of this marker.
		send(t, pub, dest, "marker")
		sub2 := subscribe(t, goConnect(t, p, tr), dest, stomp.AckClient)
		if got := recvBody(t, sub2); got != "marker" {
			t.Fatalf("after acking the 3rd in client mode, got %q back; want only the marker", got)
		}
	}},
	{"ack-client-individual", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/queue/individual." + n
		pub := goConnect(t, p, tr)
		for i := 1; i <= 3; i++ {
			send(t, pub, dest, "m"+strconv.Itoa(i))
		}
		c := goConnect(t, p, tr)
		sub := subscribe(t, c, dest, stomp.AckClientIndividual)
		var ms []*stomp.Message
		for range 3 {
			ms = append(ms, recv(t, sub))
		}
		for _, m := range []*stomp.Message{ms[0], ms[2]} {
			if err := c.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
		barrier(t, c)
		if err := c.Disconnect(); err != nil {
			t.Fatalf("disconnect: %v", err)
		}
		send(t, pub, dest, "marker")
		sub2 := subscribe(t, goConnect(t, p, tr), dest, stomp.AckClientIndividual)
		m := recv(t, sub2)
		if string(m.Body) != "m2" || m.Header.Get("redelivered") != "true" {
			t.Fatalf("got %q redelivered=%q, want the unacked m2 with redelivered:true", m.Body, m.Header.Get("redelivered"))
		}
		if got := recvBody(t, sub2); got != "marker" {
			t.Fatalf("got %q after m2, want the marker (acked messages must not come back)", got)
		}
	}},
	{"nack-redelivers", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/queue/nack." + n
		c := goConnect(t, p, tr)
		sub := subscribe(t, c, dest, stomp.AckClientIndividual)
		send(t, goConnect(t, p, tr), dest, "again")
		m := recv(t, sub)
		if m.Header.Get("redelivered") == "true" {
			t.Fatalf("first delivery marked redelivered")
		}
		if err := c.Nack(m); err != nil {
			t.Fatal(err)
		}
		m = recv(t, sub)
		if string(m.Body) != "again" || m.Header.Get("redelivered") != "true" {
			t.Fatalf("after NACK got %q redelivered=%q, want the same message with redelivered:true", m.Body, m.Header.Get("redelivered"))
		}
		if err := c.Ack(m); err != nil {
			t.Fatal(err)
		}
	}},
	{"nack-requeue-false-dead-letters", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		// go-stomp cannot add headers to NACK, so this consumer is raw.
		name := "reject." + n
		dlq := subscribe(t, goConnect(t, p, tr), "/queue/DLQ."+name, stomp.AckAuto)
		send(t, goConnect(t, p, tr), "/queue/"+name, "poison", stomp.SendOpt.Header("x-app", "kept"))
		c := dialRaw(t, p, tr)
		c.connect()
		c.send("SUBSCRIBE", "", "id", "s1", "destination", "/queue/"+name, "ack", "client-individual")
		m := c.expect("MESSAGE")
		c.send("NACK", "", "id", m.Value("ack"), "requeue", "false", "receipt", "nacked")
		if r := c.expect("RECEIPT"); r.Value("receipt-id") != "nacked" {
			t.Fatalf("receipt %s", r)
		}
		d := recv(t, dlq)
		if string(d.Body) != "poison" {
			t.Fatalf("DLQ got %q", d.Body)
		}
		if got := d.Header.Get("x-original-destination"); got != "/queue/"+name {
			t.Errorf("x-original-destination = %q, want %q", got, "/queue/"+name)
		}
		if d.Header.Get("x-death-reason") == "" {
			t.Errorf("x-death-reason missing: %v", headerList(d.Header))
		}
		if got := d.Header.Get("x-app"); got != "kept" {
			t.Errorf("user header x-app = %q on the dead letter, want kept", got)
		}
		// Dead-lettered, not requeued: the original queue must be empty.
		c.send("UNSUBSCRIBE", "", "id", "s1")
		send(t, goConnect(t, p, tr), "/queue/"+name, "marker")
		if got := recvBody(t, subscribe(t, goConnect(t, p, tr), "/queue/"+name, stomp.AckAuto)); got != "marker" {
			t.Fatalf("original queue still held %q after NACK requeue:false", got)
		}
	}},
	{"max-redeliveries-dead-letters", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		name := "flaky." + n
		dlq := subscribe(t, goConnect(t, p, tr), "/queue/DLQ."+name, stomp.AckAuto)
		c := goConnect(t, p, tr)
		sub := subscribe(t, c, "/queue/"+name, stomp.AckClientIndividual)
		send(t, goConnect(t, p, tr), "/queue/"+name, "flaky")
		deliveries := 0
		for {
			select {
			case m := <-sub.C:
				if m.Err != nil {
					t.Fatal(m.Err)
				}
				deliveries++
				if deliveries > 10 {
					t.Fatalf("still redelivered after %d deliveries with --max-redeliveries 2", deliveries)
				}
				if err := c.Nack(m); err != nil {
					t.Fatal(err)
				}
				continue
			case d := <-dlq.C:
				if d.Err != nil {
					t.Fatal(d.Err)
				}
				if string(d.Body) != "flaky" || d.Header.Get("x-original-destination") != "/queue/"+name || d.Header.Get("x-death-reason") == "" {
					t.Fatalf("dead letter %q headers %v", d.Body, headerList(d.Header))
				}
			case <-time.After(waitFor):
				t.Fatalf("neither redelivered nor dead-lettered after %d deliveries", deliveries)
			}
			break
		}
		// One delivery plus two redeliveries, then the DLQ.
		if deliveries != 3 {
			t.Errorf("delivered %d times before dead-lettering, want 3 (1 + --max-redeliveries 2)", deliveries)
		}
	}},
	{"prefetch-one", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/queue/prefetch." + n
		pub := goConnect(t, p, tr)
		send(t, pub, dest, "first")
		send(t, pub, dest, "second")
		c := goConnect(t, p, tr)
		sub := subscribe(t, c, dest, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "1"))
		m := recv(t, sub)
		if string(m.Body) != "first" {
			t.Fatalf("got %q, want first", m.Body)
		}
		expectNothing(t, sub, 300*time.Millisecond)
		if err := c.Ack(m); err != nil {
			t.Fatal(err)
		}
		if got := recvBody(t, sub); got != "second" {
			t.Fatalf("after ACK got %q, want second", got)
		}
	}},
	{"expired-queue", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		queue := "/queue/ttl." + n
		pub := goConnect(t, p, tr)
		past := strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10)
		send(t, pub, queue, "ttl-1ms", stomp.SendOpt.Header("expiration", "1"))
		send(t, pub, queue, "expires-past", stomp.SendOpt.Header("expires", past))
		time.Sleep(20 * time.Millisecond) // let the 1 ms TTL run out
		send(t, pub, queue, "marker")
		if got := recvBody(t, subscribe(t, goConnect(t, p, tr), queue, stomp.AckAuto)); got != "marker" {
			t.Errorf("queue delivered expired message %q", got)
		}
	}},
	{"expired-topic", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		// A topic message already past its expiry when sent is expired
		// too: "Expired messages are never delivered".
		topic := "/topic/ttl." + n
		pub := goConnect(t, p, tr)
		past := strconv.FormatInt(time.Now().Add(-time.Minute).UnixMilli(), 10)
		ts := subscribe(t, goConnect(t, p, tr), topic, stomp.AckAuto)
		send(t, pub, topic, "expires-past", stomp.SendOpt.Header("expires", past))
		send(t, pub, topic, "marker")
		if got := recvBody(t, ts); got != "marker" {
			t.Errorf("topic delivered expired message %q", got)
		}
	}},
	{"priority", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/queue/prio." + n
		pub := goConnect(t, p, tr)
		send(t, pub, dest, "low", stomp.SendOpt.Header("priority", "1"))
		send(t, pub, dest, "normal")
		send(t, pub, dest, "high", stomp.SendOpt.Header("priority", "9"))
		sub := subscribe(t, goConnect(t, p, tr), dest, stomp.AckAuto)
		var got []string
		for range 3 {
			got = append(got, recvBody(t, sub))
		}
		if fmt.Sprint(got) != "[high normal low]" {
			t.Fatalf("delivery order %v, want [high normal low]", got)
		}
	}},
	{"temp-queue-request-reply", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		svc := "/queue/svc." + n
		responder := goConnect(t, p, tr)
		requests := subscribe(t, responder, svc, stomp.AckAuto)
		// Two requesters use the same temp-queue name; each must get only
		// its own reply.
		type requester struct {
			name    string
			conn    *stomp.Conn
			replies *stomp.Subscription
		}
		var rs []requester
		for _, name := range []string{"alice", "bob"} {
			c := goConnect(t, p, tr)
			// go-stomp's way to route MESSAGEs for a temp queue: a local
			// subscription keyed by the reply-to name, nothing sent.
			replies, err := c.Subscribe("/temp-queue/r", stomp.AckAuto, stomp.SubscribeOpt.Header("reply-to", "/temp-queue/r"))
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, requester{name, c, replies})
		}
		replyTo := map[string]string{}
		for _, r := range rs {
			send(t, r.conn, svc, r.name, stomp.SendOpt.Header("reply-to", "/temp-queue/r"))
			m := recv(t, requests)
			if string(m.Body) != r.name {
				t.Fatalf("request %q, want %q", m.Body, r.name)
			}
			rt := m.Header.Get("reply-to")
			if rt == "" || rt == "/temp-queue/r" {
				t.Fatalf("responder saw reply-to %q; want a routable name unique to the connection", rt)
			}
			replyTo[r.name] = rt
		}
		if replyTo["alice"] == replyTo["bob"] {
			t.Fatalf("two connections' /temp-queue/r share the name %q", replyTo["alice"])
		}
		// Replies go out in the opposite order, to be sure routing is by
		// name, not by arrival.
		for _, r := range []requester{rs[1], rs[0]} {
			send(t, responder, replyTo[r.name], "reply to "+r.name)
		}
		for _, r := range rs {
			m := recv(t, r.replies)
			if string(m.Body) != "reply to "+r.name {
				t.Errorf("%s received %q", r.name, m.Body)
			}
			if got := m.Header.Get("subscription"); got != "/temp-queue/r" {
				t.Errorf("%s: reply has subscription %q, want /temp-queue/r", r.name, got)
			}
			expectNothing(t, r.replies, 100*time.Millisecond)
		}
	}},
	{"transactions", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		dest := "/queue/tx." + n
		sub := subscribe(t, goConnect(t, p, tr), dest, stomp.AckAuto)
		c := goConnect(t, p, tr)

		tx, err := c.BeginWithError()
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Send(dest, "text/plain", []byte("committed")); err != nil {
			t.Fatal(err)
		}
		// Sent after the transactional SEND but outside it: it must
		// arrive first, as the other is held until COMMIT.
		send(t, c, dest, "outside")
		if got := recvBody(t, sub); got != "outside" {
			t.Fatalf("got %q before COMMIT, want outside", got)
		}
		if err := tx.CommitWithReceipt(); err != nil {
			t.Fatal(err)
		}
		if got := recvBody(t, sub); got != "committed" {
			t.Fatalf("after COMMIT got %q", got)
		}

		tx, err = c.BeginWithError()
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Send(dest, "text/plain", []byte("aborted")); err != nil {
			t.Fatal(err)
		}
		if err := tx.AbortWithReceipt(); err != nil {
			t.Fatal(err)
		}
		send(t, c, dest, "after-abort")
		if got := recvBody(t, sub); got != "after-abort" {
			t.Fatalf("got %q, want after-abort (aborted SEND must be dropped)", got)
		}

		d := goConnect(t, p, tr)
		tx, err = d.BeginWithError()
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Send(dest, "text/plain", []byte("never-committed")); err != nil {
			t.Fatal(err)
		}
		if err := d.Disconnect(); err != nil {
			t.Fatal(err)
		}
		send(t, c, dest, "after-disconnect")
		if got := recvBody(t, sub); got != "after-disconnect" {
			t.Fatalf("got %q, want after-disconnect (an open transaction dies with its connection)", got)
		}
	}},
	{"receipts", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		// A receipt means the SEND has taken effect: a consumer that
		// subscribes afterwards finds every message.
		dest := "/queue/receipts." + n
		pub := goConnect(t, p, tr)
		for i := range 20 {
			if err := pub.Send(dest, "text/plain", []byte(strconv.Itoa(i)), stomp.SendOpt.Receipt); err != nil {
				t.Fatalf("send %d with receipt: %v", i, err)
			}
		}
		// No barrier: the 20 waiting messages would fill go-stomp's
		// buffers before the barrier's RECEIPT could be read.
		sub, err := goConnect(t, p, tr).Subscribe(dest, stomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if got := recvBody(t, sub); got != strconv.Itoa(i) {
				t.Fatalf("got %q, want %d", got, i)
			}
		}
	}},
	{"binary-body", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		body := make([]byte, 0, 3*256+2)
		body = append(body, 0, 0)
		for range 3 {
			for b := range 256 {
				body = append(body, byte(b))
			}
		}
		for _, dest := range []string{"/topic/bin." + n, "/queue/bin." + n} {
			sub := subscribe(t, goConnect(t, p, tr), dest, stomp.AckAuto)
			if err := goConnect(t, p, tr).Send(dest, "application/octet-stream", body, stomp.SendOpt.Receipt); err != nil {
				t.Fatal(err)
			}
			m := recv(t, sub)
			if string(m.Body) != string(body) {
				t.Fatalf("%s: body of %d bytes came back as %d bytes, differing", dest, len(body), len(m.Body))
			}
			if m.ContentType != "application/octet-stream" {
				t.Errorf("content-type %q", m.ContentType)
			}
		}
	}},
	{"disconnect-receipt", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		c := goConnect(t, p, tr)
		start := time.Now()
		if err := c.Disconnect(); err != nil {
			t.Fatalf("Disconnect: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("DISCONNECT receipt took %v", d)
		}
	}},
	{"message-headers", func(t *testing.T, p *brokerProc, tr stompTransport, n string) {
		for _, dest := range []string{"/topic/hdr." + n, "/queue/hdr." + n} {
			c := goConnect(t, p, tr)
			sub := subscribe(t, c, dest, stomp.AckAuto, stomp.SubscribeOpt.Id("my-sub"))
			before := time.Now().UnixMilli()
			err := goConnect(t, p, tr).Send(dest, "application/json; charset=utf-8", []byte(`{"a":1}`),
				stomp.SendOpt.Receipt,
				stomp.SendOpt.Header("x-user", "hello world"),
				stomp.SendOpt.Header("x-colon", "a:b\\c"),
				stomp.SendOpt.Header("message-id", "client-chosen"),
				stomp.SendOpt.Header("subscription", "client-chosen"))
			if err != nil {
				t.Fatal(err)
			}
			m := recv(t, sub)
			h := m.Header
			checks := []struct{ key, want string }{
				{"destination", dest},
				{"subscription", "my-sub"},
				{"content-type", "application/json; charset=utf-8"},
				{"x-user", "hello world"},
				{"x-colon", "a:b\\c"},
				{"content-length", "7"},
			}
			for _, c := range checks {
				if got := h.Get(c.key); got != c.want {
					t.Errorf("%s: %s = %q, want %q", dest, c.key, got, c.want)
				}
			}
			if id := h.Get("message-id"); id == "" || id == "client-chosen" {
				t.Errorf("%s: message-id %q, want one set by the broker", dest, id)
			}
			if got := h.GetAll("message-id"); len(got) != 1 {
				t.Errorf("%s: message-id appears %d times: %v", dest, len(got), got)
			}
			if got := h.GetAll("subscription"); len(got) != 1 {
				t.Errorf("%s: subscription appears %d times: %v", dest, len(got), got)
			}
			ts, err := strconv.ParseInt(h.Get("timestamp"), 10, 64)
			if err != nil || ts < before-1000 || ts > time.Now().UnixMilli()+1000 {
				t.Errorf("%s: timestamp %q, want ms since epoch near now", dest, h.Get("timestamp"))
			}
		}
	}},
}
