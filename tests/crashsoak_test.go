package tests

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// crashReport is the part of the load tool's JSON report the soak checks.
type crashReport struct {
	Receipted int64 `json:"receipted"`
	Consumed  int64 `json:"consumed"`
	Lost      int64 `json:"lost"`
	Errors    int64 `json:"errors"`
	Crash     struct {
		Rounds            int       `json:"rounds"`
		Kills             int       `json:"kills"`
		Transactions      int64     `json:"transactions_receipted"`
		AckReceipts       int64     `json:"ack_receipts"`
		Repeats           int64     `json:"repeats"`
		UnflaggedRepeats  int64     `json:"unflagged_repeats"`
		DeliveredAfterAck int64     `json:"delivered_after_ack_receipt"`
		HalfTransactions  int64     `json:"half_transactions"`
		StartMS           []float64 `json:"start_ms"`
		StopExit          int       `json:"stop_exit"`
	} `json:"crash"`
}

// TestCrashSoak is the short version of the crash soak in the README's
// durability section: the load tool SIGKILLs the broker three times under
// persistent load with transactions, restarting it on the same data
// directory, then drains it. The tool checks every promise as it goes and
// exits 1 on a broken one; the report must show that nothing receipted
// was lost, nothing was delivered after its ACK's RECEIPT, every repeat
// was flagged and no transaction was half applied. The rates are low
// because the broker runs with the race detector; -start-bound is only a
// liveness bound, like the harness's own.
func TestCrashSoak(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "stompbench")
	build := exec.Command("go", "build", "-race", "-o", tool, "../cmd/stompbench")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building stompbench: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	report, brokerLog := filepath.Join(dir, "report.json"), filepath.Join(dir, "broker.log")
	soak := exec.Command(tool, "-scenario", "crash", "-url", "tcp://"+addr,
		"-rounds", "3", "-kill-min", "500ms", "-kill-max", "1500ms", "-rate", "400",
		"-tx-size", "4", "-tx-rate", "20", "-backlog", "500", "-drain", "15s", "-start-bound", "30s",
		"-quiet", "-json", report, "-broker-log", brokerLog,
		"--", brokerBin, "--data", filepath.Join(dir, "data"), "--stomp", addr, "--http", "127.0.0.1:0")
	out, err := soak.CombinedOutput()
	if err != nil {
		logs, _ := os.ReadFile(brokerLog)
		t.Fatalf("soak: %v\n%s\nbroker output:\n%s", err, out, logs)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r crashReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	c := r.Crash
	t.Logf("%d kills: receipted %d, delivered %d, lost %d; repeats %d (%d unflagged); delivered after ACK receipt %d; "+
		"%d transactions receipted, %d half; start ms %v",
		c.Kills, r.Receipted, r.Consumed, r.Lost, c.Repeats, c.UnflaggedRepeats, c.DeliveredAfterAck,
		c.Transactions, c.HalfTransactions, c.StartMS)
	if c.Rounds != 3 || c.Kills != 3 || len(c.StartMS) != 4 || c.StopExit != 0 {
		t.Errorf("rounds %d, kills %d, starts %d, exit %d: want 3, 3, 4, 0", c.Rounds, c.Kills, len(c.StartMS), c.StopExit)
	}
	if r.Lost != 0 || r.Errors != 0 || c.UnflaggedRepeats != 0 || c.DeliveredAfterAck != 0 || c.HalfTransactions != 0 {
		t.Errorf("broken promises:\n%s", out)
	}
	if r.Receipted == 0 || c.Transactions == 0 || c.AckReceipts == 0 {
		t.Errorf("the soak proved nothing: %d receipted, %d transactions, %d ACK receipts", r.Receipted, c.Transactions, c.AckReceipts)
	}
}
