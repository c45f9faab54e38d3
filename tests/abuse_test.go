package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// The abuse tests attack the real binary the way hostile or broken
// clients do, and check three things each time: the broker's memory and
// goroutines stay bounded, the attack is cut off, and a well-behaved
// client connected all along still gets its messages promptly. Bounds are
// generous: the binary runs with the race detector, which multiplies
// memory use, and CI machines are small and busy.

// abuseRTTLimit is the most a probe round trip may take during or after
// an attack: far above normal (milliseconds), far below "stuck".
const abuseRTTLimit = 3 * time.Second

// procSampler records the broker's peak resident memory and thread count
// from /proc while an attack runs.
type procSampler struct {
	pid        int
	stop, done chan struct{}
	mu         sync.Mutex
	maxRSS     int // KiB
	maxThreads int
	err        error
}

func sampleProc(p *brokerProc) *procSampler {
	s := &procSampler{pid: p.cmd.Process.Pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			rss, err1 := procStatus(s.pid, "VmRSS")
			threads, err2 := procStatus(s.pid, "Threads")
			s.mu.Lock()
			if err := errors.Join(err1, err2); err != nil && s.err == nil {
				s.err = err
			}
			s.maxRSS, s.maxThreads = max(s.maxRSS, rss), max(s.maxThreads, threads)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// finish stops sampling and returns the peaks.
func (s *procSampler) finish(t testing.TB) (rssKiB, threads int) {
	t.Helper()
	close(s.stop)
	<-s.done
	if s.err != nil {
		t.Fatalf("reading /proc/%d/status: %v", s.pid, s.err)
	}
	return s.maxRSS, s.maxThreads
}

// metric sums the samples of one family on the broker's /metrics.
func metric(t testing.TB, p *brokerProc, name string) float64 {
	t.Helper()
	client := http.Client{Timeout: waitFor}
	resp, err := client.Get(p.HTTPURL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
		found = true
	}
	if !found {
		t.Fatalf("/metrics has no %s", name)
	}
	return sum
}

// waitMetric polls until ok(metric) holds, for up to d.
func waitMetric(t testing.TB, p *brokerProc, name string, d time.Duration, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := metric(t, p, name)
		if ok(v) || time.Now().After(deadline) {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// probe is the well-behaved client: a go-stomp connection that publishes
// to a topic it subscribes to and times the round trip.
type probe struct {
	t    testing.TB
	c    *stomp.Conn
	sub  *stomp.Subscription
	dest string
	n    int
}

func newProbe(t testing.TB, p *brokerProc) *probe {
	t.Helper()
	pr := &probe{t: t, c: goConnect(t, p, tcpTransport), dest: "/topic/abuse.probe"}
	pr.sub = subscribe(t, pr.c, pr.dest, stomp.AckAuto)
	return pr
}

// rtt sends one message and returns how long it took to come back.
func (pr *probe) rtt() time.Duration {
	pr.t.Helper()
	pr.n++
	body := fmt.Sprintf("probe %d", pr.n)
	start := time.Now()
	if err := pr.c.Send(pr.dest, "text/plain", []byte(body)); err != nil {
		pr.t.Fatalf("probe send: %v", err)
	}
	for {
		select {
		case m, ok := <-pr.sub.C:
			if !ok || m.Err != nil {
				pr.t.Fatalf("probe subscription ended: %v", m)
			}
			if string(m.Body) != body {
				continue // a late answer to an earlier probe
			}
			d := time.Since(start)
			if d > abuseRTTLimit {
				pr.t.Errorf("probe round trip took %v (limit %v)", d, abuseRTTLimit)
			}
			return d
		case <-time.After(2 * abuseRTTLimit):
			pr.t.Fatalf("probe message did not come back within %v", 2*abuseRTTLimit)
		}
	}
}

// baseline is the broker at rest, before an attack.
type baseline struct {
	rss, threads int
	goroutines   float64
	rtt          time.Duration
}

func measureBaseline(t testing.TB, p *brokerProc, pr *probe) baseline {
	t.Helper()
	pr.rtt() // warm up
	var b baseline
	b.rtt = pr.rtt()
	var err error
	if b.rss, err = procStatus(p.cmd.Process.Pid, "VmRSS"); err != nil {
		t.Fatal(err)
	}
	if b.threads, err = procStatus(p.cmd.Process.Pid, "Threads"); err != nil {
		t.Fatal(err)
	}
	b.goroutines = metric(t, p, "go_goroutines")
	return b
}

// checkPeak fails when the peak RSS grew by more than limitMiB over the
// baseline, and logs the figures.
func checkPeak(t testing.TB, what string, base baseline, rss, threads, limitMiB int) {
	t.Helper()
	t.Logf("%s: RSS %d MiB at rest, peak %d MiB (+%d MiB, limit +%d); threads %d at rest, peak %d",
		what, base.rss>>10, rss>>10, (rss-base.rss)>>10, limitMiB, base.threads, threads)
	if rss-base.rss > limitMiB<<10 {
		t.Errorf("%s: RSS grew by %d MiB, more than %d MiB", what, (rss-base.rss)>>10, limitMiB)
	}
	if threads > base.threads+64 {
		t.Errorf("%s: threads grew from %d to %d", what, base.threads, threads)
	}
}

// checkSettled waits for the broker's goroutines to come back near the
// baseline once the attack is over.
func checkSettled(t testing.TB, p *brokerProc, base baseline, slack float64) {
	t.Helper()
	g := waitMetric(t, p, "go_goroutines", 10*time.Second, func(v float64) bool { return v <= base.goroutines+slack })
	t.Logf("goroutines: %v at rest, %v after", base.goroutines, g)
	if g > base.goroutines+slack {
		t.Errorf("goroutines stayed at %v after the attack; %v before", g, base.goroutines)
	}
}

// TestAbuseIdleConnections opens 2,000 connections (TCP and WebSocket)
// that never send CONNECT. Each must get an ERROR and be closed once
// --connect-timeout passes, and cost little while it lasts.
func TestAbuseIdleConnections(t *testing.T) {
	const (
		tcpConns      = 1800
		wsConns       = 200
		timeout       = 2 * time.Second
		perConnKiB    = 256 // race-detector builds use several times a plain build's memory
		goroutineSlop = 3   // a session's reader and writer, and some slack
	)
	p := startBroker(t, "--connect-timeout", timeout.String())
	pr := newProbe(t, p)
	base := measureBaseline(t, p, pr)
	s := sampleProc(p)

	start := time.Now()
	conns := make([]io.ReadWriteCloser, 0, tcpConns+wsConns)
	var d net.Dialer
	for range tcpConns {
		c, err := d.Dial("tcp", p.TCPAddr)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	for range wsConns {
		conns = append(conns, dialStream(t, p, wsTransport))
	}
	opened := time.Since(start)
	for _, c := range conns {
		t.Cleanup(func() { c.Close() })
	}
	rttDuring := pr.rtt()
	g := metric(t, p, "go_goroutines")
	n := metric(t, p, "stampede_connections")
	t.Logf("opened %d idle connections in %v; broker has %v connections and %v goroutines; probe %v (at rest %v)",
		len(conns), opened.Round(time.Millisecond), n, g, rttDuring, base.rtt)
	if g > base.goroutines+goroutineSlop*float64(len(conns)) {
		t.Errorf("%v goroutines for %d connections", g, len(conns))
	}

	// Each is told why and closed, soon after the timeout.
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		latest    time.Duration
		errs      int
		withError atomic.Int64
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if nc, ok := c.(net.Conn); ok {
				nc.SetReadDeadline(time.Now().Add(timeout + 15*time.Second))
			}
			data, err := io.ReadAll(c)
			closedAt := time.Since(start)
			if strings.Contains(string(data), "ERROR") && strings.Contains(string(data), "CONNECT") {
				withError.Add(1)
			}
			mu.Lock()
			defer mu.Unlock()
			latest = max(latest, closedAt)
			if err != nil && !errors.Is(err, net.ErrClosed) {
				errs++
			}
		}()
	}
	wg.Wait()
	rss, threads := s.finish(t)
	t.Logf("all closed by %v after the first dial; %d with the ERROR, %d read errors", latest.Round(time.Millisecond), withError.Load(), errs)
	if latest > opened+timeout+8*time.Second {
		t.Errorf("the last idle connection was closed %v after the first dial; timeout %v", latest, timeout)
	}
	if errs > 0 {
		t.Errorf("%d idle connections ended in a read error or timeout rather than a close", errs)
	}
	if int(withError.Load()) != len(conns) {
		t.Errorf("only %d of %d idle connections got an ERROR naming CONNECT", withError.Load(), len(conns))
	}
	checkPeak(t, "2,000 idle connections", base, rss, threads, len(conns)*perConnKiB>>10)
	if n := waitMetric(t, p, "stampede_connections", 10*time.Second, func(v float64) bool { return v <= 1 }); n > 1 {
		t.Errorf("broker still counts %v connections", n)
	}
	checkSettled(t, p, base, 20)
	t.Logf("probe after: %v", pr.rtt())
}

// garbage is deterministic junk: random bytes, newlines included, that
// no frame parser accepts for long.
func garbage(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// flood writes up to total bytes of chunk to w until a write fails, and
// returns how many bytes were accepted. It gives up after limit.
func flood(t testing.TB, w io.Writer, chunk []byte, total int64, limit time.Duration) int64 {
	t.Helper()
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for written.Load() < total {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the broker accepted all %d MiB", total>>20)
		}
	case <-time.After(limit):
		t.Fatalf("writing still blocked after %v with %d MiB accepted: the broker neither reads nor closes", limit, written.Load()>>20)
	}
	return written.Load()
}

// readError reads frames from r until the end and returns the first
// ERROR's message.
func readError(r io.Reader) chan string {
	out := make(chan string, 1)
	go func() {
		br := bufio.NewReader(r)
		msg := ""
		for {
			f, err := readRawFrame(br, nil)
			if err != nil {
				break
			}
			if f.Command == "ERROR" && msg == "" {
				msg = f.Value("message")
			}
		}
		out <- msg
	}()
	return out
}

// TestAbuseGarbage sends a GiB of random bytes, over TCP and WebSocket.
// The broker answers the first undecodable frame with an ERROR and stops
// reading, so only a few MiB (socket buffers, and what a closing
// connection drains) are ever accepted.
func TestAbuseGarbage(t *testing.T) {
	const (
		total       = 1 << 30
		acceptedMax = 64 << 20
	)
	p := startBroker(t)
	pr := newProbe(t, p)
	base := measureBaseline(t, p, pr)
	chunk := garbage(64 << 10)
	for _, tr := range stompTransports {
		t.Run(tr.name, func(t *testing.T) {
			s := sampleProc(p)
			c := dialStream(t, p, tr)
			errMsg := readError(c)
			start := time.Now()
			accepted := flood(t, c, chunk, total, 30*time.Second)
			elapsed := time.Since(start)
			var msg string
			select {
			case msg = <-errMsg:
			case <-time.After(waitFor):
				t.Errorf("the connection was not closed")
			}
			c.Close()
			rss, threads := s.finish(t)
			// Over WebSocket this counts whole 64 KiB messages only.
			t.Logf("%s: %d KiB of 1 GiB accepted in %v before the broker closed; ERROR %q", tr.name, accepted>>10, elapsed.Round(time.Millisecond), msg)
			if accepted > acceptedMax {
				t.Errorf("the broker accepted %d MiB of garbage; want under %d MiB", accepted>>20, acceptedMax>>20)
			}
			if msg == "" {
				t.Errorf("closed without an ERROR")
			}
			checkPeak(t, "1 GiB of garbage over "+tr.name, base, rss, threads, 64)
			t.Logf("probe after: %v", pr.rtt())
		})
	}
	checkSettled(t, p, base, 10)
}

// TestAbuseHugeFrame sends a 100 MiB SEND. It must be refused at the
// body limit (4 MiB by default), early, with the connection closed and
// nothing queued.
func TestAbuseHugeFrame(t *testing.T) {
	const (
		bodySize    = 100 << 20
		acceptedMax = 32 << 20
	)
	p := startBroker(t)
	pr := newProbe(t, p)
	base := measureBaseline(t, p, pr)
	cases := []struct {
		name string
		tr   stompTransport
		head string
	}{
		{"streamed over tcp", tcpTransport, "SEND\ndestination:/queue/abuse.big\nreceipt:r\n\n"},
		{"streamed over ws", wsTransport, "SEND\ndestination:/queue/abuse.big\nreceipt:r\n\n"},
		{"declared over tcp", tcpTransport, fmt.Sprintf("SEND\ndestination:/queue/abuse.big\nreceipt:r\ncontent-length:%d\n\n", bodySize)},
	}
	chunk := []byte(strings.Repeat("x", 64<<10))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := sampleProc(p)
			c := dialStream(t, p, tc.tr)
			raw := newRawClient(t, c)
			raw.connect()
			raw.write(tc.head)
			start := time.Now()
			accepted := flood(t, c, chunk, bodySize, 30*time.Second)
			elapsed := time.Since(start)
			frames := raw.expectClosed(waitFor)
			rss, threads := s.finish(t)
			var msg, receipt string
			for _, f := range frames {
				if f.Command == "ERROR" {
					msg, receipt = f.Value("message"), f.Value("receipt-id")
				}
			}
			t.Logf("%s: %d KiB of the 100 MiB body accepted in %v; ERROR %q", tc.name, accepted>>10, elapsed.Round(time.Millisecond), msg)
			if !strings.Contains(msg, "limit") || receipt != "r" {
				t.Errorf("ERROR %q with receipt-id %q; want one naming the limit, for receipt r", msg, receipt)
			}
			if accepted > acceptedMax {
				t.Errorf("accepted %d MiB of a frame over the 4 MiB limit", accepted>>20)
			}
			checkPeak(t, "100 MiB frame "+tc.name, base, rss, threads, 96)
		})
	}
	// Nothing of it was queued.
	c := goConnect(t, p, tcpTransport)
	sub := subscribe(t, c, "/queue/abuse.big", stomp.AckAuto)
	expectNothing(t, sub, 200*time.Millisecond)
	t.Logf("probe after: %v", pr.rtt())
	checkSettled(t, p, base, 10)
}

