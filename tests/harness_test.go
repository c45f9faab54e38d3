// Package tests drives the real broker binary with real clients over real
// sockets. It imports nothing of the project: it builds cmd/broker once and
// talks to it the way users do.
package tests

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// brokerBin is the broker binary built once by TestMain.
var brokerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stampede-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	brokerBin = filepath.Join(dir, "broker")
	// The binary is built with the race detector so end-to-end runs
	// also check the server for races.
	build := exec.Command("go", "build", "-race", "-o", brokerBin, "../cmd/broker")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building broker:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// brokerProc is a running broker process.
type brokerProc struct {
	WSURL   string // ws://127.0.0.1:PORT/ws
	HTTPURL string // http://127.0.0.1:PORT
	TCPAddr string // 127.0.0.1:PORT (STOMP over TCP)
	DataDir string

	cmd  *exec.Cmd
	mu   sync.Mutex
	logs strings.Builder
	done chan struct{}
}

// The start-up lines name the listeners; with TLS they say wss:// and
// stomp+ssl://.
var (
	wsURLRe  = regexp.MustCompile(`wss?://[^\s"]+/ws`)
	tcpURLRe = regexp.MustCompile(`(?:tcp|stomp\+ssl)://([^\s"]+)`)
)

// startBroker runs the broker on loopback ports chosen by the kernel and
// waits until it has printed where its listeners are. Extra args are
// passed as flags. The process is stopped when the test ends.
func startBroker(t testing.TB, args ...string) *brokerProc {
	t.Helper()
	p := &brokerProc{DataDir: t.TempDir(), done: make(chan struct{})}
	all := append([]string{"--http", "127.0.0.1:0", "--stomp", "127.0.0.1:0", "--data", p.DataDir}, args...)
	p.cmd = exec.Command(brokerBin, all...)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			if m := wsURLRe.FindString(line); m != "" && p.WSURL == "" {
				p.WSURL = m
				// ws://h/ws → http://h, wss://h/ws → https://h
				p.HTTPURL = "http" + strings.TrimSuffix(strings.TrimPrefix(m, "ws"), "/ws")
			}
			if m := tcpURLRe.FindStringSubmatch(line); m != nil && p.TCPAddr == "" {
				p.TCPAddr = m[1]
			}
			if !signalled && p.WSURL != "" && p.TCPAddr != "" {
				signalled = true
				close(ready)
			}
			p.mu.Unlock()
		}
		io.Copy(io.Discard, out)
		p.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("broker exited before listening:\n%s", p.Logs())
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("broker did not print its URLs within 30s:\n%s", p.Logs())
	}
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("broker output:\n%s", p.Logs())
		}
	})
	return p
}

// Logs returns everything the broker printed so far.
func (p *brokerProc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Stop sends SIGTERM and waits for the process to exit; it kills it if
// it takes longer than 15 seconds. Safe to call more than once.
func (p *brokerProc) Stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("broker did not exit within 15s of SIGTERM")
	}
}

// ExitCode is the process's exit status once it has stopped.
func (p *brokerProc) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}
