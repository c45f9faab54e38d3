package stomp

import (
	"bytes"
	"strconv"
	"testing"
)

func TestAppendHeadEscaping(t *testing.T) {
	// Every character with an escape in some version, in key and value.
	key, val := "a:b\\c\r\nd", "x:y\\z\r\n"
	tests := []struct {
		name string
		cmd  string
		v    Version
		want string
	}{
		{"1.2 escapes all four", SEND, V12, "SEND\n" + `a\cb\\c\r\nd:x\cy\\z\r\n` + "\n\n"},
		// 1.1 has no \r escape, so a CR becomes a space rather than
		// breaking the line.
		{"1.1 without \\r", SEND, V11, "SEND\n" + `a\cb\\c \nd:x\cy\\z \n` + "\n\n"},
		// 1.0 has no escapes; line breaks become spaces, the rest is raw.
		{"1.0 raw", MESSAGE, V10, "MESSAGE\na:b\\c  d:x:y\\z  \n\n"},
		{"CONNECT raw 1.2", CONNECT, V12, "CONNECT\na:b\\c  d:x:y\\z  \n\n"},
		{"CONNECTED raw 1.2", CONNECTED, V12, "CONNECTED\na:b\\c  d:x:y\\z  \n\n"},
		{"STOMP raw 1.1", STOMP, V11, "STOMP\na:b\\c  d:x:y\\z  \n\n"},
		{"CONNECTED raw 1.0", CONNECTED, V10, "CONNECTED\na:b\\c  d:x:y\\z  \n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendHead(nil, New(tc.cmd, key, val), tc.v))
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestAppendHeadContentLength(t *testing.T) {
	tests := []struct {
		name string
		f    *Frame
		want string
	}{
		{"added when body and none",
			&Frame{Command: SEND, Headers: []Header{{"destination", "/q"}}, Body: []byte("hello")},
			"SEND\ndestination:/q\ncontent-length:5\n\n"},
		{"added for a body with NULs",
			&Frame{Command: MESSAGE, Body: []byte("a\x00b")},
			"MESSAGE\ncontent-length:3\n\n"},
		{"not duplicated when present",
			&Frame{Command: SEND, Headers: []Header{{"content-length", "5"}, {"destination", "/q"}}, Body: []byte("hello")},
			"SEND\ncontent-length:5\ndestination:/q\n\n"},
		// The caller's header is kept as given, even when it differs.
		{"caller's value kept",
			&Frame{Command: SEND, Headers: []Header{{"content-length", "2"}}, Body: []byte("hello")},
			"SEND\ncontent-length:2\n\n"},
		{"not added for an empty body",
			&Frame{Command: SEND, Headers: []Header{{"destination", "/q"}}, Body: []byte{}},
			"SEND\ndestination:/q\n\n"},
		{"not added for a nil body", &Frame{Command: DISCONNECT}, "DISCONNECT\n\n"},
		{"other case is another header",
			&Frame{Command: SEND, Headers: []Header{{"Content-Length", "1"}}, Body: []byte("x")},
			"SEND\nContent-Length:1\ncontent-length:1\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []Version{V10, V11, V12} {
				if got := string(AppendHead(nil, tc.f, v)); got != tc.want {
					t.Fatalf("%v: got %q, want %q", v, got, tc.want)
				}
			}
		})
	}
}

func TestAppendFrameAndEncode(t *testing.T) {
	f := &Frame{Command: MESSAGE, Headers: []Header{{"destination", "/q"}}, Body: []byte("a\x00b")}
	want := "MESSAGE\ndestination:/q\ncontent-length:3\n\na\x00b\x00"
	// AppendFrame appends after what dst holds and leaves it intact.
	prefix := []byte("\n")
	if got := string(AppendFrame(prefix, f, V12)); got != "\n"+want {
		t.Fatalf("AppendFrame = %q", got)
	}
	if got := string(Encode(f, V12)); got != want {
		t.Fatalf("Encode = %q", got)
	}
	if got := string(Encode(New(DISCONNECT), V12)); got != "DISCONNECT\n\n\x00" {
		t.Fatalf("Encode(DISCONNECT) = %q", got)
	}
	if len(f.Headers) != 1 {
		t.Fatal("encoding changed the frame's headers")
	}
}

// What the encoder writes, the decoder reads back, for every version and
// for everything that version can carry.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		v Version
		f *Frame
	}{
		{V12, fr(SEND, "", "k:\\\r\n", "v:\\\r\n", "", "", "dup", "1", "dup", "2")},
		{V12, fr(MESSAGE, "body\x00with\x00NULs\n", "destination", "/q", "content-type", "text/plain")},
		{V12, fr(CONNECTED, "", "version", "1.2", "server", "x/1 \\")},
		{V11, fr(SEND, "", "k:\\\n", "v:\\\n")},
		{V11, fr(CONNECT, "", "login", "a\\b", "passcode", "p:q")},
		{V10, fr(SEND, "x\x00", "k\\", "v:\\n")},
		{V12, fr(ERROR, "", "message", " spaced ")},
	}
	for _, tc := range tests {
		enc := Encode(tc.f, tc.v)
		got, err := decode(Limits{}, tc.v, whole(enc), nil)
		want := tc.f.Clone()
		if _, ok := want.Get("content-length"); !ok && len(want.Body) > 0 {
			want.Add("content-length", strconv.Itoa(len(want.Body)))
		}
		if err != nil || !framesEqual(got, []*Frame{want}) {
			t.Errorf("%v %q: decoded%s err=%v\nwant%s", tc.v, enc, fmtFrames(got), err, fmtFrames([]*Frame{want}))
		}
	}
}

// The broker encodes every outgoing MESSAGE head into a per-connection
// buffer; that path must not allocate.
func TestAppendHeadNoAllocs(t *testing.T) {
	f := benchMessage(100)
	buf := make([]byte, 0, 4096)
	for _, v := range []Version{V10, V11, V12} {
		allocs := testing.AllocsPerRun(100, func() {
			buf = AppendHead(buf[:0], f, v)
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocs per AppendHead, want 0", v, allocs)
		}
	}
	escaped := New(SEND, "k:\\", "v\r\n:")
	escaped.Body = []byte("body")
	if allocs := testing.AllocsPerRun(100, func() { buf = AppendHead(buf[:0], escaped, V12) }); allocs != 0 {
		t.Errorf("escaping: %v allocs, want 0", allocs)
	}
	if !bytes.HasPrefix(buf, []byte("SEND\n")) {
		t.Fatal("unexpected output")
	}
}

// AppendHeader must write exactly the line AppendHead writes for a
// non-CONNECT frame, since callers splice its output into heads.
func TestAppendHeader(t *testing.T) {
	key, val := "a:b\\c\r\nd", "x:y\\z\r\n"
	for _, v := range []Version{V10, V11, V12} {
		line := string(AppendHeader(nil, key, val, v))
		head := string(AppendHead(nil, New(MESSAGE, key, val), v))
		if want := head[len("MESSAGE\n") : len(head)-1]; line != want {
			t.Errorf("%v: AppendHeader = %q, AppendHead has %q", v, line, want)
		}
	}
	if got := string(AppendHeader([]byte("X"), "k", "v", V12)); got != "Xk:v\n" {
		t.Errorf("AppendHeader must append: %q", got)
	}
	buf := make([]byte, 0, 64)
	if allocs := testing.AllocsPerRun(100, func() { buf = AppendHeader(buf[:0], key, val, V12) }); allocs != 0 {
		t.Errorf("%v allocs, want 0", allocs)
	}
}
