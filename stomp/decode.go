package stomp

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Limits bound what the decoder accepts from a peer.
type Limits struct {
	// MaxHeaderBytes bounds the command line, headers and blank line.
	MaxHeaderBytes int
	// MaxHeaders bounds the number of header lines in one frame.
	MaxHeaders int
	// MaxBodyBytes bounds one frame body.
	MaxBodyBytes int
}

// DefaultLimits are the limits the broker applies unless configured.
func DefaultLimits() Limits {
	return Limits{MaxHeaderBytes: 64 << 10, MaxHeaders: 128, MaxBodyBytes: 4 << 20}
}

// LimitError reports input that exceeds one of the decoder's limits.
type LimitError struct {
	Limit string // "header section", "header count" or "frame body"
	Max   int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s limit exceeded (max %d)", e.Limit, e.Max)
}

// SyntaxError reports input that is not a well-formed STOMP frame.
type SyntaxError struct {
	Msg string
}

func (e *SyntaxError) Error() string { return "malformed frame: " + e.Msg }

type decState uint8

const (
	stStart   decState = iota // between frames: EOLs are heart-beats
	stHead                    // command line and headers
	stBodyLen                 // body with a known content-length
	stNul                     // the NUL after a content-length body
	stBodyNul                 // body up to the first NUL
	stFailed
)

// Decoder is a push decoder: Feed it bytes as they arrive, in chunks of any
// size, and it emits each complete frame. It is not safe for concurrent use.
type Decoder struct {
	limits  Limits
	version Version
	state   decState
	err     error

	head      []byte // partial head carried across chunks
	inCommand bool   // scanning the command line
	lineStart bool   // nothing but an optional CR seen on this line yet
	lineCR    bool   // that CR has been seen

	frame *Frame
	body  []byte

	failedReceipt string
	need          int
}

// NewDecoder returns a decoder applying limits. Zero fields take the
// defaults. Until SetVersion is called, frames are unescaped by 1.2 rules.
func NewDecoder(limits Limits) *Decoder {
	def := DefaultLimits()
	if limits.MaxHeaderBytes <= 0 {
		limits.MaxHeaderBytes = def.MaxHeaderBytes
	}
	if limits.MaxHeaders <= 0 {
		limits.MaxHeaders = def.MaxHeaders
	}
	if limits.MaxBodyBytes <= 0 {
		limits.MaxBodyBytes = def.MaxBodyBytes
	}
	return &Decoder{limits: limits, version: V12}
}

// SetVersion selects the header escaping rules for frames decoded from now
// on. It may be called from inside the emit callback, so a CONNECT and the
// frames that follow it in the same chunk are each decoded correctly.
func (d *Decoder) SetVersion(v Version) { d.version = v }

