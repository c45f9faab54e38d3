package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/stampede-mq/stampede/auth"
	"github.com/stampede-mq/stampede/stomp"
)

// config is the parsed command line.
type config struct {
	scenario string
	rawURL   string
	target   target
	// receiverURLs, when set, are where subscribers and consumers
	// connect instead, spread over them in turn (a cluster's nodes).
	rawReceiverURLs string
	receivers       []target
	login           string
	passcode        string
	vhost           string
	publishers      int
	subscribers     int
	producers       int
	consumers       int
	size            int
	rate            float64
	warmup          time.Duration
	duration        time.Duration
	destination     string
	prefetch        int
	window          int
	messages        int
	ackReceipts     bool
	conns           int
	hold            time.Duration
	heartbeat       time.Duration
	connectRate     float64
	pid             int
	jsonPath        string
	allowRemote     bool
	timeout         time.Duration
	quiet           bool

	// Beyond the shared contract.
	label        string
	drain        time.Duration
	dialParallel int
	localAddrs   []netip.Addr
	localAuto    bool
	cpuProfile   string
	versions     []string // accept-version, best last
	// noSubReceipt: the broker does not answer a SUBSCRIBE's receipt
	// (go-stomp's server), so subscriptions are given subSettle instead.
	noSubReceipt bool
	subSettle    time.Duration

	// The crash scenario.
	brokerCmd     []string // the broker command line, after --
	brokerLog     string
	rounds        int
	killMin       time.Duration
	killMax       time.Duration
	receiptedAcks float64 // crash: share of ACKs that ask for a receipt
	txSize        int     // SENDs, and ACKs, per transaction; 0: none
	txRate        float64 // producer transactions/s
	backlog       int
	startBound    time.Duration
}

