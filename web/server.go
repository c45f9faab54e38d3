// Package web is the operator's side of the broker over HTTP: the admin
// console (static files embedded in the binary), its JSON API under
// /api/v1, Prometheus metrics at /metrics, readiness at /readyz, the demo
// chat at /demo/ and, when enabled, net/http/pprof under /debug/pprof.
//
// Everything but /metrics, /readyz and the demo needs an admin user: HTTP
// Basic for scripts, or the console's login form, which sets a session
// cookie and hands the page a CSRF token that every state-changing request
// carries. The demo logs in over STOMP instead.
package web

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

//go:embed static demo
var staticFiles embed.FS

// Options configures a Server. Only Broker is required.
type Options struct {
	// Broker is the broker to show and steer.
	Broker Broker
	// Auth checks the credentials of API calls and console logins; nil
	// means LoopbackGuest.
	Auth Authenticator
	// Ready reports whether the broker can serve (listeners up, store
	// open) for /readyz; nil means always ready.
	Ready func() error
	// StoreSize reports the bytes the message store occupies; nil when
	// the store cannot tell.
	StoreSize func() (int64, error)
	// Collectors are further Prometheus collectors to serve at /metrics
	// (the store's, for instance).
	Collectors []prometheus.Collector
	// PProf exposes net/http/pprof under /debug/pprof to admins.
	PProf bool
	// MaxQueueSeries caps the queues that get their own depth and
	// consumer series in /metrics; the rest are summed under "other".
	// Zero means 100.
	MaxQueueSeries int
	// SessionIdle and SessionMax bound a console login: it ends after
	// SessionIdle without a request, or SessionMax after it began.
	// Zero means 30 minutes and 12 hours.
	SessionIdle, SessionMax time.Duration
	// Logger receives errors the client is not told about in detail;
	// nil discards them.
	Logger *slog.Logger
	// SecureCookie marks the session cookie Secure on every login, not
	// only those made over TLS: behind a proxy that terminates TLS, the
	// requests the server sees are plain HTTP.
	SecureCookie bool
}

// Server serves the console, the API, metrics and readiness. Mount it on
// the broker's HTTP mux; Close it before shutting the HTTP server down, so
// its event streams end.
type Server struct {
	opts     Options
	b        Broker
	auth     Authenticator
	log      *slog.Logger
	mux      *http.ServeMux
	sessions *sessionStore
	sampler  *sampler
	metrics  http.Handler
	static   fs.FS
	login    *template.Template

	streams   atomic.Int32 // open event streams
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New builds a Server and starts the sampler behind the live charts.
func New(opts Options) (*Server, error) {
	if opts.Broker == nil {
		return nil, errors.New("web: Options.Broker is required")
	}
	if opts.Auth == nil {
		opts.Auth = LoopbackGuest{}
	}
	if opts.MaxQueueSeries <= 0 {
		opts.MaxQueueSeries = 100
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = 30 * time.Minute
	}
	if opts.SessionMax <= 0 {
		opts.SessionMax = 12 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	login, err := template.ParseFS(static, "login.html")
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:     opts,
		b:        opts.Broker,
		auth:     opts.Auth,
		log:      opts.Logger,
		mux:      http.NewServeMux(),
		sessions: newSessionStore(opts.SessionIdle, opts.SessionMax),
		static:   static,
		login:    login,
		done:     make(chan struct{}),
	}
	if s.metrics, err = s.newMetricsHandler(); err != nil {
		return nil, err
	}
	s.sampler = newSampler(s.b, time.Second, 300)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sampler.run(s.done)
	}()
	s.routes()
	return s, nil
}

// Close ends the event streams and the sampler. It is safe to call more
// than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.wg.Wait()
}

