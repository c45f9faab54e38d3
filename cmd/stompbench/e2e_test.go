package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/store"
	"github.com/stampede-mq/stampede/subprotocol"
)

// testBroker is an in-process Stampede on loopback ports.
type testBroker struct {
	ws, tcp string // URLs for -url
}

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	b, err := broker.New(broker.Options{}, store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ws", subprotocol.NewWebSocketHandler(b, subprotocol.WebSocketOptions{}))
	srv := &http.Server{Handler: mux}
	httpDone, tcpDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(httpDone); srv.Serve(httpLn) }()
	go func() { defer close(tcpDone); subprotocol.ServeTCP(tcpLn, b, subprotocol.TCPOptions{}) }()
	t.Cleanup(func() {
		tcpLn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
		srv.Shutdown(ctx)
		<-httpDone
		<-tcpDone
	})
	return &testBroker{
		ws:  "ws://" + httpLn.Addr().String() + "/ws",
		tcp: "tcp://" + tcpLn.Addr().String(),
	}
}

// runTool runs the command with args plus -json and returns its exit
// status and decoded result.
func runTool(t *testing.T, args ...string) (int, *result, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "result.json")
	args = append(args, "-json", path, "-quiet", "-pid", strconv.Itoa(os.Getpid()))
	var out, errs bytes.Buffer
	code := run(t.Context(), args, &out, &errs)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no JSON written (exit %d): %v\nstdout:\n%s\nstderr:\n%s", code, err, out.String(), errs.String())
	}
	var res result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("JSON: %v\n%s", err, b)
	}
	return code, &res, out.String() + errs.String()
}

// short keeps each run under about two seconds, race detector included.
var short = []string{"-warmup", "300ms", "-duration", "700ms", "-drain", "3s", "-timeout", "30s"}

func TestScenarios(t *testing.T) {
	brk := startBroker(t)
	type scenario struct {
		name  string
		args  []string
		check func(t *testing.T, r *result)
	}
	scenarios := []scenario{
		{"fanout", []string{"-scenario", "fanout", "-publishers", "2", "-subscribers", "5", "-rate", "1000"}, func(t *testing.T, r *result) {
			if r.Delivered == 0 || r.Delivered != 5*r.Published {
				t.Errorf("published %d, delivered %d: want 5 each", r.Published, r.Delivered)
			}
		}},
		{"fanout without subscribe receipts", []string{"-scenario", "fanout", "-subscribers", "3", "-rate", "500", "-subscribe-receipt=false", "-settle", "200ms"}, func(t *testing.T, r *result) {
			if r.Delivered == 0 || r.Delivered != 3*r.Published {
				t.Errorf("published %d, delivered %d: want 3 each", r.Published, r.Delivered)
			}
		}},
		{"queue", []string{"-scenario", "queue", "-producers", "2", "-consumers", "3", "-rate", "2000"}, func(t *testing.T, r *result) {
			if r.Consumed == 0 || r.Consumed != r.Published {
				t.Errorf("published %d, consumed %d", r.Published, r.Consumed)
			}
		}},
		{"queue unpaced", []string{"-scenario", "queue", "-producers", "2", "-consumers", "2", "-prefetch", "50"}, func(t *testing.T, r *result) {
			if r.Consumed == 0 || r.Consumed != r.Published {
				t.Errorf("published %d, consumed %d", r.Published, r.Consumed)
			}
		}},
		{"persistent", []string{"-scenario", "persistent", "-producers", "2", "-consumers", "2", "-window", "8"}, func(t *testing.T, r *result) {
			if r.Receipted == 0 || r.Receipted != r.Published || r.Consumed != r.Published {
				t.Errorf("published %d, receipted %d, consumed %d", r.Published, r.Receipted, r.Consumed)
			}
			if r.ConsumeLatencyUS == nil || r.ConsumeLatencyUS.Count == 0 {
				t.Errorf("no consume latency: %+v", r.ConsumeLatencyUS)
			}
		}},
	}
	for _, tr := range []string{"ws", "tcp"} {
		for _, sc := range scenarios {
			t.Run(tr+"/"+sc.name, func(t *testing.T) {
				t.Parallel()
				url := brk.ws
				if tr == "tcp" {
					url = brk.tcp
				}
				args := append(append([]string{"-url", url}, short...), sc.args...)
				code, r, out := runTool(t, args...)
				if code != 0 || r.Lost != 0 || r.Duplicated != 0 || r.Errors != 0 {
					t.Errorf("exit %d, lost %d, duplicated %d, errors %d\n%s", code, r.Lost, r.Duplicated, r.Errors, out)
				}
				if l := r.LatencyUS; r.RatePerS <= 0 || l == nil || l.Count == 0 || l.P50 <= 0 || l.P90 < l.P50 || l.P99 < l.P90 || l.P999 < l.P99 || l.Max < l.P999 {
					t.Errorf("rate %v, latency %+v", r.RatePerS, r.LatencyUS)
				}
				if !strings.Contains(out, " p90 ") || !strings.Contains(out, " p99.9 ") {
					t.Errorf("the summary lacks a percentile:\n%s", out)
				}
				if r.StompVersion != "1.2" || r.BrokerCPUS == nil || r.BrokerRSSKiB == nil {
					t.Errorf("version %q, broker cpu %v, rss %v", r.StompVersion, r.BrokerCPUS, r.BrokerRSSKiB)
				}
				sc.check(t, r)
			})
		}
	}
}

