package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// result is what a run reports, in text and as JSON. Counts named after
// an event (published, delivered, …) cover the whole run, warm-up and
// drain included, as lost and duplicated do; the per-second rates and
// the latencies cover the measurement window only.
type result struct {
	Scenario     string  `json:"scenario"`
	Label        string  `json:"label,omitempty"`
	URL          string  `json:"url"`
	BrokerURL    string  `json:"broker_url"`
	Server       string  `json:"server,omitempty"`
	StompVersion string  `json:"stomp_version"`
	Destination  string  `json:"destination,omitempty"`
	Publishers   int     `json:"publishers"`
	Subscribers  int     `json:"subscribers"`
	Producers    int     `json:"producers"`
	Consumers    int     `json:"consumers"`
	Size         int     `json:"size"`
	Rate         float64 `json:"rate"`
	WarmupS      float64 `json:"warmup_s"`
	DurationS    float64 `json:"duration_s"`

	Published int64 `json:"published"`
	Delivered int64 `json:"delivered"`
	Consumed  int64 `json:"consumed"`
	Receipted int64 `json:"receipted"`

	PublishedPerS float64 `json:"published_per_s"`
	DeliveredPerS float64 `json:"delivered_per_s"`
	ConsumedPerS  float64 `json:"consumed_per_s"`
	ReceiptedPerS float64 `json:"receipted_per_s"`
	// RatePerS is the scenario's headline: delivered/s (fanout),
	// consumed/s (queue), receipted/s (persistent), drained/s (drain),
	// connections/s (conns).
	RatePerS float64 `json:"rate_per_s"`
	// LatencyUS is send→delivery, except in persistent, where it is
	// send→RECEIPT and ConsumeLatencyUS is send→delivery, in drain, where
	// it is ACK→RECEIPT (absent with -ack-receipts=false), and in conns,
	// where it is from dialling to CONNECTED (handshakes included).
	LatencyUS        *latency `json:"latency_us"`
	ConsumeLatencyUS *latency `json:"consume_latency_us,omitempty"`

	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	Foreign    int64 `json:"foreign"`
	Errors     int64 `json:"errors"`
	TimedOut   bool  `json:"timed_out"`

	ToolCPUS     float64      `json:"tool_cpu_s"`
	ToolCores    float64      `json:"tool_cores"`
	BrokerCPUS   *float64     `json:"broker_cpu_s"`
	BrokerCores  *float64     `json:"broker_cores"`
	BrokerRSSKiB *int64       `json:"broker_rss_kib"`
	Conns        *connsResult `json:"conns"`
	Drain        *drainResult `json:"drain,omitempty"`
	Crash        *crashResult `json:"crash,omitempty"`
	ElapsedS     float64      `json:"elapsed_s"`
	ExitStatus   int          `json:"exit_status"`
}

// latency holds percentiles in microseconds.
type latency struct {
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Count uint64  `json:"count"`
}

func latencyOf(h *histogram) *latency {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return &latency{
		P50:   us(h.quantile(0.50)),
		P90:   us(h.quantile(0.90)),
		P99:   us(h.quantile(0.99)),
		P999:  us(h.quantile(0.999)),
		Max:   us(h.max),
		Count: h.total,
	}
}

// connsResult is the conns scenario's part of the report.
type connsResult struct {
	Requested int `json:"requested"`
	Opened    int `json:"opened"`
	Alive     int `json:"alive"`
	// ClosedOnDisconnect counts the alive ones that answered DISCONNECT
	// with an orderly close instead of its RECEIPT.
	ClosedOnDisconnect int      `json:"closed_on_disconnect"`
	Failed             int      `json:"failed"`
	ConnectS           float64  `json:"connect_s"`
	ConnectPerS        float64  `json:"connect_per_s"`
	HoldS              float64  `json:"hold_s"`
	HeartbeatMS        int64    `json:"heartbeat_ms"`
	HeartbeatLate      int      `json:"heartbeat_late"`
	MaxSilenceMS       float64  `json:"max_silence_ms"`
	SourceAddrs        int      `json:"source_addrs"`
	RSSBeforeKiB       *int64   `json:"rss_before_kib"`
	RSSAfterKiB        *int64   `json:"rss_after_kib"`
	RSSPerConnKiB      *float64 `json:"rss_per_conn_kib"`
}