// TestAbuseManySubscriptions: the default limit of 1,024 subscriptions
// per connection is enforced with an ERROR naming it; raised, 10,000
// subscriptions on one connection work and cost no goroutines.
func TestAbuseManySubscriptions(t *testing.T) {
	subscribeMany := func(c *rawClient, n int) {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "SUBSCRIBE\nid:%d\ndestination:/topic/abuse.sub.%d\n", i, i)
			if i == n-1 {
				b.WriteString("receipt:last\n")
			}
			b.WriteString("\n\x00")
		}
		c.write(b.String())
	}

	t.Run("default limit", func(t *testing.T) {
		p := startBroker(t)
		c := dialRaw(t, p, tcpTransport)
		c.connect()
		subscribeMany(c, 1025)
		frames := c.expectClosed(waitFor)
		if len(frames) != 1 || frames[0].Command != "ERROR" {
			t.Fatalf("want one ERROR, got %v", frames)
		}
		msg := frames[0].Value("message")
		if !strings.Contains(msg, "subscription limit") || !strings.Contains(msg, "1024") {
			t.Errorf("ERROR %q does not name the limit", msg)
		}
		if frames[0].Value("receipt-id") != "last" {
			t.Errorf("ERROR is not for the 1,025th SUBSCRIBE: %s", frames[0])
		}
		t.Logf("1,025th subscription: %q", msg)
	})

	t.Run("10000 subscriptions", func(t *testing.T) {
		const n = 10000
		p := startBroker(t, "--max-subscriptions", strconv.Itoa(n))
		pr := newProbe(t, p)
		base := measureBaseline(t, p, pr)
		s := sampleProc(p)
		c := dialRaw(t, p, tcpTransport)
		c.connect()
		start := time.Now()
		subscribeMany(c, n)
		if f := c.expect("RECEIPT"); f.Value("receipt-id") != "last" {
			t.Fatalf("got %s", f)
		}
		took := time.Since(start)
		subs := metric(t, p, "stampede_topic_subscriptions")
		g := metric(t, p, "go_goroutines")
		rtt := pr.rtt()
		t.Logf("%d subscriptions in %v; broker counts %v topic subscriptions, %v goroutines; probe %v (at rest %v)", n, took.Round(time.Millisecond), subs, g, rtt, base.rtt)
		if subs < n {
			t.Errorf("broker counts %v subscriptions, want at least %d", subs, n)
		}
		if g > base.goroutines+10 {
			t.Errorf("subscriptions cost goroutines: %v, %v at rest", g, base.goroutines)
		}
		// The last one works, and the others still route.
		pub := goConnect(t, p, tcpTransport)
		send(t, pub, fmt.Sprintf("/topic/abuse.sub.%d", n-1), "to the last")
		if f := c.expect("MESSAGE"); string(f.Body) != "to the last" || f.Value("subscription") != strconv.Itoa(n-1) {
			t.Fatalf("got %s", f)
		}
		c.send("DISCONNECT", "", "receipt", "bye")
		c.expect("RECEIPT")
		c.expectClosed(waitFor)
		rss, threads := s.finish(t)
		checkPeak(t, "10,000 subscriptions", base, rss, threads, 192)
		if left := waitMetric(t, p, "stampede_topic_subscriptions", 5*time.Second, func(v float64) bool { return v <= 1 }); left > 1 {
			t.Errorf("%v subscriptions left after the connection closed", left)
		}
		checkSettled(t, p, base, 10)
	})
}

