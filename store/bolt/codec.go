package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/stampede-mq/stampede/store"
)

// A record value on disk is a fixed header followed by variable fields:
//
//	off len field
//	0   1   format (recordFormat)
//	1   1   priority
//	2   4   deliveries  (big-endian; fixed so SetDeliveries patches in place)
//	6   8   expires     (big-endian int64)
//	14  8   timestamp   (big-endian int64)
//	22  4   body length (big-endian; fixed so Delete can account bytes
//	                     without decoding the rest)
//	26  ... uvarint len, id; uvarint n headers; n × (uvarint len, key,
//	        uvarint len, value); body (exactly body length bytes, last)
//
// Queue and Seq are not stored: they are the bucket name and the key.
const (
	recordFormat  = 1
	offPriority   = 1
	offDeliveries = 2
	offExpires    = 6
	offTimestamp  = 14
	offBodyLen    = 22
	recordHeader  = 26
)

// errBadValue is wrapped by every decoding failure.
var errBadValue = errors.New("malformed value")

// encodedRecordSize is the exact length encodeRecord produces.
func encodedRecordSize(r *store.Record) int {
	n := recordHeader + uvarintLen(uint64(len(r.ID))) + len(r.ID) + uvarintLen(uint64(len(r.Headers)))
	for _, h := range r.Headers {
		n += uvarintLen(uint64(len(h[0]))) + len(h[0]) + uvarintLen(uint64(len(h[1]))) + len(h[1])
	}
	return n + len(r.Body)
}

// encodeRecord returns the on-disk value of r, or an error when r cannot be
// represented (a body over 4 GiB).
func encodeRecord(r *store.Record) ([]byte, error) {
	if uint64(len(r.Body)) > math.MaxUint32 {
		return nil, fmt.Errorf("store: body of %d bytes is too large", len(r.Body))
	}
	buf := make([]byte, recordHeader, encodedRecordSize(r))
	buf[0] = recordFormat
	buf[offPriority] = r.Priority
	binary.BigEndian.PutUint32(buf[offDeliveries:], r.Deliveries)
	binary.BigEndian.PutUint64(buf[offExpires:], uint64(r.Expires))
	binary.BigEndian.PutUint64(buf[offTimestamp:], uint64(r.Timestamp))
	binary.BigEndian.PutUint32(buf[offBodyLen:], uint32(len(r.Body)))
	buf = appendString(buf, r.ID)
	buf = binary.AppendUvarint(buf, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		buf = appendString(buf, h[0])
		buf = appendString(buf, h[1])
	}
	return append(buf, r.Body...), nil
}

// decodeRecord parses a value into a new Record that shares no memory with
// v, so v may be memory that is only valid inside a transaction.
func decodeRecord(v []byte) (*store.Record, error) {
	if len(v) < recordHeader {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a record header", errBadValue, len(v))
	}
	if v[0] != recordFormat {
		return nil, fmt.Errorf("%w: unknown record format %d", errBadValue, v[0])
	}
	r := &store.Record{
		Priority:   v[offPriority],
		Deliveries: binary.BigEndian.Uint32(v[offDeliveries:]),
		Expires:    int64(binary.BigEndian.Uint64(v[offExpires:])),
		Timestamp:  int64(binary.BigEndian.Uint64(v[offTimestamp:])),
	}
	bodyLen := uint64(binary.BigEndian.Uint32(v[offBodyLen:]))
	d := decoder{b: v[recordHeader:]}
	r.ID = d.string()
	n := d.uvarint()
	// Each header takes at least two bytes, which bounds the allocation a
	// corrupt count can cause.
	if d.err == nil && n > uint64(len(d.b))/2 {
		d.err = fmt.Errorf("%w: %d headers cannot fit in %d bytes", errBadValue, n, len(d.b))
	}
	if d.err == nil && n > 0 {
		r.Headers = make([][2]string, n)
		for i := range r.Headers {
			r.Headers[i] = [2]string{d.string(), d.string()}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if uint64(len(d.b)) != bodyLen {
		return nil, fmt.Errorf("%w: body is %d bytes, header says %d", errBadValue, len(d.b), bodyLen)
	}
	r.Body = append([]byte(nil), d.b...)
	return r, nil
}

// recordBodyLen reads the body length of an encoded record without
// decoding it.
func recordBodyLen(v []byte) (int64, error) {
	if len(v) < recordHeader || v[0] != recordFormat {
		return 0, fmt.Errorf("%w: not a record", errBadValue)
	}
	return int64(binary.BigEndian.Uint32(v[offBodyLen:])), nil
}

// encodeSubscription encodes everything but the name, which is the key.
func encodeSubscription(s store.Subscription) []byte {
	buf := make([]byte, 0, 3*binary.MaxVarintLen64+len(s.Destination)+len(s.Queue)+len(s.Owner))
	buf = appendString(buf, s.Destination)
	buf = appendString(buf, s.Queue)
	return appendString(buf, s.Owner)
}

// decodeSubscription reads what encodeSubscription wrote; subscriptions
// stored before owners were kept end after the queue, and have none.
func decodeSubscription(name string, v []byte) (store.Subscription, error) {
	d := decoder{b: v}
	s := store.Subscription{Name: name, Destination: d.string(), Queue: d.string()}
	if d.err == nil && len(d.b) != 0 {
		s.Owner = d.string()
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errBadValue, len(d.b))
	}
	return s, d.err
}

// queueStats is the per-queue summary kept beside the records so that
// Queues reads one small value per queue.
type queueStats struct {
	count int64
	bytes int64
}

func encodeStats(s queueStats) []byte {
	buf := make([]byte, 16)
	binary.BigEndian.PutUint64(buf, uint64(s.count))
	binary.BigEndian.PutUint64(buf[8:], uint64(s.bytes))
	return buf
}

func decodeStats(v []byte) (queueStats, error) {
	if len(v) != 16 {
		return queueStats{}, fmt.Errorf("%w: queue stats of %d bytes", errBadValue, len(v))
	}
	s := queueStats{int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))}
	if s.count < 0 || s.bytes < 0 {
		return queueStats{}, fmt.Errorf("%w: negative queue stats", errBadValue)
	}
	return s, nil
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// decoder reads length-prefixed fields; after the first error every read
// returns a zero value and err keeps that first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad length prefix", errBadValue)
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: field of %d bytes with %d left", errBadValue, n, len(d.b))
		return ""
	}
	s := string(d.b[:n]) // string() copies, so s outlives the transaction
	d.b = d.b[n:]
	return s
}

func beUint32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func beAppendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
