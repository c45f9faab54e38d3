package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-stomp/stomp/v3"
)

// shownMessage is a received message as the client commands print it.
type shownMessage struct {
	destination string
	headers     [][2]string // in the order the broker sent them
	body        []byte
}

func stompShown(m *stomp.Message) shownMessage {
	s := shownMessage{destination: m.Destination, body: m.Body}
	for i := range m.Header.Len() {
		k, v := m.Header.GetAt(i)
		s.headers = append(s.headers, [2]string{k, v})
	}
	return s
}

// writeMessage prints m in one write, so concurrent output cannot
// interleave and a message is either out or not when an ACK follows:
//
//	body   the body and a newline
//	frame  the headers as name:value lines, a blank line, the body, a blank line
//	json   {"destination", "headers", "body" or "body_base64"} on one line
func writeMessage(w io.Writer, format string, m shownMessage) error {
	var b strings.Builder
	switch format {
	case "frame":
		b.WriteString("MESSAGE\n")
		for _, h := range m.headers {
			fmt.Fprintf(&b, "%s:%s\n", h[0], h[1])
		}
		b.WriteString("\n")
		b.Write(m.body)
		b.WriteString("\n\n")
	case "json":
		j := struct {
			Destination string            `json:"destination"`
			Headers     map[string]string `json:"headers"`
			Body        *string           `json:"body,omitempty"`
			BodyBase64  *string           `json:"body_base64,omitempty"`
		}{Destination: m.destination, Headers: map[string]string{}}
		for _, h := range slices.Backward(m.headers) {
			j.Headers[h[0]] = h[1] // the first of a repeated header wins
		}
		if body := string(m.body); utf8.ValidString(body) {
			j.Body = &body
		} else {
			enc := base64.StdEncoding.EncodeToString(m.body)
			j.BodyBase64 = &enc
		}
		data, err := json.Marshal(j)
		if err != nil {
			return err
		}
		b.Write(data)
		b.WriteString("\n")
	default:
		b.Write(m.body)
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
