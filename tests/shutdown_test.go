package tests

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// TestShutdown stops a broker with clients connected over both
// transports: each must be told "server shutting down" before its
// connection closes, and the process must exit 0 promptly.
func TestShutdown(t *testing.T) {
	p := startBroker(t)
	var subs []*stomp.Subscription
	var raws []*rawClient
	for _, tr := range stompTransports {
		subs = append(subs, subscribe(t, goConnect(t, p, tr), "/topic/bye", stomp.AckAuto))
		r := dialRaw(t, p, tr)
		r.connect()
		raws = append(raws, r)
	}

	start := time.Now()
	p.Stop(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown with idle clients took %v", took)
	}
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}

	for i, r := range raws {
		frames := r.expectClosed(waitFor)
		if len(frames) != 1 || frames[0].Command != "ERROR" || frames[0].Value("message") != "server shutting down" {
			t.Errorf("%s raw client got %v before the close, want one ERROR message:server shutting down", stompTransports[i].name, frames)
		}
	}
	for i, sub := range subs {
		select {
		case m, ok := <-sub.C:
			if !ok || m.Err == nil || !strings.Contains(m.Err.Error(), "server shutting down") {
				t.Errorf("%s go-stomp client: got %v (open %v), want the ERROR server shutting down", stompTransports[i].name, m, ok)
			}
		case <-time.After(waitFor):
			t.Errorf("%s go-stomp client heard nothing of the shutdown", stompTransports[i].name)
		}
	}
}

// TestHelpFlag checks --help exits 0 and documents the flags and their
// environment variables.
func TestHelpFlag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, brokerBin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, want := range []string{"BROKER_", "-http", "-stomp", "-data", "-max-body-bytes", "-max-header-bytes",
		"-max-headers", "-max-outbound-bytes", "-heartbeat-min", "-connect-timeout", "-max-redeliveries", "-prefetch"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help output does not mention %q:\n%s", want, out)
		}
	}
}

// TestEnvironment checks BROKER_* variables configure the broker and that
// a flag given on the command line beats its variable.
func TestEnvironment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, brokerBin, "--http", "127.0.0.1:0", "--data", t.TempDir())
	// BROKER_HTTP would fail to listen; the flag must win over it.
	cmd.Env = append(os.Environ(), "BROKER_STOMP=127.0.0.1:0", "BROKER_HTTP=256.0.0.1:1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		var log strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := tcpURLRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		err := cmd.Wait()
		if err != nil {
			err = errors.New(err.Error() + "\n" + log.String())
		}
		done <- err
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("broker exit: %v", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("broker did not exit within 15s of SIGTERM")
		}
	}()

	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("broker exited: %v", err)
	case <-ctx.Done():
		t.Fatal("broker printed no STOMP address")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host != "127.0.0.1" || port == "61613" {
		t.Fatalf("STOMP listens on %q; BROKER_STOMP=127.0.0.1:0 asked for loopback and a free port", a)
	}
	c := goConnect(t, &brokerProc{TCPAddr: a}, tcpTransport)
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
}
