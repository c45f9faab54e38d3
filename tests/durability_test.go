package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// msgKey names a message of the crash test: its producer and the
// producer's sequence number.
type msgKey struct{ producer, seq int }

func (k msgKey) String() string { return fmt.Sprintf("p%d#%d", k.producer, k.seq) }

// crashLedger is what the crash test's clients did and saw, across every
// broker process of the run.
type crashLedger struct {
	mu         sync.Mutex
	next       []int           // per producer: next sequence number
	sent       int             // SENDs written
	receipted  map[msgKey]bool // SENDs whose RECEIPT arrived
	deliveries map[msgKey]int  // MESSAGEs received per message
	acked      map[msgKey]bool // messages whose ACK's RECEIPT arrived
	life       int             // which broker process is running
	lastLife   map[msgKey]int  // the process that last delivered a message
	total      int             // MESSAGEs received
	repeats    int             // deliveries of a message delivered before and not acked
	flagged    int             // of those, how many carried redelivered:true
	violations []string
}

func newCrashLedger(producers int) *crashLedger {
	return &crashLedger{
		next:       make([]int, producers),
		receipted:  make(map[msgKey]bool),
		deliveries: make(map[msgKey]int),
		acked:      make(map[msgKey]bool),
		lastLife:   make(map[msgKey]int),
	}
}

func (l *crashLedger) violate(format string, args ...any) {
	if len(l.violations) < 20 {
		l.violations = append(l.violations, fmt.Sprintf(format, args...))
	}
}

// nextSeq hands producer p its next sequence number.
func (l *crashLedger) nextSeq(p int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := l.next[p]
	l.next[p]++
	l.sent++
	return seq
}

func (l *crashLedger) receipt(k msgKey) {
	l.mu.Lock()
	l.receipted[k] = true
	l.mu.Unlock()
}

// delivered records a MESSAGE and checks it against what came before.
// lastFirst is the consuming connection's own record, per producer, of the
// highest sequence it received as a first delivery: within one broker
// process a queue hands out messages it has not delivered before in the
// order they were sent, so on one connection those must rise.
func (l *crashLedger) delivered(k msgKey, redelivered bool, lastFirst map[int]int, consumer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if l.acked[k] {
		l.violate("%s delivered to %s after its ACK was receipted", k, consumer)
	}
	n := l.deliveries[k]
	l.deliveries[k] = n + 1
	if n == 0 {
		if last, ok := lastFirst[k.producer]; ok && k.seq <= last {
			l.violate("%s first delivered to %s after %s: out of send order", k, consumer, msgKey{k.producer, last})
		}
		lastFirst[k.producer] = k.seq
	} else {
		l.repeats++
		if redelivered {
			l.flagged++
		} else {
			// The broker records a dispatch mark before handing out a
			// stored message, so whatever an earlier process may have
			// delivered comes back flagged.
			l.violate("%s delivered again to %s without redelivered:true", k, consumer)
		}
		// No consumer leaves while a broker runs, so only a restart
		// may hand a message out again.
		if l.lastLife[k] == l.life {
			l.violate("%s delivered twice by one broker process (again to %s)", k, consumer)
		}
	}
	l.lastLife[k] = l.life
}

func (l *crashLedger) ackReceipted(k msgKey) {
	l.mu.Lock()
	l.acked[k] = true
	l.mu.Unlock()
}

// restarted starts a new broker life.
func (l *crashLedger) restarted() {
	l.mu.Lock()
	l.life++
	l.mu.Unlock()
}

// undelivered counts receipted messages never delivered, listing up to
// max of them.
func (l *crashLedger) undelivered(max int) (n int, some []msgKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.receipted {
		if l.deliveries[k] == 0 {
			n++
			if len(some) < max {
				some = append(some, k)
			}
		}
	}
	return n, some
}

