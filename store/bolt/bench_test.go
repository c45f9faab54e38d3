package bolt

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/store"
)

// benchAppend has producers goroutines each append one record at a time,
// waiting for each to be durable, until b.N records are stored.
func benchAppend(b *testing.B, producers int) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, 100)
	var next atomic.Int64
	commits := s.commits.Load()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			q := fmt.Sprint("/queue/bench", p%4)
			for next.Add(1) <= int64(b.N) {
				if err := s.Append([]*store.Record{{Queue: q, ID: "m", Body: body}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()-commits), "msgs/commit")
}

// BenchmarkAppend1: one producer, so every record waits for its own fsync.
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppend32: 32 producers whose waiting records share commits.
func BenchmarkAppend32(b *testing.B) { benchAppend(b, 32) }

// BenchmarkReopen1M measures what a broker restart costs with a million
// small records stored: open, list the queues, read the first 1000.
func BenchmarkReopen1M(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, s, "/queue/big", n, 20_000, 64)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var decoded int64
	for range b.N {
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		qs, err := s.Queues()
		if err != nil || len(qs) != 1 || qs[0].Count != n {
			b.Fatalf("queues %v %v", qs, err)
		}
		got := 0
		if err := s.Scan("/queue/big", 0, 1000, func(*store.Record) error { got++; return nil }); err != nil || got != 1000 {
			b.Fatalf("scanned %d: %v", got, err)
		}
		decoded += s.decoded.Load()
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(decoded)/float64(b.N), "decoded/op")
}

// BenchmarkSetDeliveries writes delivery counts for 1000 records of four
// queues, as the broker's background writer hands them over after a busy
// moment: in one call, or spread over 64 concurrent callers of one count
// each, which share commits only as far as they arrive together.
func BenchmarkSetDeliveries(b *testing.B) {
	const n, callers = 1000, 64
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var counts []store.DeliveryCount
	for q := range 4 {
		name := fmt.Sprint("/queue/bench", q)
		for _, r := range fill(b, s, name, n/4, n/4, 100) {
			counts = append(counts, store.DeliveryCount{Queue: name, Seq: r.Seq})
		}
	}
	run := func(b *testing.B, write func() error) {
		commits := s.commits.Load()
		for i := 0; b.Loop(); i++ {
			for j := range counts {
				counts[j].N = uint32(i)
			}
			if err := write(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/count")
		b.ReportMetric(float64(s.commits.Load()-commits)/float64(b.N), "commits/op")
	}
	b.Run("one-call", func(b *testing.B) {
		run(b, func() error { return s.SetDeliveries(counts) })
	})
	b.Run("64-callers", func(b *testing.B) {
		run(b, func() error {
			var wg sync.WaitGroup
			var failed atomic.Pointer[error]
			next := make(chan store.DeliveryCount)
			for range callers {
				wg.Go(func() {
					for c := range next {
						if err := s.SetDeliveries([]store.DeliveryCount{c}); err != nil {
							failed.Store(&err)
						}
					}
				})
			}
			for _, c := range counts {
				next <- c
			}
			close(next)
			wg.Wait()
			if p := failed.Load(); p != nil {
				return *p
			}
			return nil
		})
	})
}
