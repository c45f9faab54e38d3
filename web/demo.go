package web

import (
	"io/fs"
	"net/http"
	"strings"
)

// The demo chat under /demo/: a page, its script and style, and the
// STOMP.js bundle, all from the binary. It needs no login of its own: the
// page logs in over STOMP, as the guest from loopback while no users are
// configured, or with what it asks the visitor for.

// demoRoutes registers /demo/ on m.
func demoRoutes(m *http.ServeMux) {
	files, _ := fs.Sub(staticFiles, "demo") // fails only for an invalid path
	m.HandleFunc("GET /demo/{$}", func(w http.ResponseWriter, r *http.Request) {
		demoHeaders(w, r)
		http.ServeFileFS(w, r, files, "index.html")
	})
	m.HandleFunc("GET /demo/{file...}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if name == "index.html" {
			http.Redirect(w, r, "/demo/", http.StatusMovedPermanently)
			return
		}
		if st, err := fs.Stat(files, name); err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		// The files change with the binary; no-cache makes the browser
		// check, so an upgrade is picked up at once.
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, files, name)
	})
}

// demoHeaders confine the page to this broker: its own scripts and
// styles, and WebSockets back to the host it was loaded from. 'self'
// covers ws: and wss: in current browsers only, so they are named.
func demoHeaders(w http.ResponseWriter, r *http.Request) {
	connect := "'self'"
	if !strings.ContainsAny(r.Host, " ;,'\"") { // a Host may hold what would end the directive
		connect += " ws://" + r.Host + " wss://" + r.Host
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
		"connect-src "+connect+"; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
}
