// Command broker runs the Stampede STOMP broker: STOMP over WebSocket at
// /ws on the HTTP listener and plain STOMP over TCP. It only wires the
// packages together; the behaviour lives in them. With publish, subscribe
// or tail as its first argument it is a client instead (cli*.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/cluster"
	"github.com/stampede-mq/stampede/store/bolt"
	"github.com/stampede-mq/stampede/subprotocol"
	"github.com/stampede-mq/stampede/web"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hash-password" {
		os.Exit(hashPassword(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 {
		if cmd := clientCommand(os.Args[1]); cmd != nil {
			os.Exit(cmd(ctx, os.Args[2:], cliEnv{os.Stdin, os.Stdout, os.Stderr, os.Getenv}))
		}
	}
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run starts the broker and blocks until ctx ends; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "broker:", err)
		return 2
	}
	in := &instance{cfg: cfg, log: newLogger(cfg, stderr), stderr: stderr}
	if err := in.secure(); err != nil {
		return 1
	}
	if err := in.openStore(); err != nil {
		return 1
	}
	defer in.closeStore()
	if err := in.joinCluster(ctx); err != nil {
		return 1
	}
	defer in.leaveCluster()
	if err := in.newBroker(); err != nil {
		return 1
	}
	if err := in.listen(); err != nil {
		return 1
	}
	if err := in.newConsole(); err != nil {
		return 1
	}
	defer in.console.Close()
	in.newHTTPServer()
	defer in.sec.handleHangup()()
	errc := in.serve(stdout)
	code := in.wait(ctx, errc)
	in.shutdown()
	return code
}

// instance is one run of the broker: what run builds, in the order it
// builds it. Each step logs its own failure; run only turns it into the
// exit code.
type instance struct {
	cfg    *config
	log    *slog.Logger
	stderr io.Writer
	sec    *security

	// commitSeconds is told of each group commit (fsync included) by the
	// store, and served at /metrics.
	commitSeconds prometheus.Histogram
	st            *bolt.Store
	nats          *server.Server // the embedded NATS server, if any
	node          *cluster.Node  // this broker's membership of a cluster, if any
	b             *broker.Broker

	httpLn, stompLn net.Listener // stompLn nil when STOMP over TCP is off
	console         *web.Server
	srv             *http.Server
	// serving is set while the listeners serve, for /readyz.
	serving atomic.Bool
}

// secure loads the security settings and has the broker check logins
// against them.
func (in *instance) secure() error {
	in.cfg.Broker.Logger = in.log
	sec, err := newSecurity(in.cfg.Security, in.log)
	if err != nil {
		in.log.Error("cannot load the security settings", "err", err)
		fmt.Fprintln(in.stderr, "broker:", err)
		return err
	}
	in.sec = sec
	in.cfg.Broker.Authenticate = sec.authenticate
	if in.cfg.Broker.TopicHistoryRules, err = topicHistoryRules(in.cfg.Security.ConfigFile); err != nil {
		in.log.Error("cannot load the topic history settings", "err", err)
		fmt.Fprintln(in.stderr, "broker:", err)
		return err
	}
	return nil
}

// openStore opens the message store in the data directory.
func (in *instance) openStore() error {
	in.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "stampede_store_commit_seconds",
		Help:    "Time one store commit took, fsync included; concurrent persistent sends share one.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
	})
	st, err := bolt.Open(in.cfg.DataDir, bolt.Options{
		OnCommit: func(d time.Duration, _ int) { in.commitSeconds.Observe(d.Seconds()) },
	})
	if err != nil {
		in.log.Error("cannot open the message store", "data", in.cfg.DataDir, "err", err)
		fmt.Fprintf(in.stderr, "broker: cannot open the message store in %s: %v\n", in.cfg.DataDir, err)
		return err
	}
	in.st = st
	return nil
}

func (in *instance) closeStore() {
	if err := in.st.Close(); err != nil {
		in.log.Error("closing the message store failed", "err", err)
	}
}

// newBroker starts the broker on the store, recovering what it holds.
func (in *instance) newBroker() error {
	b, err := broker.New(in.cfg.Broker, in.st)
	if err != nil {
		in.log.Error("cannot recover from the message store", "err", err)
		fmt.Fprintf(in.stderr, "broker: cannot recover from the message store in %s: %v\n", in.cfg.DataDir, err)
		return err
	}
	in.b = b
	return nil
}

// listen opens the HTTP listener and, unless it is off, the STOMP one,
// both behind TLS when it is configured.
func (in *instance) listen() error {
	httpLn, err := net.Listen("tcp", in.cfg.HTTPAddr)
	if err != nil {
		in.log.Error("cannot listen for HTTP", "addr", in.cfg.HTTPAddr, "err", err)
		return err
	}
	if in.cfg.StompAddr != "" {
		stompLn, err := net.Listen("tcp", in.cfg.StompAddr)
		if err != nil {
			httpLn.Close()
			in.log.Error("cannot listen for STOMP", "addr", in.cfg.StompAddr, "err", err)
			return err
		}
		in.stompLn = in.sec.stompListener(stompLn)
	}
	in.httpLn = in.sec.httpListener(httpLn)
	return nil
}