func (l *crashLedger) deliveredCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// dialGoStomp connects go-stomp over TCP, returning errors instead of
// failing the test, for goroutines that see the broker die under them.
func dialGoStomp(p *brokerProc, opts ...func(*stomp.Conn) error) (*stomp.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", p.TCPAddr)
	if err != nil {
		return nil, err
	}
	all := append([]func(*stomp.Conn) error{
		stomp.ConnOpt.Logger(quietLogger{}),
		stomp.ConnOpt.MsgSendTimeout(waitFor),
		stomp.ConnOpt.RcvReceiptTimeout(waitFor),
		stomp.ConnOpt.DisconnectReceiptTimeout(waitFor),
		stomp.ConnOpt.UnsubscribeReceiptTimeout(waitFor),
	}, opts...)
	c, err := stomp.ConnectWithContext(ctx, nc, all...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// connSet holds connections for the test to close at once; one added
// after that is refused.
type connSet struct {
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.conns = append(s.conns, c)
	}
	return !s.closed
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
}

// crashProducer sends persistent messages with receipts, one at a time,
// until the broker goes away.
func crashProducer(p *brokerProc, l *crashLedger, id int, queue string) error {
	c, err := dialGoStomp(p)
	if err != nil {
		return err
	}
	defer c.MustDisconnect()
	pad := strings.Repeat("x", 200)
	for {
		k := msgKey{id, l.nextSeq(id)}
		err := c.Send(queue, "text/plain", []byte(k.String()+" "+pad),
			stomp.SendOpt.Header("persistent", "true"),
			stomp.SendOpt.Header("x-producer", strconv.Itoa(k.producer)),
			stomp.SendOpt.Header("x-seq", strconv.Itoa(k.seq)),
			stomp.SendOpt.Receipt)
		if err != nil {
			return err
		}
		l.receipt(k)
	}
}

// protocolError is a consumer's complaint about what the broker sent, as
// opposed to the connection ending under it.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

func complain(format string, args ...any) error {
	return &protocolError{fmt.Sprintf(format, args...)}
}

// crashConsumer consumes queue with a client-individual subscription and
// ACKs every message with a receipt, pipelined: it records a message as
// acked only when that ACK's RECEIPT arrives. It speaks STOMP by hand
// because go-stomp cannot put a receipt on an ACK. inflight counts its
// ACKs not yet receipted. It returns when the connection ends; conns, if
// given, holds the connection so the test can end it.
func crashConsumer(p *brokerProc, l *crashLedger, name, queue string, inflight *atomic.Int64, conns *connSet) error {
	nc, err := net.DialTimeout("tcp", p.TCPAddr, waitFor)
	if err != nil {
		return err
	}
	defer nc.Close()
	if conns != nil && !conns.add(nc) {
		return net.ErrClosed
	}
	w := bufio.NewWriter(nc)
	r := bufio.NewReaderSize(nc, 64<<10)
	write := func(cmd string, kv ...string) error {
		if _, err := w.WriteString(encodeFrame(cmd, "", kv...)); err != nil {
			return err
		}
		return w.Flush()
	}
	read := func() (*rawFrame, error) {
		// Bounded, so a broker that stops answering fails the run
		// instead of hanging it; the drain ends consumers by closing.
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		return readRawFrame(r, nil)
	}
	if err := write("CONNECT", "accept-version", "1.2", "host", "/"); err != nil {
		return err
	}
	if f, err := read(); err != nil || f.Command != "CONNECTED" {
		return complain("%s: CONNECT answered with %v (%v)", name, f, err)
	}
	if err := write("SUBSCRIBE", "id", "s", "destination", queue, "ack", "client-individual", "prefetch-count", "50"); err != nil {
		return err
	}
	lastFirst := map[int]int{}
	pending := map[string]msgKey{} // ACK receipt id → message
	acks := 0
	for {
		f, err := read()
		if err != nil {
			return err
		}
		switch f.Command {
		case "MESSAGE":
			pr, err1 := strconv.Atoi(f.Value("x-producer"))
			seq, err2 := strconv.Atoi(f.Value("x-seq"))
			if err1 != nil || err2 != nil || f.Value("destination") != queue {
				return complain("%s: unexpected MESSAGE %v", name, f)
			}
			k := msgKey{pr, seq}
			if !strings.HasPrefix(string(f.Body), k.String()+" ") {
				return complain("%s: body %.30q does not match headers %v", name, f.Body, k)
			}
			l.delivered(k, f.Value("redelivered") == "true", lastFirst, name)
			acks++
			rid := "ack-" + strconv.Itoa(acks)
			pending[rid] = k
			inflight.Add(1)
			if err := write("ACK", "id", f.Value("ack"), "receipt", rid); err != nil {
				return err
			}
		case "RECEIPT":
			rid := f.Value("receipt-id")
			k, ok := pending[rid]
			if !ok {
				return complain("%s: RECEIPT for nothing asked: %v", name, f)
			}
			delete(pending, rid)
			inflight.Add(-1)
			l.ackReceipted(k)
		default:
			return complain("%s: unexpected %v", name, f)
		}
	}
}

// TestCrashDurability runs producers and consumers against the broker and
// kills it with SIGKILL at random moments, restarting it on the same data
// directory each time, then drains what is left. Every message whose SEND
// was receipted must be delivered at least once, no message may be
// delivered again once its ACK was receipted, and first deliveries come
// in send order. STAMPEDE_CRASH_SEED repeats a run's kill times.
func TestCrashDurability(t *testing.T) {
	const producers, consumersPerQueue, rounds = 8, 2, 3
	queues := []string{"/queue/crash.a", "/queue/crash.b"}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STAMPEDE_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STAMPEDE_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (STAMPEDE_CRASH_SEED=%d repeats it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32))
	// A small memory window, so recovered backlogs are paged too.
	flags := []string{"--queue-memory-bytes", "32768"}

	l := newCrashLedger(producers)
	p := startBroker(t, flags...)
	dir := p.DataDir
	start := time.Now()
	for round := range rounds {
		if round > 0 {
			p = restartBroker(t, dir, flags...)
			l.restarted()
		}
		var wg sync.WaitGroup
		var inflight atomic.Int64 // ACKs the kill may leave unanswered
		errs := make(chan error, producers+len(queues)*consumersPerQueue)
		for i := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- crashProducer(p, l, i, queues[i%len(queues)])
			}()
		}
		runFor := 300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond)))
		// Consumers join late, so a backlog builds up past the memory
		// window and the kill finds messages paged out as well.
		lag := time.Duration(rng.Int64N(int64(runFor / 2)))
		for i := range len(queues) * consumersPerQueue {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(lag)
				errs <- crashConsumer(p, l, fmt.Sprintf("round %d consumer %d", round, i), queues[i%len(queues)], &inflight, nil)
			}()
		}
		time.Sleep(runFor)
		p.kill(t)
		wg.Wait()
		close(errs)
		for err := range errs {
			// Every client ends with the connection the kill broke; a
			// complaint about what the broker sent is a failure.
			var pe *protocolError
			if errors.As(err, &pe) {
				t.Errorf("round %d: %v", round, err)
			}
		}
		l.mu.Lock()
		t.Logf("round %d: consumers joined after %v, killed after %v; so far %d sent, %d receipted, %d delivered, %d acked",
			round, lag.Round(time.Millisecond), runFor.Round(time.Millisecond), l.sent, len(l.receipted), l.total, len(l.acked))
		l.mu.Unlock()
	}

	// The last restart: consumers only, until every receipted message has
	// been delivered, every ACK answered, and nothing more arrives for a
	// while. (A message whose ACK took effect just before a kill, with
	// its RECEIPT lost, is rightly never seen again.)
	p = restartBroker(t, dir, flags...)
	l.restarted()
	var wg sync.WaitGroup
	var inflight atomic.Int64
	nconsumers := len(queues) * consumersPerQueue
	errs := make(chan error, nconsumers)
	var conns connSet
	for i := range nconsumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- crashConsumer(p, l, fmt.Sprintf("drain consumer %d", i), queues[i%len(queues)], &inflight, &conns)
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	quietSince, lastCount := time.Now(), -1
	for {
		n, some := l.undelivered(10)
		count := l.deliveredCount()
		if count != lastCount {
			quietSince, lastCount = time.Now(), count
		}
		if n == 0 && inflight.Load() == 0 && time.Since(quietSince) > time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("drain: %d receipted messages never delivered, e.g. %v; %d ACKs unanswered", n, some, inflight.Load())
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	conns.closeAll()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("drain: %v", err)
		}
	}
	p.stopGracefully(t)

	l.mu.Lock()
	defer l.mu.Unlock()
	lost, unreceiptedDelivered := 0, 0
	for k := range l.receipted {
		if l.deliveries[k] == 0 {
			lost++
			l.violate("%s was receipted and never delivered", k)
		}
	}
	for k := range l.deliveries {
		if !l.receipted[k] {
			unreceiptedDelivered++
		}
	}
	t.Logf("%d rounds in %v: sent %d, receipted %d, delivered %d times (%d distinct, %d of them never receipted), "+
		"duplicates after unacked delivery %d (%d marked redelivered), ACKs receipted %d, lost %d",
		rounds, time.Since(start).Round(time.Millisecond), l.sent, len(l.receipted), l.total, len(l.deliveries),
		unreceiptedDelivered, l.repeats, l.flagged, len(l.acked), lost)
	if len(l.receipted) == 0 || len(l.acked) == 0 {
		t.Errorf("the run proved nothing: %d receipted, %d acked", len(l.receipted), len(l.acked))
	}
	for _, v := range l.violations {
		t.Error(v)
	}
}

