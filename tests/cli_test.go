package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// The command-line client's commands as the README shows them, each run
// below exactly as written (with the test broker's ports for the default
// ones). TestCLIReadme checks that the README shows these and no others.
const (
	cliSubscribeTopic = `broker subscribe /topic/demo.lobby`
	cliPublishTopic   = `broker publish /topic/demo.lobby 'hello from the shell'`
	cliPublishJobs    = `broker publish --persistent -H priority:9 /queue/jobs '{"id": 1}' '{"id": 2}'`
	cliSubscribeOne   = `broker subscribe --count 1 --timeout 10s /queue/jobs`
	cliPublishFile    = `broker publish --file order.json --content-type application/json /queue/orders`
	cliPublishLines   = `tail -f app.log | broker publish --lines /topic/logs`
	cliTail           = `broker tail /queue/orders`
	cliSubscribeWS    = `BROKER_PASSCODE=alice-secret broker subscribe --url ws://localhost:8080/ws --login alice --format json '/topic/stocks.*.nyse'`
)

// syncBuffer is a bytes.Buffer safe for a process to write while the
// test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cliProc is a shell running a command line with the broker binary on
// its PATH, as a user types it.
type cliProc struct {
	t              *testing.T
	line           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
}

// startCLI runs line with sh in dir, with the test broker's addresses in
// place of the default ones, and BROKER_URL set to url when it is not
// empty. The process group is killed when the test ends.
func startCLI(t *testing.T, p *brokerProc, dir, url, line string) *cliProc {
	t.Helper()
	httpHost := strings.TrimPrefix(p.HTTPURL, "http://")
	expanded := strings.NewReplacer("localhost:8080", httpHost, "localhost:61613", p.TCPAddr).Replace(line)
	c := &cliProc{t: t, line: line, done: make(chan struct{})}
	if strings.HasPrefix(expanded, "broker ") {
		// So that Ctrl-C reaches the client rather than a shell waiting
		// for it.
		expanded = "exec " + expanded
	}
	c.cmd = exec.Command("sh", "-c", expanded)
	c.cmd.Dir = dir
	c.cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(brokerBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if url != "" {
		c.cmd.Env = append(c.cmd.Env, "BROKER_URL="+url)
	}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		c.cmd.Wait()
	}()
	t.Cleanup(func() {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	})
	return c
}

// exit waits for the command and returns its exit code.
func (c *cliProc) exit(within time.Duration) int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		c.t.Fatalf("%s still running after %v\nstdout:\n%s\nstderr:\n%s", c.line, within, c.stdout.String(), c.stderr.String())
		return -1
	}
}

// succeeds waits for the command to exit 0.
func (c *cliProc) succeeds() {
	c.t.Helper()
	if code := c.exit(30 * time.Second); code != 0 {
		c.t.Fatalf("%s exited %d\nstdout:\n%s\nstderr:\n%s", c.line, code, c.stdout.String(), c.stderr.String())
	}
}