// target is where the broker listens.
type target struct {
	ws   bool   // STOMP over WebSocket rather than plain TCP
	url  string // normalised: ws://host:port/path or tcp://host:port
	addr string // host:port to dial
	host string // host without port
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

var scenarios = []string{"fanout", "queue", "persistent", "drain", "conns", "crash"}

// parseConfig reads the command line. Errors are *usageError, or
// flag.ErrHelp for -h.
func parseConfig(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("stompbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: stompbench -scenario %s -url URL [flags]\n", strings.Join(scenarios[:4], "|"))
		fmt.Fprintf(stderr, "       stompbench -scenario crash -url URL [flags] -- BROKER-COMMAND [ARGS]\n\n")
		fs.PrintDefaults()
	}
	var local, versions string
	fs.StringVar(&c.scenario, "scenario", "", "what to measure: "+strings.Join(scenarios, ", "))
	fs.StringVar(&c.rawReceiverURLs, "receiver-urls", "", "fanout, queue, persistent, drain: comma-separated broker URLs that subscribers and consumers connect to in turn, e.g. the other nodes of a cluster (default: -url)")
	fs.StringVar(&c.rawURL, "url", "ws://127.0.0.1:8080/ws", "broker: ws://HOST:PORT/PATH (STOMP over WebSocket) or tcp://HOST:PORT (plain STOMP)")
	fs.StringVar(&c.login, "login", "guest", "CONNECT login")
	fs.StringVar(&c.passcode, "passcode", "guest", "CONNECT passcode")
	fs.StringVar(&c.vhost, "vhost", "/", "CONNECT host header")
	fs.IntVar(&c.publishers, "publishers", 1, "fanout: publishing connections")
	fs.IntVar(&c.subscribers, "subscribers", 50, "fanout: subscribing connections")
	fs.IntVar(&c.producers, "producers", 4, "queue, persistent, drain: producing connections")
	fs.IntVar(&c.consumers, "consumers", 4, "queue, persistent, drain: consuming connections (drain: 1 unless given)")
	fs.IntVar(&c.size, "size", 256, "message body bytes")
	fs.Float64Var(&c.rate, "rate", 0, "total messages/s across all publishers; 0 = as fast as possible")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before the measurement window")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measurement window")
	fs.StringVar(&c.destination, "destination", "", "destination (default /topic/stompbench.RANDOM for fanout, /queue/stompbench.RANDOM otherwise)")
	fs.IntVar(&c.prefetch, "prefetch", 1000, "client-ack subscriptions: prefetch-count and activemq.prefetchSize; 0 sends neither (drain: 64 unless given)")
	fs.IntVar(&c.window, "window", 64, "persistent, drain: receipts in flight per producer")
	fs.IntVar(&c.messages, "messages", 20000, "drain: persistent messages put in the queue before the consumers subscribe")
	fs.BoolVar(&c.ackReceipts, "ack-receipts", true, "drain: every ACK asks for a RECEIPT (sent without waiting for the previous one's) and the drain ends at the last; false: plain ACKs, ending at the last MESSAGE")
	fs.IntVar(&c.conns, "conns", 1000, "conns: connections to open")
	fs.DurationVar(&c.hold, "hold", 10*time.Second, "conns: how long to hold the connections open")
	fs.DurationVar(&c.heartbeat, "heartbeat", 10*time.Second, "heart-beat interval offered both ways (conns; other scenarios use 0,0 unless given)")
	fs.Float64Var(&c.connectRate, "connect-rate", 0, "conns: new connections/s at most; 0 = as fast as possible")
	fs.IntVar(&c.pid, "pid", 0, "broker process id: report its CPU time over the window and its RSS")
	fs.StringVar(&c.jsonPath, "json", "", `also write the result as JSON to this file ("-" for stdout)`)
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "permit a target that is not on this machine")
	fs.DurationVar(&c.timeout, "timeout", 0, "hard bound for the whole run (default warmup+duration+60s; conns: hold+60s; drain: 60s+10ms per message)")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress line on stderr")
	fs.StringVar(&c.label, "label", "", "free text copied into the report, e.g. the broker's name")
	fs.DurationVar(&c.drain, "drain", 5*time.Second, "after publishing stops, give up waiting for deliveries after this long without one")
	fs.IntVar(&c.dialParallel, "dial-parallel", 32, "connections being set up at once")
	fs.StringVar(&versions, "accept-version", "1.0,1.1,1.2", "STOMP versions offered in CONNECT (and as WebSocket subprotocols)")
	subReceipt := true
	fs.BoolVar(&subReceipt, "subscribe-receipt", true, "confirm each SUBSCRIBE with a RECEIPT; false for a broker that sends none (go-stomp's server), which then gets -settle to set the subscriptions up")
	fs.DurationVar(&c.subSettle, "settle", time.Second, "with -subscribe-receipt=false: how long to wait after the SUBSCRIBEs before publishing")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the tool's own CPU profile to this file, to see what it costs")
	fs.IntVar(&c.rounds, "rounds", 10, "crash: how many times to SIGKILL the broker")
	fs.DurationVar(&c.killMin, "kill-min", time.Second, "crash: shortest load before a SIGKILL")
	fs.DurationVar(&c.killMax, "kill-max", 3*time.Second, "crash: longest load before a SIGKILL")
	fs.Float64Var(&c.receiptedAcks, "receipted-acks", 0.25, "crash: share of ACKs that ask for a RECEIPT, 0 to 1")
	fs.IntVar(&c.txSize, "tx-size", 4, "crash: SENDs per producer transaction and ACKs per consumer transaction; 0 for no transactions")
	fs.Float64Var(&c.txRate, "tx-rate", 20, "crash: producer transactions/s")
	fs.IntVar(&c.backlog, "backlog", 10000, "crash: persistent messages left waiting on DESTINATION.backlog from the first round to the end")
	fs.DurationVar(&c.startBound, "start-bound", 10*time.Second, "crash: longest a (re)start may take, exec to CONNECTED; 0 for no bound")
	fs.StringVar(&c.brokerLog, "broker-log", "", "crash: append the broker's output to this file")
	fs.StringVar(&local, "local-addrs", "auto", "comma-separated source addresses to spread connections over; "+
		`"auto" spreads conns runs against 127.x over 127.0.0.1, 127.0.0.2, … (8000 each), so a per-address connection limit is not what gets measured; "" lets the kernel choose`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err.Error()}
	}
	if c.scenario == "crash" {
		c.brokerCmd = fs.Args()
	} else if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	c.noSubReceipt = !subReceipt
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.scenario != "conns" && !set["heartbeat"] {
		c.heartbeat = 0
	}
	// The drain's defaults are the case it was made for: one careful
	// consumer with a small prefetch window.
	if c.scenario == "drain" && !set["consumers"] {
		c.consumers = 1
	}
	if c.scenario == "drain" && !set["prefetch"] {
		c.prefetch = 64
	}
	if c.scenario == "crash" {
		c.crashDefaults(set)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	t, err := parseTarget(c.rawURL)
	if err != nil {
		return nil, err
	}
	c.target = t
	for raw := range strings.SplitSeq(c.rawReceiverURLs, ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		rt, err := parseTarget(raw)
		if err != nil {
			return nil, err
		}
		c.receivers = append(c.receivers, rt)
	}
	if !c.allowRemote {
		for _, t := range append([]target{t}, c.receivers...) {
			if err := checkLoopback(t.host); err != nil {
				return nil, err
			}
		}
	}
	for v := range strings.SplitSeq(versions, ",") {
		v = strings.TrimSpace(v)
		if _, ok := stomp.ParseVersion(v); !ok {
			return nil, usagef("-accept-version: %q is not 1.0, 1.1 or 1.2", v)
		}
		c.versions = append(c.versions, v)
	}
	switch local {
	case "auto":
		c.localAuto = true
	case "":
	default:
		for s := range strings.SplitSeq(local, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				return nil, usagef("-local-addrs: %v", err)
			}
			c.localAddrs = append(c.localAddrs, a)
		}
	}
	if c.timeout == 0 {
		if c.scenario == "conns" {
			c.timeout = c.hold + 60*time.Second
			if c.connectRate > 0 {
				c.timeout += time.Duration(float64(c.conns) / c.connectRate * float64(time.Second))
			}
		} else if c.scenario == "drain" {
			// Room for a broker that takes one disk flush per ACK.
			c.timeout = 60*time.Second + time.Duration(c.messages)*10*time.Millisecond
		} else if c.scenario == "crash" {
			c.timeout = time.Duration(c.rounds)*(c.killMax+c.startBound+time.Minute) + 10*time.Minute
		} else {
			c.timeout = c.warmup + c.duration + 60*time.Second
		}
	}
	return c, nil
}

