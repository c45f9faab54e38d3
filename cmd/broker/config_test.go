package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// configCase is a command line and environment, with a check of the
// config parseConfig makes of them or a word its error must mention.
type configCase struct {
	name  string
	args  []string
	env   map[string]string
	check func(*config) bool
	err   string
}

func runConfigCases(t *testing.T, tests []configCase) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			c, err := parseConfig(tc.args, getenv, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	runConfigCases(t, []configCase{
		{"defaults", nil, nil, func(c *config) bool {
			return c.HTTPAddr == ":8080" && c.StompAddr == ":61613" && c.DataDir == "./data" &&
				c.Broker.Limits.MaxBodyBytes == 4<<20 && c.Broker.MaxConnections == 100000 && c.Broker.MaxRedeliveries == 10 &&
				c.SockJS.ReadTimeout == 10*time.Second && c.SockJS.PendingPerIP == 32<<20
		}, ""},
		{"flag", []string{"--stomp", ""}, nil, func(c *config) bool { return c.StompAddr == "" }, ""},
		{"env", nil, map[string]string{"BROKER_STOMP": "127.0.0.1:7000", "BROKER_MAX_CONNECTIONS": "5", "BROKER_HEARTBEAT_MIN": "2s"},
			func(c *config) bool {
				return c.StompAddr == "127.0.0.1:7000" && c.Broker.MaxConnections == 5 && c.Broker.HeartbeatMin == 2*time.Second
			}, ""},
		{"flag beats env", []string{"--http", ":1"}, map[string]string{"BROKER_HTTP": ":2"}, func(c *config) bool { return c.HTTPAddr == ":1" }, ""},
		{"sockjs bounds", []string{"--sockjs-read-timeout", "3s", "--sockjs-max-pending-bytes-per-ip", "1024"}, nil, func(c *config) bool {
			return c.SockJS.ReadTimeout == 3*time.Second && c.SockJS.PendingPerIP == 1024
		}, ""},
		{"zero redeliveries means none", []string{"--max-redeliveries", "0"}, nil, func(c *config) bool { return c.Broker.MaxRedeliveries < 0 }, ""},
		{"bad env", nil, map[string]string{"BROKER_MAX_HEADERS": "lots"}, nil, "BROKER_MAX_HEADERS"},
		{"bad log format", []string{"--log-format", "xml"}, nil, nil, "log-format"},
		{"stray argument", []string{"extra"}, nil, nil, "unexpected argument"},
	})
}

func TestHelpListsEnv(t *testing.T) {
	var out strings.Builder
	code := run(t.Context(), []string{"--help"}, func(string) string { return "" }, io.Discard, &out)
	if code != 0 || !strings.Contains(out.String(), "BROKER_MAX_CONNECTIONS") || !strings.Contains(out.String(), "-max-outbound-bytes") {
		t.Fatalf("code %d, help:\n%s", code, out.String())
	}
}

// TestSameAddr: a node tells its own route among --nats-routes, so it
// counts the cluster's nodes right whether or not its own is listed.
func TestSameAddr(t *testing.T) {
	for _, tc := range []struct {
		url, addr string
		want      bool
	}{
		{"nats://127.0.0.1:6222", "127.0.0.1:6222", true},
		{"nats://127.0.0.1:6223", "127.0.0.1:6222", false},
		{"nats://localhost:6222", "127.0.0.1:6222", true},
		{"nats://10.0.0.5:6222", "0.0.0.0:6222", false},
		{"nats://10.0.0.5:6222", "10.0.0.6:6222", false},
		{"nats://n1.example:6222", "n2.example:6222", false},
	} {
		if got := sameAddr(tc.url, tc.addr); got != tc.want {
			t.Errorf("sameAddr(%q, %q) = %v", tc.url, tc.addr, got)
		}
	}
}
