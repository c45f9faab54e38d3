package tests

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// One connection naming new destinations once grew the broker without
// bound. With default flags, new queues stop at the queue limit with an
// ERROR naming it, topics nobody subscribes to cost nothing, and a fresh
// client is served as before.
func TestBoundedDestinations(t *testing.T) {
	const sends = 1_000_000
	p := startBroker(t)
	s := sampleProc(p)

	queueErr := mintNames(t, p, "/queue/many-", sends)
	if !strings.Contains(queueErr, "queues limit reached") {
		t.Errorf("minting queues ended with %q, want the queue limit's ERROR", queueErr)
	}
	if topicErr := mintNames(t, p, "/topic/many-", sends); topicErr != "" {
		t.Errorf("publishing to unsubscribed topics ended with %q", topicErr)
	}
	rss, _ := s.finish(t)
	t.Logf("after %d SENDs to new queues and %d to new topics: peak RSS %d MiB", sends, sends, rss>>10)
	// A plain build peaks near 120 MiB here (and grew past 1.4 GiB before
	// these bounds); the race detector this binary is built with takes
	// several times as much.
	if rss > 768<<10 {
		t.Errorf("peak RSS %d MiB, over 768 MiB", rss>>10)
	}
	topics := metric(t, p, "stampede_topic_subscriptions")
	if topics != 0 {
		t.Errorf("%v topic subscriptions", topics)
	}

	c := goConnect(t, p, tcpTransport)
	sub := subscribe(t, c, "/topic/fresh", stomp.AckAuto)
	send(t, c, "/topic/fresh", "hello")
	if got := recvBody(t, sub); got != "hello" {
		t.Fatalf("fresh client got %q", got)
	}
}

// mintNames sends n SENDs, each to prefix+i, on one connection without
// waiting for anything, then a receipted DISCONNECT; it returns the
// message of the ERROR that ended it early, if one did.
func mintNames(t *testing.T, p *brokerProc, prefix string, n int) string {
	t.Helper()
	rwc := dialStream(t, p, tcpTransport)
	defer rwc.Close()
	errc := make(chan string, 1)
	go func() {
		r := bufio.NewReaderSize(rwc, 64<<10)
		for {
			f, err := readRawFrame(r, nil)
			if err != nil {
				errc <- ""
				return
			}
			if f.Command == "ERROR" {
				errc <- f.Value("message")
				return
			}
			if f.Command == "RECEIPT" {
				errc <- ""
				return
			}
		}
	}()
	w := bufio.NewWriterSize(rwc, 64<<10)
	io.WriteString(w, encodeFrame("CONNECT", "", "accept-version", "1.2", "host", "/"))
	for i := range n {
		if _, err := fmt.Fprintf(w, "SEND\ndestination:%s%d\n\nx\x00", prefix, i); err != nil {
			break // closed after its ERROR
		}
	}
	io.WriteString(w, encodeFrame("DISCONNECT", "", "receipt", "done"))
	w.Flush()
	select {
	case msg := <-errc:
		return msg
	case <-time.After(2 * time.Minute):
		t.Fatalf("no end to %d SENDs to %s…", n, prefix)
		return ""
	}
}

// The memory alarm: over the watermark, publishers are paused (not read)
// while a consumer drains; once memory falls they resume, and nothing is
// lost or doubled.
func TestMemoryAlarm(t *testing.T) {
	const n, size = 150, 1 << 20
	p := startBroker(t, "--memory-high-watermark-bytes", fmt.Sprint(64<<20), "--max-transient-queue-bytes", "-1")
	pub := goConnect(t, p, tcpTransport)
	body := strings.Repeat("m", size)
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := pub.Send("/queue/alarm", "text/plain", []byte(fmt.Sprintf("%04d%s", i, body[4:])), stomp.SendOpt.Receipt); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if v := waitMetric(t, p, "stampede_memory_alarm", 60*time.Second, func(v float64) bool { return v == 1 }); v != 1 {
		t.Fatal("the memory alarm never went off")
	}
	select {
	case err := <-done:
		t.Fatalf("the publisher finished during the alarm: %v", err)
	default:
	}
	// While the queue fills, collections may clear the alarm for a moment
	// before it goes off again: /readyz must answer 503 while it is on,
	// which is seen by asking until it does.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(p.HTTPURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered 503 during the alarm (last: %v %v)", resp, err)
		}
	}

	cons := goConnect(t, p, tcpTransport)
	// A SEND would wait for the alarm: subscribe without subscribe()'s
	// barrier.
	sub, err := cons.Subscribe("/queue/alarm", stomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := recv(t, sub)
		if got := string(m.Body[:4]); got != fmt.Sprintf("%04d", i) {
			t.Fatalf("message %d is %s", i, got)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	if v := waitMetric(t, p, "stampede_memory_alarm", 30*time.Second, func(v float64) bool { return v == 0 }); v != 0 {
		t.Error("the memory alarm stayed on once the queue was drained")
	}
	expectNothing(t, sub, 200*time.Millisecond)
}
