package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stampede-mq/stampede/auth"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/subprotocol"
	"github.com/stampede-mq/stampede/web"
)

// securityConfig is who may connect, over what, and the limits that keep
// one client from hurting the others.
type securityConfig struct {
	ConfigFile        string
	AllowAnonymous    bool
	TLSCert, TLSKey   string
	ReadHeaderTimeout time.Duration
	Logins            loginLimits
	AllowedHosts      string
	HTTPIdleTimeout   time.Duration
	MaxHTTPConnsPerIP int
	SecureCookie      bool
}

// loginLimits throttle password guessing per address (see auth.Options).
type loginLimits struct {
	MaxFailures int
	BackoffMax  time.Duration
	MaxChecks   int
}

func (s *securityConfig) flags(fs *flag.FlagSet, o *broker.Options) {
	fs.StringVar(&s.ConfigFile, "config", "", "TOML file with users, their permissions and [jwt]; reloaded on SIGHUP")
	fs.BoolVar(&s.AllowAnonymous, "allow-anonymous", false, "let a CONNECT without credentials in, with the permissions of the config file's [anonymous] table (none without one)")
	fs.StringVar(&s.TLSCert, "tls-cert", "", "PEM certificate chain: serve TLS 1.2+ on the HTTP listener (wss://, https://) and the STOMP listener; reloaded on SIGHUP")
	fs.StringVar(&s.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.DurationVar(&s.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time an HTTP client has for the TLS handshake and its request headers")
	fs.DurationVar(&s.HTTPIdleTimeout, "http-idle-timeout", time.Minute, "how long an HTTP keep-alive connection may wait for its next request before it is closed")
	fs.IntVar(&s.MaxHTTPConnsPerIP, "max-http-connections-per-ip", subprotocol.DefaultMaxConnsPerIP, "most connections one IP address may have open on the HTTP listener (WebSocket, SockJS and idle ones alike); 0 means no limit")
	fs.BoolVar(&s.SecureCookie, "secure-cookie", false, "mark the console's session cookie Secure even when the broker serves plain HTTP, as behind a proxy that terminates TLS (with --tls-cert it always is)")
	fs.StringVar(&s.AllowedHosts, "allowed-hosts", "", "comma-separated host names the HTTP listener answers to while the loopback guest is on, besides IP addresses and localhost; * allows all")
	fs.IntVar(&o.MaxConnectionsPerIP, "max-connections-per-ip", o.MaxConnectionsPerIP, "most concurrent client connections from one IP address")
	fs.IntVar(&o.MaxTransactions, "max-transactions", o.MaxTransactions, "most open transactions per connection")
	fs.IntVar(&o.MaxTransactionFrames, "max-transaction-frames", o.MaxTransactionFrames, "most frames one transaction may hold")
	fs.IntVar(&o.MaxQueueMessages, "max-queue-messages", o.MaxQueueMessages, "most messages a queue holds before producers wait; 0 means no limit")
	fs.Int64Var(&o.MaxQueueBytes, "max-queue-bytes", o.MaxQueueBytes, "most bytes a queue holds before producers wait; 0 means no limit")
	fs.Int64Var(&o.MaxTransientQueueBytes, "max-transient-queue-bytes", o.MaxTransientQueueBytes, "most bytes of non-persistent messages (which only memory holds) a queue keeps before their producers wait; negative means no limit")
	fs.DurationVar(&o.SendBlockTimeout, "send-block-timeout", o.SendBlockTimeout, "how long a producer waits for room in a full queue before it gets an ERROR")
	fs.DurationVar(&o.FailedLoginDelay, "failed-login-delay", o.FailedLoginDelay, "pause before a refused login's ERROR, to slow down password guessing")
	fs.IntVar(&s.Logins.MaxFailures, "max-login-failures-per-ip", auth.DefaultMaxFailures, "failed logins one address may make before it must wait before each further check (1 s, doubling up to --login-backoff-max) and is refused meanwhile; 0 turns this off")
	fs.DurationVar(&s.Logins.BackoffMax, "login-backoff-max", auth.DefaultBackoffMax, "longest wait an address that keeps failing logins is given; its failures are forgotten twice this long after the last")
	fs.IntVar(&s.Logins.MaxChecks, "max-login-checks-per-ip", auth.DefaultMaxChecksPerAddress, "passcode checks one address may have running or queued at once; its other logins wait their turn; 0 means no limit")
}

func (s *securityConfig) check() error {
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// security is the running broker's authentication and TLS.
type security struct {
	cfg  securityConfig
	log  *slog.Logger
	auth *auth.Authenticator
	cert atomic.Pointer[tls.Certificate] // nil without TLS
}

func newSecurity(cfg securityConfig, log *slog.Logger) (*security, error) {
	a, err := auth.New(cfg.ConfigFile, auth.Options{
		AllowAnonymous:      cfg.AllowAnonymous,
		Logger:              log,
		MaxFailures:         cfg.Logins.MaxFailures,
		BackoffMax:          cfg.Logins.BackoffMax,
		MaxChecksPerAddress: cfg.Logins.MaxChecks,
	})
	if err != nil {
		return nil, err
	}
	s := &security{cfg: cfg, log: log, auth: a}
	if cfg.TLSCert != "" {
		if err := s.loadCert(); err != nil {
			return nil, err
		}
	}
	users, jwt, guest := a.Summary()
	log.Info("security", "config", cfg.ConfigFile, "users", users, "jwt", jwt,
		"loopback_guest", guest, "anonymous", cfg.AllowAnonymous, "tls", cfg.TLSCert != "")
	return s, nil
}

// guardHosts keeps pages on rebinding DNS names away from the loopback
// guest: while it is on, h serves only requests for known host names.
func (s *security) guardHosts(h http.Handler) http.Handler {
	var allowed []string
	for _, a := range strings.Split(s.cfg.AllowedHosts, ",") {
		if a = strings.TrimSpace(a); a != "" {
			allowed = append(allowed, a)
		}
	}
	return &web.HostGuard{Next: h, Allowed: allowed, Logger: s.log, Active: func() bool {
		_, _, guest := s.auth.Summary()
		return guest
	}}
}

// authenticate is the broker's Options.Authenticate.
func (s *security) authenticate(info broker.ConnInfo, login, passcode string) (broker.Principal, error) {
	p, err := s.auth.Authenticate(auth.Credentials{
		Login: login, Passcode: passcode, Bearer: info.Authorization, RemoteAddr: info.RemoteAddr,
	})
	if err != nil {
		return nil, err // not a nil *Principal in a non-nil interface
	}
	return p, nil
}

func (s *security) loadCert() error {
	c, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return err
	}
	s.cert.Store(&c)
	return nil
}

// tlsConfig is for both listeners. The certificate is looked up per
// handshake, so a renewed one is used from the next SIGHUP on.
func (s *security) tlsConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
}

// httpListener bounds the HTTP listener's connections per address and
// wraps it in TLS when configured. Only HTTP/1.1 is offered: a WebSocket
// upgrade needs it, and a browser that got HTTP/2 for the page would
// otherwise try WebSocket over HTTP/2.
func (s *security) httpListener(ln net.Listener) net.Listener {
	if s.cfg.MaxHTTPConnsPerIP > 0 {
		ln = subprotocol.LimitPerIP(ln, s.cfg.MaxHTTPConnsPerIP, s.log)
	}
	if s.cert.Load() == nil {
		return ln
	}
	return tls.NewListener(ln, s.tlsConfig("http/1.1"))
}

// stompListener wraps the STOMP listener in TLS when configured.
func (s *security) stompListener(ln net.Listener) net.Listener {
	if s.cert.Load() == nil {
		return ln
	}
	return tls.NewListener(ln, s.tlsConfig())
}

// scheme returns plain or its TLS counterpart, for the URLs printed at
// start-up.
func (s *security) scheme(plain, secure string) string {
	if s.cert.Load() != nil {
		return secure
	}
	return plain
}

// handleHangup reloads the config file and the certificate on each SIGHUP
// until stop is called. Connections stay up; what fails to load is logged
// and the previous setting stays in force. The handler is in place when it
// returns: without it a SIGHUP would end the process.
func (s *security) handleHangup() (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				s.reload()
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

func (s *security) reload() {
	if s.cfg.ConfigFile != "" {
		if err := s.auth.Reload(); err != nil {
			s.log.Error("config reload failed; the previous config stays in force", "err", err)
		}
	} else {
		s.log.Info("SIGHUP: no --config file to reload")
	}
	if s.cfg.TLSCert != "" {
		if err := s.loadCert(); err != nil {
			s.log.Error("certificate reload failed; the previous certificate stays in use", "err", err)
		} else {
			s.log.Info("certificate reloaded", "cert", s.cfg.TLSCert)
		}
	}
}
