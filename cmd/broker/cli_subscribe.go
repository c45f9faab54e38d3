package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/stampede-mq/stampede/subprotocol"
)

const subscribeUsage = `
Usage: broker subscribe [flags] DESTINATION

Subscribes to DESTINATION and prints each message it receives: its body
on a line of its own, or with --format frame its headers too, or with
--format json one JSON object per line. It runs until interrupted, or
until --count messages have arrived.

A queue message is acknowledged only once it has been written out, so
stopping early (Ctrl-C, --count, --timeout) leaves the rest in the queue;
one the broker had already sent on goes back marked redelivered.
"subscribed to DESTINATION" on standard error says when the subscription
is in place.

Examples:
  broker subscribe /topic/demo.lobby
  broker subscribe --count 1 --timeout 10s /queue/jobs
  broker subscribe --format json '/topic/stocks.*.nyse' | jq .body
  broker subscribe -H x-history:20 /topic/demo.lobby

`

// subscribeFlags are subscribe's settings beyond the connection.
type subscribeFlags struct {
	clientFlags
	count   int
	timeout time.Duration
	ack     string

	printed atomic.Int64 // so far, for the message when time runs out
}

// subscribeCmd is "broker subscribe".
func subscribeCmd(ctx context.Context, args []string, env cliEnv) int {
	var s subscribeFlags
	fs := newFlagSet("subscribe", subscribeUsage, env)
	s.register(fs, "tcp://localhost:61613", "add a header to the SUBSCRIBE frame")
	fs.IntVar(&s.count, "count", 0, "exit after this many messages (0: run until interrupted)")
	fs.DurationVar(&s.timeout, "timeout", 0, "give up after this long; with --count, exit 1 if fewer arrived (0: no limit)")
	fs.StringVar(&s.ack, "ack", "client-individual", "acknowledgement mode: client-individual (after each message is written out) or auto (on delivery: faster, but a message the broker sent after --count is lost)")
	fs.StringVar(&s.format, "format", "body", "output: body, frame or json")
	rest, err := s.parse(fs, args, env)
	switch {
	case err != nil:
	case len(rest) != 1:
		err = errors.New("want exactly one DESTINATION")
	case s.ack != "client-individual" && s.ack != "auto":
		err = fmt.Errorf("--ack must be client-individual or auto, not %q", s.ack)
	case s.count < 0:
		err = errors.New("--count must not be negative")
	}
	if err != nil {
		return usageExit(err, env, "subscribe")
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	_, err = runCancelable(ctx, func() (int, error) { return s.receive(ctx, rest[0], env) })
	switch {
	case errors.Is(err, context.DeadlineExceeded) && s.count > 0:
		fmt.Fprintf(env.stderr, "broker subscribe: %d of %d messages within %v\n", s.printed.Load(), s.count, s.timeout)
		return 1
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return 0 // the way to end an open-ended subscription
	case err != nil:
		fmt.Fprintln(env.stderr, "broker subscribe:", err)
		return 1
	}
	return 0
}

// receive subscribes and prints messages until it has count of them.
func (s *subscribeFlags) receive(ctx context.Context, dest string, env cliEnv) (int, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Disconnect()
	ack, opts := stomp.AckAuto, s.headers.frameOpts()
	if s.ack == "client-individual" {
		ack = stomp.AckClientIndividual
		if s.count > 0 && s.count < subprotocol.GoStompPrefetch {
			// Take no more than will be printed: the rest would come back
			// to the queue marked redelivered.
			opts = append(opts, stomp.SubscribeOpt.Header("prefetch-count", strconv.Itoa(s.count)))
		}
	}
	sub, err := subprotocol.Subscribe(conn, dest, ack, opts...)
	if err != nil {
		return 0, err
	}
	if err := barrier(conn); err != nil {
		return 0, err
	}
	fmt.Fprintf(env.stderr, "subscribed to %s\n", dest)
	for s.count == 0 || int(s.printed.Load()) < s.count {
		m, ok := <-sub.C
		if !ok {
			return 0, errors.New("the subscription ended")
		}
		if m.Err != nil {
			return 0, m.Err
		}
		if err := writeMessage(env.stdout, s.format, stompShown(m)); err != nil {
			return 0, err
		}
		if ack == stomp.AckClientIndividual {
			if err := conn.Ack(m); err != nil {
				return 0, err
			}
		}
		s.printed.Add(1)
	}
	return int(s.printed.Load()), nil // the deferred DISCONNECT follows the last ACK
}
