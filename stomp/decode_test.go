package stomp

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

type decodeCase struct {
	name string
	in   string
	ver  Version // 0: the decoder's default (1.2)
	lim  Limits
	want []*Frame
	err  string // errKind of the expected error, "" for none
}

var decodeCases = []decodeCase{
	// Plain frames.
	{name: "send with body", in: "SEND\ndestination:/queue/a\n\nhello\x00",
		want: []*Frame{fr(SEND, "hello", "destination", "/queue/a")}},
	{name: "no headers no body", in: "DISCONNECT\n\n\x00",
		want: []*Frame{fr(DISCONNECT, "")}},
	{name: "empty header value and empty key", in: "SEND\na:\n:b\n\n\x00",
		want: []*Frame{fr(SEND, "", "a", "", "", "b")}},
	{name: "value keeps later colons", in: "SEND\nurl:http://x:80/\n\n\x00",
		want: []*Frame{fr(SEND, "", "url", "http://x:80/")}},
	{name: "several frames in one chunk",
		in: "SEND\ndestination:/q\n\none\x00SUBSCRIBE\nid:1\ndestination:/q\n\n\x00MESSAGE\ncontent-length:3\n\ntwo\x00",
		want: []*Frame{
			fr(SEND, "one", "destination", "/q"),
			fr(SUBSCRIBE, "", "id", "1", "destination", "/q"),
			fr(MESSAGE, "two", "content-length", "3"),
		}},
	{name: "trailing partial frame waits", in: "SEND\n\na\x00SEND\ndest",
		want: []*Frame{fr(SEND, "a")}},

	// Heart-beats: bare EOLs between frames, or alone.
	{name: "heart-beat LF alone", in: "\n"},
	{name: "heart-beat CRLF alone", in: "\r\n"},
	{name: "many heart-beats alone", in: "\n\r\n\n\r\n\r\n"},
	{name: "heart-beats around frames",
		in:   "\r\n\nSEND\n\na\x00\n\r\n\nSEND\n\nb\x00\r\n",
		want: []*Frame{fr(SEND, "a"), fr(SEND, "b")}},

	// Line endings.
	{name: "CRLF head", in: "SEND\r\ndestination:/q\r\nreceipt:7\r\n\r\nbody\x00",
		want: []*Frame{fr(SEND, "body", "destination", "/q", "receipt", "7")}},
	{name: "mixed LF and CRLF", in: "SEND\r\na:1\nb:2\r\n\nx\x00",
		want: []*Frame{fr(SEND, "x", "a", "1", "b", "2")}},
	{name: "only the last CR before LF is the EOL", in: "SEND\na:1\r\r\n\n\x00",
		want: []*Frame{fr(SEND, "", "a", "1\r")}},

	// Bodies.
	{name: "content-length body with NULs", in: "SEND\ncontent-length:5\n\na\x00b\x00c\x00",
		want: []*Frame{fr(SEND, "a\x00b\x00c", "content-length", "5")}},
	{name: "content-length body all NUL", in: "SEND\ncontent-length:2\n\n\x00\x00\x00",
		want: []*Frame{fr(SEND, "\x00\x00", "content-length", "2")}},
	{name: "content-length zero", in: "SEND\ncontent-length:0\n\n\x00",
		want: []*Frame{fr(SEND, "", "content-length", "0")}},
	{name: "content-length leading zeros", in: "SEND\ncontent-length:007\n\nabcdefg\x00",
		want: []*Frame{fr(SEND, "abcdefg", "content-length", "007")}},
	{name: "body ends at first NUL", in: "SEND\n\nab\ncd\x00\x00",
		want: []*Frame{fr(SEND, "ab\ncd")}, err: "syntax"},
	{name: "body keeps CR and LF", in: "SEND\n\n\r\n\r\n\x00",
		want: []*Frame{fr(SEND, "\r\n\r\n")}},

	// Repeated headers and untrimmed values.
	{name: "repeated header kept in order", in: "SEND\nfoo:1\nfoo:2\n\n\x00",
		want: []*Frame{fr(SEND, "", "foo", "1", "foo", "2")}},
	{name: "first content-length wins", in: "SEND\ncontent-length:1\ncontent-length:3\n\nx\x00",
		want: []*Frame{fr(SEND, "x", "content-length", "1", "content-length", "3")}},
	{name: "spaces kept", in: "SEND\n key : value \n\x20\x20:\x20\n\n\x00",
		want: []*Frame{fr(SEND, "", " key ", " value ", "  ", " ")}},
	{name: "spaces kept before CRLF", in: "SEND\r\nk: v \r\n\r\n\x00",
		want: []*Frame{fr(SEND, "", "k", " v ")}},

	// Escaping per version.
	{name: "1.2 escapes", in: "SEND\nk\\ce\\ny:a\\r\\n\\c\\\\b\n\n\x00",
		want: []*Frame{fr(SEND, "", "k:e\ny", "a\r\n:\\b")}},
	{name: "1.2 escaped backslash before c", in: "SEND\nk:\\\\c\n\n\x00",
		want: []*Frame{fr(SEND, "", "k", "\\c")}},
	{name: "1.1 escapes", ver: V11, in: "SEND\nk\\c:a\\n\\c\\\\b\n\n\x00",
		want: []*Frame{fr(SEND, "", "k:", "a\n:\\b")}},
	{name: "1.1 rejects \\r", ver: V11, in: "SEND\nk:a\\rb\n\n\x00", err: "syntax"},
	{name: "1.0 does not unescape", ver: V10, in: "SEND\nk\\c:a\\n\\r\\t\\\n\n\x00",
		want: []*Frame{fr(SEND, "", "k\\c", "a\\n\\r\\t\\")}},
	{name: "1.2 undefined escape in value", in: "SEND\nk:a\\tb\n\n\x00", err: "syntax"},
	{name: "1.2 undefined escape in key", in: "SEND\nk\\x:v\n\n\x00", err: "syntax"},
	{name: "1.2 trailing backslash", in: "SEND\nk:v\\\n\n\x00", err: "syntax"},
	{name: "1.1 undefined escape", ver: V11, in: "SEND\nk:\\a\n\n\x00", err: "syntax"},
	{name: "escape error after good frame", in: "SEND\n\n\x00SEND\nk:\\q\n\n\x00",
		want: []*Frame{fr(SEND, "")}, err: "syntax"},

	// CONNECT, CONNECTED and STOMP headers are never unescaped.
	{name: "CONNECT raw 1.2", in: "CONNECT\nlogin:a\\cb\npasscode:p\\q\\\n\n\x00",
		want: []*Frame{fr(CONNECT, "", "login", "a\\cb", "passcode", "p\\q\\")}},
	{name: "STOMP raw 1.2", in: "STOMP\nhost:h\\n\n\n\x00",
		want: []*Frame{fr(STOMP, "", "host", "h\\n")}},
	{name: "CONNECTED raw 1.2", in: "CONNECTED\nserver:s\\r\\t\n\n\x00",
		want: []*Frame{fr(CONNECTED, "", "server", "s\\r\\t")}},
	{name: "CONNECT raw 1.1", ver: V11, in: "CONNECT\nlogin:a\\r\n\n\x00",
		want: []*Frame{fr(CONNECT, "", "login", "a\\r")}},
	{name: "CONNECTED raw 1.0", ver: V10, in: "CONNECTED\nk\\c:v\\c\n\n\x00",
		want: []*Frame{fr(CONNECTED, "", "k\\c", "v\\c")}},

	// Garbage fails with a syntax error.
	{name: "binary", in: "\x16\x03\x01\x02\x00\x01", err: "syntax"},
	{name: "high bytes", in: "\xff\xfe\xfd", err: "syntax"},
	{name: "lowercase command", in: "send\n\n\x00", err: "syntax"},
	{name: "space in command", in: "SE ND\n\n\x00", err: "syntax"},
	{name: "trailing space in command", in: "SEND \n\n\x00", err: "syntax"},
	{name: "HTTP request", in: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", err: "syntax"},
	{name: "NUL alone", in: "\x00", err: "syntax"},
	{name: "NUL in command", in: "SEN\x00D\n\n\x00", err: "syntax"},
	{name: "NUL in header", in: "SEND\nfoo\x00:bar\n\n\x00", err: "syntax"},
	{name: "NUL right after command", in: "SEND\n\x00", err: "syntax"},
	{name: "header without colon", in: "SEND\nfoo\n\n\x00", err: "syntax"},
	{name: "CR inside command", in: "SE\rND\n\n\x00", err: "syntax"},
	{name: "CR CR LF after command", in: "SEND\r\r\n\n\x00", err: "syntax"},
	{name: "CR then text after command", in: "SEND\rX\n\n\x00", err: "syntax"},

	// Content-length must be a plain decimal octet count.
	{name: "content-length negative", in: "SEND\ncontent-length:-1\n\n\x00", err: "syntax"},
	{name: "content-length minus zero", in: "SEND\ncontent-length:-0\n\n\x00", err: "syntax"},
	{name: "content-length plus sign", in: "SEND\ncontent-length:+1\n\nx\x00", err: "syntax"},
	{name: "content-length empty", in: "SEND\ncontent-length:\n\n\x00", err: "syntax"},
	{name: "content-length text", in: "SEND\ncontent-length:abc\n\n\x00", err: "syntax"},
	{name: "content-length hex", in: "SEND\ncontent-length:0x1\n\nx\x00", err: "syntax"},
	{name: "content-length leading space", in: "SEND\ncontent-length: 1\n\nx\x00", err: "syntax"},
	{name: "content-length trailing space", in: "SEND\ncontent-length:1 \n\nx\x00", err: "syntax"},
	{name: "content-length overflow", in: "SEND\ncontent-length:99999999999999999999999\n\n\x00", err: "syntax"},
	{name: "first content-length invalid", in: "SEND\ncontent-length:x\ncontent-length:1\n\nx\x00", err: "syntax"},
	{name: "content-length body not followed by NUL", in: "SEND\ncontent-length:2\n\nabc\x00", err: "syntax"},
	{name: "content-length body followed by LF", in: "SEND\ncontent-length:1\n\na\n\x00", err: "syntax"},

	// Limits.
	{name: "header section at limit", lim: Limits{MaxHeaderBytes: 16},
		in: "\n\nSEND\nab:cdefgh\n\n\x00", want: []*Frame{fr(SEND, "", "ab", "cdefgh")}},
	{name: "header section over limit", lim: Limits{MaxHeaderBytes: 16},
		in: "SEND\nab:cdefghi\n\n\x00", err: "limit:header section"},
	{name: "header section CRLF counts", lim: Limits{MaxHeaderBytes: 16},
		in: "SEND\r\nab:cdef\r\n\r\n\x00", err: "limit:header section"},
	{name: "header section unterminated", lim: Limits{MaxHeaderBytes: 16},
		in: "SEND\nabcdefghijklmnopqrstuvwxyz", err: "limit:header section"},
	{name: "long command", lim: Limits{MaxHeaderBytes: 16},
		in: "SENDSENDSENDSENDSEND", err: "limit:header section"},
	{name: "header count at limit", lim: Limits{MaxHeaders: 2},
		in: "SEND\na:1\nb:2\n\n\x00", want: []*Frame{fr(SEND, "", "a", "1", "b", "2")}},
	{name: "header count over limit", lim: Limits{MaxHeaders: 2},
		in: "SEND\na:1\nb:2\nc:3\n\n\x00", err: "limit:header count"},
	{name: "header count over limit CRLF", lim: Limits{MaxHeaders: 2},
		in: "SEND\r\na:1\r\nb:2\r\nc:3\r\n\r\n\x00", err: "limit:header count"},
	{name: "body at limit with content-length", lim: Limits{MaxBodyBytes: 4},
		in: "SEND\ncontent-length:4\n\nabcd\x00", want: []*Frame{fr(SEND, "abcd", "content-length", "4")}},
	{name: "body over limit with content-length", lim: Limits{MaxBodyBytes: 4},
		// Rejected from the head alone, before any body byte arrives.
		in: "SEND\ncontent-length:5\n\n", err: "limit:frame body"},
	{name: "body at limit without content-length", lim: Limits{MaxBodyBytes: 4},
		in: "SEND\n\nabcd\x00", want: []*Frame{fr(SEND, "abcd")}},
	{name: "body over limit without content-length", lim: Limits{MaxBodyBytes: 4},
		in: "SEND\n\nabcde\x00", err: "limit:frame body"},
	{name: "body over limit without NUL yet", lim: Limits{MaxBodyBytes: 4},
		in: "SEND\n\nabcdefgh", err: "limit:frame body"},
	{name: "limit error after good frames", lim: Limits{MaxBodyBytes: 4},
		in: "SEND\n\nab\x00\nSEND\n\nabcde\x00", want: []*Frame{fr(SEND, "ab")}, err: "limit:frame body"},
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got, err := decode(tc.lim, tc.ver, whole(in), nil)
			if errKind(err) != tc.err {
				t.Fatalf("error = %v (%s), want %q", err, errKind(err), tc.err)
			}
			if !framesEqual(got, tc.want) {
				t.Fatalf("frames:%s\nwant:%s", fmtFrames(got), fmtFrames(tc.want))
			}
			// However the input is chunked, the outcome is the same,
			// error text included.
			for how, chunks := range chunkings(in) {
				g, e := decode(tc.lim, tc.ver, chunks, nil)
				if !framesEqual(g, got) || errKind(e) != errKind(err) || (err != nil && e.Error() != err.Error()) {
					t.Fatalf("%s: frames:%s err=%v\nwhole input gave:%s err=%v", how, fmtFrames(g), e, fmtFrames(got), err)
				}
			}
		})
	}
}

