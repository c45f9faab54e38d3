package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const tailUsage = `
Usage: broker tail [flags] DESTINATION

Prints the messages that pass through DESTINATION without taking them: a
queue's consumers still get every one. It reads the admin API, so it needs
an admin login (guest/guest from this machine while no users are
configured), and runs until interrupted or until --count messages have
passed. Bodies are cut at 64 KiB.

Examples:
  broker tail /queue/orders
  broker tail --format json --url http://broker.internal:8080 --login admin '/topic/prices.#'

`

// tailFlags are tail's settings beyond the connection.
type tailFlags struct {
	clientFlags
	count int
}

// tailCmd is "broker tail".
func tailCmd(ctx context.Context, args []string, env cliEnv) int {
	var t tailFlags
	fs := newFlagSet("tail", tailUsage, env)
	t.register(fs, "http://localhost:8080", "")
	fs.IntVar(&t.count, "count", 0, "exit after this many messages (0: run until interrupted)")
	fs.StringVar(&t.format, "format", "body", "output: body, frame or json (the API's message objects)")
	rest, err := t.parse(fs, args, env)
	if err == nil && len(rest) != 1 {
		err = errors.New("want exactly one DESTINATION")
	}
	var base string
	if err == nil {
		base, err = adminURL(t.url)
	}
	if err != nil {
		return usageExit(err, env, "tail")
	}
	if t.login == "" && t.passcode == "" {
		t.login, t.passcode = "guest", "guest"
	}
	err = t.tail(ctx, base, rest[0], env)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(env.stderr, "broker tail:", err)
		return 1
	}
	return 0
}

// adminURL turns the broker URL into the base of its HTTP API: an
// http(s) URL as it is, a ws(s) one (the /ws endpoint) on the same host.
func adminURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--url %q: want http://HOST:PORT", raw)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("--url %q: tail reads the HTTP admin API; want http://HOST:PORT (the listener of /ws and /admin/)", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// tail reads the destination's event stream and prints each message.
func (t *tailFlags) tail(ctx context.Context, base, dest string, env cliEnv) error {
	streamURL := base + "/api/v1/destinations/" + url.PathEscape(dest) + "/tail"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(t.login, t.passcode)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("%s: %s", resp.Status, e.Error)
	}
	n := 0
	return readEvents(resp.Body, func(event, data string) error {
		switch event {
		case "ready":
			fmt.Fprintf(env.stderr, "tailing %s\n", dest)
		case "dropped":
			fmt.Fprintf(env.stderr, "broker tail: messages skipped, output too slow: %s\n", data)
		case "message":
			if err := t.print(env.stdout, data); err != nil {
				return err
			}
			if n++; n == t.count {
				return io.EOF
			}
		}
		return nil
	})
}

// print writes one message event's data in the chosen format.
func (t *tailFlags) print(w io.Writer, data string) error {
	if t.format == "json" {
		_, err := io.WriteString(w, data+"\n")
		return err
	}
	var m struct {
		Destination string            `json:"destination"`
		Headers     map[string]string `json:"headers"`
		Body        string            `json:"body"`
		BodyBase64  string            `json:"body_base64"`
	}
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return fmt.Errorf("unreadable message event: %w", err)
	}
	s := shownMessage{destination: m.Destination, body: []byte(m.Body)}
	if m.BodyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(m.BodyBase64)
		if err != nil {
			return err
		}
		s.body = b
	}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		s.headers = append(s.headers, [2]string{k, m.Headers[k]})
	}
	return writeMessage(w, t.format, s)
}

// readEvents parses a Server-Sent Events stream and calls fn for each
// event; it stops at the end of the stream or when fn fails (io.EOF from
// fn ends it without error).
func readEvents(r io.Reader, fn func(event, data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				if event == "" {
					event = "message"
				}
				if err := fn(event, strings.Join(data, "\n")); err != nil {
					if err == io.EOF {
						return nil
					}
					return err
				}
			}
			event, data = "", nil
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(line[len("data:"):], " "))
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the broker ended the stream")
}
