package tests

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// The exhaust tests replay attacks that once stalled or grew the broker
// from one ordinary client, through the real binary, and check that a
// bound now holds it and that other clients carry on.

// A pattern of many "#" and "a" words against a long name of "a"s once
// took exponential time under the topic index's lock, stalling every
// other topic.
func TestExhaustWildcardPattern(t *testing.T) {
	const k = 40
	p := startBroker(t, "--max-wildcards", "64")
	pr := newProbe(t, p)
	base := measureBaseline(t, p, pr)

	attacker := dialRaw(t, p, tcpTransport)
	attacker.connect()
	pattern := "/topic/" + strings.Repeat("#.a.", k) + "z"
	attacker.send("SUBSCRIBE", "", "id", "x", "destination", pattern, "receipt", "s")
	attacker.expect("RECEIPT")
	name := "/topic/" + strings.TrimSuffix(strings.Repeat("a.", 100), ".")
	for i := range 20 {
		attacker.send("SEND", "", "destination", name, "receipt", fmt.Sprint(i))
		attacker.expect("RECEIPT")
	}
	var rtts []time.Duration
	for range 9 {
		rtts = append(rtts, pr.rtt())
	}
	slices.Sort(rtts)
	t.Logf("probe round trip with a %d-wildcard pattern bound: median %v (at rest %v)", 2*k, rtts[4], base.rtt)

	// At the default bound such a pattern is refused outright.
	q := startBroker(t)
	c := dialRaw(t, q, tcpTransport)
	c.connect()
	c.send("SUBSCRIBE", "", "id", "x", "destination", pattern)
	if e := c.expect("ERROR"); !strings.Contains(e.Value("message"), "wildcards") {
		t.Fatalf("ERROR %q does not name the wildcard limit", e.Value("message"))
	}
}

// A client that asks for receipts with long ids and never reads them once
// grew the broker by gigabytes: receipts were queued past the outbound
// bound.
func TestExhaustReceiptsUnread(t *testing.T) {
	p := startBroker(t, "--max-outbound-bytes", "1048576")
	pr := newProbe(t, p)
	base := measureBaseline(t, p, pr)
	s := sampleProc(p)

	conn := dialTinyReceiveBuffer(t, p.TCPAddr)
	defer conn.Close()
	w := bufio.NewWriter(conn)
	w.WriteString(encodeFrame("CONNECT", "", "accept-version", "1.2"))
	id := strings.Repeat("r", 60<<10)
	written := 0
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for i := range 4000 { // 240 MB of receipts if nothing held them back
		w.WriteString(encodeFrame("BEGIN", "", "transaction", "t", "receipt", fmt.Sprint(i, id)))
		w.WriteString(encodeFrame("ABORT", "", "transaction", "t"))
		if w.Flush() != nil {
			break // the broker stopped reading: what was asked
		}
		written++
	}
	rtt := pr.rtt()
	rss, threads := s.finish(t)
	t.Logf("wrote %d receipt requests before the broker stopped reading; probe %v", written, rtt)
	checkPeak(t, "unread receipts", base, rss, threads, 100)
	if written == 4000 {
		t.Error("the broker read every request although their receipts went unread")
	}
}

// Memory was bounded by counts, not bytes: a transaction, a large
// prefetch-count and an offline durable subscription each held
// gigabytes of large messages.
func TestExhaustBytesBounds(t *testing.T) {
	p := startBroker(t, "--max-transaction-bytes", "8388608", "--max-unacked-bytes", "8388608",
		"--max-transient-queue-bytes", "8388608", "--send-block-timeout", "1s")
	body := strings.Repeat("x", 1<<20)

	tx := dialRaw(t, p, tcpTransport)
	tx.connect()
	tx.send("BEGIN", "", "transaction", "t")
	for range 10 {
		// The broker closes the connection at the limit: later writes
		// may fail, which is what is wanted.
		io.WriteString(tx.rwc, encodeFrame("SEND", body, "destination", "/queue/tx", "transaction", "t"))
	}
	if e := tx.expect("ERROR"); !strings.Contains(e.Value("message"), "bytes held by transactions") {
		t.Fatalf("transaction: ERROR %q", e.Value("message"))
	}

	pub := dialRaw(t, p, tcpTransport)
	pub.connect()
	for i := range 20 {
		pub.send("SEND", body, "destination", "/queue/window", "persistent", "true", "receipt", fmt.Sprint(i))
		pub.expect("RECEIPT")
	}
	greedy := dialRaw(t, p, tcpTransport)
	greedy.connect()
	greedy.send("SUBSCRIBE", "", "id", "g", "destination", "/queue/window", "ack", "client-individual", "prefetch-count", "100000")
	got := 0
	for quiet := false; !quiet; {
		select {
		case f := <-greedy.frames:
			if f.Command == "MESSAGE" {
				got++
			}
		case <-time.After(time.Second):
			quiet = true
		}
	}
	t.Logf("a prefetch-count of 100000 received %d unacknowledged 1 MiB messages", got)
	if got < 1 || got > 9 {
		t.Errorf("received %d unacknowledged 1 MiB messages with an 8 MiB window", got)
	}

	away := dialRaw(t, p, tcpTransport)
	away.connect("client-id", "away")
	away.send("SUBSCRIBE", "", "id", "d", "destination", "/topic/feed", "durable", "true", "receipt", "s")
	away.expect("RECEIPT")
	away.send("DISCONNECT", "", "receipt", "bye")
	away.expect("RECEIPT")
	feeder := dialRaw(t, p, tcpTransport)
	feeder.connect()
	for i := range 20 {
		feeder.send("SEND", body, "destination", "/topic/feed", "receipt", fmt.Sprint(i))
		if f := feeder.next(); f.Command == "ERROR" {
			if !strings.Contains(f.Value("message"), "is full") {
				t.Fatalf("durable: ERROR %q", f.Value("message"))
			}
			t.Logf("the offline durable subscription stopped its feeder after %d 1 MiB messages", i)
			return
		}
	}
	t.Fatal("20 MiB of non-persistent messages went to an offline durable subscription bounded to 8 MiB")
}
