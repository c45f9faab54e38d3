package web

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// users is an Authenticator with a fixed table: name → password, admin.
type users map[string]struct {
	pass  string
	admin bool
}

func (u users) Authenticate(name, password, _ string) (User, error) {
	e, ok := u[name]
	if !ok || e.pass != password {
		return User{}, ErrBadCredentials
	}
	return User{Name: name, Admin: e.admin}, nil
}

func TestAPINeedsAnAdmin(t *testing.T) {
	e := newEnv(t, Options{Auth: users{
		"root": {"pw", true},
		"bob":  {"pw", false},
	}})
	// None: 401 with a Basic challenge, as JSON.
	resp := e.do(req{path: "/api/v1/overview"})
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("no credentials: %d %v", resp.StatusCode, resp.Header)
	}
	e.apiError(req{path: "/api/v1/overview", user: "root", pass: "wrong"}, http.StatusUnauthorized)
	e.apiError(req{path: "/api/v1/overview", user: "nobody", pass: "pw"}, http.StatusUnauthorized)
	e.apiError(req{path: "/api/v1/overview", header: map[string]string{"Authorization": "Bearer x"}}, http.StatusUnauthorized)
	// A valid user without the admin tag: 403.
	e.apiError(req{path: "/api/v1/overview", user: "bob", pass: "pw"}, http.StatusForbidden)
	e.call(req{path: "/api/v1/overview", user: "root", pass: "pw"}, http.StatusOK, nil)
	// Basic auth needs no CSRF token, even to change things.
	e.call(req{method: "POST", path: "/api/v1/destinations/%2Fqueue%2Fa/messages", body: `{"body":"x"}`, user: "root", pass: "pw"}, http.StatusCreated, nil)

	// Pages send the browser to the login form instead.
	resp = e.do(req{path: "/admin/connections?x=1"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/login?next="+url.QueryEscape("/admin/connections?x=1") {
		t.Fatalf("page without login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.call(req{path: "/admin/", user: "bob", pass: "pw"}, http.StatusForbidden, nil)
	e.call(req{path: "/admin/", user: "root", pass: "pw"}, http.StatusOK, nil)
	// The static files are public: the login page needs them.
	e.call(req{path: "/admin/static/app.css"}, http.StatusOK, nil)
	e.call(req{path: "/admin/static/nope.css"}, http.StatusNotFound, nil)
	e.call(req{path: "/admin/nope"}, http.StatusNotFound, nil)
}

func TestLoopbackGuest(t *testing.T) {
	var g LoopbackGuest
	for _, tc := range []struct {
		name, pass, remote string
		ok                 bool
	}{
		{"guest", "guest", "127.0.0.1:5000", true},
		{"guest", "guest", "[::1]:5000", true},
		{"guest", "guest", "192.0.2.7:5000", false},
		{"guest", "guest", "10.0.0.1:5000", false},
		{"guest", "nope", "127.0.0.1:5000", false},
		{"admin", "guest", "127.0.0.1:5000", false},
	} {
		u, err := g.Authenticate(tc.name, tc.pass, tc.remote)
		if tc.ok != (err == nil) || (tc.ok && (!u.Admin || u.Name != "guest")) {
			t.Errorf("%s/%s from %s: %+v %v", tc.name, tc.pass, tc.remote, u, err)
		}
		if err != nil && !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s/%s from %s: error %v does not wrap ErrBadCredentials", tc.name, tc.pass, tc.remote, err)
		}
	}

	// Through the server: the guest from elsewhere is refused, with and
	// without the login form.
	e := newEnv(t, Options{})
	e.call(req{path: "/api/v1/overview", basic: true}, http.StatusOK, nil)
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/api/v1/overview", nil),
		httptest.NewRequest("POST", "/admin/login", strings.NewReader("username=guest&password=guest")),
	} {
		r.RemoteAddr = "192.0.2.7:5000"
		r.SetBasicAuth("guest", "guest")
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s %s from a remote guest: %d %s", r.Method, r.URL, rec.Code, rec.Body)
		}
	}
}

