package broker

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

// sendPersistent has producers connections send n receipted persistent
// SENDs of size bytes to dest between them, each waiting for its RECEIPT
// before the next, and returns the rate.
func sendPersistent(tb testing.TB, b *Broker, dest string, producers, n, size int) (float64, error) {
	frame := stomp.Encode(&stomp.Frame{
		Command: stomp.SEND,
		Headers: []stomp.Header{{Key: "destination", Value: dest}, {Key: "persistent", Value: "true"}, {Key: "receipt", Value: "r"}},
		Body:    seqBody(0, size),
	}, stomp.V12)
	clients := make([]*client, producers)
	for i := range clients {
		clients[i] = connect(tb, b)
	}
	var left atomic.Int64
	left.Store(int64(n))
	errc := make(chan error, producers)
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				c.ft.in <- frame
				f := c.next(10 * time.Second)
				if f == nil || f.Command != stomp.RECEIPT {
					errc <- fmt.Errorf("persistent SEND: got %v, want RECEIPT", f)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	return float64(n) / elapsed.Seconds(), <-errc
}

// BenchmarkPersistentSend measures receipted persistent SENDs per second
// from one producer and from 32 concurrent ones over the bbolt store. A
// lone producer pays one fsync per message; concurrent ones must share
// them (group commit), so 32 producers must reach at least ten times the
// rate of one.
func BenchmarkPersistentSend(b *testing.B) {
	rates := map[int]float64{}
	for _, producers := range []int{1, 32} {
		b.Run("producers="+strconv.Itoa(producers), func(b *testing.B) {
			br, err := New(Options{}, openBolt(b, b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(1024)
			b.ResetTimer()
			rate, err := sendPersistent(b, br, "/queue/bench", producers, b.N, 1024)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(rate, "msgs/s")
			rates[producers] = rate
		})
	}
	if rates[1] > 0 && rates[32] > 0 {
		ratio := rates[32] / rates[1]
		b.Logf("32 producers: %.0f msgs/s, 1 producer: %.0f msgs/s: %.1f×", rates[32], rates[1], ratio)
		// Under -race every message costs far more CPU, which caps the
		// 32-producer rate on a small machine; the bound is for real builds.
		if ratio < 10 && !raceEnabled() {
			b.Errorf("32 concurrent producers reach only %.1f× the rate of one; group commit should give at least 10×", ratio)
		}
	}
}

// BenchmarkQueue1GiB fills a queue with 1 GiB of persistent 1 KiB
// messages and drains it in order through a client-ack consumer, reporting
// both rates and the largest live heap seen, which must stay under
// 128 MiB. One iteration is the whole GiB; run it with -benchtime=1x.
// STAMPEDE_QUEUE_MIB sets another size.
func BenchmarkQueue1GiB(b *testing.B) {
	total := 1024 * mib
	if v := os.Getenv("STAMPEDE_QUEUE_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("STAMPEDE_QUEUE_MIB=%q: want a positive number", v)
		}
		total = n * mib
	}
	const size, heapLimit = 1024, 128 * mib
	n := total / size
	for range b.N {
		st := &countingStore{Store: openBolt(b, b.TempDir())}
		br, err := New(Options{}, st)
		if err != nil {
			b.Fatal(err)
		}
		r := fillAndDrain(b, br, st, "/queue/gib", n, size, 32)
		b.ReportMetric(float64(total)/mib/r.fill.Seconds(), "fill-MiB/s")
		b.ReportMetric(float64(n)/r.drain.Seconds(), "drain-msgs/s")
		b.ReportMetric(float64(r.heap)/mib, "max-heap-MiB")
		b.Logf("%d MiB (%d messages): fill %v, drain %v, max live heap %.1f MiB over %d samples; store calls: %v",
			total/mib, n, r.fill.Round(time.Millisecond), r.drain.Round(time.Millisecond), float64(r.heap)/mib, r.samples, st)
		if r.heap >= heapLimit {
			b.Fatalf("heap reached %.1f MiB, limit %d MiB", float64(r.heap)/mib, heapLimit/mib)
		}
	}
}
