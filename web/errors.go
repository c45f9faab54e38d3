package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/stampede-mq/stampede/broker"
)

// kind says how a path answers, errors included: JSON for the API, a
// redirect to the login form for console pages, plain text otherwise.
type kind uint8

const (
	kindText kind = iota
	kindJSON
	kindPage
)

// httpError is an error with the status code the client gets and a
// message it may read.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func errNotFound(msg string) error {
	return &httpError{status: http.StatusNotFound, msg: msg}
}

func errUnauthenticated() error {
	return &httpError{status: http.StatusUnauthorized, msg: "authentication required"}
}

func errNotAdmin() error {
	return &httpError{status: http.StatusForbidden, msg: "admin rights required"}
}

func errCSRF() error {
	return &httpError{status: http.StatusForbidden, msg: "missing or wrong CSRF token: send X-CSRF-Token with the token from GET /api/v1/session"}
}

// apiFunc is a handler that leaves its errors to fail.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// handle serves h without authentication; method, when set, is the only
// one allowed (GET also allows HEAD).
func (s *Server) handle(k kind, method string, h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if method != "" && !methodMatches(method, r.Method) {
			s.fail(w, r, k, methodNotAllowed(method))
			return
		}
		if err := h(w, r); err != nil {
			s.fail(w, r, k, err)
		}
	})
}

// page serves a console page to admins; others are sent to the login form.
func (s *Server) page(method string, h apiFunc) http.Handler {
	return s.handle(kindPage, method, func(w http.ResponseWriter, r *http.Request) error {
		if _, err := s.authorize(r); err != nil {
			return err
		}
		return h(w, r)
	})
}

// admin serves a plain handler (pprof) to admins.
func (s *Server) admin(k kind, h http.HandlerFunc) http.Handler {
	return s.handle(k, "", func(w http.ResponseWriter, r *http.Request) error {
		if _, err := s.authorize(r); err != nil {
			return err
		}
		h(w, r)
		return nil
	})
}

// api serves an API path to admins, dispatching on the method.
func (s *Server) api(byMethod map[string]apiFunc) http.Handler {
	allowed := make([]string, 0, len(byMethod))
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if byMethod[m] != nil {
			allowed = append(allowed, m)
		}
	}
	return s.handle(kindJSON, "", func(w http.ResponseWriter, r *http.Request) error {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		h := byMethod[method]
		if h == nil {
			return methodNotAllowed(allowed...)
		}
		if err := requireJSON(r); err != nil {
			return err
		}
		if _, err := s.authorize(r); err != nil {
			return err
		}
		return h(w, r)
	})
}

func methodMatches(want, got string) bool {
	return want == got || (want == http.MethodGet && got == http.MethodHead)
}

// methodError is a 405 that names the allowed methods.
type methodError struct{ allowed []string }

func (e *methodError) Error() string {
	return "method not allowed; use " + strings.Join(e.allowed, " or ")
}

func methodNotAllowed(allowed ...string) error { return &methodError{allowed: allowed} }

// fail is where every error becomes a response.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, k kind, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	var he *httpError
	var me *methodError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.As(err, &me):
		status, msg = http.StatusMethodNotAllowed, me.Error()
		w.Header().Set("Allow", strings.Join(me.allowed, ", "))
	case errors.As(err, &tooBig):
		status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit)
	case errors.Is(err, broker.ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	default:
		s.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusUnauthorized {
		if k == kindPage {
			next := r.URL.RequestURI()
			http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		// A browser that has had a console session is sent back to the
		// login form by the page's script; a challenge would make it
		// pop up its own password dialog instead.
		if _, cerr := r.Cookie(sessionCookie); cerr != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="Stampede admin", charset="UTF-8"`)
		}
	}
	w.Header().Del("Content-Length")
	w.Header().Set("Cache-Control", "no-store")
	if k == kindJSON {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// writeJSON writes v as the response. An encoding failure here can only be
// a write error: the client has gone, and there is nobody left to tell.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
