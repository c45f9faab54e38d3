package tests

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// Clients for the cluster tests that lose nodes: producers and consumers
// that connect again when a node refuses or goes away, as real clients
// would, and a ledger of what they sent and got.

// clusterLedger is what the producers and consumers of a kill test did
// and saw. A message is one SEND attempt: a producer that gets no RECEIPT
// sends the same payload again under a new body, since the first may or
// may not have been stored.
type clusterLedger struct {
	mu         sync.Mutex
	receipted  map[string]bool
	deliveries map[string][]string // body → "node" or "node(r)" per delivery
	plain      map[string]int      // deliveries without redelivered:true
	total      int
}

func newClusterLedger() *clusterLedger {
	return &clusterLedger{receipted: map[string]bool{}, deliveries: map[string][]string{}, plain: map[string]int{}}
}

func (l *clusterLedger) receipt(body string) {
	l.mu.Lock()
	l.receipted[body] = true
	l.mu.Unlock()
}

func (l *clusterLedger) delivered(body string, redelivered bool, node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if redelivered {
		node += "(r)"
	} else {
		l.plain[body]++
	}
	l.deliveries[body] = append(l.deliveries[body], node)
}

func (l *clusterLedger) deliveredCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *clusterLedger) receiptedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.receipted)
}

func (l *clusterLedger) deliveriesOf(body string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.deliveries[body])
}

