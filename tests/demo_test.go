package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// pageTraffic records what a tab asks the network for, and the WebSocket
// extensions its handshakes agreed on.
type pageTraffic struct {
	mu         sync.Mutex
	urls       []string
	extensions []string
}

// watchTraffic starts recording the traffic of the tab of ctx.
func watchTraffic(t *testing.T, ctx context.Context) *pageTraffic {
	t.Helper()
	tr := &pageTraffic{}
	err := chromedp.Listen(ctx, func(ev any) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			tr.urls = append(tr.urls, e.Request.URL)
		case *network.EventWebSocketCreated:
			tr.urls = append(tr.urls, e.URL)
		case *network.EventWebSocketHandshakeResponseReceived:
			ext := ""
			for k, v := range e.Response.Headers {
				if strings.EqualFold(k, "Sec-WebSocket-Extensions") {
					ext = fmt.Sprint(v)
				}
			}
			tr.extensions = append(tr.extensions, ext)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// foreign returns the URLs not on host.
func (tr *pageTraffic) foreign(host string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, raw := range tr.urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Host != host && u.Scheme != "data") {
			out = append(out, raw)
		}
	}
	return out
}

func (tr *pageTraffic) handshakes() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.extensions...)
}

// openDemo opens the demo page for room in the tab of ctx and waits until
// it is connected.
func openDemo(t *testing.T, p *brokerProc, tab *consolePage, base, room string) {
	t.Helper()
	tab.do("opening the demo", chromedp.Navigate(base+"/demo/?room="+room))
	tab.waitUntil("the demo to connect", `document.getElementById('status').dataset.state === 'connected'`)
}

// say types a line into the demo's form and presses Enter.
func say(tab *consolePage, text string) {
	tab.t.Helper()
	tab.do("saying "+text, chromedp.SendKeys(`input[name="message"]`, text+"\r"))
}

// waitLines waits until the tab shows every line in want, as "name: text".
func waitLines(tab *consolePage, want ...string) {
	tab.t.Helper()
	js := `[...document.querySelectorAll('#lines li')].map(li => li.querySelector('.from').textContent + ': ' + li.querySelector('.text').textContent)`
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := evalJS[[]string](tab, js)
		missing := 0
		for _, w := range want {
			if !containsString(got, w) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			tab.t.Fatalf("the demo shows %q, want %q among them\nbrowser console:\n%s", got, want, tab.consoleText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDemoChat opens /demo/?room=x in two Chromium tabs: each sees the
// other's lines, a line a plain STOMP client sends to /topic/demo.x shows
// in both, and neither tab loads anything from another host.
func TestDemoChat(t *testing.T) {
	p := startBroker(t)
	br := startChromium(t, 2*time.Minute, 1000, 720)
	a := &consolePage{chromium: br, t: t, p: p}
	tabCtx, closeTab := chromedp.NewContext(br.ctx)
	t.Cleanup(closeTab)
	b := &consolePage{chromium: &chromium{ctx: tabCtx}, t: t, p: p}
	host := strings.TrimPrefix(p.HTTPURL, "http://")
	trafficA, trafficB := watchTraffic(t, a.ctx), watchTraffic(t, b.ctx)

	openDemo(t, p, a, p.HTTPURL, "x")
	openDemo(t, p, b, p.HTTPURL, "x")
	a.do("naming tab A", chromedp.SetValue("#nick", "ada"))
	b.do("naming tab B", chromedp.SetValue("#nick", "bob"))
	say(a, "hello from tab A")
	say(b, "and hello from tab B")
	waitLines(a, "ada: hello from tab A", "bob: and hello from tab B")
	waitLines(b, "ada: hello from tab A", "bob: and hello from tab B")

	// Any STOMP client can join in.
	gs := goConnect(t, p, tcpTransport)
	send(t, gs, "/topic/demo.x", "a line from go-stomp")
	waitLines(a, "STOMP client: a line from go-stomp")
	waitLines(b, "STOMP client: a line from go-stomp")

	// Another room hears nothing of it.
	send(t, gs, "/topic/demo.y", "not for room x")
	time.Sleep(300 * time.Millisecond)
	if n := evalJS[int](a, `[...document.querySelectorAll('#lines .text')].filter(e => e.textContent === 'not for room x').length`); n != 0 {
		t.Error("a line sent to room y shows in room x")
	}

	for name, tr := range map[string]*pageTraffic{"A": trafficA, "B": trafficB} {
		if f := tr.foreign(host); len(f) > 0 {
			t.Errorf("tab %s loaded from other hosts: %q", name, f)
		}
		// Compression is off by default (see docs/compression.md).
		if hs := tr.handshakes(); len(hs) == 0 || hs[0] != "" {
			t.Errorf("tab %s: WebSocket handshakes agreed on extensions %q, want one with none", name, hs)
		}
	}
	a.screenshot("demo")
}

// TestDemoServesStompJS checks that the STOMP.js bundle inside the binary
// is the one the npm tests use, so the two cannot drift apart.
func TestDemoServesStompJS(t *testing.T) {
	npm := filepath.Join(jsDeps, "@stomp", "stompjs", "bundles", "stomp.umd.min.js")
	want, err := os.ReadFile(npm)
	if err != nil {
		missingTool(t, "tests/"+npm, "(cd tests/js && npm ci)")
	}
	p := startBroker(t)
	resp, err := http.Get(p.HTTPURL + "/demo/vendor/stomp.umd.min.js")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		t.Errorf("/demo/vendor/stomp.umd.min.js: %s, %d bytes; want the %d bytes of %s (copy it to web/demo/vendor/)",
			resp.Status, len(got), len(want), npm)
	}
	for path, ctype := range map[string]string{"/demo/": "text/html", "/demo/demo.js": "javascript", "/demo/demo.css": "text/css"} {
		resp, err := http.Get(p.HTTPURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %s, %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
}

// TestDemoAsksForLogin starts the broker with users configured: the page
// is refused as the guest, asks for a login, and then chats.
func TestDemoAsksForLogin(t *testing.T) {
	p := startSecured(t, exampleConfig(t), nil)
	br := startChromium(t, 2*time.Minute, 1000, 720)
	tab := &consolePage{chromium: br, t: t, p: p}
	tab.do("opening the demo", chromedp.Navigate(p.HTTPURL+"/demo/?room=members"))
	tab.waitUntil("the login form", `!document.getElementById('login').hidden`)
	tab.do("logging in",
		chromedp.SendKeys("#login-name", "alice"),
		chromedp.SendKeys("#login-pass", alicePass),
		chromedp.Click("#login-button"),
	)
	tab.waitUntil("the demo to connect", `document.getElementById('status').dataset.state === 'connected'`)
	tab.waitText("#status", "connected as alice")
	tab.do("naming", chromedp.SetValue("#nick", "alice"))
	say(tab, "members only")
	waitLines(tab, "alice: members only")
}
