package tests

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/stampede-mq/stampede/subprotocol"
)

// ackBacklog is how many messages wait in the queue before the consumer
// subscribes: far more than go-stomp's channels hold, far fewer than the
// broker's default prefetch of 1000 lets through.
const ackBacklog = 3000

// TestGoStompAckInReceiveLoop is the trap a first Go consumer falls into,
// and the ways around it. go-stomp v3 hands MESSAGEs to a subscription
// (16 slots) from the goroutine that also drains the write queue (20
// slots) into which Ack puts its frame. A consumer that acks in its
// receive loop with the broker's default prefetch stops for good once
// both fill; with prefetch-count 16 (what subprotocol.Subscribe asks for)
// the handing over never blocks and the backlog drains.
func TestGoStompAckInReceiveLoop(t *testing.T) {
	p := startBroker(t)
	pub := goConnect(t, p, tcpTransport)
	fill := func(dest string) {
		for i := range ackBacklog {
			send(t, pub, dest, `{"n":`+strconv.Itoa(i)+`}`)
		}
		barrier(t, pub)
	}

	t.Run("default-prefetch-hangs", func(t *testing.T) {
		dest := "/queue/ack-loop.default"
		fill(dest)
		rwc := dialStream(t, p, tcpTransport)
		conn, err := stomp.Connect(rwc, stomp.ConnOpt.Logger(quietLogger{}))
		if err != nil {
			t.Fatal(err)
		}
		sub, err := conn.Subscribe(dest, stomp.AckClientIndividual)
		if err != nil {
			t.Fatal(err)
		}
		acked, stop, done := ackLoop(conn, sub)
		n, stalled := waitForStall(acked, 30*time.Second)
		if !stalled {
			t.Fatalf("the consumer acked %d of %d and did not stall: go-stomp no longer hangs here, so README's warning and subprotocol.Subscribe need a second look", n, ackBacklog)
		}
		t.Logf("plain go-stomp, prefetch 1000: stuck after %d of %d messages", n, ackBacklog)
		// Unstick it to end the test: taking messages off the
		// subscription frees go-stomp's goroutine, which then takes the
		// pending ACK, and the consumer returns.
		stop.Store(true)
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for range sub.C {
			}
		}()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Fatal("the consumer stayed blocked in Ack")
		}
		rwc.Close()
		select {
		case <-drained:
		case <-time.After(waitFor):
			t.Fatal("the subscription did not end after the connection closed")
		}
	})

	drains := func(t *testing.T, conn *stomp.Conn, sub *stomp.Subscription) {
		t.Helper()
		acked, stop, done := ackLoop(conn, sub)
		defer func() { stop.Store(true) }()
		n, stalled := waitForStall(acked, 60*time.Second)
		if stalled || n != ackBacklog {
			t.Fatalf("the consumer acked %d of %d messages", n, ackBacklog)
		}
		<-done
	}
	t.Run("prefetch-16-drains", func(t *testing.T) {
		dest := "/queue/ack-loop.prefetch"
		fill(dest)
		conn := goConnect(t, p, tcpTransport)
		sub := subscribe(t, conn, dest, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "16"))
		drains(t, conn, sub)
	})
	t.Run("subprotocol-subscribe-drains", func(t *testing.T) {
		for _, url := range []string{"tcp://" + p.TCPAddr, p.WSURL} {
			dest := "/queue/ack-loop.helper." + url[:2]
			fill(dest)
			ctx := t.Context()
			conn, err := subprotocol.Connect(ctx, url, subprotocol.ConnectOptions{
				Options: []func(*stomp.Conn) error{stomp.ConnOpt.Logger(quietLogger{})},
			})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := subprotocol.Subscribe(conn, dest, stomp.AckClientIndividual)
			if err != nil {
				t.Fatal(err)
			}
			drains(t, conn, sub)
			conn.Disconnect()
		}
	})
}

// ackLoop consumes sub the way a first program does: receive, work, Ack,
// next. The work (200 µs, a quick database write) keeps the subscription's
// channel full, as any consumer slower than the network does, so the
// trap closes within a few hundred messages rather than by chance. It
// counts the messages acked, ends once stop is set or all are acked, and
// closes done when it returns.
func ackLoop(conn *stomp.Conn, sub *stomp.Subscription) (acked *atomic.Int64, stop *atomic.Bool, done chan struct{}) {
	acked, stop, done = new(atomic.Int64), new(atomic.Bool), make(chan struct{})
	go func() {
		defer close(done)
		for m := range sub.C {
			if m.Err != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
			if conn.Ack(m) != nil {
				return
			}
			if acked.Add(1) == ackBacklog || stop.Load() {
				return
			}
		}
	}()
	return acked, stop, done
}

// waitForStall watches the count until every message is acked, or it has
// not moved for two seconds (stalled), or limit passes.
func waitForStall(acked *atomic.Int64, limit time.Duration) (n int, stalled bool) {
	last, still := int64(-1), 0
	for end := time.Now().Add(limit); time.Now().Before(end); {
		time.Sleep(250 * time.Millisecond)
		cur := acked.Load()
		if cur == ackBacklog {
			return int(cur), false
		}
		if cur == last {
			if still++; still == 8 {
				return int(cur), true
			}
		} else {
			last, still = cur, 0
		}
	}
	return int(acked.Load()), false
}
