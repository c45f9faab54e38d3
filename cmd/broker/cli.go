package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/stampede-mq/stampede/subprotocol"
)

// cliEnv is what a client command reads and writes besides its arguments.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// clientCommand returns the command-line client command called name, or
// nil when name is not one.
func clientCommand(name string) func(ctx context.Context, args []string, env cliEnv) int {
	switch name {
	case "publish":
		return publishCmd
	case "subscribe":
		return subscribeCmd
	case "tail":
		return tailCmd
	}
	return nil
}

// clientFlags are the settings every client command takes. The
// connection ones may also come from BROKER_URL, BROKER_LOGIN and
// BROKER_PASSCODE, which keeps a passcode out of the process list.
type clientFlags struct {
	url, login, passcode string
	headers              headerFlag
	format               string
}

func (c *clientFlags) register(fs *flag.FlagSet, defaultURL, headerUse string) {
	fs.StringVar(&c.url, "url", defaultURL, "broker `URL`: tcp://HOST:PORT, stomp+ssl://HOST:PORT, ws://HOST:PORT/ws or wss://HOST/ws")
	fs.StringVar(&c.login, "login", "", "login; none is the built-in guest, from this machine while no users are configured")
	fs.StringVar(&c.passcode, "passcode", "", "passcode (better: the BROKER_PASSCODE environment variable)")
	if headerUse != "" {
		fs.Var(&c.headers, "H", headerUse+" (`name:value`); repeat for more")
	}
}

// parse parses args, fills what was not given from the
// environment, and returns the positional arguments. It reports usage
// errors on stderr and returns flag.ErrHelp for --help.
func (c *clientFlags) parse(fs *flag.FlagSet, args []string, env cliEnv) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, p := range map[string]*string{"url": &c.url, "login": &c.login, "passcode": &c.passcode} {
		if v := env.getenv(envName(name)); v != "" && !given[name] {
			*p = v
		}
	}
	switch c.format {
	case "", "body", "frame", "json":
	default:
		return nil, fmt.Errorf("--format must be body, frame or json, not %q", c.format)
	}
	return fs.Args(), nil
}

// newFlagSet is a flag set whose --help prints usage (what the command
// does, with examples) before the flags.
func newFlagSet(name, usage string, env cliEnv) *flag.FlagSet {
	fs := flag.NewFlagSet("broker "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprint(env.stderr, strings.TrimSpace(usage), "\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// usageExit turns a parse error into an exit code: 0 for --help, 2 for
// bad usage.
func usageExit(err error, env cliEnv, name string) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(env.stderr, "broker %s: %v\nRun 'broker %s --help' for usage.\n", name, err, name)
	return 2
}

// connect opens a STOMP connection with the flags' URL and login.
func (c *clientFlags) connect(ctx context.Context) (*stomp.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return subprotocol.Connect(ctx, c.url, subprotocol.ConnectOptions{
		Login:    c.login,
		Passcode: c.passcode,
		Options: []func(*stomp.Conn) error{
			stomp.ConnOpt.Logger(silentLogger{}),
			// Longer than a broker holds back a producer whose queue is
			// full (30 s by default), so pacing is not taken for failure.
			stomp.ConnOpt.MsgSendTimeout(time.Minute),
		},
	})
}

// barrier returns once the broker has acted on every frame conn sent
// before it. BEGIN then ABORT with a receipt leaves nothing behind, and a
// broker handles one connection's frames in order.
func barrier(conn *stomp.Conn) error {
	tx, err := conn.BeginWithError()
	if err != nil {
		return err
	}
	return tx.AbortWithReceipt()
}

// runCancelable runs fn and returns its result, or ctx's error as soon
// as ctx ends (Ctrl-C): go-stomp calls do not watch a context, and the
// process is about to exit anyway.
func runCancelable(ctx context.Context, fn func() (int, error)) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := fn()
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// headerFlag collects -H name:value flags.
type headerFlag [][2]string

func (h *headerFlag) String() string { return "" }

func (h *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return fmt.Errorf("header %q: want name:value", s)
	}
	*h = append(*h, [2]string{name, value})
	return nil
}

// frameOpts turns the headers into go-stomp frame options.
func (h headerFlag) frameOpts() []func(*frame.Frame) error {
	var opts []func(*frame.Frame) error
	for _, kv := range h {
		opts = append(opts, stomp.SendOpt.Header(kv[0], kv[1]))
	}
	return opts
}

// silentLogger keeps go-stomp quiet: the commands report failures
// themselves, in one line.
type silentLogger struct{}

func (silentLogger) Debugf(string, ...any)   {}
func (silentLogger) Infof(string, ...any)    {}
func (silentLogger) Warningf(string, ...any) {}
func (silentLogger) Errorf(string, ...any)   {}
func (silentLogger) Debug(string)            {}
func (silentLogger) Info(string)             {}
func (silentLogger) Warning(string)          {}
func (silentLogger) Error(string)            {}
