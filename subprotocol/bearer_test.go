package subprotocol

import "testing"

func TestBearerToken(t *testing.T) {
	cases := map[string]string{
		"Bearer abc.def.ghi": "abc.def.ghi",
		"bearer  tok ":       "tok",
		"Basic dXNlcjpwYXNz": "",
		"Bearer":             "",
		"":                   "",
		"BearerX tok":        "",
	}
	for h, want := range cases {
		if got := bearerToken(h); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}
