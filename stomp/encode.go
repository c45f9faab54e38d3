package stomp

import "strconv"

// AppendHead appends the frame's command line, headers and blank line to
// dst, escaping header text as version v requires. When the frame has a body
// but no content-length header, one is added, so bodies holding NUL bytes
// survive. It allocates nothing when dst has room.
func AppendHead(dst []byte, f *Frame, v Version) []byte {
	dst = append(dst, f.Command...)
	dst = append(dst, '\n')
	raw := f.Command == CONNECT || f.Command == CONNECTED || f.Command == STOMP
	hasLen := false
	for i := range f.Headers {
		h := &f.Headers[i]
		if h.Key == "content-length" {
			hasLen = true
		}
		dst = appendHeaderText(dst, h.Key, v, raw)
		dst = append(dst, ':')
		dst = appendHeaderText(dst, h.Value, v, raw)
		dst = append(dst, '\n')
	}
	if !hasLen && len(f.Body) > 0 {
		dst = append(dst, "content-length:"...)
		dst = strconv.AppendInt(dst, int64(len(f.Body)), 10)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}

// AppendHeader appends one "key:value" header line, escaped as version v
// requires for any frame but CONNECT and CONNECTED. It lets a caller that
// sends one message to many subscribers encode the shared headers once.
func AppendHeader(dst []byte, key, value string, v Version) []byte {
	dst = appendHeaderText(dst, key, v, false)
	dst = append(dst, ':')
	dst = appendHeaderText(dst, value, v, false)
	return append(dst, '\n')
}

// AppendFrame appends the whole frame, body and terminating NUL included.
func AppendFrame(dst []byte, f *Frame, v Version) []byte {
	dst = AppendHead(dst, f, v)
	dst = append(dst, f.Body...)
	return append(dst, 0)
}

// Encode returns the frame's wire form.
func Encode(f *Frame, v Version) []byte {
	n := len(f.Command) + len(f.Body) + 32
	for i := range f.Headers {
		n += len(f.Headers[i].Key) + len(f.Headers[i].Value) + 2
	}
	return AppendFrame(make([]byte, 0, n), f, v)
}

func appendHeaderText(dst []byte, s string, v Version, raw bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && v >= V11 && !raw:
			dst = append(dst, '\\', '\\')
		case c == '\n':
			if v >= V11 && !raw {
				dst = append(dst, '\\', 'n')
			} else {
				// 1.0 and CONNECT/CONNECTED cannot carry a line feed
				// in a header; a space keeps the frame intact.
				dst = append(dst, ' ')
			}
		case c == ':' && v >= V11 && !raw:
			dst = append(dst, '\\', 'c')
		case c == '\r':
			if v >= V12 && !raw {
				dst = append(dst, '\\', 'r')
			} else {
				dst = append(dst, ' ')
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