// TestAbuseStalledSubscriber publishes 100,000 messages to a topic and a
// queue that a connection subscribes to and never reads. The broker must
// cut that subscriber off, keep memory bounded, keep the publisher going
// at full speed, and keep serving the queue's healthy consumer.
func TestAbuseStalledSubscriber(t *testing.T) {
	const (
		total    = 100000
		bodySize = 256
	)
	p := startBroker(t, "--write-timeout", "60s")
	pr := newProbe(t, p)
	base := measureBaseline(t, p, pr)

	stalled := dialTinyReceiveBuffer(t, p.TCPAddr)
	defer stalled.Close()
	io.WriteString(stalled, encodeFrame("CONNECT", "", "accept-version", "1.2"))
	io.WriteString(stalled, encodeFrame("SUBSCRIBE", "", "id", "t", "destination", "/topic/abuse.fire"))
	io.WriteString(stalled, encodeFrame("SUBSCRIBE", "", "id", "q", "destination", "/queue/abuse.fire", "receipt", "ready"))
	sr := bufio.NewReader(stalled)
	stalled.SetReadDeadline(time.Now().Add(waitFor))
	for _, want := range []string{"CONNECTED", "RECEIPT"} {
		if f, err := readRawFrame(sr, nil); err != nil || f.Command != want {
			t.Fatalf("stalled subscriber setup: %v %v, want %s", f, err, want)
		}
	}
	// From here on it reads nothing.

	// The queue's healthy consumer.
	var consumed atomic.Int64
	cons := goConnect(t, p, tcpTransport)
	qsub := subscribe(t, cons, "/queue/abuse.fire", stomp.AckAuto)
	go func() {
		for m := range qsub.C {
			if m.Err != nil {
				return
			}
			consumed.Add(1)
		}
	}()

	s := sampleProc(p)
	pub := goConnect(t, p, tcpTransport)
	body := []byte(strings.Repeat("m", bodySize))
	start := time.Now()
	var worst time.Duration
	for i := range total {
		dest := "/topic/abuse.fire"
		if i%2 == 1 {
			dest = "/queue/abuse.fire"
		}
		if err := pub.Send(dest, "text/plain", body); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if i%20000 == 19999 {
			// Receipted now and then: the publisher is never held up
			// for long, and the probe still gets through.
			send(t, pub, "/topic/abuse.other", "sync")
			worst = max(worst, pr.rtt())
		}
	}
	send(t, pub, "/topic/abuse.other", "end")
	published := time.Since(start)
	rtt := pr.rtt()
	// The healthy consumer gets the queue's messages that the stalled
	// one did not take before it was cut off.
	if left := waitMetric(t, p, "stampede_queue_messages", 30*time.Second, func(v float64) bool { return v == 0 }); left != 0 {
		t.Errorf("%v messages still queued after 30 s with a healthy consumer", left)
	}
	rss, threads := s.finish(t)
	t.Logf("published %d x %d B in %v (%.0f msg/s); probe worst %v during, %v after (at rest %v); healthy queue consumer got %d of %d",
		total, bodySize, published.Round(time.Millisecond), float64(total)/published.Seconds(), worst, rtt, base.rtt, consumed.Load(), total/2)
	checkPeak(t, "stalled subscriber", base, rss, threads, 256)
	if consumed.Load() < total/4 {
		t.Errorf("the healthy queue consumer got only %d of %d messages", consumed.Load(), total/2)
	}

	// The stalled connection was cut off with an ERROR saying why.
	stalled.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got int
	var errMsg string
	for {
		f, err := readRawFrame(sr, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the stalled subscriber is still connected after %d messages", total)
			}
			break
		}
		if f.Command == "MESSAGE" {
			got++
		}
		if f.Command == "ERROR" {
			errMsg = f.Value("message")
		}
	}
	t.Logf("stalled subscriber: %d messages in flight before the ERROR %q", got, errMsg)
	if !strings.Contains(strings.ToLower(errMsg), "slow") {
		t.Errorf("stalled subscriber's ERROR %q does not say it was too slow", errMsg)
	}
	checkSettled(t, p, base, 10)
}

