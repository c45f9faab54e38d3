package stomp

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"
)

// fuzzSeeds are wire inputs worth mutating: every decoder table case plus a
// few longer streams.
func fuzzSeeds() []string {
	seeds := []string{
		"CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\nlogin:a\\cb\n\n\x00SEND\ndestination:/q\nk:a\\cb\n\nhi\x00",
		"STOMP\naccept-version:1.1\n\n\x00\r\nSEND\nk:\\r\n\n\x00",
		"MESSAGE\r\ndestination:/topic/t\r\nmessage-id:1\r\nsubscription:s\r\ncontent-length:4\r\n\r\n\x00\x01\x02\x03\x00\n\n",
		"ACK\nid:1\n\n\x00NACK\nid:2\n\n\x00BEGIN\ntransaction:t\n\n\x00COMMIT\ntransaction:t\n\n\x00ABORT\ntransaction:t\n\n\x00",
		"ERROR\nmessage:bad\\nthing\nreceipt-id:9\ncontent-type:text/plain\n\ndetails\x00",
		"RECEIPT\nreceipt-id:77\n\n\x00UNSUBSCRIBE\nid:0\n\n\x00DISCONNECT\nreceipt:77\n\n\x00",
	}
	for _, tc := range decodeCases {
		seeds = append(seeds, tc.in)
	}
	return seeds
}

// splitmix64 turns the fuzzer's seed into chunk sizes.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// randomChunks splits in into pieces whose sizes follow seed; empty pieces
// are included on purpose.
func randomChunks(in []byte, seed uint64) [][]byte {
	rng := splitmix64(seed)
	maxChunk := 1 + seed%40
	var out [][]byte
	for len(in) > 0 {
		n := min(int(rng.next()%(maxChunk+1)), len(in))
		out = append(out, in[:n])
		in = in[n:]
	}
	return out
}

// negotiate mimics the broker: a CONNECT or STOMP frame switches the
// escaping rules for the frames after it.
func negotiate(d *Decoder, f *Frame) {
	if f.Command != CONNECT && f.Command != STOMP {
		return
	}
	av := f.Value("accept-version")
	for _, v := range []Version{V12, V11, V10} {
		if strings.Contains(av, v.String()) {
			d.SetVersion(v)
			return
		}
	}
}

// FuzzDecodeSplit checks that how input is chunked never changes what is
// decoded, and that decoding never panics.
func FuzzDecodeSplit(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add([]byte(s), uint64(i)*7919, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, mode uint8) {
		v := [...]Version{V10, V11, V12, V12}[mode&3]
		lim := Limits{}
		if mode&4 != 0 {
			lim = Limits{MaxHeaderBytes: 48, MaxHeaders: 3, MaxBodyBytes: 16}
		}
		var hook func(*Decoder, *Frame)
		if mode&8 != 0 {
			hook = negotiate
		}
		want, wantErr := decode(lim, v, whole(data), hook)

		ways := map[string][][]byte{"random chunks": randomChunks(data, seed)}
		if len(data) <= 1<<12 {
			ways["one byte at a time"] = oneByte(data)
		}
		for how, chunks := range ways {
			got, err := decode(lim, v, chunks, hook)
			if !framesEqual(got, want) || errKind(err) != errKind(wantErr) ||
				(err != nil && err.Error() != wantErr.Error()) {
				t.Fatalf("%s: frames:%s err=%v\nwhole input:%s err=%v", how, fmtFrames(got), err, fmtFrames(want), wantErr)
			}
		}

		// Whatever the decoder emits respects the limits and the framing.
		eff := NewDecoder(lim).limits
		for _, fr := range want {
			if fr.Command == "" || strings.Trim(fr.Command, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
				t.Fatalf("emitted command %q", fr.Command)
			}
			if len(fr.Headers) > eff.MaxHeaders || len(fr.Body) > eff.MaxBodyBytes {
				t.Fatalf("emitted frame over the limits: %d headers, %d body bytes", len(fr.Headers), len(fr.Body))
			}
			if n, ok := fr.ContentLength(); ok && n != len(fr.Body) {
				t.Fatalf("content-length %d but body of %d bytes", n, len(fr.Body))
			}
			if _, ok := fr.Get("content-length"); !ok && bytes.IndexByte(fr.Body, 0) >= 0 {
				t.Fatal("NUL in a body without content-length")
			}
		}
	})
}

// roundTripCommands are the commands whose headers are escaped; CONNECT,
// CONNECTED and STOMP cannot carry every string, so they are left out.
var roundTripCommands = []string{
	SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK, BEGIN, COMMIT, ABORT, DISCONNECT,
	MESSAGE, RECEIPT, ERROR,
}

