package main

import (
	"math"
	"math/bits"
)

// The latency histogram is log-linear, like HdrHistogram: values below
// histSub nanoseconds are exact and each power of two above is split into
// histHalf buckets, so any value is known within 1/histHalf (1.6%). Fixed
// memory (18 KiB) and no locks: each reader goroutine owns one and they are
// merged once the readers have stopped.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histHalf    = histSub / 2
	histMaxBits = 40 // 2^40 ns is 18 minutes; longer values are clamped
	histBuckets = histSub + (histMaxBits-histSubBits)*histHalf
)

// histogram counts latencies in nanoseconds.
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
	max    int64
}

// record adds one value; negative values count as zero.
func (h *histogram) record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.counts[bucketOf(uint64(ns))]++
	h.total++
	if ns > h.max {
		h.max = ns
	}
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1): the highest value of
// the bucket holding that rank, capped at the largest value recorded, as
// HdrHistogram reports it.
func (h *histogram) quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			_, hi := bucketRange(i)
			return min(int64(hi), h.max)
		}
	}
	return h.max
}

func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	v = min(v, 1<<histMaxBits-1)
	e := bits.Len64(v) - histSubBits // ≥ 1
	return histSub + (e-1)*histHalf + int(v>>e) - histHalf
}

// bucketRange returns the smallest and largest value bucket i holds.
func bucketRange(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	e := (i-histSub)/histHalf + 1
	m := (i-histSub)%histHalf + histHalf
	lo = uint64(m) << e
	return lo, lo + 1<<e - 1
}
