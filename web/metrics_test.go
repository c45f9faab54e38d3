package web

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stampede-mq/stampede/stomp"
)

// scrape reads /metrics and returns each sample line's value by its name
// and labels as printed ("stampede_connections{transport=\"tcp\"}").
func scrape(t *testing.T, e *env) map[string]float64 {
	t.Helper()
	resp := e.do(req{path: "/metrics"})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsFollowTraffic(t *testing.T) {
	e := newEnv(t, Options{StoreSize: func() (int64, error) { return 12345, nil }})
	before := scrape(t, e)
	for _, name := range []string{"go_goroutines", "process_open_fds", `stampede_connections{transport="tcp"}`,
		"stampede_messages_published_total", "stampede_uptime_seconds"} {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if before["stampede_store_bytes"] != 12345 {
		t.Errorf("store bytes %v", before["stampede_store_bytes"])
	}

	sub := connect(t, e.b)
	sub.sendSync(stomp.SUBSCRIBE, "", "id", "1", "destination", "/topic/t")
	sub.sendSync(stomp.SUBSCRIBE, "", "id", "2", "destination", "/queue/work")
	pub := connect(t, e.b)
	for range 3 {
		pub.sendSync(stomp.SEND, "x", "destination", "/topic/t")
	}
	pub.sendSync(stomp.SEND, "x", "destination", "/queue/idle")
	pub.sendSync(stomp.SEND, "x", "destination", "/queue/idle")
	after := scrape(t, e)
	for name, want := range map[string]float64{
		`stampede_connections{transport="tcp"}`:         2,
		`stampede_sessions{version="1.2"}`:              2,
		"stampede_messages_published_total":             5,
		"stampede_messages_delivered_total":             3,
		"stampede_topic_subscriptions":                  1,
		`stampede_queue_messages{queue="/queue/idle"}`:  2,
		`stampede_queue_consumers{queue="/queue/work"}`: 1,
		`stampede_frames_in_total{command="SEND"}`:      5,
		`stampede_frames_out_total{command="MESSAGE"}`:  3,
	} {
		if got := after[name] - before[name]; got != want {
			t.Errorf("%s moved by %v, want %v", name, got, want)
		}
	}
}

func TestMetricsCapQueueSeries(t *testing.T) {
	e := newEnv(t, Options{MaxQueueSeries: 3})
	for i := range 6 {
		for range i + 1 {
			if err := e.b.Publish(fmt.Sprintf("/queue/q%d", i), nil, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := scrape(t, e)
	series := regexp.MustCompile(`^stampede_queue_messages\{queue="([^"]*)"\}$`)
	var names []string
	for k := range m {
		if s := series.FindStringSubmatch(k); s != nil {
			names = append(names, s[1])
		}
	}
	if len(names) != 4 {
		t.Fatalf("queue series %v", names)
	}
	// The deepest three have their own; the rest (1+2+3) are "other".
	for q, want := range map[string]float64{"/queue/q5": 6, "/queue/q4": 5, "/queue/q3": 4, "other": 6} {
		if got := m[`stampede_queue_messages{queue="`+q+`"}`]; got != want {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	if m["stampede_queues"] != 6 {
		t.Errorf("queues %v", m["stampede_queues"])
	}
}

func TestMetricsTakeMoreCollectors(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "stampede_test_extra", Help: "A collector from elsewhere."})
	g.Set(7)
	e := newEnv(t, Options{Collectors: []prometheus.Collector{g}})
	if v := scrape(t, e)["stampede_test_extra"]; v != 7 {
		t.Fatalf("extra collector: %v", v)
	}
}

func TestPrivateQueues(t *testing.T) {
	for name, want := range map[string]string{
		"/queue/orders":             "",
		"/queue/tmp.3f2a.answers":   temporaryQueues,
		"/durable/app:news":         durableQueues,
		"/queue/DLQ.orders":         "",
		"/queue/tmpfiles":           "",
		"/durable/x/queue/tmp.oops": durableQueues,
	} {
		if got := privateQueue(name); got != want {
			t.Errorf("privateQueue(%q) = %q, want %q", name, got, want)
		}
	}
}
