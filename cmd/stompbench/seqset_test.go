package main

import "testing"

func TestSeqSet(t *testing.T) {
	tests := []struct {
		name      string
		seqs      []uint64
		published uint64
		lost      uint64
		dups      uint64
	}{
		{"nothing", nil, 0, 0, 0},
		{"in order", []uint64{0, 1, 2, 3, 4}, 5, 0, 0},
		{"out of order", []uint64{4, 0, 3, 1, 2}, 5, 0, 0},
		{"gaps", []uint64{0, 2, 4}, 5, 2, 0},
		{"nothing arrived", nil, 3, 3, 0},
		{"repeats", []uint64{0, 1, 1, 2, 0, 0}, 3, 0, 3},
		{"gaps and repeats", []uint64{1, 1, 3}, 4, 2, 1},
		{"across words", []uint64{63, 64, 65, 127, 128, 1000}, 1001, 995, 0},
		{"last one missing", []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8}, 10, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seqSet
			var dups uint64
			for _, q := range tt.seqs {
				if !s.add(q) {
					dups++
				}
			}
			if got := tt.published - s.countBelow(tt.published); got != tt.lost {
				t.Errorf("lost = %d, want %d", got, tt.lost)
			}
			if dups != tt.dups {
				t.Errorf("dups = %d, want %d", dups, tt.dups)
			}
			if got := uint64(len(tt.seqs)) - s.count(); got != tt.dups {
				t.Errorf("received - unique = %d, want %d", got, tt.dups)
			}
			for _, q := range tt.seqs {
				if !s.has(q) {
					t.Errorf("has(%d) = false", q)
				}
			}
		})
	}
}

func TestSeqSetUnionAndIntersect(t *testing.T) {
	// Two consumers of one queue, each holding part of a producer's
	// messages, one of them twice; receipts covered 0..9 but 7.
	var a, b, rcpt seqSet
	for _, q := range []uint64{0, 2, 4, 6, 8, 200} {
		a.add(q)
	}
	for _, q := range []uint64{1, 3, 5, 4} {
		b.add(q)
	}
	for q := range uint64(10) {
		if q != 7 {
			rcpt.add(q)
		}
	}
	var got seqSet
	got.union(&a)
	got.union(&b)
	if got.count() != 9 {
		t.Errorf("union has %d, want 9", got.count())
	}
	if n := intersectCount(&rcpt, &got); n != 8 {
		t.Errorf("receipted and consumed: %d, want 8", n)
	}
	// Lost = receipted but never consumed: only 9 (7 was not receipted).
	if lost := rcpt.count() - intersectCount(&rcpt, &got); lost != 1 {
		t.Errorf("lost = %d, want 1", lost)
	}
}
