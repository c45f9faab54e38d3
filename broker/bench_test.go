package broker

import (
	"testing"

	"github.com/stampede-mq/stampede/stomp"
)

// benchPublish measures SEND handling from one connection with subs
// subscribers on dest, each on its own discarding connection.
func benchPublish(b *testing.B, dest string, subs int) {
	benchPublishWith(b, Options{}, dest, subs)
}

func benchPublishWith(b *testing.B, opts Options, dest string, subs int) {
	br := newBroker(b, opts)
	for i := range subs {
		c := connect(b, br)
		c.ft.discard = true
		c.send(stomp.SUBSCRIBE, "id", "s", "destination", dest, "receipt", "r")
		_ = i
	}
	pub := connect(b, br)
	pub.ft.discard = true
	frame := stomp.Encode(&stomp.Frame{
		Command: stomp.SEND,
		Headers: []stomp.Header{{Key: "destination", Value: dest}, {Key: "content-type", Value: "text/plain"}},
		Body:    make([]byte, 100),
	}, stomp.V12)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for range b.N {
		pub.ft.in <- frame
	}
	// A receipt round trip would need a reading client; closing waits for
	// the session to finish what it was given.
	pub.close()
}

func BenchmarkPublishTopic1(b *testing.B)   { benchPublish(b, "/topic/bench", 1) }
func BenchmarkPublishTopic100(b *testing.B) { benchPublish(b, "/topic/bench", 100) }
func BenchmarkPublishQueue2(b *testing.B)   { benchPublish(b, "/queue/bench", 2) }

// With history on, each publish also takes a position and one append to
// the topic's ring; subscribers get one header more.
func BenchmarkPublishTopic100History(b *testing.B) {
	benchPublishWith(b, Options{TopicHistory: 100}, "/topic/bench", 100)
}
