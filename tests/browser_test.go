package tests

import (
	"bytes"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// browserResults mirrors window.results of js/browser/app.js.
type browserResults struct {
	Done    bool                    `json:"done"`
	Error   string                  `json:"error"`
	Version string                  `json:"version"`
	Checks  map[string]browserCheck `json:"checks"`
	Events  []string                `json:"events"`
}

type browserCheck struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// TestBrowserSTOMPJS runs STOMP.js from its UMD bundle in headless Chromium,
// against the broker's /ws with the browser's own WebSocket, from a page on
// another loopback origin.
func TestBrowserSTOMPJS(t *testing.T) {
	bundle := filepath.Join(jsDeps, "@stomp", "stompjs", "bundles", "stomp.umd.js")
	if _, err := os.Stat(bundle); err != nil {
		missingTool(t, "tests/"+bundle, "(cd tests/js && npm ci)")
	}
	p := startBroker(t)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /stomp.umd.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, bundle)
	})
	mux.Handle("GET /", http.FileServer(http.Dir(filepath.Join("js", "browser"))))
	page := httptest.NewServer(mux) // listens on 127.0.0.1
	defer page.Close()

	br := startChromium(t, 90*time.Second, 1000, 700)
	browserCtx, consoleText := br.ctx, br.consoleText

	pageURL := page.URL + "/index.html?ws=" + url.QueryEscape(p.WSURL)
	if err := chromedp.Do(browserCtx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("navigating to %s: %v", pageURL, err)
	}

	// The page limits each of its steps to a few seconds; this covers all.
	var res browserResults
	deadline := time.Now().Add(45 * time.Second)
	for {
		r, err := chromedp.Run(browserCtx, chromedp.Evaluate[browserResults](`window.results`))
		if err != nil {
			t.Fatalf("reading window.results: %v\nconsole:\n%s", err, consoleText())
		}
		res = r
		if res.Done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	shot, err := chromedp.Run(browserCtx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("screenshot: %v", err)
	} else {
		checkPNG(t, shot)
	}

	if !res.Done {
		t.Fatalf("page did not finish in time; results so far: %+v\nconsole:\n%s", res, consoleText())
	}
	if res.Error != "" {
		t.Errorf("page failed: %s (events %v)\nconsole:\n%s", res.Error, res.Events, consoleText())
	}
	t.Logf("connected with STOMP %s", res.Version)
	if res.Version != "1.2 via v12.stomp" {
		t.Errorf("negotiated %q, want STOMP 1.2 via the v12.stomp subprotocol", res.Version)
	}
	for _, name := range []string{"roundtrip", "receipt", "ack", "nack", "binary"} {
		c, ok := res.Checks[name]
		switch {
		case !ok:
			t.Errorf("%s: not run", name)
		case !c.OK:
			t.Errorf("%s: failed: %s", name, c.Detail)
		default:
			t.Logf("%s: ok: %s", name, c.Detail)
		}
	}
}

// checkPNG asserts that the screenshot is a PNG with a real size and keeps
// it with the test's artifacts (go test -artifacts keeps them).
func checkPNG(t *testing.T, data []byte) {
	t.Helper()
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot is not a PNG (%d bytes)", len(data))
		return
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width == 0 || cfg.Height == 0 {
		t.Errorf("screenshot: bad PNG (%dx%d, %v)", cfg.Width, cfg.Height, err)
		return
	}
	out := filepath.Join(t.ArtifactDir(), "browser-stompjs.png")
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Errorf("saving screenshot: %v", err)
		return
	}
	t.Logf("screenshot %dx%d, %d bytes: %s", cfg.Width, cfg.Height, len(data), out)
}
