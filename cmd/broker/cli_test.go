package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestWriteMessage(t *testing.T) {
	m := shownMessage{
		destination: "/queue/a",
		headers:     [][2]string{{"destination", "/queue/a"}, {"x", "1"}, {"x", "2"}},
		body:        []byte("hi"),
	}
	bin := m
	bin.body = []byte{0xff, 0}
	for _, tc := range []struct {
		format string
		m      shownMessage
		want   string
	}{
		{"body", m, "hi\n"},
		{"frame", m, "MESSAGE\ndestination:/queue/a\nx:1\nx:2\n\nhi\n\n"},
		{"json", m, `{"destination":"/queue/a","headers":{"destination":"/queue/a","x":"1"},"body":"hi"}` + "\n"},
		{"json", bin, `{"destination":"/queue/a","headers":{"destination":"/queue/a","x":"1"},"body_base64":"/wA="}` + "\n"},
	} {
		var b strings.Builder
		if err := writeMessage(&b, tc.format, tc.m); err != nil || b.String() != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.format, b.String(), err, tc.want)
		}
	}
}

func TestReadEvents(t *testing.T) {
	stream := "retry: 2000\n\nevent: ready\ndata: {}\n\n: keep-alive\n\nevent: message\ndata: a\ndata: b\n\ndata: plain\n\nevent: message\ndata: stop\n\nevent: message\ndata: never\n\n"
	var got []string
	err := readEvents(strings.NewReader(stream), func(event, data string) error {
		got = append(got, event+"="+data)
		if data == "stop" {
			return io.EOF
		}
		return nil
	})
	want := "ready={} message=a\nb message=plain message=stop"
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("events %q, %v; want %q", got, err, want)
	}
	if err := readEvents(strings.NewReader("event: ready\ndata: {}\n\n"), func(string, string) error { return nil }); err == nil {
		t.Error("a stream the broker ended gave no error")
	}
	boom := errors.New("boom")
	if err := readEvents(strings.NewReader("data: x\n\n"), func(string, string) error { return boom }); err != boom {
		t.Errorf("fn's error: got %v", err)
	}
}

func TestAdminURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:8080":        "http://localhost:8080",
		"https://broker.example.com/x": "https://broker.example.com",
		"ws://127.0.0.1:8080/ws":       "http://127.0.0.1:8080",
		"wss://broker.example.com/ws":  "https://broker.example.com",
		"tcp://localhost:61613":        "",
		"localhost:8080":               "",
	} {
		got, err := adminURL(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("adminURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestHeaderFlag(t *testing.T) {
	var h headerFlag
	for _, s := range []string{"priority:9", "x-url:http://a:b", "empty:"} {
		if err := h.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if want := [][2]string{{"priority", "9"}, {"x-url", "http://a:b"}, {"empty", ""}}; len(h) != 3 || h[1] != want[1] || h[2] != want[2] {
		t.Errorf("parsed %q", h)
	}
	for _, bad := range []string{"novalue", ":x"} {
		if err := h.Set(bad); err == nil {
			t.Errorf("-H %q accepted", bad)
		}
	}
}