// recvWant receives one message and checks its body and whether it is
// marked redelivered.
func recvWant(t *testing.T, sub *stomp.Subscription, body string, redelivered bool) *stomp.Message {
	t.Helper()
	m := recv(t, sub)
	if string(m.Body) != body {
		t.Fatalf("got %q, want %q (headers %v)", m.Body, body, headerList(m.Header))
	}
	if got := m.Header.Get("redelivered") == "true"; got != redelivered {
		t.Fatalf("%q: redelivered:true is %v, want %v (headers %v)", body, got, redelivered, headerList(m.Header))
	}
	return m
}

func ack(t *testing.T, c *stomp.Conn, m *stomp.Message) {
	t.Helper()
	if err := c.Ack(m); err != nil {
		t.Fatalf("ack %q: %v", m.Body, err)
	}
}

// TestDurableSubscriptionGoStomp follows one durable topic subscription
// (named by CONNECT client-id and SUBSCRIBE id) through a reconnect, a
// restart with a message left unacked, another restart, and its deletion
// by UNSUBSCRIBE durable:true.
func TestDurableSubscriptionGoStomp(t *testing.T) {
	t.Parallel()
	p := startBroker(t)
	dir := p.DataDir
	const topic = "/topic/dur.news"
	persistent := stomp.SendOpt.Header("persistent", "true")
	durable := func(t *testing.T, p *brokerProc) (*stomp.Conn, *stomp.Subscription) {
		t.Helper()
		c := goConnect(t, p, tcpTransport, stomp.ConnOpt.Header("client-id", "gostomp-app"))
		return c, subscribe(t, c, topic, stomp.AckClientIndividual,
			stomp.SubscribeOpt.Id("news"), stomp.SubscribeOpt.Header("durable", "true"))
	}

	// Online: messages arrive live. Two are acked, one is not.
	c, sub := durable(t, p)
	pub := goConnect(t, p, tcpTransport)
	for _, b := range []string{"live-1", "live-2", "live-3"} {
		send(t, pub, topic, b)
	}
	ack(t, c, recvWant(t, sub, "live-1", false))
	ack(t, c, recvWant(t, sub, "live-2", false))
	recvWant(t, sub, "live-3", false)
	barrier(t, c)
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}

	// Offline: persistent and plain messages wait for it alike.
	send(t, pub, topic, "away-1", persistent)
	send(t, pub, topic, "away-2")
	send(t, pub, topic, "away-3", persistent)
	c, sub = durable(t, p)
	recvWant(t, sub, "live-3", true)
	for _, b := range []string{"away-1", "away-2", "away-3"} {
		ack(t, c, recvWant(t, sub, b, false))
	}
	expectNothing(t, sub, 300*time.Millisecond)
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}

	// Across a restart only the persistent ones are kept.
	send(t, pub, topic, "kept-1", persistent)
	send(t, pub, topic, "dropped")
	send(t, pub, topic, "kept-2", persistent)
	p.stopGracefully(t)
	p = restartBroker(t, dir)
	c, sub = durable(t, p)
	ack(t, c, recvWant(t, sub, "kept-1", false))
	recvWant(t, sub, "kept-2", false)
	expectNothing(t, sub, 300*time.Millisecond)

	// One left unacked when the broker stops comes back marked.
	barrier(t, c)
	p.stopGracefully(t)
	p = restartBroker(t, dir)
	c, sub = durable(t, p)
	ack(t, c, recvWant(t, sub, "kept-2", true))
	expectNothing(t, sub, 300*time.Millisecond)

	// UNSUBSCRIBE durable:true deletes it: nothing is kept for it after.
	if err := sub.Unsubscribe(stomp.SubscribeOpt.Header("durable", "true")); err != nil {
		t.Fatal(err)
	}
	pub = goConnect(t, p, tcpTransport)
	send(t, pub, topic, "after-delete", persistent)
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	c, sub = durable(t, p)
	expectNothing(t, sub, 300*time.Millisecond)
	send(t, pub, topic, "fresh", persistent)
	ack(t, c, recvWant(t, sub, "fresh", false))
	if err := sub.Unsubscribe(stomp.SubscribeOpt.Header("durable", "true")); err != nil {
		t.Fatal(err)
	}
}

// TestNodeSTOMPJSDurable runs js/durable.mjs in two phases with a broker
// restart (SIGTERM, same data directory) between them.
func TestNodeSTOMPJSDurable(t *testing.T) {
	t.Parallel()
	node := requireNode(t)
	p := startBroker(t)
	runNodeScript(t, node, 40*time.Second, "durable", p.WSURL, "online")
	p.stopGracefully(t)
	p = restartBroker(t, p.DataDir)
	runNodeScript(t, node, 40*time.Second, "durable", p.WSURL, "restarted")
}
