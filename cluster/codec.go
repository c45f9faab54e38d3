package cluster

import (
	"encoding/binary"
	"errors"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
)

// A message travels between nodes as one NATS payload: a version byte,
// its id, destination, priority, expiry, timestamp, persistence and
// headers (in their order, which STOMP gives meaning to), then the body.
// Strings are length-prefixed, numbers varints.
const codecVersion = 1

func encode(m *broker.Envelope) []byte {
	n := 32 + len(m.ID) + len(m.Destination) + len(m.Body)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, codecVersion)
	b = appendString(b, m.ID)
	b = appendString(b, m.Destination)
	b = append(b, m.Priority)
	b = binary.AppendVarint(b, m.Expires)
	b = binary.AppendVarint(b, m.Timestamp)
	flags := byte(0)
	if m.Persistent {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(m.Headers)))
	for _, h := range m.Headers {
		b = appendString(b, h.Key)
		b = appendString(b, h.Value)
	}
	return append(b, m.Body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("cluster: malformed message")

// decode reads a message encode wrote. The body shares p.
func decode(p []byte) (*broker.Envelope, error) {
	d := decoder{p: p}
	if d.byte() != codecVersion {
		return nil, errCorrupt
	}
	m := &broker.Envelope{ID: d.string(), Destination: d.string(), Priority: d.byte()}
	m.Expires = d.varint()
	m.Timestamp = d.varint()
	m.Persistent = d.byte()&1 != 0
	nh := d.uvarint()
	if d.err == nil && nh > uint64(len(d.p)) {
		d.err = errCorrupt
	}
	if d.err == nil && nh > 0 {
		m.Headers = make([]stomp.Header, nh)
		for i := range m.Headers {
			m.Headers[i] = stomp.Header{Key: d.string(), Value: d.string()}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	m.Body = d.p
	return m, nil
}

type decoder struct {
	p   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.p) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.p[0]
	d.p = d.p[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.p)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}
