package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

func TestMemoryAlarmPausesPublishers(t *testing.T) {
	b := newBroker(t, Options{MemoryHighWatermark: 1}) // always over
	cons := connect(t, b)
	subscribe(cons, "id", "s", "destination", "/queue/a", "ack", "client-individual")
	pub := connect(t, b)
	if !b.Stats().MemoryAlarm {
		t.Fatal("alarm not raised over the watermark")
	}
	for i := range 5 {
		pub.sendBody(stomp.SEND, fmt.Sprint(i), "destination", "/queue/a", "receipt", fmt.Sprint(i))
	}
	pub.expectNothing(200 * time.Millisecond) // paused: not read, no receipt

	// Consumers go on meanwhile: a message published before the alarm
	// is delivered and acknowledged.
	if err := b.Publish("/queue/a", nil, []byte("early")); err != nil {
		t.Fatal(err)
	}
	m := cons.expect(stomp.MESSAGE)
	cons.send(stomp.ACK, "id", m.Value("ack"), "receipt", "ack")
	cons.expectReceipt()

	b.alarm.high.Store(1 << 62) // memory falls under the watermark
	for i := range 5 {
		if r := pub.expectReceipt(); r.Value("receipt-id") != fmt.Sprint(i) {
			t.Fatalf("receipt %v, want %d", r.Headers, i)
		}
	}
	for i := range 5 {
		m := cons.expect(stomp.MESSAGE)
		if string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", m.Body, i)
		}
		cons.send(stomp.ACK, "id", m.Value("ack"))
	}
	if b.Stats().MemoryAlarm {
		t.Fatal("alarm still on")
	}
}