func TestDecodeRepeatedHeaderFirstWins(t *testing.T) {
	got, err := decode(Limits{}, 0, whole([]byte("SEND\nfoo:1\nfoo:2\nbar: x \n\n\x00")), nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d frames, err %v", len(got), err)
	}
	if v, ok := got[0].Get("foo"); !ok || v != "1" {
		t.Errorf("Get(foo) = %q, %v; want first occurrence %q", v, ok, "1")
	}
	if v := got[0].Value("bar"); v != " x " {
		t.Errorf("Value(bar) = %q, want untrimmed %q", v, " x ")
	}
}

// A CONNECT's accept-version decides how the next frame in the same chunk is
// unescaped, so SetVersion from inside emit must apply at once.
func TestDecodeSetVersionInsideEmit(t *testing.T) {
	pick := func(d *Decoder, f *Frame) {
		if f.Command == CONNECT {
			if v, ok := ParseVersion(f.Value("accept-version")); ok {
				d.SetVersion(v)
			}
		}
	}
	tests := []struct {
		name string
		in   string
		want []*Frame
		err  string
	}{
		{"1.0 leaves the next frame raw",
			"CONNECT\naccept-version:1.0\n\n\x00SEND\nk:a\\cb\\t\n\n\x00",
			[]*Frame{fr(CONNECT, "", "accept-version", "1.0"), fr(SEND, "", "k", "a\\cb\\t")}, ""},
		{"1.1 rejects \\r in the next frame",
			"CONNECT\naccept-version:1.1\n\n\x00SEND\nk:a\\rb\n\n\x00",
			[]*Frame{fr(CONNECT, "", "accept-version", "1.1")}, "syntax"},
		{"1.2 unescapes the next frame",
			"CONNECT\naccept-version:1.2\n\n\x00\nSEND\nk:a\\r\\cb\n\n\x00",
			[]*Frame{fr(CONNECT, "", "accept-version", "1.2"), fr(SEND, "", "k", "a\r:b")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			all := chunkings(in)
			all["whole"] = whole(in)
			for how, chunks := range all {
				// Start from 1.0, so the switch is what matters.
				got, err := decode(Limits{}, V10, chunks, pick)
				if errKind(err) != tc.err || !framesEqual(got, tc.want) {
					t.Fatalf("%s: frames:%s err=%v\nwant:%s err=%q", how, fmtFrames(got), err, fmtFrames(tc.want), tc.err)
				}
			}
		})
	}
}

