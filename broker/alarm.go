package broker

import (
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// memoryAlarm pauses publishers while the process holds more memory than
// its high watermark, as RabbitMQ's memory alarm does: a connection that
// SENDs is simply not read until memory falls back under the watermark,
// while consumers and acknowledgements go on, so that memory can fall.
type memoryAlarm struct {
	high atomic.Int64 // bytes; 0: no alarm
	log  *slog.Logger

	on      atomic.Bool
	checked atomic.Int64 // unix ns memory was last read

	mu      sync.Mutex // one reader of memory at a time
	used    int64
	lastGC  time.Time
	samples [3]metrics.Sample
}

// alarmRecheck is how often memory is read while publishers ask, and how
// often a paused publisher looks again.
const alarmRecheck = 50 * time.Millisecond

// alarmClear is the share of the watermark memory must fall under for
// the alarm to end, so it does not flap at the edge.
const alarmClear = 0.95

func newMemoryAlarm(high int64, log *slog.Logger) *memoryAlarm {
	a := &memoryAlarm{log: log}
	a.high.Store(high)
	a.samples[0].Name = "/memory/classes/total:bytes"
	a.samples[1].Name = "/memory/classes/heap/released:bytes"
	a.samples[2].Name = "/memory/classes/heap/free:bytes"
	return a
}

// raised reports whether the alarm is on, reading memory at most every
// alarmRecheck: between readings it costs a clock read and two atomics.
func (a *memoryAlarm) raised() bool {
	high := a.high.Load()
	if high <= 0 {
		a.on.Store(false)
		return false
	}
	now := time.Now()
	if now.UnixNano()-a.checked.Load() < int64(alarmRecheck) || !a.mu.TryLock() {
		return a.on.Load()
	}
	defer a.mu.Unlock()
	a.checked.Store(now.UnixNano())
	metrics.Read(a.samples[:])
	a.used = int64(a.samples[0].Value.Uint64() - a.samples[1].Value.Uint64() - a.samples[2].Value.Uint64())
	switch {
	case a.used >= high && !a.on.Load():
		a.on.Store(true)
		a.log.Warn("memory alarm: publishers paused", "memory", a.used, "high_watermark", high)
	case float64(a.used) < alarmClear*float64(high) && a.on.Load():
		a.on.Store(false)
		a.log.Info("memory alarm cleared: publishers resume", "memory", a.used, "high_watermark", high)
	}
	if a.on.Load() && now.Sub(a.lastGC) >= time.Second {
		// Paused publishers allocate nothing; what consumers freed is
		// only given back once collected.
		a.lastGC = now
		runtime.GC()
	}
	return a.on.Load()
}

// wait holds a publisher while the alarm is on, until done is closed.
func (a *memoryAlarm) wait(done <-chan struct{}) {
	if !a.raised() {
		return
	}
	t := time.NewTicker(alarmRecheck)
	defer t.Stop()
	for a.raised() {
		select {
		case <-t.C:
		case <-done:
			return
		}
	}
}

// state reports the memory last read and whether the alarm is on.
func (a *memoryAlarm) state() (used, high int64, on bool) {
	on = a.raised()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used, a.high.Load(), on
}