// crashDefaults gives the crash scenario the load of a persistent work
// queue where the other scenarios' defaults were not overridden: two
// producers at 2,000 receipted SENDs/s each, at most 32 unreceipted, and
// two consumers with a prefetch of 64.
func (c *config) crashDefaults(set map[string]bool) {
	defaults := []struct {
		name string
		set  func()
	}{
		{"producers", func() { c.producers = 2 }},
		{"consumers", func() { c.consumers = 2 }},
		{"rate", func() { c.rate = 4000 }},
		{"window", func() { c.window = 32 }},
		{"prefetch", func() { c.prefetch = 64 }},
	}
	for _, d := range defaults {
		if !set[d.name] {
			d.set()
		}
	}
}

func (c *config) validate() error {
	switch c.scenario {
	case "fanout", "queue", "persistent", "drain", "conns":
	case "crash":
		if err := c.validateCrash(); err != nil {
			return err
		}
	case "":
		return usagef("-scenario is required (%s)", strings.Join(scenarios, ", "))
	default:
		return usagef("unknown -scenario %q (want %s)", c.scenario, strings.Join(scenarios, ", "))
	}
	positive := []struct {
		name string
		v    int
	}{
		{"publishers", c.publishers}, {"subscribers", c.subscribers},
		{"producers", c.producers}, {"consumers", c.consumers},
		{"window", c.window}, {"conns", c.conns}, {"dial-parallel", c.dialParallel},
		{"messages", c.messages},
	}
	for _, p := range positive {
		if p.v < 1 {
			return usagef("-%s must be at least 1, not %d", p.name, p.v)
		}
	}
	if c.publishers > maxPublishers || c.producers+2 > maxPublishers {
		return usagef("at most %d publishers or producers", maxPublishers)
	}
	if c.messages > maxSeq {
		return usagef("-messages: at most %d", maxSeq)
	}
	if c.size < stampLen {
		return usagef("-size %d is too small: the body starts with a %d-byte stamp", c.size, stampLen)
	}
	if c.rate < 0 || c.connectRate < 0 {
		return usagef("-rate and -connect-rate cannot be negative")
	}
	if c.prefetch < 0 {
		return usagef("-prefetch cannot be negative")
	}
	if c.warmup < 0 || c.duration <= 0 || c.hold < 0 || c.heartbeat < 0 || c.timeout < 0 || c.drain <= 0 {
		return usagef("-duration and -drain must be positive; -warmup, -hold, -heartbeat and -timeout cannot be negative")
	}
	if c.heartbeat > 0 && c.heartbeat < time.Millisecond {
		return usagef("-heartbeat %v is below the 1ms STOMP resolution", c.heartbeat)
	}
	if c.pid < 0 {
		return usagef("-pid cannot be negative")
	}
	return nil
}

