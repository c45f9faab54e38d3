package auth

import "testing"

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:61613":          true,
		"127.1.2.3":                true,
		"[::1]:8080":               true,
		"::1":                      true,
		"[::1]":                    true,
		"::ffff:127.0.0.1":         true,
		"[::ffff:127.0.0.1]:5":     true,
		"localhost":                true,
		"LocalHost:8080":           true,
		"app.localhost":            true,
		"10.0.0.1:61613":           false,
		"[::2]:8080":               false,
		"0.0.0.0":                  false,
		"example.com":              false,
		"localhost.example.com":    false,
		"notlocalhost":             false,
		"":                         false,
		"127.0.0.1.example.com:80": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
