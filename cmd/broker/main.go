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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/store"
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
	log := newLogger(cfg, stderr)
	cfg.Broker.Logger = log
	sec, err := newSecurity(cfg.Security, log)
	if err != nil {
		log.Error("cannot load the security settings", "err", err)
		fmt.Fprintln(stderr, "broker:", err)
		return 1
	}
	cfg.Broker.Authenticate = sec.authenticate

	// The store reports each group commit (fsync included) here, and
	// /metrics serves the histogram.
	commitSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "stampede_store_commit_seconds",
		Help:    "Time one store commit took, fsync included; concurrent persistent sends share one.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
	})
	st, err := store.OpenBolt(cfg.DataDir, store.BoltOptions{
		OnCommit: func(d time.Duration, _ int) { commitSeconds.Observe(d.Seconds()) },
	})
	if err != nil {
		log.Error("cannot open the message store", "data", cfg.DataDir, "err", err)
		fmt.Fprintf(stderr, "broker: cannot open the message store in %s: %v\n", cfg.DataDir, err)
		return 1
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the message store failed", "err", err)
		}
	}()
	b, err := broker.New(cfg.Broker, st)
	if err != nil {
		log.Error("cannot recover from the message store", "err", err)
		fmt.Fprintf(stderr, "broker: cannot recover from the message store in %s: %v\n", cfg.DataDir, err)
		return 1
	}

	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		log.Error("cannot listen for HTTP", "addr", cfg.HTTPAddr, "err", err)
		return 1
	}
	var stompLn net.Listener
	if cfg.StompAddr != "" {
		if stompLn, err = net.Listen("tcp", cfg.StompAddr); err != nil {
			httpLn.Close()
			log.Error("cannot listen for STOMP", "addr", cfg.StompAddr, "err", err)
			return 1
		}
		stompLn = sec.stompListener(stompLn)
	}
	httpLn = sec.httpListener(httpLn)

	mux := http.NewServeMux()
	mux.Handle("GET /ws", subprotocol.NewWebSocketHandler(b, subprotocol.WebSocketOptions{
		AllowedOrigins:     cfg.origins(),
		Logger:             log,
		WriteTimeout:       cfg.WriteTimeout,
		OneFramePerMessage: cfg.WSOneFrame,
		Compression:        cfg.WSCompression,
	}))
	mux.Handle("/sockjs/", subprotocol.NewSockJSHandler(b, subprotocol.SockJSOptions{
		Prefix:          "/sockjs",
		AllowedOrigins:  cfg.origins(),
		Credentials:     cfg.SockJS.Credentials,
		Logger:          log,
		WriteTimeout:    cfg.WriteTimeout,
		HeartbeatDelay:  cfg.SockJS.Heartbeat,
		DisconnectDelay: cfg.SockJS.DisconnectDelay,
		ResponseLimit:   cfg.SockJS.ResponseLimit,
		NoWebSocket:     !cfg.SockJS.WebSocket,
		ClientURL:       cfg.SockJS.ClientURL,
		// A send request may batch several frames of the largest size.
		MaxSendBytes: 2 * int64(cfg.Broker.Limits.MaxBodyBytes+cfg.Broker.Limits.MaxHeaderBytes),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	// The console, its API, /metrics and /readyz. Ready while the
	// listeners serve and the store answers.
	var serving atomic.Bool
	console, err := web.New(web.Options{
		Broker:     b,
		StoreSize:  st.Size,
		Collectors: []prometheus.Collector{commitSeconds},
		Ready: func() error {
			if !serving.Load() {
				return errors.New("listeners are not serving")
			}
			_, err := st.Size()
			return err
		},
		PProf:  cfg.PProf,
		Logger: log,
		Auth:   sec.webAuthenticator(cfg.Broker.FailedLoginDelay),
	})
	if err != nil {
		log.Error("cannot start the admin console", "err", err)
		return 1
	}
	defer console.Close()
	console.Mount(mux)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: cfg.Security.ReadHeaderTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(httpLn) }()
	defer sec.handleHangup()()
	fmt.Fprintf(stdout, "Stampede is running.\n  STOMP over WebSocket: %s\n", sec.scheme("ws://", "wss://")+displayAddr(httpLn.Addr())+"/ws")
	if stompLn != nil {
		go func() {
			errc <- subprotocol.ServeTCP(stompLn, b, subprotocol.TCPOptions{Logger: log, WriteTimeout: cfg.WriteTimeout})
		}()
		fmt.Fprintf(stdout, "  %-22s%s\n", sec.scheme("STOMP over TCP:", "STOMP over TLS:"), sec.scheme("tcp://", "stomp+ssl://")+displayAddr(stompLn.Addr()))
	}
	fmt.Fprintf(stdout, "  STOMP over SockJS:    %s\n", sec.scheme("http://", "https://")+displayAddr(httpLn.Addr())+"/sockjs")
	fmt.Fprintf(stdout, "  Admin console:        %s\n", sec.scheme("http://", "https://")+displayAddr(httpLn.Addr())+"/admin/")
	fmt.Fprintf(stdout, "  Demo chat:            %s\n", sec.scheme("http://", "https://")+displayAddr(httpLn.Addr())+"/demo/")
	serving.Store(true)
	log.Info("broker started", "http", httpLn.Addr().String(), "stomp", cfg.StompAddr)

	code := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		log.Error("listener failed", "err", err)
		code = 1
	}
	// Stop accepting first, then let sessions flush and say goodbye.
	serving.Store(false)
	httpLn.Close()
	if stompLn != nil {
		stompLn.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		log.Warn("shutdown cut short", "err", err)
	}
	console.Close() // ends the console's event streams, which would hold up srv.Shutdown
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	log.Info("stopped")
	return code
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