// parseTarget accepts ws://HOST[:PORT][/PATH] and tcp://HOST[:PORT].
func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, usagef("-url: %v", err)
	}
	if u.Host == "" {
		return target{}, usagef("-url %q has no host (want ws://HOST:PORT/PATH or tcp://HOST:PORT)", raw)
	}
	var t target
	port := u.Port()
	switch u.Scheme {
	case "ws":
		t.ws = true
		if port == "" {
			port = "80"
		}
	case "tcp", "stomp":
		if port == "" {
			port = "61613"
		}
		if u.Path != "" && u.Path != "/" {
			return target{}, usagef("-url %q: a tcp:// URL has no path", raw)
		}
	default:
		return target{}, usagef("-url scheme %q is not supported (want ws:// or tcp://)", u.Scheme)
	}
	t.host = u.Hostname()
	t.addr = net.JoinHostPort(t.host, port)
	if t.ws {
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		t.url = "ws://" + t.addr + path
		if u.RawQuery != "" {
			t.url += "?" + u.RawQuery
		}
	} else {
		t.url = "tcp://" + t.addr
	}
	return t, nil
}

// checkLoopback refuses a host that is, or resolves to, anything but a
// loopback address: a load generator pointed at the wrong machine by
// mistake is a denial of service.
func checkLoopback(host string) error {
	if auth.IsLoopback(host) {
		return nil
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		var err error
		if ips, err = net.LookupIP(host); err != nil {
			return usagef("cannot resolve %s to check it is this machine: %v (pass -allow-remote to skip the check)", host, err)
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return usagef("refusing to load %s (%s): it is not a loopback address; pass -allow-remote to target another machine", host, ip)
		}
	}
	return nil
}

func (c *config) validateCrash() error {
	switch {
	case len(c.brokerCmd) == 0:
		return usagef("-scenario crash needs the broker's command line after --, e.g. -- ./broker --data ./soak")
	case c.rounds < 1:
		return usagef("-rounds must be at least 1, not %d", c.rounds)
	case c.killMin <= 0 || c.killMax < c.killMin:
		return usagef("-kill-min must be positive and -kill-max at least -kill-min")
	case c.receiptedAcks < 0 || c.receiptedAcks > 1:
		return usagef("-receipted-acks is a share, from 0 to 1, not %g", c.receiptedAcks)
	case c.txSize < 0 || c.txRate < 0 || c.backlog < 0 || c.startBound < 0:
		return usagef("-tx-size, -tx-rate, -backlog and -start-bound cannot be negative")
	case c.txSize > c.prefetch && c.prefetch > 0:
		return usagef("-tx-size %d is over -prefetch %d: a consumer could never fill a transaction", c.txSize, c.prefetch)
	}
	return nil
}