func TestDecodeLimitErrors(t *testing.T) {
	tests := []struct {
		lim   Limits
		in    string
		limit string
		max   int
	}{
		{Limits{MaxHeaderBytes: 10}, "SEND\nkey:value\n\n\x00", "header section", 10},
		{Limits{MaxHeaders: 1}, "SEND\na:1\nb:2\n\n\x00", "header count", 1},
		{Limits{MaxBodyBytes: 3}, "SEND\ncontent-length:4\n\nabcd\x00", "frame body", 3},
		{Limits{MaxBodyBytes: 3}, "SEND\n\nabcd\x00", "frame body", 3},
		{Limits{}, "SEND\ncontent-length:4194305\n\n", "frame body", 4 << 20},
		{Limits{}, "SEND\n" + strings.Repeat("k:v\n", 129) + "\n\x00", "header count", 128},
		{Limits{}, "SEND\nk:" + strings.Repeat("v", 64<<10) + "\n\n\x00", "header section", 64 << 10},
	}
	for _, tc := range tests {
		_, err := decode(tc.lim, 0, whole([]byte(tc.in)), nil)
		var le *LimitError
		if !errors.As(err, &le) {
			t.Errorf("%.30q: error %v is not a *LimitError", tc.in, err)
			continue
		}
		if le.Limit != tc.limit || le.Max != tc.max {
			t.Errorf("%.30q: got Limit %q Max %d, want %q %d", tc.in, le.Limit, le.Max, tc.limit, tc.max)
		}
		if !strings.Contains(le.Error(), tc.limit) {
			t.Errorf("message %q does not name the limit", le.Error())
		}
	}
}

