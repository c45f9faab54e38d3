package stomp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// fr builds an expected frame; an empty body stays nil, as decoded.
func fr(cmd, body string, kv ...string) *Frame {
	f := &Frame{Command: cmd}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Headers = append(f.Headers, Header{kv[i], kv[i+1]})
	}
	if body != "" {
		f.Body = []byte(body)
	}
	return f
}

// frameEqual treats nil and empty headers or bodies alike: the wire form
// cannot tell them apart.
func frameEqual(a, b *Frame) bool {
	if a.Command != b.Command || len(a.Headers) != len(b.Headers) || !bytes.Equal(a.Body, b.Body) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i] != b.Headers[i] {
			return false
		}
	}
	return true
}

func framesEqual(a, b []*Frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !frameEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func fmtFrames(fs []*Frame) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %q %q body=%q", f.Command, f.Headers, f.Body)
	}
	if len(fs) == 0 {
		b.WriteString(" (none)")
	}
	return b.String()
}

// errKind names an error by what a caller can branch on.
func errKind(err error) string {
	var le *LimitError
	var se *SyntaxError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &le):
		return "limit:" + le.Limit
	case errors.As(err, &se):
		return "syntax"
	}
	return "other:" + err.Error()
}

// decode feeds chunks in order and returns the frames emitted before the
// first error. Each chunk is fed from a scratch copy that is scribbled over
// afterwards, so a decoder keeping references into its input shows up as
// corrupted frames. hook, if set, runs inside emit.
func decode(lim Limits, v Version, chunks [][]byte, hook func(*Decoder, *Frame)) ([]*Frame, error) {
	d := NewDecoder(lim)
	if v != 0 {
		d.SetVersion(v)
	}
	var out []*Frame
	emit := func(f *Frame) error {
		out = append(out, f)
		if hook != nil {
			hook(d, f)
		}
		return nil
	}
	var scratch []byte
	for _, c := range chunks {
		scratch = append(scratch[:0], c...)
		err := d.Feed(scratch, emit)
		for i := range scratch {
			scratch[i] = 0xAA
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func whole(in []byte) [][]byte { return [][]byte{in} }

func oneByte(in []byte) [][]byte {
	cs := make([][]byte, len(in))
	for i := range in {
		cs[i] = in[i : i+1]
	}
	return cs
}

// chunkings lists every way the tests split an input: one byte at a time
// and at every position into two chunks (empty chunks included).
func chunkings(in []byte) map[string][][]byte {
	m := map[string][][]byte{"one byte at a time": oneByte(in)}
	for i := 0; i <= len(in); i++ {
		m[fmt.Sprintf("split at %d", i)] = [][]byte{in[:i], in[i:]}
	}
	return m
}