// Mount registers the server's paths on mux: / (a redirect to the
// console), /admin/, /demo/ (the demo chat), /api/v1/, /metrics, /readyz
// and, with PProf, /debug/pprof/.
func (s *Server) Mount(mux *http.ServeMux) {
	mux.Handle("GET /{$}", s)
	mux.Handle("/admin/", s)
	mux.Handle("/demo/", s)
	mux.Handle("/api/v1/", s)
	mux.Handle("/metrics", s)
	mux.Handle("/readyz", s)
	if s.opts.PProf {
		mux.Handle("/debug/pprof/", s)
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	s.mux.ServeHTTP(w, r)
}

// htmlHeaders locks a console page down: its own scripts and styles only,
// no framing (clickjacking), no form posts elsewhere.
func htmlHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusFound)
	})
	m.Handle("/metrics", s.handle(kindText, http.MethodGet, s.serveMetrics))
	m.Handle("/readyz", s.handle(kindText, http.MethodGet, s.serveReady))
	demoRoutes(m)

	// The console. Its static files are public (the login page needs
	// them and they hold nothing secret); the pages are not.
	m.Handle("/admin/static/", s.handle(kindText, http.MethodGet, s.serveStatic))
	m.Handle("/admin/login", s.handle(kindText, "", s.serveLogin))
	m.Handle("/admin/logout", s.page(http.MethodPost, s.serveLogout))
	for _, p := range []string{"/admin/{$}", "/admin/connections", "/admin/destinations",
		"/admin/destinations/{name}", "/admin/subscriptions"} {
		m.Handle(p, s.page(http.MethodGet, s.serveIndex))
	}
	m.Handle("/admin/", s.handle(kindText, "", func(http.ResponseWriter, *http.Request) error {
		return errNotFound("no such page")
	}))

	// The API. Each path is one handler that dispatches on the method,
	// so a wrong method gets a JSON 405 like every other API error.
	api := func(path string, byMethod map[string]apiFunc) {
		m.Handle(path, s.api(byMethod))
	}
	api("/api/v1/session", map[string]apiFunc{http.MethodGet: s.getSession})
	api("/api/v1/overview", map[string]apiFunc{http.MethodGet: s.getOverview})
	api("/api/v1/overview/stream", map[string]apiFunc{http.MethodGet: s.streamOverview})
	api("/api/v1/nodes", map[string]apiFunc{http.MethodGet: s.listNodes})
	api("/api/v1/connections", map[string]apiFunc{http.MethodGet: s.listConnections})
	api("/api/v1/connections/{id}", map[string]apiFunc{
		http.MethodGet:    s.getConnection,
		http.MethodDelete: s.closeConnection,
	})
	api("/api/v1/destinations", map[string]apiFunc{http.MethodGet: s.listDestinations})
	api("/api/v1/destinations/{name}", map[string]apiFunc{
		http.MethodGet:    s.getDestination,
		http.MethodDelete: s.deleteDestination,
	})
	api("/api/v1/destinations/{name}/messages", map[string]apiFunc{
		http.MethodGet:    s.peekMessages,
		http.MethodPost:   s.publishMessage,
		http.MethodDelete: s.purgeMessages,
	})
	api("/api/v1/destinations/{name}/tail", map[string]apiFunc{http.MethodGet: s.tailDestination})
	api("/api/v1/subscriptions", map[string]apiFunc{http.MethodGet: s.listSubscriptions})
	m.Handle("/api/v1/", s.handle(kindJSON, "", func(http.ResponseWriter, *http.Request) error {
		return errNotFound("no such API endpoint")
	}))

	if s.opts.PProf {
		// Registered here, not on http.DefaultServeMux, so they are
		// only reachable through the admin check.
		m.Handle("/debug/pprof/", s.admin(kindText, pprof.Index))
		m.Handle("/debug/pprof/cmdline", s.admin(kindText, pprof.Cmdline))
		m.Handle("/debug/pprof/profile", s.admin(kindText, pprof.Profile))
		m.Handle("/debug/pprof/symbol", s.admin(kindText, pprof.Symbol))
		m.Handle("/debug/pprof/trace", s.admin(kindText, pprof.Trace))
	}
}

// serveReady answers /readyz: 200 when the broker can serve, 503 with the
// reason when it cannot.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			return &httpError{status: http.StatusServiceUnavailable, msg: "not ready: " + err.Error()}
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("ready\n"))
	return err
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Path[len("/admin/static/"):]
	if name == "" || name == "login.html" || name == "index.html" {
		return errNotFound("no such file")
	}
	if _, err := fs.Stat(s.static, name); err != nil {
		return errNotFound("no such file")
	}
	// The files change with the binary; no-cache makes the browser
	// check, so an upgrade is picked up at once.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, s.static, name)
	return nil
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) error {
	htmlHeaders(w)
	http.ServeFileFS(w, r, s.static, "index.html")
	return nil
}
