package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stampede-mq/stampede/auth"
)

// User is who a request comes from.
type User struct {
	Name string
	// Admin users may use the console, the API and pprof.
	Admin bool
}

// ErrBadCredentials is what an Authenticator returns for an unknown user
// or a wrong password.
var ErrBadCredentials = errors.New("wrong user name or password")

// Authenticator checks a user name and password. remoteAddr is the
// client's host:port, for rules that depend on where it connects from.
// A failed check returns an error wrapping ErrBadCredentials; a valid
// user without the admin tag is returned with Admin false (and gets 403).
type Authenticator interface {
	Authenticate(name, password, remoteAddr string) (User, error)
}

// LoopbackGuest is the Authenticator for a broker without configured
// users: guest/guest, with admin rights, from loopback addresses only.
type LoopbackGuest struct{}

// GuestReporter is implemented by an Authenticator that can tell whether
// the built-in guest/guest login is open (no users configured). The
// sign-in page then says so, since a newcomer has no other way to know.
type GuestReporter interface {
	GuestOpen() bool
}

// GuestOpen implements GuestReporter: the guest is all there is.
func (LoopbackGuest) GuestOpen() bool { return true }

// Authenticate implements Authenticator.
func (LoopbackGuest) Authenticate(name, password, remoteAddr string) (User, error) {
	ok := subtle.ConstantTimeCompare([]byte(name), []byte("guest")) &
		subtle.ConstantTimeCompare([]byte(password), []byte("guest"))
	if ok != 1 || !auth.IsLoopback(remoteAddr) {
		return User{}, ErrBadCredentials
	}
	return User{Name: "guest", Admin: true}, nil
}

const (
	sessionCookie = "stampede_session"
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf_token"
	maxSessions   = 10000
)

// session is one console login.
type session struct {
	user     User
	csrf     string
	lastUsed time.Time
	expires  time.Time // hard end, whatever the use
}

// sessionStore keeps console logins in memory: a restart logs everyone
// out, which is fine for an operator console.
type sessionStore struct {
	idle, max time.Duration
	now       func() time.Time

	mu   sync.Mutex
	byID map[string]*session
}

func newSessionStore(idle, max time.Duration) *sessionStore {
	return &sessionStore{idle: idle, max: max, now: time.Now, byID: make(map[string]*session)}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for u and returns its id.
func (st *sessionStore) create(u User) (string, *session) {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.byID) >= maxSessions {
		st.pruneLocked(now)
	}
	if len(st.byID) >= maxSessions {
		// Still full of live sessions: the one closest to its end goes.
		var oldest string
		for id, s := range st.byID {
			if oldest == "" || s.expires.Before(st.byID[oldest].expires) {
				oldest = id
			}
		}
		delete(st.byID, oldest)
	}
	id := randomToken()
	s := &session{user: u, csrf: randomToken(), lastUsed: now, expires: now.Add(st.max)}
	st.byID[id] = s
	return id, s
}

func (st *sessionStore) pruneLocked(now time.Time) {
	for id, s := range st.byID {
		if st.expired(s, now) {
			delete(st.byID, id)
		}
	}
}

func (st *sessionStore) expired(s *session, now time.Time) bool {
	return now.After(s.expires) || now.Sub(s.lastUsed) > st.idle
}

// get returns the live session id names and marks it used.
func (st *sessionStore) get(id string) (session, bool) {
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[id]
	if s == nil {
		return session{}, false
	}
	if st.expired(s, now) {
		delete(st.byID, id)
		return session{}, false
	}
	s.lastUsed = now
	return *s, true
}

func (st *sessionStore) remove(id string) {
	st.mu.Lock()
	delete(st.byID, id)
	st.mu.Unlock()
}

// credentials is how a request proved who it is.
type credentials struct {
	user User
	// sess is set for cookie sessions, which need a CSRF token on every
	// state-changing request; Basic auth needs none, since a browser
	// never adds it to a cross-site request on its own.
	sess *session
}

