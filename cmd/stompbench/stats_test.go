package main

import (
	"math"
	"testing"
)

func TestHistogramBuckets(t *testing.T) {
	// Every value lands in a bucket whose range holds it, the buckets
	// are in order, and the precision promise (1/histHalf) holds.
	prevHi := uint64(0)
	for i := range histBuckets {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if lo >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/histHalf+1e-12 {
			t.Fatalf("bucket %d [%d,%d] is wider than 1/%d of its start", i, lo, hi, histHalf)
		}
		prevHi = hi
	}
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 12345, 1 << 20, 1<<40 - 1} {
		lo, hi := bucketRange(bucketOf(v))
		if v < lo || v > hi {
			t.Errorf("value %d in bucket [%d,%d]", v, lo, hi)
		}
	}
	if got := bucketOf(math.MaxUint64); got != histBuckets-1 {
		t.Errorf("huge value in bucket %d, want the last (%d)", got, histBuckets-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values func(record func(int64))
		q      float64
		want   int64
	}{
		{"empty", func(func(int64)) {}, 0.5, 0},
		{"one value", func(r func(int64)) { r(5000) }, 0.99, 5000},
		{"uniform p50", uniform(1, 100000), 0.50, 50000},
		{"uniform p90", uniform(1, 100000), 0.90, 90000},
		{"uniform p99", uniform(1, 100000), 0.99, 99000},
		{"uniform p99.9", uniform(1, 100000), 0.999, 99900},
		{"uniform max", uniform(1, 100000), 1, 100000},
		{"small exact", uniform(1, 100), 0.5, 50},
		{"outlier only in max", func(r func(int64)) {
			for range 9999 {
				r(1000)
			}
			r(1e9)
		}, 0.999, 1000},
		{"negative counts as zero", func(r func(int64)) { r(-5) }, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			tt.values(h.record)
			got := h.quantile(tt.q)
			if d := math.Abs(float64(got-tt.want)) / math.Max(1, float64(tt.want)); d > 1.0/histHalf {
				t.Errorf("quantile(%v) = %d, want %d within %.1f%%", tt.q, got, tt.want, 100.0/histHalf)
			}
		})
	}
}

func uniform(lo, hi int64) func(func(int64)) {
	return func(r func(int64)) {
		for v := lo; v <= hi; v++ {
			r(v)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all histogram
	for v := int64(1); v <= 1000; v++ {
		all.record(v * 1000)
		if v%2 == 0 {
			a.record(v * 1000)
		} else {
			b.record(v * 1000)
		}
	}
	var m histogram
	m.merge(&a)
	m.merge(&b)
	m.merge(&histogram{})
	if m.total != all.total || m.max != all.max {
		t.Fatalf("merged total %d max %d, want %d %d", m.total, m.max, all.total, all.max)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if m.quantile(q) != all.quantile(q) {
			t.Errorf("quantile(%v): merged %d, direct %d", q, m.quantile(q), all.quantile(q))
		}
	}
}