// missing lists receipted messages not consumed yet.
func (l *clusterLedger) missing() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for b := range l.receipted {
		if len(l.deliveries[b]) == 0 {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	return out
}

// check fails the test for a message delivered twice without the
// redelivered flag: the second consumer would take it for new work.
func (l *clusterLedger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var bad []string
	for b, n := range l.plain {
		if n > 1 {
			bad = append(bad, fmt.Sprintf("%s %v", b, l.deliveries[b]))
		}
	}
	slices.Sort(bad)
	if len(bad) > 0 {
		t.Errorf("%d messages delivered more than once without redelivered:true: %v", len(bad), bad[:min(len(bad), 20)])
	}
}

func (l *clusterLedger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	again, flagged := 0, 0
	for _, ds := range l.deliveries {
		if len(ds) > 1 {
			again++
		}
		for _, d := range ds {
			if strings.HasSuffix(d, "(r)") {
				flagged++
			}
		}
	}
	return fmt.Sprintf("%d receipted, %d deliveries of %d messages, %d delivered more than once, %d deliveries marked redelivered",
		len(l.receipted), l.total, len(l.deliveries), again, flagged)
}

// waitAllConsumed waits until every receipted message has been consumed.
func waitAllConsumed(t *testing.T, l *clusterLedger, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		missing := l.missing()
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d receipted messages never consumed within %v: %v", len(missing), d, missing[:min(len(missing), 20)])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterConsumer consumes queue on p with client-individual acks, acking
// each message at once, until stop is called; seen, when set, hears of
// each delivery. When its connection fails (an ERROR while the cluster
// elects new leaders for what a dead node led), it connects again, as a
// client would. stop returns how many times it had to.
func clusterConsumer(t *testing.T, l *clusterLedger, p *brokerProc, queue, node string, seen func(body string, redelivered bool)) (stop func() int) {
	t.Helper()
	conn, sub, err := subscribeRetrying(p, queue, 60*time.Second)
	if err != nil {
		t.Fatalf("consumer on %s: %v", node, err)
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	reconnects := 0
	go func() {
		defer close(done)
		for {
			for m := range sub.C {
				if m.Err != nil {
					break
				}
				red := m.Header.Get("redelivered") == "true"
				l.delivered(string(m.Body), red, node)
				if seen != nil {
					seen(string(m.Body), red)
				}
				if conn.Ack(m) != nil {
					break
				}
			}
			conn.MustDisconnect()
			select {
			case <-quit:
				return
			default:
			}
			reconnects++
			if conn, sub, err = subscribeRetrying(p, queue, 60*time.Second); err != nil {
				t.Errorf("consumer on %s: %v", node, err)
				return
			}
		}
	}()
	var once sync.Once
	return func() int {
		once.Do(func() {
			close(quit)
			conn.Disconnect()
			<-done
		})
		return reconnects
	}
}

// subscribeRetrying connects to p and subscribes to queue, trying again
// while the broker refuses (a cluster that has just lost a node refuses
// for the seconds its election takes), for up to d.
func subscribeRetrying(p *brokerProc, queue string, d time.Duration) (*stomp.Conn, *stomp.Subscription, error) {
	deadline := time.Now().Add(d)
	for {
		conn, err := dialGoStomp(p)
		if err == nil {
			var sub *stomp.Subscription
			sub, err = conn.Subscribe(queue, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "16"))
			if err == nil {
				// In place once a later frame is answered.
				if err = conn.Send("/topic/barrier", "", nil, stomp.SendOpt.Receipt); err == nil {
					return conn, sub, nil
				}
			}
			conn.MustDisconnect()
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("cannot subscribe to %s on %s within %v: %w", queue, p.Name, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type clusterProducerSpec struct {
	name  string
	nodes []*brokerProc // the first to connect to, then where to go
}

// producerStats is what one producer went through.
type producerStats struct {
	name     string
	sent     int           // messages receipted
	failed   int           // SENDs that got no RECEIPT (sent again)
	moved    int           // times it connected to another node
	timeouts int           // of the failures, no answer within waitFor
	slowest  time.Duration // the longest wait for a RECEIPT
	errs     []string      // the first few errors
	err      error         // why it gave up, if it did
}

func (s producerStats) String() string {
	return fmt.Sprintf("%s: %d receipted, %d failed SENDs (%d without any answer in %v), moved %d times, slowest RECEIPT %v, errors %q",
		s.name, s.sent, s.failed, s.timeouts, waitFor, s.moved, s.slowest.Round(time.Millisecond), s.errs)
}

type producerRun struct {
	wg    sync.WaitGroup
	stats []producerStats
}

// runClusterProducers starts a producer per spec, each sending perProducer
// persistent messages with receipts to queue, one at a time.
func runClusterProducers(l *clusterLedger, queue string, perProducer int, specs ...clusterProducerSpec) *producerRun {
	r := &producerRun{stats: make([]producerStats, len(specs))}
	for i, s := range specs {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.stats[i] = clusterProduce(l, s, queue, perProducer)
		}()
	}
	return r
}

// wait waits for the producers, failing the test for one that gave up.
func (r *producerRun) wait(t *testing.T) []producerStats {
	t.Helper()
	r.wg.Wait()
	for _, s := range r.stats {
		if s.err != nil {
			t.Errorf("producer %s gave up: %v (%s)", s.name, s.err, s)
		}
	}
	return r.stats
}

// clusterProduce sends n messages, each until it is receipted: when a
// SEND fails (an ERROR, the connection lost, no RECEIPT in time), the
// producer connects again, to its node or the next one that answers, and
// sends the payload again as a new message.
func clusterProduce(l *clusterLedger, spec clusterProducerSpec, queue string, n int) producerStats {
	s := producerStats{name: spec.name}
	deadline := time.Now().Add(2 * time.Minute)
	node := 0
	var conn *stomp.Conn
	defer func() {
		if conn != nil {
			conn.Disconnect()
		}
	}()
	note := func(err error) {
		if len(s.errs) < 5 {
			s.errs = append(s.errs, err.Error())
		}
	}
	for seq, attempt := 0, 0; seq < n; {
		if time.Now().After(deadline) {
			s.err = fmt.Errorf("message %d not receipted after 2 minutes", seq)
			return s
		}
		if conn == nil {
			c, err := dialGoStomp(spec.nodes[node])
			if err != nil {
				note(err)
				node = (node + 1) % len(spec.nodes)
				s.moved++
				time.Sleep(100 * time.Millisecond)
				continue
			}
			conn = c
		}
		attempt++
		body := fmt.Sprintf("%s-%04d-a%d", spec.name, seq, attempt)
		start := time.Now()
		err := conn.Send(queue, "text/plain", []byte(body), stomp.SendOpt.Header("persistent", "true"), stomp.SendOpt.Receipt)
		took := time.Since(start)
		s.slowest = max(s.slowest, took)
		if err != nil {
			s.failed++
			if errors.Is(err, stomp.ErrMsgReceiptTimeout) {
				s.timeouts++
			}
			note(err)
			conn.MustDisconnect()
			conn = nil
			// An ERROR comes at once while the cluster elects new
			// leaders; no need to ask hundreds of times a second.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		l.receipt(body)
		s.sent++
		seq, attempt = seq+1, 0
	}
	return s
}
