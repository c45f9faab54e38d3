package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNodeSTOMPJSCompression runs STOMP.js in node (ws offers
// permessage-deflate on every connection) against the broker with and
// without --ws-compression, and measures the subscriber's bytes on the
// wire for 200 JSON messages of about 540 bytes.
func TestNodeSTOMPJSCompression(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	for _, tc := range []struct {
		name      string
		args      []string
		extension string
		maxRatio  float64 // wire bytes per body byte
	}{
		{"off", nil, "", 1.5},
		{"on", []string{"--ws-compression"}, "permessage-deflate", 0.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startBroker(t, tc.args...)
			res := runNodeScript(t, node, 40*time.Second, "compression", p.WSURL)
			if got, _ := res["extensions"].(string); got != tc.extension {
				t.Errorf("negotiated extensions %q, want %q", got, tc.extension)
			}
			ratio, _ := res["ratio"].(float64)
			if ratio <= 0 || ratio > tc.maxRatio {
				t.Errorf("%v wire bytes for %v body bytes (ratio %.3f), want a ratio of at most %.2f",
					res["wire_bytes"], res["body_bytes"], ratio, tc.maxRatio)
			}
			if tc.extension == "" && ratio < 1 {
				t.Errorf("ratio %.3f without compression: the bodies cannot have gone out whole", ratio)
			}
			t.Logf("compression %s: %v body bytes took %v bytes on the wire (%.0f%%)",
				tc.name, res["body_bytes"], res["wire_bytes"], 100*ratio)
		})
	}
}

// TestWSCompressionChromium opens the demo page in Chromium through a
// proxy that counts the bytes coming from the broker, with and without
// --ws-compression, and sends the room 200 JSON messages of about 540
// bytes from go-stomp.
func TestWSCompressionChromium(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		extension string
		maxRatio  float64
	}{
		{"off", nil, "", 1.5},
		{"on", []string{"--ws-compression"}, "permessage-deflate", 0.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startBroker(t, tc.args...)
			proxy, fromBroker := countingProxy(t, strings.TrimPrefix(p.HTTPURL, "http://"))
			br := startChromium(t, 2*time.Minute, 1000, 720)
			tab := &consolePage{chromium: br, t: t, p: p}
			traffic := watchTraffic(t, tab.ctx)
			openDemo(t, p, tab, proxy, "z")
			if hs := traffic.handshakes(); len(hs) != 1 || !strings.HasPrefix(hs[0], tc.extension) || (tc.extension == "" && hs[0] != "") {
				t.Fatalf("WebSocket handshakes agreed on extensions %q, want %q", hs, tc.extension)
			}

			const n = 200
			pub := goConnect(t, p, tcpTransport)
			r := rand.New(rand.NewPCG(7, 7))
			before, bodyBytes := fromBroker.Load(), 0
			for i := range n {
				body := orderJSON(r, i)
				bodyBytes += len(body)
				send(t, pub, "/topic/demo.z", body)
			}
			tab.waitUntil(fmt.Sprintf("%d lines", n), fmt.Sprintf(`document.querySelectorAll('#lines li').length >= %d`, n))
			wire := fromBroker.Load() - before
			ratio := float64(wire) / float64(bodyBytes)
			t.Logf("compression %s: %d body bytes took %d bytes on the wire to Chromium (%.0f%%)", tc.name, bodyBytes, wire, 100*ratio)
			if ratio > tc.maxRatio || (tc.extension == "" && ratio < 1) {
				t.Errorf("ratio %.3f of wire to body bytes, want at most %.2f", ratio, tc.maxRatio)
			}
		})
	}
}

// orderJSON is a JSON order of about 540 bytes with varied values, as the
// node scenario makes them.
func orderJSON(r *rand.Rand, i int) string {
	type line struct {
		SKU       string  `json:"sku"`
		Quantity  int     `json:"quantity"`
		Price     float64 `json:"price"`
		Warehouse string  `json:"warehouse"`
	}
	o := struct {
		ID       string `json:"id"`
		Customer struct {
			ID      int    `json:"id"`
			Country string `json:"country"`
		} `json:"customer"`
		Created string `json:"created"`
		Status  string `json:"status"`
		Lines   []line `json:"lines"`
	}{
		ID:      fmt.Sprintf("order-%d-%012x", i, r.Uint64()>>16),
		Created: time.Unix(1_700_000_000+r.Int64N(1e8), 0).UTC().Format(time.RFC3339),
		Status:  []string{"new", "paid", "shipped"}[i%3],
	}
	o.Customer.ID, o.Customer.Country = r.IntN(1e9), []string{"NL", "DE", "IE", "GB"}[i%4]
	for range 6 {
		o.Lines = append(o.Lines, line{
			SKU:       strings.ToUpper(strconv.FormatUint(r.Uint64(), 36))[:10],
			Quantity:  1 + r.IntN(20),
			Price:     float64(r.IntN(100000)) / 100,
			Warehouse: []string{"ams", "fra", "dub", "lhr"}[r.IntN(4)],
		})
	}
	b, _ := json.Marshal(o)
	return string(b)
}

// countingProxy forwards TCP connections to target and counts the bytes
// that come back from it. It returns its http:// base URL.
func countingProxy(t *testing.T, target string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var fromTarget atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() {
					io.Copy(up, c)
					up.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(countingWriter{c, &fromTarget}, up)
			})
		}
	})
	return "http://" + ln.Addr().String(), &fromTarget
}

// countingWriter counts what passes through it as it goes.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
