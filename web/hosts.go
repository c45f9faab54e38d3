package web

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// HostGuard answers 403 to requests for host names the broker does not
// know, while Active reports true.
//
// It is for the built-in guest, which trusts every loopback client: a
// page on a DNS name the attacker controls can re-point that name at
// 127.0.0.1 (DNS rebinding), and the browser then treats the broker as
// that page's own origin, origin checks and all. The browser still sends
// the attacker's name in Host, so the broker answers only to names that
// cannot be rebound: IP addresses, localhost and *.localhost (which
// browsers resolve themselves), and the names an operator allows.
type HostGuard struct {
	// Next serves the requests that pass.
	Next http.Handler
	// Allowed are further host names (without port, any case); "*"
	// allows every name.
	Allowed []string
	// Active reports whether the guard applies; nil means always.
	Active func() bool
	// Logger receives refusals; nil discards them.
	Logger *slog.Logger
}

// ServeHTTP implements http.Handler.
func (g *HostGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (g.Active == nil || g.Active()) && !g.known(r.Host) {
		if g.Logger != nil {
			g.Logger.Info("request refused: unknown host name while the loopback guest is on",
				"host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path)
		}
		http.Error(w, "unknown host name "+r.Host+": while no users are configured the broker answers only to localhost and IP addresses; add names with --allowed-hosts", http.StatusForbidden)
		return
	}
	g.Next.ServeHTTP(w, r)
}

func (g *HostGuard) known(hostport string) bool {
	if hostport == "" {
		return true // HTTP/1.0: no browser sends that
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, a := range g.Allowed {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "."), host) {
			return true
		}
	}
	return false
}