// The drain fills a queue, then one consumer empties it with a RECEIPT
// asked for every ACK (or none).
func TestDrain(t *testing.T) {
	brk := startBroker(t)
	for _, tr := range []string{"ws", "tcp"} {
		for _, receipts := range []bool{true, false} {
			t.Run(tr+"/ack-receipts="+strconv.FormatBool(receipts), func(t *testing.T) {
				t.Parallel()
				url := brk.ws
				if tr == "tcp" {
					url = brk.tcp
				}
				code, r, out := runTool(t, "-scenario", "drain", "-url", url, "-messages", "1500", "-producers", "2",
					"-ack-receipts="+strconv.FormatBool(receipts), "-drain", "3s", "-timeout", "30s")
				d := r.Drain
				if code != 0 || d == nil || r.Lost != 0 || r.Duplicated != 0 || r.Errors != 0 {
					t.Fatalf("exit %d, drain %+v, lost %d, duplicated %d, errors %d\n%s", code, d, r.Lost, r.Duplicated, r.Errors, out)
				}
				if r.Consumers != 1 || d.Prefetch != 64 || d.AckReceipts != receipts {
					t.Errorf("consumers %d, drain %+v", r.Consumers, d)
				}
				if r.Published != 1500 || r.Receipted != 1500 || r.Consumed != 1500 || d.Drained != 1500 {
					t.Errorf("published %d, receipted %d, consumed %d, drained %d", r.Published, r.Receipted, r.Consumed, d.Drained)
				}
				if d.DrainS <= 0 || d.DrainedPerS <= 0 || r.RatePerS != d.DrainedPerS || r.BrokerCPUS == nil {
					t.Errorf("drain %+v, headline %v, broker cpu %v", d, r.RatePerS, r.BrokerCPUS)
				}
				if receipts {
					if d.AckReceipted != 1500 || r.LatencyUS == nil || r.LatencyUS.Count != 1500 {
						t.Errorf("ACK receipts %d, latency %+v", d.AckReceipted, r.LatencyUS)
					}
				} else if d.AckReceipted != 0 || r.LatencyUS != nil {
					t.Errorf("ACK receipts %d, latency %+v without -ack-receipts", d.AckReceipted, r.LatencyUS)
				}
			})
		}
	}
}

func TestConns(t *testing.T) {
	brk := startBroker(t)
	for _, url := range []string{brk.ws, brk.tcp} {
		t.Run(url[:strings.Index(url, ":")], func(t *testing.T) {
			t.Parallel()
			code, r, out := runTool(t, "-scenario", "conns", "-url", url, "-conns", "200", "-hold", "1500ms", "-heartbeat", "1s", "-timeout", "30s")
			c := r.Conns
			if code != 0 || c == nil || c.Opened != 200 || c.Alive != 200 || c.Failed != 0 || r.Errors != 0 {
				t.Fatalf("exit %d, conns %+v, errors %d\n%s", code, c, r.Errors, out)
			}
			if r.LatencyUS == nil || r.LatencyUS.Count != 200 || r.LatencyUS.P50 <= 0 {
				t.Errorf("connect latency %+v", r.LatencyUS)
			}
			if c.ConnectPerS <= 0 || r.RatePerS != c.ConnectPerS || c.RSSPerConnKiB == nil {
				t.Errorf("connect/s %v, headline %v, rss/conn %v", c.ConnectPerS, r.RatePerS, c.RSSPerConnKiB)
			}
			// The broker grants 1s both ways; within 1.5s it must have
			// sent at least one heart-beat on each connection.
			if c.MaxSilenceMS <= 0 || c.MaxSilenceMS > 1500 {
				t.Errorf("longest silence %vms", c.MaxSilenceMS)
			}
		})
	}
}

func TestFailuresExitOne(t *testing.T) {
	brk := startBroker(t)
	t.Run("ERROR frame", func(t *testing.T) {
		t.Parallel()
		// Stampede answers a SUBSCRIBE to an unknown kind of destination
		// with an ERROR.
		code, r, out := runTool(t, append([]string{"-scenario", "fanout", "-url", brk.tcp, "-subscribers", "2", "-destination", "/nowhere/x"}, short...)...)
		if code != 1 || r.Errors == 0 || !strings.Contains(out, "ERROR frame") {
			t.Errorf("exit %d, errors %d\n%s", code, r.Errors, out)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		code, r, out := runTool(t, "-scenario", "fanout", "-url", brk.ws, "-subscribers", "2", "-rate", "100", "-warmup", "0s", "-duration", "10s", "-timeout", "800ms")
		if code != 1 || !r.TimedOut || r.ElapsedS > 5 {
			t.Errorf("exit %d, timed out %v, after %.1fs\n%s", code, r.TimedOut, r.ElapsedS, out)
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		code, r, out := runTool(t, append([]string{"-scenario", "queue", "-url", "tcp://" + addr, "-producers", "1", "-consumers", "1"}, short...)...)
		if code != 1 || r.Errors == 0 {
			t.Errorf("exit %d, errors %d\n%s", code, r.Errors, out)
		}
	})
}

// Older versions ACK by message-id (and subscription in 1.1), and 1.0 has
// only the cumulative client mode.
func TestOlderVersions(t *testing.T) {
	brk := startBroker(t)
	for _, tt := range []struct{ version, url string }{{"1.1", brk.ws}, {"1.0", brk.tcp}} {
		t.Run(tt.version, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-scenario", "queue", "-url", tt.url, "-accept-version", tt.version, "-producers", "2", "-consumers", "2", "-rate", "1000"}, short...)
			code, r, out := runTool(t, args...)
			if code != 0 || r.StompVersion != tt.version || r.Consumed == 0 || r.Consumed != r.Published || r.Lost != 0 || r.Duplicated != 0 {
				t.Errorf("exit %d, version %s, published %d, consumed %d, lost %d, dup %d\n%s", code, r.StompVersion, r.Published, r.Consumed, r.Lost, r.Duplicated, out)
			}
		})
	}
}
