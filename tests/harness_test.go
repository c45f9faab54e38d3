// Package tests drives the real broker binary with real clients over real
// sockets. It imports nothing of the project: it builds cmd/broker once and
// talks to it the way users do.
package tests

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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
	Name    string // a cluster node's name, for logs

	cmd       *exec.Cmd
	mu        sync.Mutex
	logs      strings.Builder
	done      chan struct{}
	listening chan struct{} // closed once WSURL and TCPAddr are known
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
	p := spawnBroker(t, "", args...)
	p.waitListening(t, 30*time.Second)
	return p
}

// spawnBroker starts the broker as startBroker does, without waiting for
// it: a cluster's nodes print their URLs only once enough of them run.
// name, when set, labels its output in a failed test's log.
func spawnBroker(t testing.TB, name string, args ...string) *brokerProc {
	t.Helper()
	p := &brokerProc{Name: name, DataDir: t.TempDir(), done: make(chan struct{}), listening: make(chan struct{})}
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
				close(p.listening)
			}
			p.mu.Unlock()
		}
		io.Copy(io.Discard, out)
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("broker %soutput:\n%s", p.label(), p.Logs())
		}
	})
	return p
}

// waitListening waits until the broker has printed where its listeners
// are, failing the test if it exits first or takes longer than d.
func (p *brokerProc) waitListening(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-p.listening:
	case <-p.done:
		t.Fatalf("broker %sexited before listening:\n%s", p.label(), p.Logs())
	case <-time.After(d):
		p.cmd.Process.Kill()
		t.Fatalf("broker %sdid not print its URLs within %v:\n%s", p.label(), d, p.Logs())
	}
}

func (p *brokerProc) label() string {
	if p.Name == "" {
		return ""
	}
	return p.Name + " "
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
		t.Errorf("broker %sdid not exit within 15s of SIGTERM", p.label())
	}
}

// ExitCode is the process's exit status once it has stopped.
func (p *brokerProc) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// testCluster is three broker processes forming one cluster over their
// embedded NATS servers, each with its own data directory. Every NATS
// route goes through a proxy the test owns (routeLinks, cluster_test.go),
// so that a test can cut a node off from the others.
type testCluster struct {
	Nodes []*brokerProc
	links *routeLinks
}

// startCluster starts a 3-node cluster on free ports and waits until every
// node's /readyz answers 200. Extra args are passed to every node.
func startCluster(t testing.TB, args ...string) *testCluster {
	t.Helper()
	return startClusterRoutes(t, true, args...)
}

// startClusterRoutes is startCluster; listOwn says whether each node's
// --nats-routes names its own route as well as the others'.
func startClusterRoutes(t testing.TB, listOwn bool, args ...string) *testCluster {
	t.Helper()
	const n = 3
	start := time.Now()
	ports := freeRoutePorts(t, n)
	// Made before the nodes, so that they are closed after the nodes stop:
	// cleanups run last-registered first.
	links := newRouteLinks(t, ports)
	c := &testCluster{links: links}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		all := append([]string{
			"--node", name, "--nats-embedded",
			"--nats-cluster", fmt.Sprintf("127.0.0.1:%d", ports[i]),
			"--nats-routes", strings.Join(links.routesFrom(i, listOwn), ","),
			"--nats-cluster-advertise", links.advertise(i),
		}, args...)
		c.Nodes = append(c.Nodes, spawnBroker(t, name, all...))
	}
	// A node leaving waits for the others' answers about what it held;
	// stopping them together keeps the last ones from waiting on a
	// cluster that has already lost its majority.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, p := range c.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); p.Stop(t) }()
		}
		wg.Wait()
	})
	// Each node prints its URLs only once the cluster has elected its
	// JetStream leaders, which takes a majority of nodes.
	for _, p := range c.Nodes {
		p.waitListening(t, 90*time.Second)
	}
	for _, p := range c.Nodes {
		waitReady(t, p, 200, 60*time.Second)
	}
	t.Logf("cluster of %d ready in %v", n, time.Since(start).Round(time.Millisecond))
	return c
}

// freeRoutePorts picks n distinct free ports below the kernel's ephemeral
// range (32768 and up on Linux), where no outgoing connection takes one
// between this check and the node listening on it: a route port is fixed
// per node, since the other nodes' routes name it.
func freeRoutePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free route ports in 20000-32000")
		}
		port := 20000 + rand.IntN(12000)
		if seen[port] {
			continue
		}
		seen[port] = true
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, port)
	}
	return ports
}

// readyz returns /readyz's status and body; status 0 if it did not answer.
func readyz(p *brokerProc) (int, string) {
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(p.HTTPURL + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitReady polls /readyz until it answers status, failing the test after
// d; it returns how long that took.
func waitReady(t testing.TB, p *brokerProc, status int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, body := readyz(p)
		if got == status {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("node %s: /readyz still %d %q after %v, want %d", p.Name, got, body, d, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