// waitOutput waits until stdout (or stderr) contains s.
func (c *cliProc) waitOutput(stderr bool, s string) {
	c.t.Helper()
	buf := &c.stdout
	if stderr {
		buf = &c.stderr
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(buf.String(), s) {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: waiting for %q\nstdout:\n%s\nstderr:\n%s", c.line, s, c.stdout.String(), c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// interrupt sends SIGINT to the command's process group, as Ctrl-C does.
func (c *cliProc) interrupt() {
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGINT)
}

// TestCLI runs every command-line client command the README shows
// against a real broker, with go-stomp on the other side.
func TestCLI(t *testing.T) {
	p := startBroker(t)
	tcpURL, dir := "tcp://"+p.TCPAddr, t.TempDir()

	t.Run("subscribe-and-publish", func(t *testing.T) {
		sub := startCLI(t, p, dir, tcpURL, cliSubscribeTopic)
		sub.waitOutput(true, "subscribed to /topic/demo.lobby")
		startCLI(t, p, dir, tcpURL, cliPublishTopic).succeeds()
		sub.waitOutput(false, "hello from the shell\n")
		sub.interrupt()
		if code := sub.exit(10 * time.Second); code != 0 {
			t.Errorf("subscribe exited %d after Ctrl-C, want 0", code)
		}
	})

	t.Run("queue-count", func(t *testing.T) {
		startCLI(t, p, dir, tcpURL, cliPublishJobs).succeeds()
		one := startCLI(t, p, dir, tcpURL, cliSubscribeOne)
		one.succeeds()
		if got := one.stdout.String(); got != "{\"id\": 1}\n" {
			t.Errorf("subscribe --count 1 printed %q", got)
		}
		// It took one message and left the other. (The broker sends the
		// next one as soon as the first is acknowledged, so it comes back
		// marked redelivered: STOMP has no way to take just one.)
		c := goConnect(t, p, tcpTransport)
		m := recv(t, subscribe(t, c, "/queue/jobs", stomp.AckAuto))
		if string(m.Body) != `{"id": 2}` || m.Header.Get("priority") != "9" || m.Header.Get("persistent") != "true" {
			t.Errorf("left in the queue: %s %q", m.Body, headerList(m.Header))
		}
	})

	t.Run("file-and-tail", func(t *testing.T) {
		order := `{"order": 42, "lines": [{"sku": "A-1", "qty": 3}]}` + "\n"
		if err := os.WriteFile(filepath.Join(dir, "order.json"), []byte(order), 0o644); err != nil {
			t.Fatal(err)
		}
		tail := startCLI(t, p, dir, p.HTTPURL, cliTail)
		tail.waitOutput(true, "tailing /queue/orders")
		startCLI(t, p, dir, tcpURL, cliPublishFile).succeeds()
		tail.waitOutput(false, order)
		// tail took nothing: the consumer still gets the message.
		c := goConnect(t, p, tcpTransport)
		m := recv(t, subscribe(t, c, "/queue/orders", stomp.AckAuto))
		if string(m.Body) != order || m.ContentType != "application/json" {
			t.Errorf("got %q (%s), want the file as application/json", m.Body, m.ContentType)
		}
	})

	t.Run("lines", func(t *testing.T) {
		c := goConnect(t, p, tcpTransport)
		logs := subscribe(t, c, "/topic/logs", stomp.AckAuto)
		log := filepath.Join(dir, "app.log")
		if err := os.WriteFile(log, []byte("started\nlistening on :8000\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		startCLI(t, p, dir, tcpURL, cliPublishLines)
		for _, want := range []string{"started", "listening on :8000"} {
			if got := recvBody(t, logs); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		// A line appended later goes out as it comes.
		f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("GET / 200\n")
		f.Close()
		if got := recvBody(t, logs); got != "GET / 200" {
			t.Fatalf("got %q, want the appended line", got)
		}
	})
}

// TestCLIWebSocketLogin runs the README's WebSocket command against a
// broker with users configured.
func TestCLIWebSocketLogin(t *testing.T) {
	p := startSecured(t, exampleConfig(t), nil)
	sub := startCLI(t, p, t.TempDir(), "", cliSubscribeWS)
	sub.waitOutput(true, "subscribed to /topic/stocks.*.nyse")
	pub := goConnect(t, p, tcpTransport, stomp.ConnOpt.Login("alice", alicePass))
	send(t, pub, "/topic/stocks.acme.nyse", `{"price": 12.5}`)
	sub.waitOutput(false, "\n")
	var m struct {
		Destination string            `json:"destination"`
		Headers     map[string]string `json:"headers"`
		Body        string            `json:"body"`
	}
	line, _, _ := strings.Cut(sub.stdout.String(), "\n")
	if err := json.Unmarshal([]byte(line), &m); err != nil || m.Destination != "/topic/stocks.acme.nyse" ||
		m.Body != `{"price": 12.5}` || m.Headers["message-id"] == "" {
		t.Errorf("printed %q (%v)", line, err)
	}
	// The wrong passcode is an error, not a hang.
	bad := startCLI(t, p, t.TempDir(), "", strings.Replace(cliSubscribeWS, "alice-secret", "wrong", 1))
	if code := bad.exit(15 * time.Second); code != 1 || !strings.Contains(bad.stderr.String(), "access refused") {
		t.Errorf("a wrong passcode: exit %d, stderr %q", code, bad.stderr.String())
	}
}

// TestCLIUsage checks help and the exit codes of misuse.
func TestCLIUsage(t *testing.T) {
	p := startBroker(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		line, stderr string
		code         int
	}{
		{"broker publish --help", "Examples:", 0},
		{"broker subscribe --help", "Examples:", 0},
		{"broker tail --help", "Examples:", 0},
		{"broker --help", "broker publish|subscribe|tail", 0},
		{"broker publish", "no DESTINATION given", 2},
		{"broker subscribe /queue/a /queue/b", "want exactly one DESTINATION", 2},
		{"broker subscribe --format yaml /queue/a", "--format must be", 2},
		{"broker publish --url tcp://127.0.0.1:1 /queue/a x", "connect tcp://127.0.0.1:1", 1},
		{"broker subscribe --count 1 --timeout 500ms /queue/empty", "0 of 1 messages within 500ms", 1},
		{"broker tail --url tcp://localhost:61613 /queue/a", "tail reads the HTTP admin API", 2},
	} {
		c := startCLI(t, p, dir, "tcp://"+p.TCPAddr, tc.line)
		if code := c.exit(20 * time.Second); code != tc.code || !strings.Contains(c.stderr.String(), tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.line, code, c.stderr.String(), tc.code, tc.stderr)
		}
	}
}

// TestCLIReadme checks that the README's command-line section shows
// exactly the commands that TestCLI and TestCLIWebSocketLogin run.
func TestCLIReadme(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Command-line client\n")
	if !ok {
		t.Fatal("README has no Command-line client section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("the Command-line client section has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	var shown []string
	for _, line := range strings.Split(block, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			shown = append(shown, line)
		}
	}
	tested := []string{cliSubscribeTopic, cliPublishTopic, cliPublishJobs, cliSubscribeOne,
		cliPublishFile, cliPublishLines, cliTail, cliSubscribeWS}
	if strings.Join(shown, "\n") != strings.Join(tested, "\n") {
		t.Errorf("the README shows:\n%s\n\nthe tests run:\n%s", strings.Join(shown, "\n"), strings.Join(tested, "\n"))
	}
}
