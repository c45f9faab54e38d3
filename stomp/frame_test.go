package stomp

import "testing"

func TestVersion(t *testing.T) {
	for _, v := range []Version{V10, V11, V12} {
		got, ok := ParseVersion(v.String())
		if !ok || got != v {
			t.Errorf("ParseVersion(%q) = %v, %v", v.String(), got, ok)
		}
	}
	if !(V10 < V11 && V11 < V12) {
		t.Error("versions must be ordered: the codec compares them")
	}
	for _, s := range []string{"", "1", "1.3", "2.0", " 1.2"} {
		if _, ok := ParseVersion(s); ok {
			t.Errorf("ParseVersion(%q) accepted", s)
		}
	}
	if Version(0).String() != "unknown" {
		t.Error("zero version should print as unknown")
	}
}

func TestFrameHeaders(t *testing.T) {
	f := New(SEND, "a", "1", "b", "2", "a", "3", "odd")
	if len(f.Headers) != 3 {
		t.Fatalf("New kept %d headers, want 3 (a dangling key is dropped)", len(f.Headers))
	}
	if v, ok := f.Get("a"); !ok || v != "1" {
		t.Errorf("Get(a) = %q, %v; want the first", v, ok)
	}
	if _, ok := f.Get("missing"); ok || f.Value("missing") != "" {
		t.Error("missing header found")
	}
	f.Set("a", "x")
	if !framesEqual([]*Frame{f}, []*Frame{fr(SEND, "", "a", "x", "b", "2")}) {
		t.Errorf("Set should replace the first and drop repeats:%s", fmtFrames([]*Frame{f}))
	}
	f.Set("c", "4")
	f.Add("c", "5")
	if f.Value("c") != "4" || len(f.Headers) != 4 {
		t.Errorf("Set/Add appended wrongly:%s", fmtFrames([]*Frame{f}))
	}
	f.Del("c")
	if !framesEqual([]*Frame{f}, []*Frame{fr(SEND, "", "a", "x", "b", "2")}) {
		t.Errorf("Del:%s", fmtFrames([]*Frame{f}))
	}
}

func TestFrameClone(t *testing.T) {
	f := New(MESSAGE, "a", "1")
	f.Body = []byte("body")
	c := f.Clone()
	c.Set("a", "2")
	c.Add("b", "3")
	if f.Value("a") != "1" || len(f.Headers) != 1 {
		t.Fatal("changing the clone's headers changed the original")
	}
	if &c.Body[0] != &f.Body[0] {
		t.Fatal("the body is documented as shared")
	}
}

func TestFrameContentLength(t *testing.T) {
	tests := []struct {
		kv []string
		n  int
		ok bool
	}{
		{nil, 0, false},
		{[]string{"content-length", "12"}, 12, true},
		{[]string{"content-length", "0"}, 0, true},
		{[]string{"content-length", "-1"}, 0, false},
		{[]string{"content-length", "x"}, 0, false},
		{[]string{"content-length", "3", "content-length", "4"}, 3, true},
	}
	for _, tc := range tests {
		n, ok := New(SEND, tc.kv...).ContentLength()
		if n != tc.n || ok != tc.ok {
			t.Errorf("%q: got %d, %v; want %d, %v", tc.kv, n, ok, tc.n, tc.ok)
		}
	}
}
