package main

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c *config)
	}{
		{"defaults", []string{"-scenario", "fanout"}, func(t *testing.T, c *config) {
			if !c.target.ws || c.target.addr != "127.0.0.1:8080" || c.target.url != "ws://127.0.0.1:8080/ws" {
				t.Errorf("target = %+v", c.target)
			}
			if c.publishers != 1 || c.subscribers != 50 || c.size != 256 || c.prefetch != 1000 || c.window != 64 {
				t.Errorf("counts = %+v", c)
			}
			if c.heartbeat != 0 {
				t.Errorf("fanout heart-beat = %v, want 0 unless -heartbeat is given", c.heartbeat)
			}
			if c.timeout != 2*time.Second+10*time.Second+60*time.Second {
				t.Errorf("timeout = %v", c.timeout)
			}
			if c.login != "guest" || c.passcode != "guest" || c.vhost != "/" {
				t.Errorf("credentials = %q %q %q", c.login, c.passcode, c.vhost)
			}
		}},
		{"tcp with default port", []string{"-scenario", "queue", "-url", "tcp://localhost"}, func(t *testing.T, c *config) {
			if c.target.ws || c.target.addr != "localhost:61613" {
				t.Errorf("target = %+v", c.target)
			}
		}},
		{"conns keeps its heart-beat", []string{"-scenario", "conns", "-hold", "5s"}, func(t *testing.T, c *config) {
			if c.heartbeat != 10*time.Second || c.timeout != 65*time.Second {
				t.Errorf("heartbeat %v timeout %v", c.heartbeat, c.timeout)
			}
		}},
		{"drain defaults to one consumer, prefetch 64", []string{"-scenario", "drain"}, func(t *testing.T, c *config) {
			if c.consumers != 1 || c.prefetch != 64 || c.messages != 20000 || !c.ackReceipts {
				t.Errorf("consumers %d prefetch %d messages %d ack receipts %v", c.consumers, c.prefetch, c.messages, c.ackReceipts)
			}
			if c.timeout != 60*time.Second+200*time.Second {
				t.Errorf("timeout %v", c.timeout)
			}
		}},
		{"drain as given", []string{"-scenario", "drain", "-consumers", "3", "-prefetch", "0", "-ack-receipts=false"}, func(t *testing.T, c *config) {
			if c.consumers != 3 || c.prefetch != 0 || c.ackReceipts {
				t.Errorf("consumers %d prefetch %d ack receipts %v", c.consumers, c.prefetch, c.ackReceipts)
			}
		}},
		{"heart-beat given", []string{"-scenario", "queue", "-heartbeat", "2s"}, func(t *testing.T, c *config) {
			if c.heartbeat != 2*time.Second {
				t.Errorf("heartbeat %v", c.heartbeat)
			}
		}},
		{"IPv6 loopback", []string{"-scenario", "fanout", "-url", "ws://[::1]:9000/stomp"}, func(t *testing.T, c *config) {
			if c.target.url != "ws://[::1]:9000/stomp" {
				t.Errorf("url = %q", c.target.url)
			}
		}},
		{"remote allowed", []string{"-scenario", "fanout", "-url", "tcp://192.0.2.7:61613", "-allow-remote"}, func(t *testing.T, c *config) {
			if c.target.addr != "192.0.2.7:61613" {
				t.Errorf("addr = %q", c.target.addr)
			}
		}},
		{"crash", []string{"-scenario", "crash", "-rounds", "100", "-prefetch", "128", "--", "./broker", "--data", "d"}, func(t *testing.T, c *config) {
			if strings.Join(c.brokerCmd, " ") != "./broker --data d" {
				t.Errorf("broker command %q", c.brokerCmd)
			}
			// The work queue load, except what was given.
			if c.producers != 2 || c.consumers != 2 || c.rate != 4000 || c.window != 32 || c.prefetch != 128 {
				t.Errorf("load = %+v", c)
			}
			if c.rounds != 100 || c.receiptedAcks != 0.25 || c.txSize != 4 || c.startBound != 10*time.Second {
				t.Errorf("crash settings = %+v", c)
			}
			if c.timeout < 100*(c.killMax+time.Minute) {
				t.Errorf("timeout %v is short for 100 rounds", c.timeout)
			}
		}},
		{"local addresses", []string{"-scenario", "conns", "-local-addrs", "127.0.0.2, 127.0.0.3"}, func(t *testing.T, c *config) {
			if len(c.localAddrs) != 2 || c.localAuto {
				t.Errorf("local = %v auto %v", c.localAddrs, c.localAuto)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseConfigRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the message
	}{
		{"no scenario", nil, "-scenario is required"},
		{"unknown scenario", []string{"-scenario", "storm"}, "unknown -scenario"},
		{"stray argument", []string{"-scenario", "fanout", "extra"}, "unexpected argument"},
		{"unknown flag", []string{"-scenario", "fanout", "-nope"}, "not defined"},
		{"tiny body", []string{"-scenario", "fanout", "-size", "10"}, "too small"},
		{"no subscribers", []string{"-scenario", "fanout", "-subscribers", "0"}, "-subscribers must be at least 1"},
		{"negative rate", []string{"-scenario", "fanout", "-rate", "-1"}, "negative"},
		{"zero duration", []string{"-scenario", "fanout", "-duration", "0s"}, "-duration"},
		{"no messages", []string{"-scenario", "drain", "-messages", "0"}, "-messages"},
		{"zero window", []string{"-scenario", "persistent", "-window", "0"}, "-window"},
		{"too many publishers", []string{"-scenario", "fanout", "-publishers", "70000"}, "at most"},
		{"bad scheme", []string{"-scenario", "fanout", "-url", "http://127.0.0.1:8080/ws"}, "not supported"},
		{"no host", []string{"-scenario", "fanout", "-url", "ws:///ws"}, "no host"},
		{"tcp with a path", []string{"-scenario", "fanout", "-url", "tcp://127.0.0.1:61613/x"}, "no path"},
		{"remote IPv4", []string{"-scenario", "fanout", "-url", "tcp://192.0.2.7:61613"}, "not a loopback address"},
		{"remote IPv6", []string{"-scenario", "conns", "-url", "ws://[2001:db8::1]:8080/ws"}, "-allow-remote"},
		{"unspecified address", []string{"-scenario", "queue", "-url", "tcp://0.0.0.0:61613"}, "not a loopback address"},
		{"remote receiver", []string{"-scenario", "queue", "-receiver-urls", "ws://127.0.0.1:8081/ws,tcp://192.0.2.7:61613"}, "not a loopback address"},
		{"bad version", []string{"-scenario", "queue", "-accept-version", "1.2,2.0"}, "-accept-version"},
		{"bad local address", []string{"-scenario", "conns", "-local-addrs", "nope"}, "-local-addrs"},
		{"crash without a broker", []string{"-scenario", "crash"}, "command line after --"},
		{"crash share", []string{"-scenario", "crash", "-receipted-acks", "1.5", "--", "b"}, "-receipted-acks"},
		{"crash kill times", []string{"-scenario", "crash", "-kill-min", "2s", "-kill-max", "1s", "--", "b"}, "-kill-max"},
		{"crash transaction over prefetch", []string{"-scenario", "crash", "-tx-size", "100", "--", "b"}, "-prefetch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, &bytes.Buffer{})
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseConfig = %+v, %v; want a usage error", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestRunExitStatusForUsage(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run(t.Context(), []string{"-scenario", "fanout", "-url", "tcp://192.0.2.7:61613"}, &out, &errs); code != 2 {
		t.Errorf("exit %d, want 2; stderr %q", code, errs.String())
	}
	if !strings.Contains(errs.String(), "loopback") {
		t.Errorf("stderr does not explain the refusal: %q", errs.String())
	}
	if code := run(t.Context(), []string{"-h"}, &out, &errs); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
	if _, err := parseConfig([]string{"-help"}, &bytes.Buffer{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: %v", err)
	}
}

func TestChooseLocals(t *testing.T) {
	tests := []struct {
		name string
		args []string
		n    int
		want []string
	}{
		{"few conns", []string{"-scenario", "conns", "-url", "tcp://127.0.0.1:61613"}, 1000, nil},
		{"many conns", []string{"-scenario", "conns", "-url", "tcp://127.0.0.1:61613"}, 15000, []string{"127.0.0.1", "127.0.0.2"}},
		{"IPv6 is left alone", []string{"-scenario", "conns", "-url", "tcp://[::1]:61613"}, 15000, nil},
		{"only conns spreads", []string{"-scenario", "fanout", "-url", "tcp://127.0.0.1:61613"}, 15000, nil},
		{"kernel's choice", []string{"-scenario", "conns", "-url", "tcp://127.0.0.1:61613", "-local-addrs", ""}, 15000, nil},
		{"given", []string{"-scenario", "queue", "-url", "tcp://127.0.0.1:61613", "-local-addrs", "127.0.0.9"}, 1, []string{"127.0.0.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			b := &bench{cfg: c}
			b.chooseLocals(tt.n)
			var got []string
			for _, a := range b.locals {
				got = append(got, a.(*net.TCPAddr).IP.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("source addresses %v, want %v", got, tt.want)
			}
		})
	}
}
