package tests

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"
)

// The edge tests attack what stands between the network and the broker's
// sessions: logins, the HTTP listener, the admin API and SockJS. Every
// client comes from loopback; a second loopback address (127.0.0.2) plays
// a client on another machine.

// otherHost is the address of "another machine": Linux routes all of
// 127.0.0.0/8 to the loopback interface.
const otherHost = "127.0.0.2"

// dialerFrom dials from the given local address.
func dialerFrom(host string) *net.Dialer {
	return &net.Dialer{Timeout: waitFor, LocalAddr: &net.TCPAddr{IP: net.ParseIP(host)}}
}

// httpClientFrom is an HTTP client whose connections come from host.
func httpClientFrom(host string) *http.Client {
	return &http.Client{
		Timeout:   waitFor,
		Transport: &http.Transport{DialContext: dialerFrom(host).DialContext},
	}
}

// guessLoop logs in as alice with a wrong passcode over and over until
// ctx ends, counting the answers.
func guessLoop(ctx context.Context, addr string, answers *atomic.Int64) {
	var d net.Dialer
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			continue
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		io.WriteString(c, encodeFrame("CONNECT", "", "accept-version", "1.2", "host", "/", "login", "alice", "passcode", "a guess"))
		c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := bufio.NewReader(c).ReadString(0); err == nil {
			answers.Add(1)
		}
		stop()
		c.Close()
	}
}

// waitUntil polls cond every 20 ms for up to d.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loginBound is how long a correct login may take while others guess:
// a few bcrypt checks of the race-enabled binary (about 2 s each on a
// busy 2-core machine), far below the minutes 200 queued guesses take.
const loginBound = 20 * time.Second

