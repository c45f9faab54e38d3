package web

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stampede-mq/stampede/broker"
)

// Labels of summed queues: those past the series cap, and those whose
// names belong to a client.
const (
	otherQueues     = "other"
	temporaryQueues = "temporary"
	durableQueues   = "durable"
)

// summedQueues says which queues the per-queue series leave out.
const summedQueues = `Temporary queues are summed under queue="temporary", durable subscriptions' under queue="durable", and queues past the series cap under queue="other".`

// privateQueue names the sum a queue goes to instead of a series of its
// own, or "" for none. /metrics is open to all, and the names of
// temporary queues (which replies are sent to) and of the queues behind
// durable subscriptions (client-id and subscription name) are their
// clients' business.
func privateQueue(name string) string {
	switch {
	case strings.HasPrefix(name, "/queue/tmp."):
		return temporaryQueues
	case !publicName(name):
		return durableQueues
	}
	return ""
}

// brokerCollector reads the broker's figures when Prometheus scrapes, so
// the message path pays nothing for metrics.
type brokerCollector struct {
	s *Server

	connections, sessions, published, delivered, expired, deadLettered *prometheus.Desc
	slowConsumers, topicSubs, queues, queueDepth, queueConsumers       *prometheus.Desc
	historyBytes, historyTopics                                        *prometheus.Desc
	queueUnacked, outbound, storeBytes, uptime, refusals, durables     *prometheus.Desc
	acked, nacked, redelivered, framesIn, framesOut                    *prometheus.Desc
	memory, memoryHigh, memoryAlarm                                    *prometheus.Desc
}

func newBrokerCollector(s *Server) *brokerCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("stampede_"+name, help, labels, nil)
	}
	return &brokerCollector{
		s:              s,
		connections:    d("connections", "Open client connections by transport.", "transport"),
		sessions:       d("sessions", "Open client connections by negotiated STOMP version (\"connecting\" before CONNECT).", "version"),
		published:      d("messages_published_total", "Messages published to any destination."),
		delivered:      d("messages_delivered_total", "Messages delivered to subscribers."),
		expired:        d("messages_expired_total", "Messages that expired before delivery."),
		deadLettered:   d("messages_dead_lettered_total", "Messages moved to a dead letter queue."),
		slowConsumers:  d("slow_consumer_disconnects_total", "Connections closed for not keeping up with a topic."),
		topicSubs:      d("topic_subscriptions", "Live topic subscriptions."),
		historyBytes:   d("topic_history_bytes", "Memory topic histories hold, bounded by --topic-history-max-bytes."),
		historyTopics:  d("topic_history_topics", "Topics that keep history."),
		queues:         d("queues", "Queues, temporary ones included."),
		queueDepth:     d("queue_messages", "Messages waiting in a queue. "+summedQueues, "queue"),
		queueConsumers: d("queue_consumers", "Consumers of a queue. "+summedQueues, "queue"),
		queueUnacked:   d("queue_messages_unacked", "Messages delivered from a queue and not yet acknowledged. "+summedQueues, "queue"),
		outbound:       d("outbound_queued_bytes", "Bytes waiting in connections' outbound queues."),
		storeBytes:     d("store_bytes", "Bytes the message store occupies."),
		uptime:         d("uptime_seconds", "Seconds since the broker started."),
		refusals:       d("refusals_total", "Things limits and permissions turned away, by reason.", "reason"),
		durables:       d("durable_subscriptions", "Durable subscriptions by state.", "state"),
		acked:          d("messages_acked_total", "Queue messages acknowledged by consumers."),
		nacked:         d("messages_nacked_total", "Queue messages refused by consumers (NACK)."),
		redelivered:    d("messages_redelivered_total", "Queue messages delivered again after a NACK or a lost consumer."),
		framesIn:       d("frames_in_total", "Frames received from clients, by command.", "command"),
		framesOut:      d("frames_out_total", "Frames sent to clients, by command.", "command"),
		memory:         d("memory_bytes", "Memory the process holds, as the memory alarm reads it."),
		memoryHigh:     d("memory_high_watermark_bytes", "Memory above which publishers are paused (0: no alarm)."),
		memoryAlarm:    d("memory_alarm", "1 while memory is over the high watermark and publishers are paused."),
	}
}

