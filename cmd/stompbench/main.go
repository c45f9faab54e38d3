package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

func main() {
	// The tool allocates a few small objects per frame decoded and keeps
	// little alive: collecting less often is cheap CPU it leaves to the
	// broker on a shared machine.
	debug.SetGCPercent(400)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command; it returns the exit status: 0 when every
// message arrived exactly once without errors, 1 when not (or the run
// timed out), 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "stompbench:", err)
		return 2
	}
	// Errors are printed from every reader goroutine.
	stderr = &syncWriter{w: stderr}
	if _, err := raiseNofile(); err != nil {
		fmt.Fprintln(stderr, "stompbench: cannot raise the open file limit:", err)
	}

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "stompbench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "stompbench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	var rnd [4]byte
	rand.Read(rnd[:])
	b := &bench{cfg: cfg, stderr: stderr, runID: binary.BigEndian.Uint32(rnd[:])}
	b.dest = cfg.destination
	if b.dest == "" {
		kind := "/queue/"
		if cfg.scenario == "fanout" {
			kind = "/topic/"
		}
		b.dest = fmt.Sprintf("%sstompbench.%08x", kind, b.runID)
	}
	b.chooseLocals(cfg.conns)
	res := newResult(cfg)
	if cfg.scenario != "conns" {
		res.Destination = b.dest
	}

	ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout, errTimeout)
	defer cancel()
	// Whatever ends the run early (the timeout, a signal) closes every
	// connection, which unblocks whatever waits on one.
	stopAbort := context.AfterFunc(ctx, b.abortAll)
	var progress sync.WaitGroup
	pctx, stopProgress := context.WithCancel(ctx)
	if !cfg.quiet {
		progress.Go(func() { b.showProgress(pctx) })
	}

	start := time.Now()
	stopBeats := b.heartbeats(ctx)
	switch cfg.scenario {
	case "fanout":
		err = runFanout(ctx, b, res)
	case "queue":
		err = runQueue(ctx, b, res, false)
	case "persistent":
		err = runQueue(ctx, b, res, true)
	case "drain":
		err = runDrain(ctx, b, res)
	case "conns":
		err = runConns(ctx, b, res)
	case "crash":
		err = runCrash(ctx, b, res)
	}
	stopBeats()
	stopProgress()
	progress.Wait()
	stopAbort()
	b.closeAll()

	if errors.Is(context.Cause(ctx), errTimeout) {
		res.TimedOut = true
		b.errorf("the run hit -timeout %v", cfg.timeout)
	} else if err != nil {
		b.errorf("%v", err)
	}
	res.Errors = b.errors.Load()
	res.StompVersion = b.version
	res.Server = b.server
	res.ElapsedS = time.Since(start).Seconds()
	if res.Lost > 0 || res.Duplicated > 0 || res.Errors > 0 || res.TimedOut {
		res.ExitStatus = 1
	}

	text := stdout
	if cfg.jsonPath == "-" {
		text = stderr // stdout carries the JSON alone
	}
	res.writeText(text)
	if cfg.jsonPath != "" {
		if err := res.writeJSON(cfg.jsonPath, stdout); err != nil {
			fmt.Fprintln(stderr, "stompbench: writing the JSON report:", err)
			return 1
		}
	}
	return res.ExitStatus
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
