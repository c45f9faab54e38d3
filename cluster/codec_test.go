package cluster

import (
	"reflect"
	"testing"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

func TestCodecRoundTrip(t *testing.T) {
	m := &broker.Envelope{
		ID: "abc-1", Destination: "/topic/a.b", Priority: 7, Expires: 1234, Timestamp: 99,
		Persistent: true, Body: []byte("hello\x00there"),
		Headers: []stomp.Header{{Key: "b", Value: "2"}, {Key: "a", Value: "1:x"}},
	}
	got, err := decode(encode(m))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v, want %+v", got, m)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(&broker.Envelope{ID: "x", Destination: "/queue/q", Body: []byte("b")}))
	f.Add([]byte{1, 200, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decode(p)
		if err != nil {
			return
		}
		again, err := decode(encode(m))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip of a decoded message changed it: %+v vs %+v (%v)", m, again, err)
		}
	})
}
