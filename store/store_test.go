package store

import (
	"errors"
	"testing"
)

func TestMemory(t *testing.T) {
	m := NewMemory()
	recs := []*Record{
		{Queue: "/queue/a", ID: "1", Body: []byte("one"), Headers: [][2]string{{"k", "v"}}},
		{Queue: "/queue/b", ID: "2", Body: []byte("two")},
		{Queue: "/queue/a", ID: "3", Body: []byte("three")},
	}
	if err := m.Append(recs); err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq == 0 || recs[2].Seq <= recs[0].Seq {
		t.Fatalf("sequence not assigned in order: %d %d", recs[0].Seq, recs[2].Seq)
	}
	// The store keeps its own copy: changing the caller's record changes nothing.
	recs[0].Body[0] = 'X'
	if err := m.SetDeliveries([]DeliveryCount{{Queue: "/queue/a", Seq: recs[2].Seq, N: 4}}); err != nil {
		t.Fatal(err)
	}
	var got []*Record
	if err := m.Scan("/queue/a", 0, 0, func(r *Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0].Body) != "one" || got[0].Headers[0] != [2]string{"k", "v"} || got[1].Deliveries != 4 {
		t.Fatalf("Scan gave %+v %+v", got[0], got[1])
	}
	if err := m.Delete("/queue/b", recs[1].Seq); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete("/queue/b", 999); err != nil {
		t.Fatal("deleting a missing record:", err)
	}
	qs, _ := m.Queues()
	if len(qs) != 1 || qs[0] != (QueueInfo{Name: "/queue/a", Count: 2, Bytes: 8}) {
		t.Fatalf("queues %v", qs)
	}
	stop := errors.New("stop")
	if err := m.Scan("/queue/a", 0, 0, func(*Record) error { return stop }); err != stop {
		t.Fatalf("Scan did not return fn's error: %v", err)
	}
	m.Close()
	if err := m.Append(recs); err != ErrClosed {
		t.Fatalf("append after close: %v", err)
	}
}
