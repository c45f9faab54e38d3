package web

import (
	"net/http"
	"testing"
)

// TestCrossOriginWrites: what a page of another site can make a browser
// send, with the admin's cached Basic credentials, changes nothing; the
// console's own requests and scripts' requests do.
func TestCrossOriginWrites(t *testing.T) {
	e := newEnv(t, Options{})
	const pub = "/api/v1/destinations/%2Fqueue%2Fq/messages"
	post := func(h map[string]string) req {
		return req{method: "POST", path: pub, body: `{"body":"x"}`, basic: true, header: h}
	}
	for _, tc := range []struct {
		name   string
		r      req
		status int
	}{
		{"a script", post(nil), http.StatusCreated},
		{"the console", post(map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.ts.URL}), http.StatusCreated},
		{"an old browser on the console", post(map[string]string{"Origin": e.ts.URL}), http.StatusCreated},
		{"a form of another site", post(map[string]string{"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}), http.StatusUnsupportedMediaType},
		{"a form without Sec-Fetch-Site", post(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), http.StatusUnsupportedMediaType},
		{"a body without a type", post(map[string]string{"Content-Type": ""}), http.StatusUnsupportedMediaType},
		{"JSON from another site", post(map[string]string{"Sec-Fetch-Site": "cross-site"}), http.StatusForbidden},
		{"JSON from a sibling site", post(map[string]string{"Sec-Fetch-Site": "same-site"}), http.StatusForbidden},
		{"JSON from an old browser elsewhere", post(map[string]string{"Origin": "https://evil.example"}), http.StatusForbidden},
		{"JSON from a sandboxed page", post(map[string]string{"Origin": "null"}), http.StatusForbidden},
		{"a purge from another site", req{method: "DELETE", path: pub, basic: true, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{"a close from another site", req{method: "DELETE", path: "/api/v1/connections/c1", basic: true, header: map[string]string{"Origin": "https://evil.example"}}, http.StatusForbidden},
		{"a read from another site", req{path: "/api/v1/overview", basic: true, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status == http.StatusOK || tc.status == http.StatusCreated {
				e.call(tc.r, tc.status, nil)
				return
			}
			e.apiError(tc.r, tc.status)
		})
	}
	var d destinationJSON
	e.call(req{path: "/api/v1/destinations/%2Fqueue%2Fq", basic: true}, http.StatusOK, &d)
	if d.Depth != 3 {
		t.Fatalf("queue depth %d: want the 3 accepted publishes only", d.Depth)
	}
}
