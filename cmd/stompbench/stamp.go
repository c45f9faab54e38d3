package main

// The body of every message starts with a fixed-width ASCII stamp, so a
// publisher can patch a pre-encoded frame in place and a receiver can read
// it back without allocating:
//
//	SB<run:8 hex>-<publisher:4 hex>-<seq:12 hex>-<sent:16 hex>|xxxx…
//
// run tells this run's messages from a previous run's; sent is
// nanoseconds on the tool's monotonic clock, so latency needs no clock
// agreement with anyone.
const (
	stampMagic = "SB"
	offRun     = 2
	lenRun     = 8
	offPub     = offRun + lenRun + 1
	lenPub     = 4
	offSeq     = offPub + lenPub + 1
	lenSeq     = 12
	offSent    = offSeq + lenSeq + 1
	lenSent    = 16
	stampLen   = offSent + lenSent + 1

	// maxPublishers is what lenPub hex digits can name.
	maxPublishers = 1 << (4 * lenPub)
)

// stamp is the decoded form of a body stamp.
type stamp struct {
	run  uint32
	pub  int
	seq  uint64
	sent int64
}

// newBody returns a size-byte body for publisher pub of run, padded with
// 'x'; putStamp fills in the sequence number and send time later.
func newBody(size int, run uint32, pub int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'x'
	}
	copy(b, stampMagic)
	putHex(b[offRun:offRun+lenRun], uint64(run))
	b[offPub-1] = '-'
	putHex(b[offPub:offPub+lenPub], uint64(pub))
	b[offSeq-1] = '-'
	b[offSent-1] = '-'
	b[stampLen-1] = '|'
	putSeqSent(b, 0, 0)
	return b
}

// putSeqSent patches the sequence number and send time of a body made by
// newBody.
func putSeqSent(b []byte, seq uint64, sent int64) {
	putHex(b[offSeq:offSeq+lenSeq], seq)
	putHex(b[offSent:offSent+lenSent], uint64(sent))
}

// parseStamp reads the stamp at the start of b.
func parseStamp(b []byte) (stamp, bool) {
	if len(b) < stampLen || b[0] != 'S' || b[1] != 'B' || b[offPub-1] != '-' ||
		b[offSeq-1] != '-' || b[offSent-1] != '-' || b[stampLen-1] != '|' {
		return stamp{}, false
	}
	run, ok1 := parseHex(b[offRun : offRun+lenRun])
	pub, ok2 := parseHex(b[offPub : offPub+lenPub])
	seq, ok3 := parseHex(b[offSeq : offSeq+lenSeq])
	sent, ok4 := parseHex(b[offSent : offSent+lenSent])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return stamp{}, false
	}
	return stamp{run: uint32(run), pub: int(pub), seq: seq, sent: int64(sent)}, true
}

const hexDigits = "0123456789abcdef"

// putHex writes v as len(dst) lowercase hex digits, keeping the low ones.
func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// parseHex reads lowercase hex digits; at most 16 of them.
func parseHex[T string | []byte](b T) (uint64, bool) {
	var v uint64
	for i := range len(b) {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