// TestEdgeLoginStarvation: 200 clients on one address guess alice's
// passcode as fast as the broker answers. A correct login from another
// address still gets in promptly, over STOMP and the admin API, and the
// guessing address is made to back off.
func TestEdgeLoginStarvation(t *testing.T) {
	p := startBroker(t, "--config", writeConfig(t, exampleConfig(t), nil))
	ctx, cancel := context.WithCancel(t.Context())
	var (
		wg      sync.WaitGroup
		answers atomic.Int64
	)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			guessLoop(ctx, p.TCPAddr, &answers)
		}()
	}
	defer wg.Wait()
	defer cancel()
	waitUntil(t, time.Minute, "the first answers to the guesses", func() bool { return answers.Load() >= 3 })

	start := time.Now()
	conn, err := dialerFrom(otherHost).Dial("tcp", p.TCPAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := newRawClient(t, conn)
	c.send("CONNECT", "", "accept-version", "1.2", "host", "/", "login", "alice", "passcode", alicePass)
	select {
	case f := <-c.frames:
		if f.Command != "CONNECTED" {
			t.Fatalf("alice from elsewhere: %s", f)
		}
	case <-c.done:
		t.Fatalf("alice from elsewhere: connection closed: %v", c.err)
	case <-time.After(loginBound):
		t.Fatalf("alice from elsewhere: no answer within %v", loginBound)
	}
	stomp := time.Since(start)

	start = time.Now()
	req, err := http.NewRequest("GET", p.HTTPURL+"/api/v1/overview", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("orders", ordersPass) // not remembered yet: a full check
	client := httpClientFrom(otherHost)
	client.Timeout = loginBound
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("admin API during the guessing: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("admin API as orders: %s, want 403", resp.Status)
	}
	t.Logf("with %d guesses answered, a STOMP login from elsewhere took %v, an API login %v",
		answers.Load(), stomp.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The guessing address backs off: it is refused even with the
	// right passcode, and the log says why.
	waitUntil(t, time.Minute, "backoff", func() bool { return strings.Contains(p.Logs(), "failed logins from this address") })
	_, f := tryConnect(t, p, tcpTransport, "login", "orders", "passcode", ordersPass)
	expectRefused(t, f, "access refused")
}

// TestEdgeCrossSiteWrites: a page of another site makes the admin's
// browser post to the API with the Basic credentials it has cached (as
// Chromium did): a text/plain form, and a no-cors fetch. Neither changes
// anything; a script's JSON request still does.
func TestEdgeCrossSiteWrites(t *testing.T) {
	p := startBroker(t)
	a := adminClient{t: t, base: p.HTTPURL}
	const path = "/api/v1/destinations/%2Fqueue%2Fedge.csrf/messages"
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"a text/plain form", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}, http.StatusUnsupportedMediaType},
		{"a url-encoded form from an old browser", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}, http.StatusUnsupportedMediaType},
		{"a fetch claiming JSON", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"a fetch from a sibling site", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
	} {
		req, err := http.NewRequest("POST", p.HTTPURL+path, strings.NewReader(`{"body": "forged"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("guest", "guest")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.want)
		}
	}
	var d adminDestination
	a.json("POST", path, `{"body": "from a script"}`, http.StatusCreated, nil)
	a.json("GET", "/api/v1/destinations/%2Fqueue%2Fedge.csrf", "", http.StatusOK, &d)
	if d.Depth != 1 {
		t.Fatalf("queue depth %d, want 1: only the script's message", d.Depth)
	}
}

// getAs sends GET path to p with the given Host header, as guest when
// basic is set, and returns the status.
func getAs(t testing.TB, p *brokerProc, host, path string, basic bool) int {
	t.Helper()
	req, err := http.NewRequest("GET", p.HTTPURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if basic {
		req.SetBasicAuth("guest", "guest")
	}
	resp, err := (&http.Client{Timeout: waitFor}).Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// wsAs opens a STOMP WebSocket to p as a page at origin would, with the
// given Host header; it returns the handshake's HTTP status.
func wsAs(t testing.TB, p *brokerProc, host, origin string) int {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitFor, Subprotocols: []string{"v12.stomp"}}
	h := http.Header{"Host": {host}, "Origin": {origin}}
	c, resp, err := d.Dial(p.WSURL, h)
	if err == nil {
		c.Close()
	}
	if resp == nil {
		t.Fatalf("WebSocket with Host %s: %v", host, err)
	}
	return resp.StatusCode
}

// TestEdgeDNSRebinding: a page on rebind.evil.example, whose name now
// points at 127.0.0.1, is the broker's own origin to the browser. While
// the loopback guest is on, the broker answers only to names that cannot
// be rebound, or that the operator allows; with users configured it does
// not care.
func TestEdgeDNSRebinding(t *testing.T) {
	p := startBroker(t)
	_, port := splitURL(t, p.HTTPURL)
	evil := "rebind.evil.example:" + port
	for _, path := range []string{"/api/v1/overview", "/admin/", "/sockjs/info", "/metrics"} {
		if got := getAs(t, p, evil, path, true); got != http.StatusForbidden {
			t.Errorf("GET %s for %s: %d, want 403", path, evil, got)
		}
	}
	if got := wsAs(t, p, evil, "http://"+evil); got != http.StatusForbidden {
		t.Errorf("WebSocket for %s: %d, want 403", evil, got)
	}
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "app.localhost:" + port} {
		if got := getAs(t, p, host, "/api/v1/overview", true); got != http.StatusOK {
			t.Errorf("GET for %s: %d, want 200", host, got)
		}
		if got := wsAs(t, p, host, "http://"+host); got != http.StatusSwitchingProtocols {
			t.Errorf("WebSocket for %s: %d, want 101", host, got)
		}
	}
	waitForLog(t, p, "unknown host name")

	allowed := startBroker(t, "--allowed-hosts", "broker.example.com, rebind.evil.example")
	_, port = splitURL(t, allowed.HTTPURL)
	if got := getAs(t, allowed, "rebind.evil.example:"+port, "/api/v1/overview", true); got != http.StatusOK {
		t.Errorf("an allowed host name: %d, want 200", got)
	}

	users := startSecured(t, exampleConfig(t), nil)
	_, port = splitURL(t, users.HTTPURL)
	if got := wsAs(t, users, "rebind.evil.example:"+port, "http://rebind.evil.example:"+port); got != http.StatusSwitchingProtocols {
		t.Errorf("with users configured, any host name: %d, want 101", got)
	}
}

// splitURL returns the host and port of a http://host:port URL.
func splitURL(t testing.TB, u string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// stalledBody sends a POST to path announcing length body bytes, writes
// up to sent of them (less if the broker stops reading) and leaves the
// connection open. It returns the connection.
func stalledBody(t testing.TB, addr, path string, length, sent int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n[\"", path, addr, length)
	chunk := []byte(strings.Repeat("x", 64<<10))
	c.SetWriteDeadline(time.Now().Add(2 * waitFor))
	for n := 2; n < sent; n += len(chunk) {
		if _, err := c.Write(chunk[:min(len(chunk), sent-n)]); err != nil {
			break // refused: the broker stopped reading
		}
	}
	return c
}

// openSockJS opens an xhr-polling SockJS session and returns its URL
// path (/sockjs/000/ID).
func openSockJS(t testing.TB, p *brokerProc, id string) string {
	t.Helper()
	path := "/sockjs/000/" + id
	resp, err := (&http.Client{Timeout: waitFor}).Post(p.HTTPURL+path+"/xhr", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "o" {
		t.Fatalf("opening SockJS session %s: %s %q", id, resp.Status, body)
	}
	return path
}

// TestEdgeSockJSPreAuthMemory: before logging in, SockJS clients send
// 100 send requests and 60 WebSocket messages of nearly the largest size
// and stall before their last bytes. The broker must not buffer them:
// requests for sessions that do not exist are not read, one address's
// unfinished ones together stay within its share, and what stalls is
// dropped after --sockjs-read-timeout.
func TestEdgeSockJSPreAuthMemory(t *testing.T) {
	const (
		length = 8_000_000 // under twice the largest frame, as sockjs-client could send
		sent   = length - 100_000
	)
	p := startBroker(t)
	pr := newProbe(t, p)
	base := measureBaseline(t, p, pr)
	addr := strings.TrimPrefix(p.HTTPURL, "http://")
	s := sampleProc(p)
	var wg sync.WaitGroup
	stalled := func(n int, f func(i int) net.Conn) []net.Conn {
		conns := make([]net.Conn, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conns[i] = f(i)
			}()
		}
		wg.Wait()
		return conns
	}

	// No session behind them.
	stalled(100, func(i int) net.Conn {
		return stalledBody(t, addr, fmt.Sprintf("/sockjs/000/none%d/xhr_send", i), length, sent)
	})
	pr.rtt()
	// Sessions opened for the purpose.
	sends := stalled(100, func(i int) net.Conn {
		return stalledBody(t, addr, openSockJS(t, p, fmt.Sprintf("open%d", i))+"/xhr_send", length, sent)
	})
	pr.rtt()
	// SockJS WebSockets, with a message begun.
	wsURL := strings.Replace(p.WSURL, "/ws", "/sockjs/000/", 1)
	sockets := stalled(60, func(i int) net.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(wsURL+fmt.Sprintf("ws%d/websocket", i), nil)
		if err != nil {
			t.Errorf("SockJS WebSocket: %v", err)
			return nil
		}
		t.Cleanup(func() { ws.Close() })
		c := ws.UnderlyingConn()
		hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // text, masked with zeros
		binary.BigEndian.PutUint64(hdr[2:10], length)
		c.SetWriteDeadline(time.Now().Add(2 * waitFor))
		if _, err := c.Write(append(hdr, `["`...)); err != nil {
			return c
		}
		chunk := []byte(strings.Repeat("w", 64<<10))
		for n := 2; n < sent; n += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				break
			}
		}
		return c
	})
	pr.rtt()
	rss, threads := s.finish(t)
	// 32 MiB of pending bytes, several times over under the race
	// detector; without the bounds it was gigabytes.
	checkPeak(t, "stalled SockJS sends", base, rss, threads, 300)

	// Whatever was still held is dropped within the read timeout.
	for i, c := range append(sends, sockets...) {
		if c == nil {
			continue
		}
		c.SetReadDeadline(time.Now().Add(10*time.Second + 2*waitFor))
		// EOF or a reset: either way the broker let go.
		if _, err := io.Copy(io.Discard, c); isTimeout(err) {
			t.Fatalf("stalled SockJS client %d was not dropped: %v", i, err)
		}
	}
	pr.rtt()
	checkSettled(t, p, base, 10)
}