func newResult(cfg *config) *result {
	return &result{
		Scenario:    cfg.scenario,
		Label:       cfg.label,
		URL:         cfg.rawURL,
		BrokerURL:   cfg.target.url,
		Publishers:  cfg.publishers,
		Subscribers: cfg.subscribers,
		Producers:   cfg.producers,
		Consumers:   cfg.consumers,
		Size:        cfg.size,
		Rate:        cfg.rate,
		WarmupS:     cfg.warmup.Seconds(),
		DurationS:   cfg.duration.Seconds(),
	}
}

// setCPU fills the CPU figures from samples taken d apart.
func (r *result) setCPU(from, to cpuSample, d time.Duration) {
	r.ToolCPUS = (to.tool - from.tool).Seconds()
	r.ToolCores = r.ToolCPUS / d.Seconds()
	if from.brokerOK && to.brokerOK {
		s := (to.broker - from.broker).Seconds()
		cores := s / d.Seconds()
		r.BrokerCPUS, r.BrokerCores = &s, &cores
	}
}

// sampleRSS records the broker's RSS now, when a pid was given.
func (r *result) sampleRSS(pid int) {
	if pid > 0 {
		if kib, err := procRSS(pid); err == nil {
			r.BrokerRSSKiB = &kib
		}
	}
}

