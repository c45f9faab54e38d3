package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift fields.
	stat := "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0"
	got, err := parseStatCPU([]byte(stat), 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("cpu = %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("garbage"), 100); err == nil {
		t.Error("garbage parsed")
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tbroker\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t8\n"
	got, err := parseStatusRSS([]byte(status))
	if err != nil || got != 12345 {
		t.Errorf("rss = %d, %v; want 12345", got, err)
	}
	if _, err := parseStatusRSS([]byte("Name:\tkthreadd\n")); err == nil {
		t.Error("no VmRSS line, no error")
	}
}

func TestOwnProcess(t *testing.T) {
	// Burn a little CPU so the counters have moved.
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("procCPU(self) = %v, %v", cpu, err)
	}
	if selfCPU() <= 0 {
		t.Error("selfCPU is zero")
	}
	if rss, err := procRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("procRSS(self) = %d, %v", rss, err)
	}
	if hz := clockTicks(); hz <= 0 {
		t.Errorf("clockTicks = %d", hz)
	}
	if n, err := raiseNofile(); err != nil || n == 0 {
		t.Errorf("raiseNofile = %d, %v", n, err)
	}
}
