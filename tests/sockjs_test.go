package tests

import (
	"bytes"
	"encoding/json"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The SockJS scenarios live in js/sockjs-*.mjs: STOMP.js with sockjs-client
// in node, one SockJS transport forced per run. sockjs-client in node has
// websocket, xhr-streaming, xhr-polling and eventsource (through the
// eventsource package); htmlfile, jsonp-polling and the iframe transports
// need a DOM and are covered by TestSockJSBrowser and the subprotocol
// package's raw HTTP tests.

func TestSockJSNode(t *testing.T) {
	for _, tr := range []string{"xhr-streaming", "xhr-polling", "eventsource", "websocket"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			p := startBroker(t)
			res := runSockJSScenario(t, p, "sockjs-roundtrip", tr)
			t.Logf("%v messages in %v ms", res["messages"], res["ms"])
		})
	}
}

// TestSockJSVanishedClient: a client on xhr-polling whose requests stop
// arriving holds three unacked queue messages; once the SockJS session
// times out they go to the other consumer.
func TestSockJSVanishedClient(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	p := startBroker(t, "--sockjs-disconnect-delay", delay.String(), "--sockjs-heartbeat", "500ms")
	res := runSockJSScenario(t, p, "sockjs-vanish", "xhr-polling")
	after, _ := res["redeliveredAfterMs"].(float64)
	// The poll in flight ends with the next SockJS heart-beat, then the
	// session has the disconnect delay to live.
	if time.Duration(after)*time.Millisecond < delay {
		t.Errorf("messages redelivered %v ms after the client vanished, before the %v session timeout", after, delay)
	}
	t.Logf("redelivered %v ms after the client vanished", after)
}

// requireSockJSClient returns node, with sockjs-client installed too.
func requireSockJSClient(t *testing.T) string {
	t.Helper()
	node := requireNode(t)
	if _, err := os.Stat(filepath.Join(jsDeps, "sockjs-client", "package.json")); err != nil {
		missingTool(t, "tests/"+jsDeps+"/sockjs-client", "(cd tests/js && npm ci)")
	}
	return node
}

// runSockJSScenario runs js/NAME.mjs against p's /sockjs with transport
// forced and returns its result line.
func runSockJSScenario(t *testing.T, p *brokerProc, name, transport string) map[string]any {
	t.Helper()
	node := requireSockJSClient(t)
	// The script's own limit is 30 s; this also covers node's start-up.
	res := runNodeScript(t, node, 60*time.Second, name, p.HTTPURL+"/sockjs", transport)
	if res["transport"] != transport {
		t.Fatalf("js/%s.mjs ran over %v, want %s", name, res["transport"], transport)
	}
	return res
}

// TestSockJSBrowser runs STOMP.js over sockjs-client in headless Chromium,
// from a page on another loopback origin, once per HTTP transport with
// WebSocket not allowed. The page is cross-origin, and sockjs-client
// makes credentialed XHR requests then, hence --sockjs-credentials.
func TestSockJSBrowser(t *testing.T) {
	t.Parallel()
	stompBundle := filepath.Join(jsDeps, "@stomp", "stompjs", "bundles", "stomp.umd.js")
	sockjsBundle := filepath.Join(jsDeps, "sockjs-client", "dist", "sockjs.min.js")
	for _, f := range []string{stompBundle, sockjsBundle} {
		if _, err := os.Stat(f); err != nil {
			missingTool(t, "tests/"+f, "(cd tests/js && npm ci)")
		}
	}
	p := startBroker(t, "--sockjs-credentials")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /stomp.umd.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, stompBundle) })
	mux.HandleFunc("GET /sockjs.min.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, sockjsBundle) })
	mux.Handle("GET /", http.FileServer(http.Dir(filepath.Join("js", "browser"))))
	page := httptest.NewServer(mux)
	defer page.Close()

	br := startChromium(t, 150*time.Second, 1000, 700)
	browserCtx, consoleText := br.ctx, br.consoleText

	transports := []string{"xhr-streaming", "xhr-polling", "eventsource", "jsonp-polling"}
	pageURL := page.URL + "/sockjs.html?sockjs=" + url.QueryEscape(p.HTTPURL+"/sockjs") + "&transports=" + strings.Join(transports, ",")
	if err := chromedp.Do(browserCtx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("navigating to %s: %v", pageURL, err)
	}

	type check struct {
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	}
	var res struct {
		Done   bool             `json:"done"`
		Error  string           `json:"error"`
		Checks map[string]check `json:"checks"`
	}
	// The page bounds each step; four transports fit well within this.
	deadline := time.Now().Add(100 * time.Second)
	for {
		r, err := chromedp.Run(browserCtx, chromedp.Evaluate[json.RawMessage](`window.results`))
		if err != nil {
			t.Fatalf("reading window.results: %v\nconsole:\n%s", err, consoleText())
		}
		if err := json.Unmarshal(r, &res); err != nil {
			t.Fatalf("window.results: %v", err)
		}
		if res.Done || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	shot, err := chromedp.Run(browserCtx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot: %v", err)
	} else {
		passed := res.Done && res.Error == ""
		for _, tr := range transports {
			passed = passed && res.Checks[tr].OK
		}
		checkSockJSScreenshot(t, shot, passed)
	}

	if !res.Done {
		t.Fatalf("page did not finish in time; results so far: %+v\nconsole:\n%s", res, consoleText())
	}
	if res.Error != "" {
		t.Errorf("page failed: %s\nconsole:\n%s", res.Error, consoleText())
	}
	for _, tr := range transports {
		c, ok := res.Checks[tr]
		switch {
		case !ok:
			t.Errorf("%s: not run", tr)
		case !c.OK:
			t.Errorf("%s: failed: %s\nconsole:\n%s", tr, c.Detail, consoleText())
		default:
			t.Logf("%s: ok: %s", tr, c.Detail)
		}
	}
}

// checkSockJSScreenshot keeps the screenshot with the test's artifacts and
// checks that it shows what the page reported: the banner, 120 pixels
// high across the page, is green (#1e8e3e) only when every transport
// passed.
func checkSockJSScreenshot(t *testing.T, data []byte, passed bool) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Errorf("screenshot is not a PNG: %v", err)
		return
	}
	out := filepath.Join(t.ArtifactDir(), "browser-sockjs.png")
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Errorf("saving screenshot: %v", err)
	}
	b := img.Bounds()
	green := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 == 0x1e && g>>8 == 0x8e && bl>>8 == 0x3e {
				green++
			}
		}
	}
	// Most of a 1000×120 banner; its text takes some pixels.
	shows := green > 60000
	t.Logf("screenshot %dx%d, %d green banner pixels: %s", b.Dx(), b.Dy(), green, out)
	if shows != passed {
		t.Errorf("screenshot shows the success banner: %v, but the page reported success: %v", shows, passed)
	}
}