// Describe implements prometheus.Collector.
func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connections, c.sessions, c.published, c.delivered,
		c.expired, c.deadLettered, c.slowConsumers, c.topicSubs, c.historyBytes, c.historyTopics, c.queues, c.queueDepth,
		c.queueConsumers, c.queueUnacked, c.outbound, c.storeBytes, c.uptime, c.refusals, c.durables,
		c.acked, c.nacked, c.redelivered, c.framesIn, c.framesOut,
		c.memory, c.memoryHigh, c.memoryAlarm} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.s.b
	st := b.Stats()
	c.collectConnections(ch, b.Connections())
	counter(ch, c.published, st.Published)
	counter(ch, c.delivered, st.Delivered)
	counter(ch, c.expired, st.Expired)
	counter(ch, c.deadLettered, st.DeadLettered)
	counter(ch, c.slowConsumers, st.SlowConsumers)
	counter(ch, c.acked, st.Acked)
	counter(ch, c.nacked, st.Nacked)
	counter(ch, c.redelivered, st.Redelivered)
	for cmd, n := range st.FramesIn {
		counter(ch, c.framesIn, n, cmd)
	}
	for cmd, n := range st.FramesOut {
		counter(ch, c.framesOut, n, cmd)
	}
	gauge(ch, c.topicSubs, float64(st.Subscriptions))
	gauge(ch, c.historyBytes, float64(st.HistoryBytes))
	gauge(ch, c.historyTopics, float64(st.HistoryTopics))
	gauge(ch, c.uptime, st.Uptime.Seconds())
	gauge(ch, c.memory, float64(st.MemoryBytes))
	gauge(ch, c.memoryHigh, float64(st.MemoryHighWatermark))
	alarm := 0.0
	if st.MemoryAlarm {
		alarm = 1
	}
	gauge(ch, c.memoryAlarm, alarm)
	for reason, n := range st.Refusals {
		counter(ch, c.refusals, n, reason)
	}
	var online, offline int
	for _, d := range b.Durables() {
		if d.Active {
			online++
		} else {
			offline++
		}
	}
	gauge(ch, c.durables, float64(online), "online")
	gauge(ch, c.durables, float64(offline), "offline")
	c.collectQueues(ch, b.Destinations())
	if c.s.opts.StoreSize != nil {
		if n, err := c.s.opts.StoreSize(); err == nil {
			gauge(ch, c.storeBytes, float64(n))
		}
	}
}

func (c *brokerCollector) collectConnections(ch chan<- prometheus.Metric, conns []broker.ConnectionInfo) {
	// Every transport is reported, at zero too, so a series does not
	// vanish when its last client leaves.
	byTransport := map[string]int{"tcp": 0, "ws": 0, "sockjs": 0}
	byVersion := map[string]int{"1.0": 0, "1.1": 0, "1.2": 0, "connecting": 0}
	var outbound int
	for _, ci := range conns {
		byTransport[ci.Transport]++
		byVersion[cmp.Or(ci.Version, "connecting")]++
		outbound += ci.OutboundBytes
	}
	for t, n := range byTransport {
		gauge(ch, c.connections, float64(n), t)
	}
	for v, n := range byVersion {
		gauge(ch, c.sessions, float64(n), v)
	}
	gauge(ch, c.outbound, float64(outbound))
}

// collectQueues gives per-queue series for the deepest queues only:
// thousands of queues must not mean thousands of series.
func (c *brokerCollector) collectQueues(ch chan<- prometheus.Metric, qs []broker.DestinationInfo) {
	qs = slices.DeleteFunc(qs, func(d broker.DestinationInfo) bool { return d.Type != "queue" })
	gauge(ch, c.queues, float64(len(qs)))
	slices.SortFunc(qs, func(a, b broker.DestinationInfo) int {
		return cmp.Or(cmp.Compare(b.Depth, a.Depth), cmp.Compare(b.Consumers, a.Consumers), cmp.Compare(a.Name, b.Name))
	})
	sums := map[string]*broker.DestinationInfo{}
	named := 0
	for _, q := range qs {
		label := privateQueue(q.Name)
		if label == "" && named < c.s.opts.MaxQueueSeries {
			named++
			c.queueSeries(ch, q, q.Name)
			continue
		}
		if label == "" {
			label = otherQueues
		}
		if sums[label] == nil {
			sums[label] = &broker.DestinationInfo{}
		}
		sums[label].Depth += q.Depth
		sums[label].Consumers += q.Consumers
		sums[label].Unacked += q.Unacked
	}
	for label, q := range sums {
		c.queueSeries(ch, *q, label)
	}
}

func (c *brokerCollector) queueSeries(ch chan<- prometheus.Metric, q broker.DestinationInfo, label string) {
	gauge(ch, c.queueDepth, float64(q.Depth), label)
	gauge(ch, c.queueConsumers, float64(q.Consumers), label)
	gauge(ch, c.queueUnacked, float64(q.Unacked), label)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// newMetricsHandler builds /metrics on a registry of its own, so nothing
// else in the process can add to or clash with it.
func (s *Server) newMetricsHandler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	cs := append([]prometheus.Collector{
		newBrokerCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, s.opts.Collectors...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          promLogger{s},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          reg,
		EnableOpenMetrics: true,
	}), nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.ServeHTTP(w, r)
	return nil
}

// promLogger passes promhttp's complaints to the server's logger.
type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) {
	l.s.log.Warn("metrics", "err", v)
}