// perSecond turns a count over the window into a rate.
func perSecond(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

// writeText prints the human-readable summary.
func (r *result) writeText(w io.Writer) {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("stompbench %s  %s", r.Scenario, r.BrokerURL)
	if r.Label != "" {
		p("  [%s]", r.Label)
	}
	p("\n")
	if r.StompVersion != "" || r.Server != "" {
		p("  STOMP %s", r.StompVersion)
		if r.Server != "" {
			p(", server %s", r.Server)
		}
		p("\n")
	}
	rate := "unlimited"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%g msg/s", r.Rate)
	}
	switch r.Scenario {
	case "fanout":
		p("  %d publisher(s) → %d subscriber(s) on %s, %d B, rate %s, warm-up %gs, window %gs\n",
			r.Publishers, r.Subscribers, r.Destination, r.Size, rate, r.WarmupS, r.DurationS)
		p("  published   %12d  %12.0f/s\n", r.Published, r.PublishedPerS)
		p("  delivered   %12d  %12.0f/s\n", r.Delivered, r.DeliveredPerS)
	case "queue", "persistent":
		p("  %d producer(s) → %s → %d consumer(s), %d B, rate %s, warm-up %gs, window %gs\n",
			r.Producers, r.Destination, r.Consumers, r.Size, rate, r.WarmupS, r.DurationS)
		p("  published   %12d  %12.0f/s\n", r.Published, r.PublishedPerS)
		if r.Scenario == "persistent" {
			p("  receipted   %12d  %12.0f/s\n", r.Receipted, r.ReceiptedPerS)
		}
		p("  consumed    %12d  %12.0f/s\n", r.Consumed, r.ConsumedPerS)
	case "drain":
		if d := r.Drain; d != nil {
			acks := "ACKs with receipts, pipelined"
			if !d.AckReceipts {
				acks = "plain ACKs"
			}
			p("  %d producer(s) → %d persistent messages of %d B in %s → %d consumer(s), prefetch %d, %s\n",
				r.Producers, d.Messages, r.Size, r.Destination, r.Consumers, d.Prefetch, acks)
			p("  filled      %12d  in %.2fs  %12.0f/s\n", r.Receipted, d.FillS, d.FillPerS)
			end := "the last ACK's RECEIPT"
			if !d.AckReceipts {
				end = "the last MESSAGE"
			}
			p("  drained     %12d  in %.2fs  %12.0f/s  (first SUBSCRIBE to %s)\n", d.Drained, d.DrainS, d.DrainedPerS, end)
		}
	case "crash":
		r.writeCrash(p)
	case "conns":
		if c := r.Conns; c != nil {
			p("  %d connection(s) requested, heart-beat %dms, held %gs", c.Requested, c.HeartbeatMS, c.HoldS)
			if c.SourceAddrs > 1 {
				p(", from %d source addresses", c.SourceAddrs)
			}
			p("\n")
			p("  opened %d in %.2fs (%.0f/s), alive at the end %d, failed %d\n",
				c.Opened, c.ConnectS, c.ConnectPerS, c.Alive, c.Failed)
			if c.ClosedOnDisconnect > 0 {
				p("  %d answered DISCONNECT by closing, without its RECEIPT\n", c.ClosedOnDisconnect)
			}
			p("  server heart-beats late %d, longest silence %.0fms\n", c.HeartbeatLate, c.MaxSilenceMS)
			if c.RSSBeforeKiB != nil && c.RSSAfterKiB != nil {
				p("  broker RSS  %d KiB before, %d KiB after", *c.RSSBeforeKiB, *c.RSSAfterKiB)
				if c.RSSPerConnKiB != nil {
					p(", %.1f KiB per connection", *c.RSSPerConnKiB)
				}
				p("\n")
			}
		}
	}
	if l := r.LatencyUS; l != nil {
		name := "latency"
		switch r.Scenario {
		case "persistent":
			name = "receipt"
		case "drain":
			name = "ack rcpt"
		case "conns":
			name = "connect"
		}
		p("  %-9s µs p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n", name, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if l := r.ConsumeLatencyUS; l != nil {
		p("  %-9s µs p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n", "latency", l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if r.Scenario != "conns" {
		p("  lost %d  duplicated %d", r.Lost, r.Duplicated)
		if r.Foreign > 0 {
			p("  foreign %d", r.Foreign)
		}
		p("  errors %d\n", r.Errors)
	} else {
		p("  errors %d\n", r.Errors)
	}
	if r.Scenario != "crash" {
		p("  CPU         tool %.2fs (%.2f cores)", r.ToolCPUS, r.ToolCores)
		if r.BrokerCPUS != nil {
			p("  broker %.2fs (%.2f cores)", *r.BrokerCPUS, *r.BrokerCores)
		}
		p("\n")
	}
	if r.BrokerRSSKiB != nil && r.Scenario != "conns" {
		p("  broker RSS  %d KiB\n", *r.BrokerRSSKiB)
	}
	if r.TimedOut {
		p("  TIMED OUT: the figures are partial\n")
	}
	if r.Scenario != "crash" {
		p("  headline    %.0f/s\n", r.RatePerS)
	}
	io.WriteString(w, b.String())
}

// writeCrash prints the crash scenario's figures.
func (r *result) writeCrash(p func(string, ...any)) {
	c := r.Crash
	if c == nil {
		return
	}
	p("  %d producer(s) → %s → %d consumer(s), %d B, rate %g msg/s; backlog %d\n",
		r.Producers, r.Destination, r.Consumers, r.Size, r.Rate, c.Backlog)
	p("  rounds %d, SIGKILLs %d, exit after the closing SIGTERM %d\n", c.Rounds, c.Kills, c.StopExit)
	p("  sent        %12d\n", r.Published)
	p("  receipted   %12d  transactions receipted by their COMMIT %d\n", r.Receipted, c.Transactions)
	p("  delivered   %12d  repeats %d, of them without redelivered:true %d\n", r.Consumed, c.Repeats, c.UnflaggedRepeats)
	p("  ACK/COMMIT receipts %d, deliveries after one %d, half-applied transactions %d\n",
		c.AckReceipts, c.DeliveredAfterAck, c.HalfTransactions)
	if n := len(c.StartMS); n > 0 {
		sorted := slices.Sorted(slices.Values(c.StartMS))
		p("  start ms    p50 %.0f  max %.0f  over %d starts", sorted[n/2], sorted[n-1], n)
		if c.StartBoundMS > 0 {
			p(" (bound %.0f)", c.StartBoundMS)
		}
		p("\n")
	}
}

// writeJSON writes the result to path, or to stdout for "-".
func (r *result) writeJSON(path string, stdout io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
