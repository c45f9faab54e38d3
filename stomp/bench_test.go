package stomp

import (
	"bytes"
	"strconv"
	"testing"
)

// benchMessage is a MESSAGE as the broker sends it: 8 headers.
func benchMessage(bodyLen int) *Frame {
	f := New(MESSAGE,
		"destination", "/queue/orders",
		"message-id", "m-000000000042",
		"subscription", "sub-1",
		"ack", "ack-000000000042",
		"content-type", "application/json",
		"content-length", "",
		"timestamp", "1767225600000",
		"correlation-id", "c:7", // escaped in 1.1 and 1.2
	)
	f.Body = bytes.Repeat([]byte("x"), bodyLen)
	f.Set("content-length", strconv.Itoa(bodyLen))
	return f
}

func benchSend() []byte {
	f := New(SEND,
		"destination", "/queue/orders",
		"content-type", "text/plain",
		"receipt", "r-17",
	)
	f.Body = bytes.Repeat([]byte("b"), 100)
	return Encode(f, V12)
}

// benchDecode feeds the same wire frame to one decoder again and again, as
// a connection's read loop does.
func benchDecode(b *testing.B, in []byte) {
	d := NewDecoder(Limits{})
	var n int
	emit := func(*Frame) error { n++; return nil }
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := d.Feed(in, emit); err != nil {
			b.Fatal(err)
		}
	}
	if n == 0 {
		b.Fatal("no frames")
	}
}

func BenchmarkDecodeSend(b *testing.B) { benchDecode(b, benchSend()) }

func BenchmarkDecodeMessage4K(b *testing.B) {
	benchDecode(b, Encode(benchMessage(4096), V12))
}

func BenchmarkDecodeSendOneByte(b *testing.B) {
	in := benchSend()
	d := NewDecoder(Limits{})
	emit := func(*Frame) error { return nil }
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		for i := range in {
			if err := d.Feed(in[i:i+1], emit); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkAppendHeadMessage(b *testing.B) {
	f := benchMessage(100)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendHead(nil, f, V12))))
	for b.Loop() {
		buf = AppendHead(buf[:0], f, V12)
	}
}
