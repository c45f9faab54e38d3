package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/subprotocol"
)

// config is every setting the broker takes from flags or BROKER_* env.
type config struct {
	HTTPAddr        string
	StompAddr       string
	DataDir         string
	LogFormat       string
	LogLevel        string
	AllowedOrigins  string
	WSOneFrame      bool
	WSCompression   bool
	ShutdownTimeout time.Duration
	WriteTimeout    time.Duration
	PProf           bool
	Broker          broker.Options
	SockJS          sockjsConfig
	Security        securityConfig
	Cluster         clusterConfig
	// MemoryShare and MemoryBytes set the memory alarm's watermark (see
	// memoryWatermark).
	MemoryShare float64
	MemoryBytes int64
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "BROKER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags, then fills every flag not given on the command
// line from its BROKER_* environment variable.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{Broker: broker.DefaultOptions()}
	o := &c.Broker
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.HTTPAddr, "http", ":8080", "HTTP listen address (WebSocket at /ws, health at /healthz)")
	fs.StringVar(&c.StompAddr, "stomp", ":61613", "STOMP over TCP listen address; empty disables it")
	fs.StringVar(&c.DataDir, "data", "./data", "data directory: the message store broker.db lives here")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", "", "comma-separated WebSocket origins allowed besides same-host and loopback; * allows all")
	fs.BoolVar(&c.WSOneFrame, "ws-one-frame-per-message", false, "send each STOMP frame in a WebSocket message of its own, for clients that cannot parse several frames in one message")
	fs.BoolVar(&c.WSCompression, "ws-compression", false, "accept permessage-deflate on /ws when a client offers it: JSON of 1 KB and more shrinks by 55-80%, at 10-45 µs of CPU per delivery (docs/compression.md)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take before connections are cut")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "how long one write to a client may block before the connection is dropped")
	fs.BoolVar(&c.PProf, "pprof", false, "serve net/http/pprof under /debug/pprof to admin users")
	c.SockJS.flags(fs)
	c.Security.flags(fs, o)
	c.Cluster.flags(fs)
	boundFlags(fs, o)
	historyFlags(fs, o)
	fs.Float64Var(&c.MemoryShare, "memory-high-watermark", 0.4, "share of the machine's memory (or of 90% of GOMEMLIMIT when set) above which publishers are paused until memory falls; 0 turns the alarm off")
	fs.Int64Var(&c.MemoryBytes, "memory-high-watermark-bytes", 0, "the memory alarm's watermark in bytes, instead of a share")
	fs.IntVar(&o.Limits.MaxBodyBytes, "max-body-bytes", o.Limits.MaxBodyBytes, "largest frame body accepted")
	fs.IntVar(&o.Limits.MaxHeaderBytes, "max-header-bytes", o.Limits.MaxHeaderBytes, "largest frame header section accepted")
	fs.IntVar(&o.Limits.MaxHeaders, "max-headers", o.Limits.MaxHeaders, "most headers accepted in one frame")
	fs.IntVar(&o.MaxConnections, "max-connections", o.MaxConnections, "most concurrent client connections")
	fs.IntVar(&o.MaxSubscriptions, "max-subscriptions", o.MaxSubscriptions, "most subscriptions per connection")
	fs.IntVar(&o.MaxOutboundBytes, "max-outbound-bytes", o.MaxOutboundBytes, "outbound queue bound per connection; a topic's publishers wait while a subscriber's queue is over a quarter of it, and a subscriber past all of it is disconnected")
	fs.DurationVar(&o.SlowConsumerTimeout, "slow-consumer-timeout", o.SlowConsumerTimeout, "how long a topic subscriber may keep its publishers waiting before it is disconnected as too slow")
	fs.DurationVar(&o.HeartbeatMin, "heartbeat-min", o.HeartbeatMin, "smallest heart-beat interval granted")
	fs.DurationVar(&o.HeartbeatMax, "heartbeat-max", o.HeartbeatMax, "largest heart-beat interval granted")
	fs.Float64Var(&o.HeartbeatGrace, "heartbeat-grace", o.HeartbeatGrace, "intervals a client may stay silent before it is disconnected")
	fs.DurationVar(&o.ConnectTimeout, "connect-timeout", o.ConnectTimeout, "time a new connection has to send CONNECT")
	fs.IntVar(&o.MaxRedeliveries, "max-redeliveries", o.MaxRedeliveries, "redeliveries before a message goes to /queue/DLQ.NAME")
	fs.IntVar(&o.DefaultPrefetch, "prefetch", o.DefaultPrefetch, "default prefetch-count of client-ack subscriptions")
	fs.IntVar(&o.QueueMemoryBytes, "queue-memory-bytes", o.QueueMemoryBytes, "persistent messages a queue keeps in memory; the rest wait on disk")
	fs.Int64Var(&o.MaxStoreBytes, "max-store-bytes", 0, "refuse persistent messages while the store is larger than this; 0 means no limit")
	fs.BoolVar(&o.DeadLetterExpired, "dead-letter-expired", false, "send expired queue messages to the dead letter queue instead of dropping them")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: broker [flags]\n       broker publish|subscribe|tail [flags] DESTINATION ...  (a client; see broker publish --help)\n       broker hash-password\n\nEvery flag can also be set with an environment variable: --max-connections is BROKER_MAX_CONNECTIONS.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", envName(f.Name), e)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if o.MaxRedeliveries == 0 {
		o.MaxRedeliveries = broker.NoRedelivery // zero on the command line means none
	}
	o.MemoryHighWatermark = memoryWatermark(c.MemoryShare, c.MemoryBytes)
	if err := c.Security.check(); err != nil {
		return nil, err
	}
	if err := c.Cluster.check(); err != nil {
		return nil, err
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return nil, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
	}
	return c, nil
}

