package bolt

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stampede-mq/stampede/store"
	"github.com/stampede-mq/stampede/store/storetest"
)

func TestRecordCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	queues := []string{"/queue/a"}
	for i := range 500 {
		r := randomRecord(rng, queues, "/queue/a", i, 0)
		r.Queue = "" // not part of the value
		v, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != encodedRecordSize(r) {
			t.Fatalf("encoded %d bytes, size says %d", len(v), encodedRecordSize(r))
		}
		got, err := decodeRecord(v)
		if err != nil {
			t.Fatal(err)
		}
		if !storetest.SameRecord(got, r) {
			t.Fatalf("round trip gave %+v\nwant %+v", got, r)
		}
		if n, err := recordBodyLen(v); err != nil || n != int64(len(r.Body)) {
			t.Fatalf("recordBodyLen %d %v, want %d", n, err, len(r.Body))
		}
		// Every proper prefix is refused.
		for cut := range len(v) {
			if _, err := decodeRecord(v[:cut]); err == nil {
				t.Fatalf("a value cut to %d of %d bytes decoded", cut, len(v))
			}
		}
		// The decoded record shares no memory with the value.
		for j := range v {
			v[j] = 0xAA
		}
		if !storetest.SameRecord(got, r) {
			t.Fatal("decoded record changed with the value it came from")
		}
	}
}

func TestRecordCodecExtremes(t *testing.T) {
	r := &store.Record{ID: "", Headers: [][2]string{{"", ""}}, Priority: math.MaxUint8, Expires: math.MinInt64,
		Timestamp: math.MaxInt64, Deliveries: math.MaxUint32, Body: make([]byte, 70000)}
	v, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(v)
	if err != nil || !storetest.SameRecord(got, r) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := decodeRecord(append(v, 0)); err == nil {
		t.Fatal("a value with a trailing byte decoded")
	}
}

func TestSubscriptionCodec(t *testing.T) {
	s := store.Subscription{Name: "n", Destination: "/topic/a.*", Queue: "/queue/x", Owner: "alice"}
	v := encodeSubscription(s)
	if got, err := decodeSubscription("n", v); err != nil || got != s {
		t.Fatalf("got %+v, %v", got, err)
	}
	// Stored before owners were kept: destination and queue only.
	legacy := len(encodeSubscription(store.Subscription{Destination: s.Destination, Queue: s.Queue})) - 1
	for cut := range len(v) {
		got, err := decodeSubscription("n", v[:cut])
		switch {
		case cut == legacy && (err != nil || got.Owner != "" || got.Queue != s.Queue):
			t.Fatalf("a subscription without owner decoded as %+v, %v", got, err)
		case cut != legacy && err == nil:
			t.Fatalf("cut to %d decoded", cut)
		}
	}
	if _, err := decodeSubscription("n", append(v, 1)); err == nil {
		t.Fatal("trailing byte decoded")
	}
}

// FuzzDecodeRecord: any bytes either give an error or decode into a record
// that survives encoding and decoding again unchanged; never a panic.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []*store.Record{
		{},
		{ID: "x", Headers: [][2]string{{"a", "b"}}, Body: []byte("body"), Priority: 4, Deliveries: 2},
	} {
		v, _ := encodeRecord(r)
		f.Add(v)
	}
	f.Add([]byte{recordFormat, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRecord(v)
		if err != nil {
			return
		}
		again, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeRecord(again)
		if err != nil || !storetest.SameRecord(back, r) {
			t.Fatalf("re-encoding changed the record: %+v vs %+v (%v)", back, r, err)
		}
	})
}
