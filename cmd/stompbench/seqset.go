package main

import "math/bits"

// maxSeq bounds the sequence numbers a seqSet accepts, so a corrupt stamp
// cannot make it allocate without limit (2^31 bits is 256 MiB).
const maxSeq = 1 << 31

// seqSet records which sequence numbers of one publisher have been seen.
// Topics deliver in order per publisher but queues with several consumers
// need not, so it is a plain bitmap rather than a high-water mark. It is
// owned by one goroutine.
type seqSet struct {
	words  []uint64
	unique uint64
}

// add marks seq as seen and reports whether it was new.
func (s *seqSet) add(seq uint64) bool {
	w := seq >> 6
	if w >= uint64(len(s.words)) {
		n := max(2*len(s.words), int(w)+1, 64)
		grown := make([]uint64, n)
		copy(grown, s.words)
		s.words = grown
	}
	bit := uint64(1) << (seq & 63)
	if s.words[w]&bit != 0 {
		return false
	}
	s.words[w] |= bit
	s.unique++
	return true
}

// has reports whether seq has been seen.
func (s *seqSet) has(seq uint64) bool {
	w := seq >> 6
	return w < uint64(len(s.words)) && s.words[w]&(1<<(seq&63)) != 0
}

// count returns how many distinct sequence numbers were seen.
func (s *seqSet) count() uint64 { return s.unique }

// union adds every sequence number of o to s.
func (s *seqSet) union(o *seqSet) {
	if len(o.words) > len(s.words) {
		grown := make([]uint64, len(o.words))
		copy(grown, s.words)
		s.words = grown
	}
	var n uint64
	for i := range s.words {
		if i < len(o.words) {
			s.words[i] |= o.words[i]
		}
		n += uint64(bits.OnesCount64(s.words[i]))
	}
	s.unique = n
}

// countBelow returns how many of the sequence numbers 0..n-1 were seen.
func (s *seqSet) countBelow(n uint64) uint64 {
	var c uint64
	full := n >> 6
	for i := uint64(0); i < full && i < uint64(len(s.words)); i++ {
		c += uint64(bits.OnesCount64(s.words[i]))
	}
	if rem := n & 63; rem != 0 && full < uint64(len(s.words)) {
		c += uint64(bits.OnesCount64(s.words[full] & (1<<rem - 1)))
	}
	return c
}

// intersectCount returns how many sequence numbers are in both a and b.
func intersectCount(a, b *seqSet) uint64 {
	var c uint64
	for i := range min(len(a.words), len(b.words)) {
		c += uint64(bits.OnesCount64(a.words[i] & b.words[i]))
	}
	return c
}