func TestDecodeDefaultLimits(t *testing.T) {
	def := DefaultLimits()
	if def != (Limits{MaxHeaderBytes: 64 << 10, MaxHeaders: 128, MaxBodyBytes: 4 << 20}) {
		t.Fatalf("DefaultLimits() = %+v, want the limits in DESIGN.md", def)
	}
	// Negative fields fall back to defaults too.
	d := NewDecoder(Limits{MaxHeaderBytes: -1, MaxHeaders: -1, MaxBodyBytes: -1})
	if d.limits != def {
		t.Fatalf("limits = %+v, want %+v", d.limits, def)
	}
}

// A decoder that failed stays failed: the connection is going away, and no
// later input may be mistaken for a frame.
func TestDecodeErrorIsSticky(t *testing.T) {
	inputs := map[string]struct {
		lim Limits
		in  string
	}{
		"syntax": {Limits{}, "send\n\n\x00"},
		"limit":  {Limits{MaxBodyBytes: 1}, "SEND\n\nab\x00"},
	}
	for name, tc := range inputs {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder(tc.lim)
			emitted := 0
			emit := func(*Frame) error { emitted++; return nil }
			first := d.Feed([]byte(tc.in), emit)
			if first == nil {
				t.Fatal("no error")
			}
			for _, more := range []string{"SEND\n\n\x00", "\n", "", "garbage"} {
				if err := d.Feed([]byte(more), emit); err != first {
					t.Fatalf("Feed(%q) after error = %v, want the first error %v", more, err, first)
				}
			}
			if err := d.Feed(nil, emit); err != first {
				t.Fatalf("Feed(nil) after error = %v, want %v", err, first)
			}
			if emitted != 0 {
				t.Fatalf("%d frames emitted after the error", emitted)
			}
		})
	}
}

