package auth

import (
	"net"
	"net/netip"
	"strings"
)

// IsLoopback reports whether addr, a host or host:port, names this
// machine: a loopback address (IPv4-mapped ones too), or localhost and its
// subdomains, which RFC 6761 has resolve to loopback. It is the one test
// behind everything granted for being local: the built-in guest, the
// console's guest and the WebSocket origins trusted without being listed.
// Behind a reverse proxy on the same machine every client looks local,
// which is why the guest exists only while nothing is configured.
func IsLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
