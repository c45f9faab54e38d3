package broker

import (
	"log/slog"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// Options configures a Broker. Zero fields take the defaults listed in
// DefaultOptions.
type Options struct {
	// Limits bound frames read from clients.
	Limits stomp.Limits
	// MaxConnections bounds concurrent client connections.
	MaxConnections int
	// MaxSubscriptions bounds subscriptions per connection.
	MaxSubscriptions int
	// MaxOutboundBytes bounds each connection's outbound queue.
	MaxOutboundBytes int
	// HeartbeatMin and HeartbeatMax clamp negotiated heart-beat intervals.
	HeartbeatMin, HeartbeatMax time.Duration
	// HeartbeatGrace is how many negotiated intervals a client may stay
	// silent before it is disconnected.
	HeartbeatGrace float64
	// ConnectTimeout is how long a new connection has to send CONNECT.
	ConnectTimeout time.Duration
	// MaxRedeliveries is how often a message is redelivered before it is
	// dead-lettered; zero takes the default, and NoRedelivery (or any
	// negative count) dead-letters it the first time it comes back.
	MaxRedeliveries int
	// DefaultPrefetch is the unacked-message limit of client-ack
	// subscriptions that give no prefetch-count.
	DefaultPrefetch int
	// QueueMemoryBytes is the window of persistent messages a queue keeps
	// in memory; the rest wait in the store.
	QueueMemoryBytes int
	// MaxStoreBytes refuses persistent messages while the store is larger;
	// zero means no limit.
	MaxStoreBytes int64
	// Cluster, when set, makes this broker one node of a cluster that
	// shares queues, topics and durable subscriptions through it.
	Cluster Cluster
	// DeadLetterExpired sends expired queue messages to the dead letter
	// queue instead of dropping them.
	DeadLetterExpired bool
	// Authenticate checks CONNECT credentials (login and passcode, or a
	// token the transport found in ConnInfo.Authorization) and returns who
	// the client is and what it may do. Nil lets everyone do anything.
	Authenticate func(info ConnInfo, login, passcode string) (Principal, error)
	// FailedLoginDelay slows down password guessing: a refused CONNECT
	// waits this long before its ERROR.
	FailedLoginDelay time.Duration
	// MaxConnectionsPerIP bounds concurrent connections from one address.
	MaxConnectionsPerIP int
	// MaxTransactions bounds open transactions per connection, and
	// MaxTransactionFrames the frames one transaction may hold.
	MaxTransactions, MaxTransactionFrames int
	// MaxTransactionBytes bounds the message bytes a connection's open
	// transactions hold together until COMMIT or ABORT.
	MaxTransactionBytes int64
	// MaxUnackedBytes bounds the message bytes a connection holds
	// delivered and unacknowledged, whatever its prefetch-counts say.
	MaxUnackedBytes int64
	// MaxQueues, MaxTopics and MaxDurables bound the queues, the topics
	// subscribed to by exact name, and the durable subscriptions the broker
	// holds; MaxTempQueues the temporary queues of one connection.
	MaxQueues, MaxTopics, MaxDurables, MaxTempQueues int
	// IdleDestinationTTL is how long an empty, unused queue (not temporary,
	// not a durable subscription's) or a topic nobody subscribes to is
	// kept before it is forgotten.
	IdleDestinationTTL time.Duration
	// MemoryHighWatermark is the process memory, in bytes, above which
	// publishers are paused until it falls; zero turns the alarm off.
	MemoryHighWatermark int64
	// MaxWildcards bounds the wildcard words ("*", "#") of one topic
	// subscription's pattern.
	MaxWildcards int
	// MaxQueueMessages and MaxQueueBytes bound a queue (0: unbounded). A
	// producer sending to a full queue waits up to SendBlockTimeout.
	MaxQueueMessages int
	MaxQueueBytes    int64
	// SlowConsumerTimeout is how long a topic subscriber may keep its
	// publishers waiting for it to take what it was sent before it is
	// disconnected as too slow.
	SlowConsumerTimeout time.Duration
	// MaxTransientQueueBytes bounds the non-persistent messages a queue
	// holds, which live only in memory: past it, producers of such
	// messages wait as for a full queue (0: the default, 64 MiB;
	// negative: unbounded).
	MaxTransientQueueBytes int64
	SendBlockTimeout       time.Duration
	// TopicHistory is how many messages every topic keeps for subscribers
	// that ask for history or resume (0: none); TopicHistoryRules, the
	// first that matches, override it per topic pattern.
	TopicHistory      int
	TopicHistoryRules []TopicHistory
	// MaxHistoryBytes bounds the memory all topics' histories hold
	// together; past it the oldest retained message anywhere is dropped.
	MaxHistoryBytes int64
	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger
}

// NoRedelivery, as Options.MaxRedeliveries, never redelivers: a message
// NACKed or left unacknowledged by a departing consumer is dead-lettered.
const NoRedelivery = -1

// DefaultOptions returns the defaults the broker runs with.
func DefaultOptions() Options {
	return Options{
		Limits:           stomp.DefaultLimits(),
		MaxConnections:   100000,
		MaxSubscriptions: 1024,
		MaxOutboundBytes: 8 << 20,
		HeartbeatMin:     time.Second,
		HeartbeatMax:     time.Minute,
		HeartbeatGrace:   3,
		ConnectTimeout:   10 * time.Second,
		MaxRedeliveries:  10,
		DefaultPrefetch:  1000,
		QueueMemoryBytes: 16 << 20,
		FailedLoginDelay: 500 * time.Millisecond,

		MaxConnectionsPerIP:  10000,
		MaxTransactions:      64,
		MaxTransactionFrames: 10000,
		MaxTransactionBytes:  64 << 20,
		MaxUnackedBytes:      64 << 20,
		MaxWildcards:         16,
		MaxQueues:            50000,
		MaxTopics:            100000,
		MaxDurables:          10000,
		MaxTempQueues:        64,
		IdleDestinationTTL:   10 * time.Minute,
		SendBlockTimeout:     30 * time.Second,

		MaxTransientQueueBytes: 64 << 20,
		SlowConsumerTimeout:    2 * time.Second,
		MaxHistoryBytes:        64 << 20,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	setInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setInt64 := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setInt(&o.Limits.MaxBodyBytes, d.Limits.MaxBodyBytes)
	setInt(&o.Limits.MaxHeaderBytes, d.Limits.MaxHeaderBytes)
	setInt(&o.Limits.MaxHeaders, d.Limits.MaxHeaders)
	setInt(&o.MaxConnections, d.MaxConnections)
	setInt(&o.MaxSubscriptions, d.MaxSubscriptions)
	setInt(&o.MaxOutboundBytes, d.MaxOutboundBytes)
	setDur(&o.HeartbeatMin, d.HeartbeatMin)
	setDur(&o.HeartbeatMax, d.HeartbeatMax)
	setDur(&o.ConnectTimeout, d.ConnectTimeout)
	setInt(&o.DefaultPrefetch, d.DefaultPrefetch)
	setInt(&o.QueueMemoryBytes, d.QueueMemoryBytes)
	setInt(&o.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
	setInt(&o.MaxTransactions, d.MaxTransactions)
	setInt(&o.MaxTransactionFrames, d.MaxTransactionFrames)
	setInt(&o.MaxWildcards, d.MaxWildcards)
	setInt(&o.MaxQueues, d.MaxQueues)
	setInt(&o.MaxTopics, d.MaxTopics)
	setInt(&o.MaxDurables, d.MaxDurables)
	setInt(&o.MaxTempQueues, d.MaxTempQueues)
	setDur(&o.IdleDestinationTTL, d.IdleDestinationTTL)
	setInt64(&o.MaxTransactionBytes, d.MaxTransactionBytes)
	setInt64(&o.MaxUnackedBytes, d.MaxUnackedBytes)
	setDur(&o.SendBlockTimeout, d.SendBlockTimeout)
	setDur(&o.SlowConsumerTimeout, d.SlowConsumerTimeout)
	setInt64(&o.MaxHistoryBytes, d.MaxHistoryBytes)
	if o.MaxTransientQueueBytes == 0 {
		o.MaxTransientQueueBytes = d.MaxTransientQueueBytes
	}
	if o.HeartbeatGrace <= 0 {
		o.HeartbeatGrace = d.HeartbeatGrace
	}
	if o.MaxRedeliveries == 0 {
		o.MaxRedeliveries = d.MaxRedeliveries
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
