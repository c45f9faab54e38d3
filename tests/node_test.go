package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The STOMP.js scenarios live in js/*.mjs; each one connects to the broker
// URL it is given, checks one behaviour and reports on its last stdout line.

func TestNodeSTOMPJSTopic(t *testing.T)       { runNodeScenario(t, "topic") }
func TestNodeSTOMPJSQueue(t *testing.T)       { runNodeScenario(t, "queue") }
func TestNodeSTOMPJSReceipt(t *testing.T)     { runNodeScenario(t, "receipt") }
func TestNodeSTOMPJSAck(t *testing.T)         { runNodeScenario(t, "ack") }
func TestNodeSTOMPJSBinary(t *testing.T)      { runNodeScenario(t, "binary") }
func TestNodeSTOMPJSHeartbeat(t *testing.T)   { runNodeScenario(t, "heartbeat") }
func TestNodeSTOMPJSTransaction(t *testing.T) { runNodeScenario(t, "transaction") }
func TestNodeSTOMPJSFraming(t *testing.T)     { runNodeScenario(t, "framing") }

// jsDeps is where `npm ci` in tests/js puts the client libraries.
const jsDeps = "js/node_modules"

// missingTool fails the test under CI, where a missing dependency means a
// broken setup, and skips it on a developer machine without the tool.
func missingTool(t *testing.T, what, install string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; install it with: %s (or run ./test.sh)", what, install)
	}
	t.Skipf("%s is missing (install with: %s); skipping", what, install)
}

// requireNode returns the path of node, with the npm dependencies installed.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missingTool(t, "node", "apt-get install -y nodejs npm")
	}
	for _, pkg := range []string{"@stomp/stompjs", "ws"} {
		if _, err := os.Stat(filepath.Join(jsDeps, pkg, "package.json")); err != nil {
			missingTool(t, "tests/"+jsDeps+"/"+pkg, "(cd tests/js && npm ci)")
		}
	}
	return node
}

func runNodeScenario(t *testing.T, name string) {
	// Scenarios spend most of their time waiting on the network or on
	// timers, so they overlap well even on two cores.
	t.Parallel()
	node := requireNode(t)
	p := startBroker(t)
	// The script has its own 15 s limit; this one also covers node's
	// start-up and a script that ignores its own timer.
	runNodeScript(t, node, 40*time.Second, name, p.WSURL)
}

// runNodeScript runs js/NAME.mjs with args and returns the JSON object it
// prints last. The test fails if the script is killed at timeout, exits
// non-zero, or does not report {"scenario": NAME, "ok": true}.
func runNodeScript(t *testing.T, node string, timeout time.Duration, name string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	script := filepath.Join("js", name+".mjs")
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // don't wait forever on pipes after a kill
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start).Round(time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("node %s %v killed after %v\nstdout:\n%s\nstderr:\n%s", script, args, elapsed, &stdout, &stderr)
	}
	if err != nil {
		t.Fatalf("node %s %v failed (%v, %v)\nstdout:\n%s\nstderr:\n%s", script, args, err, elapsed, &stdout, &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	var res map[string]any
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		t.Fatalf("last stdout line of %s is not a JSON result: %q (%v)\nstderr:\n%s", script, last, err, &stderr)
	}
	if res["ok"] != true || res["scenario"] != name {
		t.Fatalf("%s %v exited 0 but reported %s\nstderr:\n%s", script, args, last, &stderr)
	}
	t.Logf("%s (%v)", last, elapsed)
	return res
}