// idleHTTPConn opens a connection to addr, makes one keep-alive request
// on it and leaves it idle. It returns the connection, or nil if the
// broker closed it without an answer.
func idleHTTPConn(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	c.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil
	}
	resp.Body.Close()
	return c
}

// stompOverWSFrom logs in over WebSocket from host and returns the
// CONNECTED frame's command.
func stompOverWSFrom(t testing.TB, p *brokerProc, host string) string {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: waitFor, Subprotocols: []string{"v12.stomp"}, NetDialContext: dialerFrom(host).DialContext}
	ws, _, err := d.Dial(p.WSURL, nil)
	if err != nil {
		t.Fatalf("WebSocket from %s: %v", host, err)
	}
	defer ws.Close()
	ws.WriteMessage(websocket.TextMessage, []byte(encodeFrame("CONNECT", "", "accept-version", "1.2", "host", "/")))
	ws.SetReadDeadline(time.Now().Add(waitFor))
	_, m, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("WebSocket from %s: %v", host, err)
	}
	f, err := parseRawFrame(m)
	if err != nil {
		t.Fatal(err)
	}
	return f.Command
}

// TestEdgeIdleHTTPConnections: one address opens more keep-alive HTTP
// connections than it may and leaves them idle. Those over the bound are
// closed at once, clients elsewhere are served meanwhile, and the idle
// ones are closed after --http-idle-timeout, which lets the address in
// again.
func TestEdgeIdleHTTPConnections(t *testing.T) {
	const (
		perIP = 200
		idle  = 2 * time.Second
	)
	p := startBroker(t, "--max-http-connections-per-ip", fmt.Sprint(perIP), "--http-idle-timeout", idle.String())
	pr := newProbe(t, p)
	addr := strings.TrimPrefix(p.HTTPURL, "http://")
	var open []net.Conn
	refused := 0
	for range perIP + 100 {
		if c := idleHTTPConn(t, addr); c != nil {
			open = append(open, c)
		} else {
			refused++
		}
	}
	if len(open) != perIP || refused != 100 {
		t.Fatalf("%d idle connections kept, %d refused; want %d and 100", len(open), refused, perIP)
	}
	if got := stompOverWSFrom(t, p, otherHost); got != "CONNECTED" {
		t.Fatalf("WebSocket from another address: %s", got)
	}
	pr.rtt()

	start := time.Now()
	for _, c := range open {
		c.SetReadDeadline(time.Now().Add(idle + 2*waitFor))
		if n, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("an idle keep-alive connection is still open after %v (read %d, %v)", time.Since(start), n, err)
		}
	}
	t.Logf("idle connections closed within %v", time.Since(start).Round(time.Millisecond))
	if got := stompOverWSFrom(t, p, "127.0.0.1"); got != "CONNECTED" {
		t.Fatalf("WebSocket once the idle connections are gone: %s", got)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestEdgeMetricsNameNoClientQueues: the open /metrics does not name a
// client's temporary queue (its replies could be read or spoofed) nor a
// durable subscription (its client-id and name); they are summed.
func TestEdgeMetricsNameNoClientQueues(t *testing.T) {
	p := startBroker(t)
	owner := goConnect(t, p, tcpTransport, stomp.ConnOpt.Header("client-id", "alices-laptop"))
	subscribe(t, owner, "/topic/edge.news", stomp.AckAuto,
		stomp.SubscribeOpt.Id("secret-plans"), stomp.SubscribeOpt.Header("durable", "true"))
	requester := goConnect(t, p, tcpTransport)
	send(t, requester, "/queue/edge.work", "question", stomp.SendOpt.Header("reply-to", "/temp-queue/answers"))
	work := goConnect(t, p, tcpTransport)
	sub := subscribe(t, work, "/queue/edge.work", stomp.AckAuto)
	replyTo := recv(t, sub).Header.Get("reply-to")
	if !strings.Contains(replyTo, "answers") {
		t.Fatalf("reply-to %q", replyTo)
	}

	resp, err := http.Get(p.HTTPURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, secret := range []string{replyTo, "answers", "alices-laptop", "secret-plans"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("/metrics names %q", secret)
		}
	}
	for _, sum := range []string{`stampede_queue_messages{queue="temporary"}`, `stampede_queue_messages{queue="durable"}`,
		`stampede_queue_messages{queue="/queue/edge.work"}`} {
		if !strings.Contains(string(body), sum+" ") {
			t.Errorf("/metrics has no %s", sum)
		}
	}
}

// consoleLogin signs in with the console's form and returns the session
// cookie.
func consoleLogin(t testing.TB, p *brokerProc) *http.Cookie {
	t.Helper()
	form := url.Values{"username": {"guest"}, "password": {"guest"}}
	req, err := http.NewRequest("POST", p.HTTPURL+"/admin/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	c := &http.Client{Timeout: waitFor, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "stampede_session" {
			return ck
		}
	}
	t.Fatalf("login: %s, no session cookie", resp.Status)
	return nil
}

// TestEdgeSecureCookie: behind a proxy that terminates TLS the broker
// sees plain HTTP; --secure-cookie still keeps the browser from ever
// sending the session cookie unencrypted.
func TestEdgeSecureCookie(t *testing.T) {
	if ck := consoleLogin(t, startBroker(t)); ck.Secure {
		t.Errorf("plain HTTP without --secure-cookie: the cookie is Secure, which browsers refuse off localhost")
	}
	if ck := consoleLogin(t, startBroker(t, "--secure-cookie")); !ck.Secure || !ck.HttpOnly {
		t.Errorf("--secure-cookie: cookie %v", ck)
	}
}
