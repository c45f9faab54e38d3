package main

import (
	"bytes"
	"math"
	"testing"
)

func TestStampRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		size int
		run  uint32
		pub  int
		seq  uint64
		sent int64
	}{
		{"smallest", stampLen, 1, 0, 0, 0},
		{"typical", 256, 0xdeadbeef, 3, 123456, 987654321},
		{"largest fields", 1024, math.MaxUint32, maxPublishers - 1, 1<<48 - 1, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBody(tt.size, tt.run, tt.pub)
			if len(b) != tt.size {
				t.Fatalf("body is %d bytes, want %d", len(b), tt.size)
			}
			putSeqSent(b, tt.seq, tt.sent)
			got, ok := parseStamp(b)
			if !ok {
				t.Fatalf("parseStamp(%q) failed", b[:stampLen])
			}
			want := stamp{run: tt.run, pub: tt.pub, seq: tt.seq, sent: tt.sent}
			if got != want {
				t.Errorf("parseStamp = %+v, want %+v", got, want)
			}
			if pad := b[stampLen:]; bytes.Count(pad, []byte{'x'}) != len(pad) {
				t.Errorf("padding is %q, want only x", pad)
			}
			for _, c := range b {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("body has non-printable byte %#x: %q", c, b)
				}
			}
		})
	}
}

func TestParseStampRejects(t *testing.T) {
	good := newBody(64, 7, 1)
	putSeqSent(good, 42, 99)
	mutate := func(i int, c byte) []byte {
		b := bytes.Clone(good)
		b[i] = c
		return b
	}
	tests := map[string][]byte{
		"empty":          nil,
		"short":          good[:stampLen-1],
		"magic":          mutate(0, 'X'),
		"separator":      mutate(offPub-1, 'x'),
		"terminator":     mutate(stampLen-1, 'x'),
		"uppercase hex":  mutate(offSeq, 'A'),
		"not hex":        mutate(offSent+3, 'g'),
		"someone else's": []byte("hello, this body was not written by stompbench at all"),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if s, ok := parseStamp(b); ok {
				t.Errorf("parseStamp(%q) = %+v, want failure", b, s)
			}
		})
	}
}

func TestStampPatchAllocatesNothing(t *testing.T) {
	b := newBody(256, 1, 2)
	var seq uint64
	allocs := testing.AllocsPerRun(100, func() {
		seq++
		putSeqSent(b, seq, int64(seq))
		if _, ok := parseStamp(b); !ok {
			t.Fatal("parse failed")
		}
	})
	if allocs != 0 {
		t.Errorf("patching and parsing a stamp allocates %v times", allocs)
	}
}