// TestAbuseSlowloris dribbles HTTP request headers a byte at a time on
// many connections. --read-header-timeout must close each one on time
// however steadily bytes arrive, while WebSocket clients keep connecting.
func TestAbuseSlowloris(t *testing.T) {
	const (
		conns   = 200
		timeout = 2 * time.Second
	)
	p := startBroker(t, "--read-header-timeout", timeout.String())
	pr := newProbe(t, p)
	base := measureBaseline(t, p, pr)
	s := sampleProc(p)
	addr := strings.TrimPrefix(p.HTTPURL, "http://")
	request := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Pad: " + strings.Repeat("a", 200) + "\r\n\r\n"

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lifetime []time.Duration
		sent     []int
	)
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			opened := time.Now()
			closed := make(chan struct{})
			go func() {
				c.SetReadDeadline(time.Now().Add(timeout + 20*time.Second))
				io.Copy(io.Discard, c)
				close(closed)
			}()
			n := 0
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
		dribble:
			for n < len(request) {
				select {
				case <-closed:
					break dribble
				case <-ctx.Done():
					return
				case <-tick.C:
					if _, err := c.Write([]byte{request[n]}); err != nil {
						break dribble
					}
					n++
				}
			}
			<-closed
			mu.Lock()
			lifetime = append(lifetime, time.Since(opened))
			sent = append(sent, n)
			mu.Unlock()
		}()
	}
	// Meanwhile, honest WebSocket clients get through.
	var worst time.Duration
	for range 3 {
		ws := goConnect(t, p, wsTransport)
		worst = max(worst, pr.rtt())
		ws.Disconnect()
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	rss, threads := s.finish(t)
	longest, fewest, most := time.Duration(0), len(request), 0
	for i, l := range lifetime {
		longest = max(longest, l)
		fewest, most = min(fewest, sent[i]), max(most, sent[i])
	}
	t.Logf("%d slowloris connections closed after at most %v, having sent %d-%d of %d header bytes; probe worst %v (at rest %v)",
		len(lifetime), longest.Round(time.Millisecond), fewest, most, len(request), worst, base.rtt)
	if longest > timeout+5*time.Second {
		t.Errorf("a dribbling connection lasted %v; --read-header-timeout is %v", longest, timeout)
	}
	if most >= len(request) {
		t.Errorf("a connection got its whole header through at one byte per 50 ms")
	}
	checkPeak(t, "slowloris", base, rss, threads, 64)
	checkSettled(t, p, base, 10)
}