// FuzzRoundTrip checks that decoding an encoded frame gives it back.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), "destination", "/queue/a", "receipt", "1", "", "", []byte("hello"), uint8(2))
	f.Add(uint8(9), "k:\\\r\n", "v:\\\r\n", "k:\\\r\n", "other", "content-length", "x", []byte("a\x00b\x00"), uint8(2))
	f.Add(uint8(11), "message", " spaced ", "\\c", "\\n", ":", "::", []byte{}, uint8(1))
	f.Add(uint8(5), "a\\b", "c:d", "e", "f\\n", "g", "", []byte("\x00"), uint8(0))
	f.Add(uint8(3), "", "", "\r", "\n", "\x00", "\xff", []byte("\r\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, cmd uint8, k1, v1, k2, v2, k3, v3 string, body []byte, ver uint8) {
		v := [...]Version{V10, V11, V12}[ver%3]
		keys, vals := []string{k1, k2, k3}, []string{v1, v2, v3}
		// Restrict to what the version can carry: no version can put a
		// NUL in a head, 1.1 has no \r escape, 1.0 no escapes at all (and
		// a colon would end its key).
		for i := range keys {
			kv := keys[i] + vals[i]
			if strings.ContainsRune(kv, 0) ||
				v < V12 && strings.ContainsRune(kv, '\r') ||
				v < V11 && (strings.ContainsRune(kv, '\n') || strings.ContainsRune(keys[i], ':')) {
				return
			}
		}
		// The true content-length goes first so that it wins over any
		// fuzzed one; the encoder must then not add another.
		orig := New(roundTripCommands[int(cmd)%len(roundTripCommands)],
			"content-length", strconv.Itoa(len(body)), k1, v1, k2, v2, k3, v3)
		orig.Body = body

		enc := Encode(orig, v)
		if got := AppendFrame([]byte("x"), orig, v); string(got[1:]) != string(enc) {
			t.Fatalf("AppendFrame and Encode differ: %q vs %q", got[1:], enc)
		}
		// Twice, with a heart-beat between: the frame must end exactly
		// where the encoder says.
		stream := append(append(append([]byte{}, enc...), '\r', '\n'), enc...)
		big := Limits{MaxHeaderBytes: 1 << 30, MaxHeaders: 1 << 20, MaxBodyBytes: 1 << 30}
		got, err := decode(big, v, whole(stream), nil)
		if err != nil || !framesEqual(got, []*Frame{orig, orig}) {
			t.Fatalf("%v %q:\ndecoded%s err=%v\nwant%s", v, enc, fmtFrames(got), err, fmtFrames([]*Frame{orig}))
		}
	})
}

// goStompCommands are the commands go-stomp's reader accepts.
var goStompCommands = map[string]bool{
	CONNECT: true, STOMP: true, SEND: true, SUBSCRIBE: true, UNSUBSCRIBE: true,
	ACK: true, NACK: true, BEGIN: true, COMMIT: true, ABORT: true,
	DISCONNECT: true, CONNECTED: true, MESSAGE: true, RECEIPT: true, ERROR: true,
}

// hasLoneCR reports a CR not followed by LF.
func hasLoneCR(b []byte) bool {
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return true
		}
	}
	return false
}

// FuzzDifferential compares the decoder with go-stomp's frame.Reader (1.2
// rules) on input the decoder accepts. The readers legitimately differ in a
// few places, so those inputs are skipped:
//   - a lone CR (not before LF): between frames the decoder drops it with
//     the heart-beats, go-stomp reads it as part of a command line;
//   - commands outside the STOMP set: the decoder leaves that check to the
//     broker, go-stomp refuses them;
//   - an empty header name: the decoder keeps it, go-stomp refuses it;
//   - a backslash in a CONNECT, CONNECTED or STOMP header: those are never
//     unescaped here, as the spec says, but go-stomp unescapes them.
//
// Input the decoder rejects is not compared: go-stomp leaves undefined
// escapes as they are and allows NUL in heads, where the decoder refuses.
func FuzzDifferential(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if hasLoneCR(data) {
			return
		}
		d := NewDecoder(Limits{})
		var ours []*Frame
		if err := d.Feed(data, func(f *Frame) error { ours = append(ours, f); return nil }); err != nil {
			return
		}
		for _, f := range ours {
			if !goStompCommands[f.Command] {
				return
			}
			raw := f.Command == CONNECT || f.Command == CONNECTED || f.Command == STOMP
			for _, h := range f.Headers {
				if h.Key == "" || raw && strings.ContainsRune(h.Key+h.Value, '\\') {
					return
				}
			}
		}

		r := frame.NewReader(bytes.NewReader(data))
		for i := 0; i < len(ours); {
			g, err := r.Read()
			if err != nil {
				t.Fatalf("frame %d: go-stomp: %v; decoder gave%s", i, err, fmtFrames(ours[i:i+1]))
			}
			if g == nil {
				continue // heart-beat
			}
			o := ours[i]
			same := g.Command == o.Command && g.Header.Len() == len(o.Headers) && bytes.Equal(g.Body, o.Body)
			for j := 0; same && j < len(o.Headers); j++ {
				k, v := g.Header.GetAt(j)
				same = k == o.Headers[j].Key && v == o.Headers[j].Value
			}
			if !same {
				var gh []Header
				for j := 0; j < g.Header.Len(); j++ {
					k, v := g.Header.GetAt(j)
					gh = append(gh, Header{k, v})
				}
				t.Fatalf("frame %d differs:\ngo-stomp%s\ndecoder%s", i,
					fmtFrames([]*Frame{{g.Command, gh, g.Body}}), fmtFrames([]*Frame{o}))
			}
			i++
		}
		// When the decoder ended between frames, go-stomp must find
		// nothing but heart-beats after them either.
		if d.state != stStart {
			return
		}
		for {
			g, err := r.Read()
			if err == io.EOF {
				return
			}
			if err != nil || g != nil {
				t.Fatalf("go-stomp read more after the last frame: %v, %v", g, err)
			}
		}
	})
}