func (c *config) origins() []string {
	var out []string
	for _, o := range strings.Split(c.AllowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// sockjsConfig is the SockJS endpoint's settings (/sockjs).
type sockjsConfig struct {
	Heartbeat       time.Duration
	DisconnectDelay time.Duration
	ResponseLimit   int
	WebSocket       bool
	Credentials     bool
	ClientURL       string
	ReadTimeout     time.Duration
	PendingPerIP    int64
}

func (s *sockjsConfig) flags(fs *flag.FlagSet) {
	fs.DurationVar(&s.Heartbeat, "sockjs-heartbeat", subprotocol.DefaultSockJSHeartbeat, "how often an open SockJS receiving request gets a heart-beat, so proxies keep it")
	fs.DurationVar(&s.DisconnectDelay, "sockjs-disconnect-delay", subprotocol.DefaultSockJSDisconnectDelay, "SockJS session timeout: a session with no receiving request for this long is closed and its unacked messages redelivered")
	fs.IntVar(&s.ResponseLimit, "sockjs-response-limit", subprotocol.DefaultSockJSResponseLimit, "bytes one SockJS streaming response carries before the client opens a new one")
	fs.BoolVar(&s.WebSocket, "sockjs-websocket", true, "offer the WebSocket transport on /sockjs (false: HTTP transports only)")
	fs.BoolVar(&s.Credentials, "sockjs-credentials", false, "allow cookies on cross-origin SockJS requests (Access-Control-Allow-Credentials); sockjs-client needs it for XHR from another origin")
	fs.StringVar(&s.ClientURL, "sockjs-client-url", "", "sockjs-client script URL for the SockJS iframe page; empty turns the iframe-based transports off")
	fs.DurationVar(&s.ReadTimeout, "sockjs-read-timeout", subprotocol.DefaultSockJSReadTimeout, "time a SockJS client has to finish sending one send request's body or one WebSocket message it has begun; negative means no limit")
	fs.Int64Var(&s.PendingPerIP, "sockjs-max-pending-bytes-per-ip", subprotocol.DefaultSockJSPendingBytesPerIP, "bytes of SockJS send bodies and WebSocket messages one address may have begun and not finished; a session that would exceed it is closed; negative means no limit")
}
