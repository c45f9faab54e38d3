package tests

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-stomp/stomp/v3"
)

// consolePage drives the admin console in headless Chromium.
type consolePage struct {
	*chromium
	t *testing.T
	p *brokerProc
}

// do runs actions, failing the test with the page's console on error.
func (c *consolePage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c.t.Fatalf("%s: %v\nbrowser console:\n%s", what, err, c.consoleText())
	}
}

// eval evaluates a JavaScript expression.
func evalJS[T any](c *consolePage, expr string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		c.t.Fatalf("evaluating %s: %v\nbrowser console:\n%s", expr, err, c.consoleText())
	}
	return v
}

// waitUntil polls a JavaScript condition until it holds.
func (c *consolePage) waitUntil(what, expr string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !evalJS[bool](c, "!!("+expr+")") {
		if time.Now().After(deadline) {
			c.t.Fatalf("waiting for %s: %s still false\nbrowser console:\n%s", what, expr, c.consoleText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// text reads the text of the element that a CSS selector matches ("" when none).
func (c *consolePage) text(sel string) string {
	c.t.Helper()
	return evalJS[string](c, fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel))
}

// waitText waits until the element's text is want.
func (c *consolePage) waitText(sel, want string) {
	c.t.Helper()
	c.waitUntil(fmt.Sprintf("%s to read %q (reads %q)", sel, want, c.text(sel)),
		fmt.Sprintf(`((document.querySelector(%q)||{}).textContent||"").trim() === %q`, sel, want))
}

// open navigates to a console path and waits for the page to render.
func (c *consolePage) open(path, page string) {
	c.t.Helper()
	c.do("opening "+path, chromedp.Navigate(c.p.HTTPURL+path))
	c.waitUntil(page+" page", fmt.Sprintf(`document.querySelector('main[data-page=%q]')`, page))
}

// confirm accepts the console's confirmation dialog.
func (c *consolePage) confirm() {
	c.t.Helper()
	c.waitUntil("the confirmation dialog", `document.getElementById('confirm').open`)
	c.do("confirming", chromedp.Click(chromedp.ID("confirm-ok")))
	c.waitUntil("the dialog to close", `!document.getElementById('confirm').open`)
}

// screenshot saves the whole page as a PNG in the test's artifacts and
// checks it is a real picture: the right size and more than a blank page.
func (c *consolePage) screenshot(name string) {
	c.t.Helper()
	// Charts and tables draw on timers; give them a frame.
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	data, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		c.t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	b := img.Bounds()
	if b.Dx() < 300 || b.Dy() < 300 {
		c.t.Errorf("screenshot %s is %dx%d", name, b.Dx(), b.Dy())
	}
	if n := distinctColors(img, 200); n < 20 {
		c.t.Errorf("screenshot %s has %d colours: the page looks blank", name, n)
	}
	out := filepath.Join(c.t.ArtifactDir(), name+".png")
	if err := os.WriteFile(out, data, 0o644); err != nil {
		c.t.Fatalf("saving screenshot: %v", err)
	}
	c.t.Logf("screenshot %s: %dx%d, %d bytes: %s", name, b.Dx(), b.Dy(), len(data), out)
}

// distinctColors counts colours on a grid of points, up to limit.
func distinctColors(img image.Image, limit int) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// startConsole starts Chromium and signs in to the broker's console.
func startConsole(t *testing.T, p *brokerProc) *consolePage {
	t.Helper()
	c := &consolePage{chromium: startChromium(t, 3*time.Minute, 1280, 860), t: t, p: p}
	c.do("laptop viewport", chromedp.EmulateViewport(1280, 860))

	// An unauthenticated visit lands on the login form.
	c.do("opening the console", chromedp.Navigate(p.HTTPURL+"/"))
	c.do("login form", chromedp.WaitVisible(chromedp.ID("username")))
	// No users configured: the page says how to get in.
	c.waitUntil("the guest/guest hint", `/guest/.test((document.getElementById('guest-hint')||{}).textContent)`)
	c.screenshot("login-laptop")
	c.do("signing in",
		chromedp.SendKeys(chromedp.ID("username"), "guest"),
		chromedp.SendKeys(chromedp.ID("password"), "guest"),
		chromedp.Click(chromedp.ID("signin")),
	)
	c.waitUntil("the overview after login", `document.querySelector('main[data-page="overview"]')`)
	c.waitText("#user", "guest")
	return c
}

// TestAdminBrowser signs in to the console and uses every page against the
// real broker, with STOMP clients on the other side to see the effects.
func TestAdminBrowser(t *testing.T) {
	p := startBroker(t)
	c := startConsole(t, p)

	const q = "/queue/admin-e2e"
	producer := goConnect(t, p, tcpTransport)
	for i := 1; i <= 3; i++ {
		send(t, producer, q, "order-"+strconv.Itoa(i), stomp.SendOpt.Header("x-order", strconv.Itoa(i)))
	}

	// Overview: figures filled in, and the live charts move.
	c.waitUntil("the rate chart", `document.querySelector('#chart-rates svg path.series')`)
	first := evalJS[string](c, `document.querySelector('#chart-rates svg').dataset.last`)
	points := evalJS[int](c, `+document.querySelector('#chart-conns svg').dataset.points`)
	for i := 0; i < 5; i++ {
		send(t, producer, "/topic/admin-e2e-chart", "tick")
		time.Sleep(300 * time.Millisecond)
	}
	c.waitUntil("the chart to move", fmt.Sprintf(`document.querySelector('#chart-rates svg').dataset.last !== %q && +document.querySelector('#chart-conns svg').dataset.points > %d`, first, points))
	c.waitUntil("the connection figure", `document.getElementById('f-conns').textContent.trim() !== '–'`)
	c.waitUntil("sessions by transport", `document.querySelector('#by-transport .bar-row')`)
	c.waitText("#f-conns", "1")
	c.screenshot("overview-laptop")

	// Destinations: the queue shows the depth STOMP put there.
	c.open("/admin/destinations", "destinations")
	c.waitText(fmt.Sprintf(`[data-depth=%q]`, q), "3")
	c.screenshot("destinations-laptop")

	// The queue's page: peek without consuming.
	c.do("opening the queue", chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[data-dest=%q]`, q))))
	c.waitUntil("the queue page", `document.querySelector('main[data-page="destination"]')`)
	c.waitText("#d-depth", "3")
	c.do("peek", chromedp.Click(chromedp.ID("peek")))
	c.waitUntil("three peeked messages", `document.getElementById('peek-list').dataset.count === '3'`)
	peeked := c.text("#peek-list")
	for i := 1; i <= 3; i++ {
		if !strings.Contains(peeked, "order-"+strconv.Itoa(i)) {
			t.Errorf("peek shows %q, want order-%d in it", peeked, i)
		}
	}
	if !strings.Contains(peeked, "x-order") {
		t.Errorf("peek shows no headers: %q", peeked)
	}

	// Live tail: a message sent now shows up while the queue keeps it.
	c.do("start tail", chromedp.Click(chromedp.ID("tail-toggle")))
	c.waitUntil("the tail to start", `document.getElementById('tail-list').dataset.ready === '1'`)
	send(t, producer, q, "tailed-message")
	c.waitUntil("the tailed message", `document.getElementById('tail-list').textContent.includes('tailed-message')`)
	c.waitText("#d-depth", "4")
	c.screenshot("destination-laptop")

	// Purge with the button: the depth drops to 0 and a consumer gets nothing.
	c.do("purge", chromedp.Click(chromedp.ID("purge")))
	c.confirm()
	c.waitText("#d-depth", "0")
	consumer := goConnect(t, p, tcpTransport)
	sub := subscribe(t, consumer, q, stomp.AckAuto)
	expectNothing(t, sub, 500*time.Millisecond)

	// Publish from the form: the consumer gets it, headers included.
	c.do("publish form",
		chromedp.SetValue(chromedp.ID("pub-body"), "from-the-console"),
		chromedp.Click(chromedp.ID("publish")),
	)
	m := recv(t, sub)
	if string(m.Body) != "from-the-console" || m.Header.Get("content-type") != "text/plain" {
		t.Errorf("published from the console: got %q with content-type %q", m.Body, m.Header.Get("content-type"))
	}

	// Connections: close one with the button; that client is disconnected.
	victim := goConnect(t, p, tcpTransport, stomp.ConnOpt.Header("client-id", "admin-e2e-victim"))
	victimSub := subscribe(t, victim, "/queue/admin-e2e-victim", stomp.AckAuto)
	c.open("/admin/connections", "connections")
	c.waitUntil("three connections listed", `document.querySelectorAll('#connections tbody button[data-close]').length === 3`)
	c.screenshot("connections-laptop")
	c.do("filter", chromedp.SendKeys(chromedp.ID("conn-filter"), "admin-e2e-victim"))
	c.waitUntil("the filter", `document.querySelectorAll('#connections tbody button[data-close]').length === 1`)
	c.do("close", chromedp.Click(chromedp.CSS(`#connections tbody button[data-close]`)))
	c.confirm()
	select {
	case m, ok := <-victimSub.C:
		if ok && m.Err == nil {
			t.Errorf("closed client got a message instead of an error: %q", m.Body)
		}
		if ok {
			t.Logf("closed client saw: %v", m.Err)
		}
	case <-time.After(waitFor):
		t.Fatal("the closed client was not disconnected")
	}
	c.waitUntil("the closed connection gone", `document.querySelector('#connections tbody .empty-state')`)

	// Subscriptions: the live consumer of the queue.
	c.open("/admin/subscriptions", "subscriptions")
	c.waitUntil("the queue's consumer", fmt.Sprintf(`document.getElementById('subscriptions').textContent.includes(%q)`, q))
	c.screenshot("subscriptions-laptop")

	// The same pages at phone width.
	c.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	c.open("/admin/", "overview")
	c.waitUntil("the rate chart", `document.querySelector('#chart-rates svg path.series')`)
	c.screenshot("overview-phone")
	c.open("/admin/connections", "connections")
	c.waitUntil("the table", `document.querySelector('#connections tbody tr td')`)
	c.screenshot("connections-phone")
	c.open("/admin/destinations", "destinations")
	c.waitText(fmt.Sprintf(`[data-depth=%q]`, q), "0")
	c.screenshot("destinations-phone")
	c.open("/admin/destinations/"+strings.ReplaceAll(q, "/", "%2F"), "destination")
	c.waitText("#d-depth", "0")
	c.screenshot("destination-phone")
	c.open("/admin/subscriptions", "subscriptions")
	c.waitUntil("the table", `document.querySelector('#subscriptions tbody tr td')`)
	c.screenshot("subscriptions-phone")

	// Signing out ends the session: the console sends us to the login form.
	c.do("sign out", chromedp.Click(chromedp.ID("logout")))
	c.waitUntil("the login form", `document.getElementById('username')`)
	c.do("reopening the console", chromedp.Navigate(p.HTTPURL+"/admin/"))
	c.waitUntil("the login form again", `document.getElementById('username')`)
}
