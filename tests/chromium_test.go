package tests

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is a headless Chromium for one test, gathering the page's
// console output for failure messages. It is stopped when the test ends.
type chromium struct {
	ctx context.Context

	mu      sync.Mutex
	console []string
}

// startChromium starts the browser with a window of the given size; timeout
// bounds everything it does. Missing Chromium fails the test under CI.
func startChromium(t *testing.T, timeout time.Duration, width, height int) *chromium {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		missingTool(t, chromiumPath, "apt-get install -y chromium")
	}
	// When ctx ends, chromedp kills Chromium and removes the temporary
	// profile it made (no UserDataDir is given for that reason).
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// This machine's network is closed: background fetches only fail.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(width, height),
	)...)
	t.Cleanup(cancelAlloc) // waits for the browser process to exit
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	start := time.Now()
	if err := chromedp.Do(browserCtx); err != nil { // starts Chromium
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	c := &chromium{ctx: browserCtx}
	messages := chromedp.Console(browserCtx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.console = append(c.console, m.String())
			c.mu.Unlock()
		}
	}()
	return c
}

// consoleText is what the page logged so far.
func (c *chromium) consoleText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.console, "\n")
}
