package broker

import (
	"sync/atomic"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

type counters struct {
	published, delivered, expired, deadLettered atomic.Uint64
	slowConsumers                               atomic.Uint64
	acked, nacked, redelivered                  atomic.Uint64
	framesIn, framesOut                         [len(commandNames)]atomic.Uint64
}

// commandNames are the frame commands counted one by one; anything else
// counts as "other".
var commandNames = [...]string{
	stomp.CONNECT, stomp.STOMP, stomp.SEND, stomp.SUBSCRIBE, stomp.UNSUBSCRIBE,
	stomp.ACK, stomp.NACK, stomp.BEGIN, stomp.COMMIT, stomp.ABORT, stomp.DISCONNECT,
	stomp.CONNECTED, stomp.MESSAGE, stomp.RECEIPT, stomp.ERROR, "other",
}

func commandIndex(cmd string) int {
	for i, c := range commandNames {
		if c == cmd {
			return i
		}
	}
	return len(commandNames) - 1
}

func byCommand(cs *[len(commandNames)]atomic.Uint64) map[string]uint64 {
	out := make(map[string]uint64, len(commandNames))
	for i := range cs {
		if n := cs[i].Load(); n > 0 {
			out[commandNames[i]] = n
		}
	}
	return out
}

// Stats is a snapshot of broker-wide figures.
type Stats struct {
	Uptime        time.Duration
	Connections   int
	Queues        []QueueStats
	Subscriptions int // topic subscriptions
	// HistoryBytes is the memory topic histories hold, bounded by
	// Options.MaxHistoryBytes; HistoryTopics how many topics keep any.
	HistoryBytes  int64
	HistoryTopics int
	Published     uint64
	Delivered     uint64
	Expired       uint64
	DeadLettered  uint64
	SlowConsumers uint64
	Acked         uint64
	Nacked        uint64
	Redelivered   uint64
	// FramesIn and FramesOut count frames by command.
	FramesIn, FramesOut map[string]uint64
	// Refusals counts what limits and permissions turned away, by name.
	Refusals map[string]uint64
	// MemoryBytes is the memory the process holds, as the memory alarm
	// last read it; MemoryAlarm is set while it is over
	// MemoryHighWatermark and publishers are paused.
	MemoryBytes, MemoryHighWatermark int64
	MemoryAlarm                      bool
}

// MemoryAlarm reports whether publishers are paused because the process
// holds more memory than its high watermark.
func (b *Broker) MemoryAlarm() bool { return b.alarm.raised() }

// Stats returns current figures.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	st := Stats{Connections: len(b.conns), Uptime: time.Since(b.started)}
	b.mu.Unlock()
	for _, q := range b.local.allQueues() {
		st.Queues = append(st.Queues, q.stats())
	}
	st.Subscriptions = b.local.topics.subscriptions()
	st.HistoryBytes, st.HistoryTopics = b.local.hist.size()
	st.Published = b.stats.published.Load()
	st.Delivered = b.stats.delivered.Load()
	st.Expired = b.stats.expired.Load()
	st.DeadLettered = b.stats.deadLettered.Load()
	st.SlowConsumers = b.stats.slowConsumers.Load()
	st.Refusals = b.limits.snapshot()
	st.MemoryBytes, st.MemoryHighWatermark, st.MemoryAlarm = b.alarm.state()
	st.Acked = b.stats.acked.Load()
	st.Nacked = b.stats.nacked.Load()
	st.Redelivered = b.stats.redelivered.Load()
	st.FramesIn = byCommand(&b.stats.framesIn)
	// Every MESSAGE is a delivery; counting it there keeps the fan-out
	// path free of another atomic per subscriber.
	b.stats.framesOut[commandIndex(stomp.MESSAGE)].Store(st.Delivered)
	st.FramesOut = byCommand(&b.stats.framesOut)
	return st
}
