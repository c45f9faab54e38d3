package tests

import (
	"testing"
	"time"
)

// restartBroker starts another broker process on the data directory dir,
// as an operator restarting the service would. Later flags override
// earlier ones, so "--data" given last wins over startBroker's own.
func restartBroker(t testing.TB, dir string, args ...string) *brokerProc {
	t.Helper()
	p := startBroker(t, append(args, "--data", dir)...)
	p.DataDir = dir
	return p
}

// kill ends the broker with SIGKILL, as a crash or an OOM kill would, and
// waits for the process to be gone, so its file lock is released.
func (p *brokerProc) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		select {
		case <-p.done: // it had exited already
			return
		default:
		}
		t.Fatalf("kill broker: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("broker still running 15s after SIGKILL")
	}
}

// stopGracefully sends SIGTERM and checks the broker exited cleanly.
func (p *brokerProc) stopGracefully(t testing.TB) {
	t.Helper()
	p.Stop(t)
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("broker exited with %d after SIGTERM:\n%s", code, p.Logs())
	}
}
