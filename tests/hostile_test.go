package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// hostileCase is input a broker must refuse with an ERROR and a close,
// without disturbing anyone else.
type hostileCase struct {
	name     string
	connect  bool   // send a valid CONNECT first
	input    string // then these bytes, in one write
	receipt  string // the offending frame's receipt, to come back as receipt-id
	contains string // the ERROR message must contain this (lower case)
	ws       bool   // run over WebSocket too
}

// Limits of the broker TestHostileInputs starts.
const (
	hostileMaxHeaderBytes = 1024
	hostileMaxBodyBytes   = 65536
	hostileMaxHeaders     = 16
)

func hostileCases() []hostileCase {
	manyHeaders := "SEND\nreceipt:r-many\ndestination:/topic/a\n"
	for i := range hostileMaxHeaders + 4 {
		manyHeaders += fmt.Sprintf("h%d:v\n", i)
	}
	manyHeaders += "\n\x00"
	// Exactly one byte past the limit and no more, so the broker has
	// read everything when it closes (unread input would make the kernel
	// reset the connection and could destroy the ERROR in flight).
	bigHead := "SEND\ndestination:/topic/a\nx-big:"
	bigHead += strings.Repeat("a", hostileMaxHeaderBytes+1-len(bigHead))
	streamed := "SEND\ndestination:/queue/a\nreceipt:r-stream\n\n" + strings.Repeat("x", hostileMaxBodyBytes+1)
	return []hostileCase{
		{name: "garbage bytes", input: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xde\xad\xbe\xef\r\n\r\n", ws: true},
		{name: "HTTP request on the STOMP port", input: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "frame before CONNECT", input: "SEND\ndestination:/queue/a\nreceipt:r-early\n\nhi\x00", receipt: "r-early", contains: "connect", ws: true},
		{name: "no CONNECT within connect-timeout", contains: "connect"},
		{name: "bad heart-beat on CONNECT", input: "CONNECT\naccept-version:1.2\nheart-beat:soon\nreceipt:r-hb\n\n\x00", receipt: "r-hb", contains: "heart-beat"},
		{name: "second CONNECT", connect: true, input: "CONNECT\naccept-version:1.2\nreceipt:r-again\n\n\x00", receipt: "r-again"},
		{name: "unknown command", connect: true, input: "FLY\nreceipt:r-unknown\n\n\x00", receipt: "r-unknown", contains: "unknown command", ws: true},
		{name: "SEND without destination", connect: true, input: "SEND\nreceipt:r-nodest\n\nbody\x00", receipt: "r-nodest", contains: "destination", ws: true},
		{name: "SUBSCRIBE without id", connect: true, input: "SUBSCRIBE\ndestination:/topic/a\nreceipt:r-noid\n\n\x00", receipt: "r-noid", contains: "id"},
		{name: "duplicate subscription id", connect: true,
			input:   "SUBSCRIBE\nid:s1\ndestination:/topic/a\n\n\x00SUBSCRIBE\nid:s1\ndestination:/topic/b\nreceipt:r-dup\n\n\x00",
			receipt: "r-dup", contains: "duplicate"},
		{name: "ACK of an unknown id", connect: true, input: "ACK\nid:999-1\nreceipt:r-ack\n\n\x00", receipt: "r-ack", contains: "999-1"},
		{name: "NACK of an unknown id", connect: true, input: "NACK\nid:nope\nreceipt:r-nack\n\n\x00", receipt: "r-nack", contains: "nope"},
		{name: "COMMIT of an unknown transaction", connect: true, input: "COMMIT\ntransaction:t-nope\nreceipt:r-commit\n\n\x00", receipt: "r-commit", contains: "t-nope"},
		{name: "SEND in an unknown transaction", connect: true, input: "SEND\ndestination:/queue/a\ntransaction:t-nope\nreceipt:r-txsend\n\n\x00", receipt: "r-txsend", contains: "t-nope"},
		{name: "undefined escape", connect: true, input: "SEND\nreceipt:r-esc\ndestination:/topic/a\nx-bad:a\\tb\n\n\x00", receipt: "r-esc", contains: "escape", ws: true},
		{name: "header section over the limit", connect: true, input: bigHead, contains: "limit", ws: true},
		{name: "content-length over the body limit", connect: true,
			input:   fmt.Sprintf("SEND\ndestination:/queue/a\nreceipt:r-body\ncontent-length:%d\n\n", hostileMaxBodyBytes+1),
			receipt: "r-body", contains: "limit", ws: true},
		{name: "streamed body over the limit", connect: true, input: streamed, receipt: "r-stream", contains: "limit"},
		{name: "too many headers", connect: true, input: manyHeaders, receipt: "r-many", contains: "limit"},
		{name: "unknown destination prefix", connect: true, input: "SEND\ndestination:/exchange/x\nreceipt:r-dest\n\n\x00", receipt: "r-dest", contains: "unknown destination", ws: true},
		{name: "SUBSCRIBE to an unknown destination prefix", connect: true, input: "SUBSCRIBE\nid:1\ndestination:/exchange/x\nreceipt:r-sdest\n\n\x00", receipt: "r-sdest", contains: "unknown destination"},
		{name: "invalid ack mode", connect: true, input: "SUBSCRIBE\nid:1\ndestination:/queue/a\nack:sometimes\nreceipt:r-mode\n\n\x00", receipt: "r-mode", contains: "ack"},
	}
}

// TestHostileInputs feeds each bad input on a fresh connection and checks
// the ERROR, the close, and that a client connected all along still works.
func TestHostileInputs(t *testing.T) {
	p := startBroker(t,
		"--max-header-bytes", fmt.Sprint(hostileMaxHeaderBytes),
		"--max-body-bytes", fmt.Sprint(hostileMaxBodyBytes),
		"--max-headers", fmt.Sprint(hostileMaxHeaders),
		"--connect-timeout", "1s")
	bystander := goConnect(t, p, tcpTransport)
	health := subscribe(t, bystander, "/topic/health", stomp.AckAuto)
	round := 0
	for _, tr := range stompTransports {
		for _, tc := range hostileCases() {
			if tr.name == "ws" && !tc.ws {
				continue
			}
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				c := dialRaw(t, p, tr)
				if tc.connect {
					c.connect()
				}
				if tc.input != "" {
					c.write(tc.input)
				}
				frames := c.expectClosed(waitFor)
				var errs []*rawFrame
				for _, f := range frames {
					switch f.Command {
					case "ERROR":
						errs = append(errs, f)
					case "RECEIPT":
						if tc.receipt != "" && f.Value("receipt-id") == tc.receipt {
							t.Errorf("offending frame was receipted: %s", f)
						}
					}
				}
				if len(errs) != 1 {
					t.Fatalf("want one ERROR before the close, got frames %v", frames)
				}
				e := errs[0]
				msg := e.Value("message")
				if msg == "" {
					t.Errorf("ERROR without a message header: %s", e)
				}
				if !strings.Contains(strings.ToLower(msg), tc.contains) {
					t.Errorf("ERROR message %q does not mention %q", msg, tc.contains)
				}
				if tc.receipt != "" {
					if got, ok := e.Get("receipt-id"); !ok || got != tc.receipt {
						t.Errorf("ERROR receipt-id = %q (present %v), want %q from the offending frame; ERROR: %s", got, ok, tc.receipt, e)
					}
				}
			})
			// The bystander's connection is untouched by all this.
			round++
			body := fmt.Sprintf("ping %d", round)
			send(t, bystander, "/topic/health", body)
			if got := recvBody(t, health); got != body {
				t.Fatalf("bystander got %q, want %q", got, body)
			}
		}
	}
}