// login signs in with the form and returns the session cookie and CSRF token.
func login(t *testing.T, e *env, name, pass string) (*http.Cookie, string) {
	t.Helper()
	form := url.Values{"username": {name}, "password": {pass}, "next": {"/admin/destinations"}}
	resp := e.do(req{method: "POST", path: "/admin/login", body: form.Encode(),
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.ts.URL}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/destinations" {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("login: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || len(ck.Value) < 40 {
		t.Fatalf("session cookie %+v", ck)
	}
	var s sessionJSON
	e.call(req{path: "/api/v1/session", cookie: ck}, http.StatusOK, &s)
	if s.User != name || !s.Admin || len(s.CSRFToken) < 40 {
		t.Fatalf("session %+v", s)
	}
	return ck, s.CSRFToken
}

func TestLoginSessionAndCSRF(t *testing.T) {
	e := newEnv(t, Options{})
	page := e.do(req{path: "/admin/login"})
	body, _ := io.ReadAll(page.Body)
	if page.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="password"`) ||
		!strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("login page: %d %v", page.StatusCode, page.Header)
	}

	ck, token := login(t, e, "guest", "guest")
	e.call(req{path: "/admin/", cookie: ck}, http.StatusOK, nil)
	e.call(req{path: "/api/v1/destinations", cookie: ck}, http.StatusOK, nil)

	// State changes from a cookie session need the session's token.
	pub := req{method: "POST", path: "/api/v1/destinations/%2Fqueue%2Fq/messages", body: `{"body":"x"}`, cookie: ck}
	e.apiError(pub, http.StatusForbidden)
	bad := pub
	bad.csrf = "not-the-token"
	e.apiError(bad, http.StatusForbidden)
	pub.csrf = token
	e.call(pub, http.StatusCreated, nil)
	e.apiError(req{method: "DELETE", path: "/api/v1/destinations/%2Fqueue%2Fq/messages", cookie: ck}, http.StatusForbidden)
	e.call(req{method: "DELETE", path: "/api/v1/destinations/%2Fqueue%2Fq/messages", cookie: ck, csrf: token}, http.StatusOK, nil)

	// A signed-in browser visiting the form goes straight on.
	resp := e.do(req{path: "/admin/login?next=/admin/connections", cookie: ck})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/connections" {
		t.Fatalf("login page when signed in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Logout needs the token too, then the cookie is worthless.
	e.call(req{method: "POST", path: "/admin/logout", cookie: ck}, http.StatusForbidden, nil)
	resp = e.do(req{method: "POST", path: "/admin/logout", cookie: ck, csrf: token})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	resp = e.do(req{path: "/api/v1/overview", cookie: ck})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "" {
		// The console's own fetches get no challenge, or the browser
		// would show its password dialog over the page.
		t.Fatalf("after logout: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestLoginRefusals(t *testing.T) {
	e := newEnv(t, Options{Auth: users{"bob": {"pw", false}}})
	form := func(name, pass string) string {
		return url.Values{"username": {name}, "password": {pass}}.Encode()
	}
	formReq := func(body string, origin string) req {
		h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		if origin != "" {
			h["Origin"] = origin
		}
		return req{method: "POST", path: "/admin/login", body: body, header: h}
	}
	for _, tc := range []struct {
		r      req
		status int
		text   string
	}{
		{formReq(form("bob", "wrong"), ""), http.StatusUnauthorized, "Wrong user name or password"},
		{formReq(form("bob", "pw"), ""), http.StatusForbidden, "no admin rights"},
		{formReq(form("bob", "pw"), "https://evil.example"), http.StatusForbidden, "cross-origin"},
		{req{method: "POST", path: "/admin/login", body: form("bob", "pw"), header: map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden, "cross-origin"},
		{req{method: "PUT", path: "/admin/login"}, http.StatusMethodNotAllowed, "method not allowed"},
	} {
		resp := e.do(tc.r)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.text) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.r.method, tc.r.body, resp.StatusCode, body, tc.status, tc.text)
		}
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie {
				t.Errorf("%s: a refused login set a session cookie", tc.r.body)
			}
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/admin/connections":    "/admin/connections",
		"/admin/destinations/x": "/admin/destinations/x",
		"":                      "/admin/",
		"//evil.example/admin/": "/admin/",
		"https://evil.example":  "/admin/",
		"/admin/login":          "/admin/",
		"/admin/\\evil":         "/admin/",
		"/metrics":              "/admin/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	st := newSessionStore(time.Minute, time.Hour)
	st.now = func() time.Time { return now }
	id, _ := st.create(User{Name: "a", Admin: true})
	if _, ok := st.get(id); !ok {
		t.Fatal("fresh session not found")
	}
	// Used within the idle limit, it lives on.
	for i := 0; i < 5; i++ {
		now = now.Add(50 * time.Second)
		if _, ok := st.get(id); !ok {
			t.Fatalf("session ended after %d uses", i)
		}
	}
	now = now.Add(61 * time.Second)
	if _, ok := st.get(id); ok {
		t.Fatal("idle session still valid")
	}
	// Used often, it still ends at its hard limit.
	id, _ = st.create(User{Name: "b"})
	for i := 0; i < 80; i++ {
		now = now.Add(50 * time.Second)
		st.get(id)
	}
	if _, ok := st.get(id); ok {
		t.Fatal("session outlived its maximum")
	}
	if _, ok := st.get("unknown"); ok {
		t.Fatal("unknown session found")
	}
}

func TestSessionsAreBounded(t *testing.T) {
	st := newSessionStore(time.Hour, time.Hour)
	first, _ := st.create(User{Name: "first"})
	for i := 0; i < maxSessions; i++ {
		st.create(User{Name: "x"})
	}
	if n := len(st.byID); n != maxSessions {
		t.Fatalf("%d sessions kept", n)
	}
	if _, ok := st.get(first); ok {
		t.Fatal("the oldest session survived a full store")
	}
}

// TestLoginPageGuestHint checks that the sign-in page tells a newcomer
// about guest/guest while, and only while, that login is open.
func TestLoginPageGuestHint(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth Authenticator
		hint bool
	}{
		{"loopback guest", LoopbackGuest{}, true},
		{"users configured", users{"root": {"pw", true}}, false},
	} {
		e := newEnv(t, Options{Auth: tc.auth})
		resp := e.do(req{path: "/admin/login"})
		page, _ := io.ReadAll(resp.Body)
		if got := strings.Contains(string(page), `id="guest-hint"`); got != tc.hint {
			t.Errorf("%s: guest hint shown %v, want %v", tc.name, got, tc.hint)
		}
	}
}

// TestDemoFiles checks the demo page's routes and headers.
func TestDemoFiles(t *testing.T) {
	e := newEnv(t, Options{Auth: users{}})
	resp := e.do(req{path: "/demo/"})
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != http.StatusOK || !strings.Contains(csp, "connect-src 'self' ws://") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("/demo/: %d, CSP %q", resp.StatusCode, csp)
	}
	page, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(page), `name="message"`) {
		t.Error("/demo/ has no input named message")
	}
	e.call(req{path: "/demo/demo.js"}, http.StatusOK, nil)
	e.call(req{path: "/demo/vendor/stomp.umd.min.js"}, http.StatusOK, nil)
	e.call(req{path: "/demo/vendor/"}, http.StatusNotFound, nil)
	e.call(req{path: "/demo/nope.js"}, http.StatusNotFound, nil)
	if resp := e.do(req{path: "/demo/index.html"}); resp.StatusCode != http.StatusMovedPermanently {
		t.Errorf("/demo/index.html: %d, want a redirect to /demo/", resp.StatusCode)
	}
}

// TestSecureCookie: the session cookie is Secure on plain HTTP only when
// configured (behind a proxy that terminates TLS).
func TestSecureCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := newEnv(t, Options{SecureCookie: secure})
		ck, _ := login(t, e, "guest", "guest")
		if ck.Secure != secure {
			t.Errorf("SecureCookie %v: the cookie's Secure is %v", secure, ck.Secure)
		}
	}
}
