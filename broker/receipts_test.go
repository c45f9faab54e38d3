package broker

import (
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
	"github.com/stampede-mq/stampede/store"
)

// slowDeletes holds every Delete until release is closed.
type slowDeletes struct {
	Store
	release chan struct{}
}

func (s *slowDeletes) Delete(queue string, seqs ...uint64) error {
	<-s.release
	return s.Store.Delete(queue, seqs...)
}

// A RECEIPT for an ACK waits for the store; the connection's later
// frames do not: they are read and applied meanwhile, and their RECEIPTs
// follow the ACK's, in order.
func TestReceiptsWaitForTheStoreNotTheReader(t *testing.T) {
	st := &slowDeletes{Store: store.NewMemory(), release: make(chan struct{})}
	b, err := New(Options{}, st)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, b)
	publish(c, "/queue/p", "m", "persistent", "true")
	subscribe(c, "id", "s", "destination", "/queue/p", "ack", "client-individual")
	m := c.expect(stomp.MESSAGE)
	watcher := connect(t, b)
	subscribe(watcher, "id", "w", "destination", "/topic/after")

	c.send(stomp.ACK, "id", m.Value("ack"), "receipt", "ack")
	c.sendBody(stomp.SEND, "sent after the ACK", "destination", "/topic/after", "receipt", "send")
	if got := watcher.expect(stomp.MESSAGE); string(got.Body) != "sent after the ACK" {
		t.Fatalf("watcher got %q", got.Body)
	}
	c.expectNothing(50 * time.Millisecond) // both receipts wait for the store

	close(st.release)
	for _, want := range []string{"ack", "send"} {
		if r := c.expect(stomp.RECEIPT); r.Value("receipt-id") != want {
			t.Fatalf("receipt %q, want %q", r.Value("receipt-id"), want)
		}
	}
}