// Feed decodes p, calling emit for each complete frame in order. The frame
// is owned by emit. An error from emit, or a decoding error, stops the
// decoder: every later call returns the same error.
func (d *Decoder) Feed(p []byte, emit func(*Frame) error) error {
	if d.state == stFailed {
		return d.err
	}
	for len(p) > 0 {
		var err error
		switch d.state {
		case stFailed:
			return d.err
		case stStart:
			p = d.startFrame(p)
		case stHead:
			p, err = d.feedHead(p)
		case stBodyLen:
			p = d.feedBody(p)
		case stNul:
			if p[0] != 0 {
				return d.fail(&SyntaxError{"body longer than content-length (no NUL where expected)"})
			}
			p, err = p[1:], d.finish(emit)
		case stBodyNul:
			p, err = d.feedBodyNul(p, emit)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// startFrame skips the EOLs between frames (heart-beats) and, at the first
// other byte, starts reading a head. Each feed step returns what of p it
// has not consumed.
func (d *Decoder) startFrame(p []byte) []byte {
	i := 0
	for i < len(p) && (p[i] == '\n' || p[i] == '\r') {
		i++
	}
	p = p[i:]
	if len(p) > 0 {
		d.state = stHead
		d.head = d.head[:0]
		d.inCommand = true
		d.lineStart = true
		d.lineCR = false
	}
	return p
}

// feedHead reads the command line and headers, carrying a partial head
// over to the next chunk.
func (d *Decoder) feedHead(p []byte) ([]byte, error) {
	end, err := d.scanHead(p)
	if err != nil {
		return nil, d.fail(err)
	}
	if end < 0 {
		d.head = append(d.head, p...)
		return nil, nil
	}
	var s string
	if len(d.head) == 0 {
		s = string(p[:end])
	} else {
		d.head = append(d.head, p[:end]...)
		s = string(d.head)
	}
	if err := d.parseHead(s); err != nil {
		d.failedReceipt = rawHeader(s, "receipt")
		return nil, d.fail(err)
	}
	if d.state == stBodyLen && d.need == 0 {
		d.state = stNul
	}
	return p[end:], nil
}

// feedBody reads a body of known content-length.
func (d *Decoder) feedBody(p []byte) []byte {
	n := min(len(p), d.need-len(d.body))
	if len(d.body)+n > cap(d.body) {
		// Grow with the bytes that arrive, not with what the peer
		// declares: a short head must not pin a whole body. Bodies up to
		// 4 KiB still take one allocation.
		b := make([]byte, len(d.body), min(d.need, max(4096, 2*cap(d.body), len(d.body)+n)))
		copy(b, d.body)
		d.body = b
	}
	d.body = append(d.body, p[:n]...)
	if len(d.body) == d.need {
		d.state = stNul
	}
	return p[n:]
}

// feedBodyNul reads a body that ends at the first NUL.
func (d *Decoder) feedBodyNul(p []byte, emit func(*Frame) error) ([]byte, error) {
	j := bytes.IndexByte(p, 0)
	chunk := p
	if j >= 0 {
		chunk = p[:j]
	}
	if len(d.body)+len(chunk) > d.limits.MaxBodyBytes {
		return nil, d.fail(&LimitError{"frame body", d.limits.MaxBodyBytes})
	}
	d.body = append(d.body, chunk...)
	if j < 0 {
		return nil, nil
	}
	return p[j+1:], d.finish(emit)
}

func (d *Decoder) fail(err error) error {
	d.state = stFailed
	d.err = err
	if d.frame != nil && d.failedReceipt == "" {
		d.failedReceipt = d.frame.Value("receipt")
	}
	d.frame, d.body = nil, nil
	return err
}

// FailedReceipt returns the receipt header of the frame whose decoding
// failed, when its head had been read, so the ERROR can carry receipt-id.
func (d *Decoder) FailedReceipt() string { return d.failedReceipt }

// rawHeader finds a header in an undecoded head without unescaping it:
// good enough for a receipt id in an ERROR about a frame that did not
// parse.
func rawHeader(head, key string) string {
	for {
		nl := strings.IndexByte(head, '\n')
		if nl < 0 {
			return ""
		}
		head = head[nl+1:]
		if v, ok := strings.CutPrefix(head, key+":"); ok {
			if end := strings.IndexByte(v, '\n'); end >= 0 {
				v = v[:end]
			}
			return strings.TrimSuffix(v, "\r")
		}
	}
}

func (d *Decoder) finish(emit func(*Frame) error) error {
	f := d.frame
	if len(d.body) > 0 {
		f.Body = d.body
	}
	d.frame, d.body = nil, nil
	d.state = stStart
	if err := emit(f); err != nil {
		return d.fail(err)
	}
	return nil
}

// scanHead looks for the blank line ending the head. It returns the index
// just past it, or -1 when p ends first. It also rejects a command line that
// cannot be a command, so binary garbage fails fast rather than filling the
// header buffer.
func (d *Decoder) scanHead(p []byte) (int, error) {
	for i, c := range p {
		if len(d.head)+i >= d.limits.MaxHeaderBytes {
			return -1, &LimitError{"header section", d.limits.MaxHeaderBytes}
		}
		switch c {
		case '\n':
			if d.lineStart && !d.inCommand {
				return i + 1, nil
			}
			d.inCommand = false
			d.lineStart = true
			d.lineCR = false
		case '\r':
			if d.inCommand {
				// Only a CR right before the LF is allowed here.
				if d.lineCR {
					return -1, &SyntaxError{"invalid command line"}
				}
				d.lineCR = true
			} else if d.lineStart && !d.lineCR {
				d.lineCR = true
			} else {
				d.lineStart = false
			}
		case 0:
			return -1, &SyntaxError{"NUL inside the frame head"}
		default:
			if d.inCommand && (c < 'A' || c > 'Z' || d.lineCR) {
				return -1, &SyntaxError{"invalid command line"}
			}
			d.lineStart = false
		}
	}
	return -1, nil
}

// parseHead turns a complete head into d.frame and chooses the body state.
// Header strings are substrings of s, so the head costs one allocation
// however many headers it has (unescaping aside).
func (d *Decoder) parseHead(s string) error {
	nl := strings.IndexByte(s, '\n')
	cmd := strings.TrimSuffix(s[:nl], "\r")
	s = s[nl+1:]
	n := strings.Count(s, "\n") - 1
	if n > d.limits.MaxHeaders {
		return &LimitError{"header count", d.limits.MaxHeaders}
	}
	f := &Frame{Command: cmd}
	if n > 0 {
		f.Headers = make([]Header, 0, n)
	}
	raw := cmd == CONNECT || cmd == CONNECTED || cmd == STOMP || d.version == V10
	for {
		nl = strings.IndexByte(s, '\n')
		line := strings.TrimSuffix(s[:nl], "\r")
		s = s[nl+1:]
		if line == "" {
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return &SyntaxError{"header line without ':'"}
		}
		k, v := line[:colon], line[colon+1:]
		if !raw {
			var err error
			if k, err = unescape(k, d.version); err != nil {
				return err
			}
			if v, err = unescape(v, d.version); err != nil {
				return err
			}
		}
		f.Headers = append(f.Headers, Header{k, v})
	}
	d.frame = f
	if cl, ok := f.Get("content-length"); ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || cl[0] < '0' || cl[0] > '9' {
			return &SyntaxError{"invalid content-length " + strconv.Quote(cl)}
		}
		if n > d.limits.MaxBodyBytes {
			return &LimitError{"frame body", d.limits.MaxBodyBytes}
		}
		d.need = n
		d.state = stBodyLen
		return nil
	}
	d.state = stBodyNul
	return nil
}

func unescape(s string, v Version) (string, error) {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", &SyntaxError{"header ends inside an escape sequence"}
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'c':
			b.WriteByte(':')
		case 'r':
			if v < V12 {
				return "", &SyntaxError{`undefined escape sequence "\r" (STOMP ` + v.String() + ")"}
			}
			b.WriteByte('\r')
		default:
			return "", &SyntaxError{"undefined escape sequence " + strconv.Quote(s[i-1:i+1])}
		}
	}
	return b.String(), nil
}