func TestDecodeEmitErrorStops(t *testing.T) {
	stop := errors.New("stop")
	d := NewDecoder(Limits{})
	var got []string
	emit := func(f *Frame) error {
		got = append(got, string(f.Body))
		if len(got) == 2 {
			return stop
		}
		return nil
	}
	err := d.Feed([]byte("SEND\n\na\x00SEND\n\nb\x00SEND\n\nc\x00"), emit)
	if err != stop {
		t.Fatalf("Feed = %v, want the emit error", err)
	}
	if err := d.Feed([]byte("SEND\n\nd\x00"), emit); err != stop {
		t.Fatalf("later Feed = %v, want the emit error", err)
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("emitted %q, want a,b", got)
	}
}

// Binary or non-STOMP input must be refused at the first byte that cannot
// start a frame, not after buffering up to the header limit.
func TestDecodeGarbageFailsFast(t *testing.T) {
	for _, in := range []string{"\x16\x03\x01", "\xff", "s", "GET ", "PUT\t", "{\"", "\x00", "SEND\n\x00"} {
		d := NewDecoder(Limits{})
		err := d.Feed([]byte(in), func(*Frame) error { return nil })
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Feed(%q) = %v, want *SyntaxError at once", in, err)
		} else if !strings.HasPrefix(se.Error(), "malformed frame: ") {
			t.Errorf("message %q", se.Error())
		}
	}
}