// newConsole builds the console, its API, /metrics and /readyz. It is
// ready while the listeners serve and the store answers.
func (in *instance) newConsole() error {
	console, err := web.New(web.Options{
		Broker:     in.b,
		StoreSize:  in.st.Size,
		Collectors: []prometheus.Collector{in.commitSeconds},
		Ready: func() error {
			if !in.serving.Load() {
				return errors.New("listeners are not serving")
			}
			if in.b.MemoryAlarm() {
				return errors.New("memory alarm: publishers are paused")
			}
			if in.node != nil {
				if err := in.node.Ready(); err != nil {
					return err
				}
			}
			_, err := in.st.Size()
			return err
		},
		PProf:  in.cfg.PProf,
		Logger: in.log,
		Auth:   in.sec.webAuthenticator(in.cfg.Broker.FailedLoginDelay),

		SecureCookie: in.cfg.Security.SecureCookie,
	})
	if err != nil {
		in.log.Error("cannot start the admin console", "err", err)
		return err
	}
	in.console = console
	return nil
}

// newHTTPServer routes STOMP over WebSocket and SockJS, /healthz and the
// console on the one HTTP listener.
func (in *instance) newHTTPServer() {
	cfg := in.cfg
	mux := http.NewServeMux()
	mux.Handle("GET /ws", subprotocol.NewWebSocketHandler(in.b, subprotocol.WebSocketOptions{
		AllowedOrigins:     cfg.origins(),
		Logger:             in.log,
		WriteTimeout:       cfg.WriteTimeout,
		OneFramePerMessage: cfg.WSOneFrame,
		Compression:        cfg.WSCompression,
	}))
	mux.Handle("/sockjs/", subprotocol.NewSockJSHandler(in.b, subprotocol.SockJSOptions{
		Prefix:          "/sockjs",
		AllowedOrigins:  cfg.origins(),
		Credentials:     cfg.SockJS.Credentials,
		Logger:          in.log,
		WriteTimeout:    cfg.WriteTimeout,
		HeartbeatDelay:  cfg.SockJS.Heartbeat,
		DisconnectDelay: cfg.SockJS.DisconnectDelay,
		ResponseLimit:   cfg.SockJS.ResponseLimit,
		NoWebSocket:     !cfg.SockJS.WebSocket,
		ClientURL:       cfg.SockJS.ClientURL,
		// A send request may batch several frames of the largest size.
		MaxSendBytes:         2 * int64(cfg.Broker.Limits.MaxBodyBytes+cfg.Broker.Limits.MaxHeaderBytes),
		ReadTimeout:          cfg.SockJS.ReadTimeout,
		MaxPendingBytesPerIP: cfg.SockJS.PendingPerIP,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	in.console.Mount(mux)
	in.srv = &http.Server{Handler: in.sec.guardHosts(mux), ReadHeaderTimeout: cfg.Security.ReadHeaderTimeout, IdleTimeout: cfg.Security.HTTPIdleTimeout, ErrorLog: slog.NewLogLogger(in.log.Handler(), slog.LevelWarn)}
}

// serve starts serving both listeners and says where; a listener that
// fails reports on the channel.
func (in *instance) serve(stdout io.Writer) <-chan error {
	errc := make(chan error, 2)
	go func() { errc <- in.srv.Serve(in.httpLn) }()
	sec, httpAddr := in.sec, displayAddr(in.httpLn.Addr())
	fmt.Fprintf(stdout, "Stampede is running.\n  STOMP over WebSocket: %s\n", sec.scheme("ws://", "wss://")+httpAddr+"/ws")
	if in.stompLn != nil {
		go func() {
			errc <- subprotocol.ServeTCP(in.stompLn, in.b, subprotocol.TCPOptions{Logger: in.log, WriteTimeout: in.cfg.WriteTimeout})
		}()
		fmt.Fprintf(stdout, "  %-22s%s\n", sec.scheme("STOMP over TCP:", "STOMP over TLS:"), sec.scheme("tcp://", "stomp+ssl://")+displayAddr(in.stompLn.Addr()))
	}
	fmt.Fprintf(stdout, "  STOMP over SockJS:    %s\n", sec.scheme("http://", "https://")+httpAddr+"/sockjs")
	fmt.Fprintf(stdout, "  Admin console:        %s\n", sec.scheme("http://", "https://")+httpAddr+"/admin/")
	fmt.Fprintf(stdout, "  Demo chat:            %s\n", sec.scheme("http://", "https://")+httpAddr+"/demo/")
	in.serving.Store(true)
	in.log.Info("broker started", "http", in.httpLn.Addr().String(), "stomp", in.cfg.StompAddr,
		"memory_high_watermark", in.cfg.Broker.MemoryHighWatermark)
	return errc
}

// wait blocks until ctx ends or a listener fails, and returns the exit
// code that makes.
func (in *instance) wait(ctx context.Context, errc <-chan error) int {
	select {
	case <-ctx.Done():
		in.log.Info("shutting down")
		return 0
	case err := <-errc:
		in.log.Error("listener failed", "err", err)
		return 1
	}
}

// shutdown stops accepting first, then lets sessions flush and say
// goodbye, within the shutdown timeout.
func (in *instance) shutdown() {
	in.serving.Store(false)
	in.httpLn.Close()
	if in.stompLn != nil {
		in.stompLn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.ShutdownTimeout)
	defer cancel()
	if err := in.b.Shutdown(ctx); err != nil {
		in.log.Warn("shutdown cut short", "err", err)
	}
	in.console.Close() // ends the console's event streams, which would hold up srv.Shutdown
	if err := in.srv.Shutdown(ctx); err != nil {
		in.srv.Close()
	}
	in.log.Info("stopped")
}
func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// displayAddr turns a listener address into one a client can dial: an
// unspecified host (":8080") becomes localhost.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
