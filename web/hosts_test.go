package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHostGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	active := true
	g := &HostGuard{Next: ok, Allowed: []string{"broker.example.com", "Intranet."}, Active: func() bool { return active }}
	for host, want := range map[string]int{
		"localhost:8080":            http.StatusOK,
		"LOCALHOST":                 http.StatusOK,
		"localhost.:8080":           http.StatusOK,
		"app.localhost:8080":        http.StatusOK,
		"127.0.0.1:8080":            http.StatusOK,
		"192.168.1.20":              http.StatusOK,
		"[::1]:8080":                http.StatusOK,
		"[fe80::1%25eth0]:8080":     http.StatusOK,
		"broker.example.com:8080":   http.StatusOK,
		"intranet":                  http.StatusOK,
		"":                          http.StatusOK,
		"rebind.evil.example:8080":  http.StatusForbidden,
		"localhost.evil.example":    http.StatusForbidden,
		"127.0.0.1.nip.io:8080":     http.StatusForbidden,
		"example.com.localhost.com": http.StatusForbidden,
	} {
		r := httptest.NewRequest("GET", "/api/v1/overview", nil)
		r.Host = host
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
	active = false
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "rebind.evil.example"
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Errorf("inactive guard refused: %d", rec.Code)
	}
	all := &HostGuard{Next: ok, Allowed: []string{"*"}}
	rec = httptest.NewRecorder()
	all.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Errorf("* refused: %d", rec.Code)
	}
}