// A peer declaring a large content-length must not make the decoder reserve
// the whole body before it arrives: with many connections that would let a
// few bytes of head pin megabytes each.
func TestDecodeContentLengthDoesNotReserveBody(t *testing.T) {
	d := NewDecoder(Limits{})
	noop := func(*Frame) error { return nil }
	if err := d.Feed([]byte("SEND\ncontent-length:4194304\n\n0123456789"), noop); err != nil {
		t.Fatal(err)
	}
	if c := cap(d.body); c > 64<<10 {
		t.Fatalf("body capacity %d after 10 body bytes", c)
	}
	// The body still arrives whole, in pieces of any size.
	chunk := make([]byte, 1000)
	for left := 4194304 - 10; left > 0; left -= len(chunk) {
		if left < len(chunk) {
			chunk = chunk[:left]
		}
		if err := d.Feed(chunk, noop); err != nil {
			t.Fatal(err)
		}
	}
	var got *Frame
	if err := d.Feed([]byte{0}, func(f *Frame) error { got = f; return nil }); err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got.Body) != 4194304 || string(got.Body[:10]) != "0123456789" {
		t.Fatal("body not reassembled")
	}
}

// Frames must not alias the caller's buffer, which is reused for the next
// read; decode() scribbles over it, this checks the frame directly too.
func TestDecodeFrameOwnsItsBytes(t *testing.T) {
	buf := []byte("SEND\ndestination:/q\n\nbody\x00MESSAGE\ncontent-length:2\n\nhi\x00")
	var got []*Frame
	err := NewDecoder(Limits{}).Feed(buf, func(f *Frame) error { got = append(got, f); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	want := []*Frame{fr(SEND, "body", "destination", "/q"), fr(MESSAGE, "hi", "content-length", "2")}
	if !framesEqual(got, want) {
		t.Fatalf("frames changed with the input buffer:%s", fmtFrames(got))
	}
}

func TestDecodeEmptyFeed(t *testing.T) {
	d := NewDecoder(Limits{})
	emit := func(*Frame) error { t.Fatal("unexpected frame"); return nil }
	for _, p := range [][]byte{nil, {}} {
		if err := d.Feed(p, emit); err != nil {
			t.Fatal(err)
		}
	}
}

// Bodies larger than the decoder's first reservation grow as they arrive;
// the result must not depend on where the pieces end.
func TestDecodeLargeBodyChunked(t *testing.T) {
	body := make([]byte, 10000)
	for i := range body {
		body[i] = byte(i % 7) // NULs included
	}
	in := append([]byte("MESSAGE\ncontent-length:10000\n\n"), body...)
	in = append(in, 0, '\n')
	in = append(in, "SEND\n\nnext\x00"...)
	want := []*Frame{fr(MESSAGE, string(body), "content-length", "10000"), fr(SEND, "next")}
	ways := map[string][][]byte{"whole": whole(in), "one byte at a time": oneByte(in)}
	for seed := range uint64(20) {
		ways["random "+strconv.FormatUint(seed, 10)] = randomChunks(in, seed*1000003)
	}
	for _, at := range []int{31, 32, 4096 + 30, 4096 + 31, 8192 + 31, len(in) - 13} {
		ways["split at "+strconv.Itoa(at)] = [][]byte{in[:at], in[at:]}
	}
	for how, chunks := range ways {
		got, err := decode(Limits{}, 0, chunks, nil)
		if err != nil || !framesEqual(got, want) {
			t.Fatalf("%s: err=%v, %d frames", how, err, len(got))
		}
	}
}

func TestFailedReceipt(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"bad escape after receipt", "SEND\nreceipt:r1\nx:\\t\n\n\x00", "r1"},
		{"bad escape before receipt", "SEND\nx:\\t\nreceipt:r2\n\n\x00", "r2"},
		{"too many headers", "SEND\na:1\nb:2\nc:3\nreceipt:r3\n\n\x00", "r3"},
		{"declared body too large", "SEND\nreceipt:r4\ncontent-length:99\n\n", "r4"},
		{"streamed body too large", "SEND\nreceipt:r5\n\n" + strings.Repeat("x", 20), "r5"},
		{"no NUL after body", "SEND\nreceipt:r6\ncontent-length:1\n\nxy", "r6"},
		{"head never completed", "SEND\nreceipt:r7\n" + strings.Repeat("y", 100), ""},
		{"no receipt", "SEND\nx:\\t\n\n\x00", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(Limits{MaxHeaders: 3, MaxBodyBytes: 10, MaxHeaderBytes: 64})
			if err := d.Feed([]byte(tc.in), func(*Frame) error { return nil }); err == nil {
				t.Fatal("no error")
			}
			if got := d.FailedReceipt(); got != tc.want {
				t.Fatalf("FailedReceipt() = %q, want %q", got, tc.want)
			}
		})
	}
}
