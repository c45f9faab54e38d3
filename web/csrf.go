package web

import (
	"mime"
	"net/http"
)

// Browsers attach HTTP Basic credentials they have cached for the broker
// to requests that pages of other sites make, forms and no-cors fetches
// included; a session's CSRF token does not help there. So every
// state-changing request must come from the broker's own pages or from
// no browser at all, and an API write must carry JSON, which no other
// site can send without the CORS preflight the broker never grants.

// checkSameOrigin refuses a state-changing request that a browser made
// for a page of another origin: Sec-Fetch-Site says so where browsers
// send it (every current one does), Origin against Host where they do
// not. Requests with neither come from scripts and pass.
func checkSameOrigin(r *http.Request) error {
	if !changesState(r.Method) {
		return nil
	}
	var p http.CrossOriginProtection
	if err := p.Check(r); err != nil {
		return &httpError{status: http.StatusForbidden, msg: "cross-origin request refused: only the console's own pages may change anything"}
	}
	return nil
}

// requireJSON refuses an API request with a body of any other type.
func requireJSON(r *http.Request) error {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
	default:
		return nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &httpError{status: http.StatusUnsupportedMediaType, msg: "send the request body as JSON, with Content-Type: application/json"}
	}
	return nil
}