// authorize checks that r comes from an admin and, for state-changing
// requests of a cookie session, that it carries the session's CSRF token.
func (s *Server) authorize(r *http.Request) (credentials, error) {
	if err := checkSameOrigin(r); err != nil {
		return credentials{}, err
	}
	c, err := s.authenticate(r)
	if err != nil {
		return c, err
	}
	if !c.user.Admin {
		return c, errNotAdmin()
	}
	if c.sess != nil && changesState(r.Method) {
		token := r.Header.Get(csrfHeader)
		if token == "" {
			token = r.PostFormValue(csrfField)
		}
		if subtle.ConstantTimeCompare([]byte(token), []byte(c.sess.csrf)) != 1 {
			return c, errCSRF()
		}
	}
	return c, nil
}

func (s *Server) authenticate(r *http.Request) (credentials, error) {
	if name, password, ok := r.BasicAuth(); ok {
		u, err := s.auth.Authenticate(name, password, r.RemoteAddr)
		if errors.Is(err, ErrBadCredentials) {
			return credentials{}, errUnauthenticated()
		}
		return credentials{user: u}, err
	}
	if r.Header.Get("Authorization") != "" {
		return credentials{}, errUnauthenticated()
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if sess, ok := s.sessions.get(ck.Value); ok {
			return credentials{user: sess.user, sess: &sess}, nil
		}
	}
	return credentials{}, errUnauthenticated()
}

func changesState(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// loginPage is what the login template shows.
type loginPage struct {
	Error string
	Next  string
	User  string
	Guest bool // say that guest/guest works from this machine
}

// serveLogin shows the login form (GET) and checks it (POST).
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		next := safeNext(r.URL.Query().Get("next"))
		if c, err := s.authenticate(r); err == nil && c.sess != nil && c.user.Admin {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return nil
		}
		return s.renderLogin(w, http.StatusOK, loginPage{Next: next})
	case http.MethodPost:
	default:
		return methodNotAllowed(http.MethodGet, http.MethodPost)
	}
	// A login form posted from another site would log the victim into
	// an account of the attacker's choosing.
	if err := checkSameOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return errBadRequest("unreadable login form")
	}
	name, password := r.PostFormValue("username"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	u, err := s.auth.Authenticate(name, password, r.RemoteAddr)
	switch {
	case errors.Is(err, ErrBadCredentials):
		return s.renderLogin(w, http.StatusUnauthorized, loginPage{Error: "Wrong user name or password.", Next: next, User: name})
	case err != nil:
		return err
	case !u.Admin:
		return s.renderLogin(w, http.StatusForbidden, loginPage{Error: "This account has no admin rights.", Next: next, User: name})
	}
	id, _ := s.sessions.create(u)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secureCookie(r),
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) renderLogin(w http.ResponseWriter, status int, p loginPage) error {
	if g, ok := s.auth.(GuestReporter); ok {
		p.Guest = g.GuestOpen()
	}
	htmlHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	return s.login.Execute(w, p)
}

// secureCookie says whether the session cookie for r is Secure, so that
// browsers never send it over plain HTTP.
func (s *Server) secureCookie(r *http.Request) bool {
	return s.opts.SecureCookie || r.TLS != nil
}

// serveLogout ends the cookie session.
func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) error {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.remove(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secureCookie(r),
	})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	return nil
}

// safeNext keeps a post-login redirect on this site's console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "/admin/login") ||
		strings.ContainsAny(next, "\\\r\n") {
		return "/admin/"
	}
	return next
}

// sessionJSON is GET /api/v1/session: who is logged in, and the token the
// console sends with every state-changing request.
type sessionJSON struct {
	User      string `json:"user"`
	Admin     bool   `json:"admin"`
	CSRFToken string `json:"csrf_token,omitempty"`
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) error {
	c, err := s.authorize(r)
	if err != nil {
		return err
	}
	out := sessionJSON{User: c.user.Name, Admin: c.user.Admin}
	if c.sess != nil {
		out.CSRFToken = c.sess.csrf
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
