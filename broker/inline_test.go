package broker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// tryTransport is a fakeTransport that can also write without blocking,
// as a socket does: TryWriteFrames takes only as many bytes as room says
// the socket has (none while writes are blocked), and owes the rest,
// which WriteFrames sends first.
type tryTransport struct {
	*fakeTransport
	room  func() int
	full  atomic.Pointer[chan struct{}] // while open, the socket takes nothing
	tries atomic.Int64                  // TryWriteFrames calls
	owing atomic.Int64                  // of them, those that left bytes owed

	mu   sync.Mutex // the broker has one writer at a time; this checks it
	owed []byte
}

func newTryTransport(room func() int) *tryTransport {
	return &tryTransport{fakeTransport: newFakeTransport(), room: room}
}

func (t *tryTransport) CanTryWrite() bool { return true }

func (t *tryTransport) TryWriteFrames(frames []Outbound) (bool, error) {
	if !t.mu.TryLock() {
		panic("two writers at once")
	}
	defer t.mu.Unlock()
	select {
	case <-t.closed:
		return false, errors.New("closed")
	default:
	}
	t.tries.Add(1)
	var wire []byte
	for _, o := range frames {
		wire = append(append(wire, o.Head...), o.Body...)
	}
	if len(t.owed) > 0 {
		t.owed = append(t.owed, wire...)
		return true, nil
	}
	n := min(t.room(), len(wire))
	if full := t.full.Load(); full != nil {
		select {
		case <-*full:
		default:
			n = 0
		}
	}
	t.feed(wire[:n])
	t.owed = append(t.owed, wire[n:]...)
	if len(t.owed) > 0 {
		t.owing.Add(1)
	}
	return len(t.owed) > 0, nil
}

func (t *tryTransport) WriteFrames(frames []Outbound) error {
	if !t.mu.TryLock() {
		panic("two writers at once")
	}
	defer t.mu.Unlock()
	if full := t.full.Load(); full != nil {
		select {
		case <-*full:
		case <-t.closed:
			return errors.New("closed")
		}
	}
	if len(t.owed) > 0 {
		t.feed(t.owed)
		t.owed = nil
	}
	return t.fakeTransport.WriteFrames(frames)
}

// TestInlineWrites fans messages out to subscribers whose transports write
// from the publisher's goroutine and take all, none or part of each write:
// every subscriber gets every message once, whole and in order.
func TestInlineWrites(t *testing.T) {
	b := newBroker(t, Options{})
	rooms := map[string]func() int{
		"all":     func() int { return 1 << 30 },
		"none":    func() int { return 0 },
		"part":    func() int { return rand.IntN(400) },
		"a frame": func() int { return 100 },
	}
	var subs []*client
	var trs []*tryTransport
	for name, room := range rooms {
		for range 3 {
			tr := newTryTransport(room)
			c := dialOver(t, b, tr, tr.fakeTransport)
			c.send(stomp.CONNECT, "accept-version", "1.2")
			c.expect(stomp.CONNECTED)
			c.send(stomp.SUBSCRIBE, "id", name, "destination", "/topic/inline", "receipt", "s")
			c.expectReceipt()
			subs = append(subs, c)
			trs = append(trs, tr)
		}
	}
	pub := connect(t, b)
	const n = 600
	for i := 0; i < n; {
		// Bursts of 1 to 5 SENDs in one read, published together.
		var burst []byte
		for k := rand.IntN(5); k >= 0 && i < n; k-- {
			f := stomp.New(stomp.SEND, "destination", "/topic/inline")
			f.Body = []byte("m-" + strconv.Itoa(i))
			burst = append(burst, stomp.Encode(f, stomp.V12)...)
			i++
		}
		pub.ft.in <- burst
		if i%25 == 0 {
			// A pause now and then: write loops go idle, and the next
			// publish, a while after the last, writes inline.
			time.Sleep(2 * inlineGap)
		}
	}
	for k, c := range subs {
		for i := range n {
			f := c.expect(stomp.MESSAGE)
			if got, want := string(f.Body), "m-"+strconv.Itoa(i); got != want {
				t.Fatalf("subscriber %d (%s): message %d is %q", k, f.Value("subscription"), i, got)
			}
		}
	}
	var tries, owing int64
	for _, tr := range trs {
		tries += tr.tries.Load()
		owing += tr.owing.Load()
	}
	if tries == 0 || owing == 0 {
		t.Fatalf("%d inline writes, %d of them left bytes owed: the inline path was not exercised", tries, owing)
	}
	t.Logf("%d inline writes, %d left bytes owed", tries, owing)
}

// TestInlineWriteNeverWaits: a subscriber whose socket takes nothing does
// not hold up the publisher that writes to it, and gets everything, in
// order, once it reads again.
func TestInlineWriteNeverWaits(t *testing.T) {
	b := newBroker(t, Options{})
	tr := newTryTransport(func() int { return 1 << 30 })
	sub := dialOver(t, b, tr, tr.fakeTransport)
	sub.send(stomp.CONNECT, "accept-version", "1.2")
	sub.expect(stomp.CONNECTED)
	sub.send(stomp.SUBSCRIBE, "id", "0", "destination", "/topic/full", "receipt", "s")
	sub.expectReceipt()
	full := make(chan struct{})
	tr.full.Store(&full)
	pub := connect(t, b)
	for i := range 20 {
		time.Sleep(2 * inlineGap) // so the publish writes inline
		pub.sendBody(stomp.SEND, fmt.Sprint(i), "destination", "/topic/full", "receipt", fmt.Sprint(i))
		pub.expectReceipt()
	}
	sub.expectNothing(20 * time.Millisecond)
	if tr.owing.Load() == 0 {
		t.Fatal("no inline write was tried on the full socket")
	}
	close(full)
	for i := range 20 {
		if f := sub.expect(stomp.MESSAGE); string(f.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, f.Body)
		}
	}
}
