package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/go-stomp/stomp/v3"
)

const publishUsage = `
Usage: broker publish [flags] DESTINATION [BODY...]

Sends each BODY argument as one message to DESTINATION (/topic/NAME or
/queue/NAME), and returns once the broker has taken them all. Without BODY
arguments the body is the file given with --file, or standard input: all
of it as one message, or one message per line with --lines.

Examples:
  broker publish /topic/demo.lobby 'hello from the shell'
  broker publish --persistent -H priority:9 /queue/jobs '{"id": 1}' '{"id": 2}'
  broker publish --file order.json --content-type application/json /queue/orders
  tail -f app.log | broker publish --lines /topic/logs
  BROKER_PASSCODE=secret broker publish --url ws://localhost:8080/ws --login alice /topic/news hi

`

// publishFlags are publish's settings beyond the connection.
type publishFlags struct {
	clientFlags
	persistent  bool
	contentType string
	file        string
	lines       bool
	count       int
}

// publishCmd is "broker publish".
func publishCmd(ctx context.Context, args []string, env cliEnv) int {
	var p publishFlags
	fs := newFlagSet("publish", publishUsage, env)
	p.register(fs, "tcp://localhost:61613", "add a header to every message")
	fs.BoolVar(&p.persistent, "persistent", false, "keep the messages on disk until delivered (persistent:true)")
	fs.StringVar(&p.contentType, "content-type", "", "content-type of the messages (none by default)")
	fs.StringVar(&p.file, "file", "", "send this file as the body (- is standard input)")
	fs.BoolVar(&p.lines, "lines", false, "with bodies from a file or standard input: send each line as a message, as it comes")
	fs.IntVar(&p.count, "count", 1, "send every message this many times")
	rest, err := p.parse(fs, args, env)
	if err == nil && len(rest) == 0 {
		err = fmt.Errorf("no DESTINATION given")
	}
	if err == nil && p.count < 1 {
		err = fmt.Errorf("--count must be at least 1")
	}
	if err == nil && len(rest) > 1 && (p.file != "" || p.lines) {
		err = fmt.Errorf("BODY arguments and --file or --lines exclude each other")
	}
	if err != nil {
		return usageExit(err, env, "publish")
	}
	bodies, closeBodies, err := p.bodies(rest[1:], env.stdin)
	if err != nil {
		fmt.Fprintln(env.stderr, "broker publish:", err)
		return 1
	}
	defer closeBodies()
	n, err := runCancelable(ctx, func() (int, error) { return p.publish(ctx, rest[0], bodies) })
	if err != nil {
		fmt.Fprintf(env.stderr, "broker publish: %v (%d sent before)\n", err, n)
		return 1
	}
	fmt.Fprintf(env.stderr, "published %d message%s to %s\n", n, plural(n), rest[0])
	return 0
}

// publish sends every body count times, then waits until the broker has
// acted on them all. It returns how many it sent.
func (p *publishFlags) publish(ctx context.Context, dest string, next func() ([]byte, error)) (int, error) {
	conn, err := p.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Disconnect()
	opts := p.headers.frameOpts()
	if p.persistent {
		opts = append(opts, stomp.SendOpt.Header("persistent", "true"))
	}
	sent := 0
	for {
		body, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sent, err
		}
		for range p.count {
			if err := conn.Send(dest, p.contentType, body, opts...); err != nil {
				return sent, err
			}
			sent++
		}
	}
	// SEND carries no receipt, so that lines from a pipe go out as they
	// come; one barrier at the end covers them all.
	if err := barrier(conn); err != nil {
		return sent, err
	}
	return sent, nil
}

// bodies returns the message bodies one at a time, io.EOF after the last.
func (p *publishFlags) bodies(args []string, stdin io.Reader) (func() ([]byte, error), func(), error) {
	if len(args) > 0 {
		return func() ([]byte, error) {
			if len(args) == 0 {
				return nil, io.EOF
			}
			b := []byte(args[0])
			args = args[1:]
			return b, nil
		}, func() {}, nil
	}
	in, closeIn := stdin, func() {}
	if p.file != "" && p.file != "-" {
		f, err := os.Open(p.file)
		if err != nil {
			return nil, nil, err
		}
		in, closeIn = f, func() { f.Close() }
	}
	if p.lines {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		return func() ([]byte, error) {
			if sc.Scan() {
				// go-stomp writes the frame later; the scanner reuses
				// its buffer.
				return bytes.Clone(sc.Bytes()), nil
			}
			if err := sc.Err(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}, closeIn, nil
	}
	done := false
	return func() ([]byte, error) {
		if done {
			return nil, io.EOF
		}
		done = true
		return io.ReadAll(in)
	}, closeIn, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