// TestHostileSlowConsumer has a topic subscriber that stops reading while
// another client publishes far more than the outbound bound. The
// subscriber must be cut off, the publisher must not block, and the
// broker's memory must stay bounded.
func TestHostileSlowConsumer(t *testing.T) {
	const (
		outboundMax = 1 << 20
		msgSize     = 64 << 10
		total       = 200 << 20
		rssLimitKiB = 400 << 10 // race-detector builds use a lot more than plain ones
	)
	// The write timeout outlasts the publishing, so the ERROR queued for
	// the stalled subscriber is still there to read afterwards.
	p := startBroker(t, "--max-outbound-bytes", fmt.Sprint(outboundMax), "--write-timeout", "90s")
	pid := p.cmd.Process.Pid

	slow := dialTinyReceiveBuffer(t, p.TCPAddr)
	defer slow.Close()
	slow.SetDeadline(time.Now().Add(waitFor))
	io.WriteString(slow, encodeFrame("CONNECT", "", "accept-version", "1.2", "host", "/"))
	io.WriteString(slow, encodeFrame("SUBSCRIBE", "", "id", "s", "destination", "/topic/firehose", "receipt", "subscribed"))
	sr := bufio.NewReader(slow)
	for _, want := range []string{"CONNECTED", "RECEIPT"} {
		f, err := readRawFrame(sr, nil)
		if err != nil || f.Command != want {
			t.Fatalf("slow subscriber setup: got %v, %v; want %s", f, err, want)
		}
	}
	// From here on the subscriber reads nothing.

	var (
		mu      sync.Mutex
		maxRSS  int
		rssErr  error
		stopRSS = make(chan struct{})
		rssDone = make(chan struct{})
	)
	go func() {
		defer close(rssDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			kb, err := procStatus(pid, "VmRSS")
			mu.Lock()
			if err != nil {
				rssErr = err
			}
			maxRSS = max(maxRSS, kb)
			mu.Unlock()
			select {
			case <-stopRSS:
				return
			case <-tick.C:
			}
		}
	}()

	pub := goConnect(t, p, tcpTransport)
	body := bytes.Repeat([]byte("0123456789abcdef"), msgSize/16)
	start := time.Now()
	n := total / msgSize
	for i := range n {
		// Each receipt is bounded by the client's receipt timeout; the
		// whole run by this check.
		if err := pub.Send("/topic/firehose", "application/octet-stream", body, stomp.SendOpt.Receipt); err != nil {
			t.Fatalf("publish %d of %d: %v", i, n, err)
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("publisher slowed down: only %d of %d messages in 60s", i, n)
		}
	}
	elapsed := time.Since(start)
	close(stopRSS)
	<-rssDone
	hwm, _ := procStatus(pid, "VmHWM")
	mu.Lock()
	t.Logf("published %d x %d KiB in %v; broker VmRSS max %d MiB, VmHWM %d MiB", n, msgSize>>10, elapsed, maxRSS>>10, hwm>>10)
	if rssErr != nil {
		t.Errorf("reading broker RSS: %v", rssErr)
	}
	if maxRSS == 0 || maxRSS > rssLimitKiB {
		t.Errorf("broker VmRSS peaked at %d MiB while publishing %d MiB to a stalled subscriber; want under %d MiB", maxRSS>>10, total>>20, rssLimitKiB>>10)
	}
	mu.Unlock()

	// The broker must have cut the subscriber off: reading now drains
	// what was in flight, the ERROR saying why, and then the end of the
	// stream.
	slow.SetDeadline(time.Now().Add(30 * time.Second))
	var got int
	var errFrame *rawFrame
	for {
		f, err := readRawFrame(sr, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("slow subscriber still connected after the publisher sent %d MiB (read %d KiB)", total>>20, got>>10)
			}
			break
		}
		got += len(f.Body)
		if f.Command == "ERROR" {
			errFrame = f
		}
	}
	t.Logf("slow subscriber read %d KiB of messages before the close", got>>10)
	if errFrame == nil {
		t.Errorf("slow subscriber was closed without an ERROR")
	} else if msg := errFrame.Value("message"); !strings.Contains(strings.ToLower(msg), "slow") {
		t.Errorf("ERROR message %q does not say the subscriber was too slow", msg)
	}
	if got > 32<<20 {
		t.Errorf("slow subscriber was sent %d MiB; the outbound bound is %d MiB", got>>20, outboundMax>>20)
	}
	// The publisher is unaffected.
	send(t, pub, "/topic/firehose", "still here")
}
