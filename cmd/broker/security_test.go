package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stampede-mq/stampede/auth"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/web"
	"golang.org/x/crypto/bcrypt"
)

// The broker takes auth's principals as its own.
var _ broker.Principal = (*auth.Principal)(nil)

func TestSecurityFlags(t *testing.T) {
	runConfigCases(t, []configCase{
		{"defaults", nil, nil, func(c *config) bool {
			s, o := c.Security, c.Broker
			return s.ConfigFile == "" && !s.AllowAnonymous && s.TLSCert == "" && s.ReadHeaderTimeout == 10*time.Second &&
				o.MaxConnectionsPerIP == 10000 && o.MaxTransactions == 64 && o.MaxTransactionFrames == 10000 &&
				o.MaxQueueMessages == 0 && o.MaxQueueBytes == 0 && o.SendBlockTimeout == 30*time.Second &&
				o.FailedLoginDelay == 500*time.Millisecond &&
				s.Logins == loginLimits{MaxFailures: 10, BackoffMax: time.Minute, MaxChecks: 1} &&
				s.AllowedHosts == "" && s.HTTPIdleTimeout == time.Minute && s.MaxHTTPConnsPerIP == 10000 &&
				!s.SecureCookie
		}, ""},
		{"flags", []string{
			"--config", "b.toml", "--allow-anonymous", "--tls-cert", "c.pem", "--tls-key", "k.pem",
			"--read-header-timeout", "2s", "--max-connections-per-ip", "7", "--max-transactions", "3",
			"--max-transaction-frames", "9", "--max-queue-messages", "100", "--max-queue-bytes", "4096",
			"--send-block-timeout", "1s", "--failed-login-delay", "10ms",
			"--max-login-failures-per-ip", "3", "--login-backoff-max", "5s", "--max-login-checks-per-ip", "2",
			"--allowed-hosts", "broker.example.com", "--http-idle-timeout", "3s", "--max-http-connections-per-ip", "50",
			"--secure-cookie",
		}, nil, func(c *config) bool {
			s, o := c.Security, c.Broker
			return s.ConfigFile == "b.toml" && s.AllowAnonymous && s.TLSCert == "c.pem" && s.TLSKey == "k.pem" &&
				s.ReadHeaderTimeout == 2*time.Second && o.MaxConnectionsPerIP == 7 && o.MaxTransactions == 3 &&
				o.MaxTransactionFrames == 9 && o.MaxQueueMessages == 100 && o.MaxQueueBytes == 4096 &&
				o.SendBlockTimeout == time.Second && o.FailedLoginDelay == 10*time.Millisecond &&
				s.Logins == loginLimits{MaxFailures: 3, BackoffMax: 5 * time.Second, MaxChecks: 2} &&
				s.AllowedHosts == "broker.example.com" && s.HTTPIdleTimeout == 3*time.Second && s.MaxHTTPConnsPerIP == 50 &&
				s.SecureCookie
		}, ""},
		{"environment", nil, map[string]string{"BROKER_CONFIG": "/etc/b.toml", "BROKER_ALLOW_ANONYMOUS": "true", "BROKER_MAX_QUEUE_BYTES": "1"},
			func(c *config) bool {
				return c.Security.ConfigFile == "/etc/b.toml" && c.Security.AllowAnonymous && c.Broker.MaxQueueBytes == 1
			}, ""},
		{"cert without key", []string{"--tls-cert", "c.pem"}, nil, nil, "--tls-key"},
		{"key without cert", []string{"--tls-key", "k.pem"}, nil, nil, "--tls-cert"},
	})
}

func TestHashPassword(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		secret string // what the printed hash must match
		stderr string
	}{
		{"line", []string{"--cost", "4"}, "s3cret\n", 0, "s3cret", ""},
		{"no newline", []string{"--cost", "4"}, "s3cret", 0, "s3cret", ""},
		{"CRLF", []string{"--cost", "4"}, "s3cret\r\nignored\n", 0, "s3cret", ""},
		{"spaces are kept", []string{"--cost", "4"}, " a b \n", 0, " a b ", ""},
		{"empty", nil, "\n", 1, "", "no secret"},
		{"too long", nil, strings.Repeat("x", 73) + "\n", 1, "", "72 bytes"},
		{"secret as argument", []string{"hunter2"}, "", 2, "", "stdin"},
		{"bad cost", []string{"--cost", "40"}, "x\n", 2, "", "--cost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := hashPassword(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.stderr)
			}
			if tc.secret == "" {
				if stdout.Len() > 0 {
					t.Errorf("printed %q on failure", stdout.String())
				}
				return
			}
			hash := strings.TrimSuffix(stdout.String(), "\n")
			if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(tc.secret)); err != nil {
				t.Fatalf("printed %q, which does not match the secret: %v", hash, err)
			}
			if strings.Contains(hash, tc.secret) {
				t.Errorf("the hash contains the secret")
			}
		})
	}
}

// TestSecurityPrincipal checks the adapter between auth and the broker:
// a refusal is a nil interface, not a nil pointer in one.
func TestSecurityPrincipal(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	path := filepath.Join(t.TempDir(), "broker.toml")
	if err := os.WriteFile(path, []byte("[[user]]\nname = \"alice\"\npasscode = \""+string(hash)+"\"\nwrite = \"/queue/.*\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sec, err := newSecurity(securityConfig{ConfigFile: path}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	info := broker.ConnInfo{RemoteAddr: "127.0.0.1:1"}
	if p, err := sec.authenticate(info, "alice", "wrong"); err == nil || p != nil {
		t.Fatalf("wrong passcode: %v, %v", p, err)
	}
	p, err := sec.authenticate(info, "alice", "pw")
	if err != nil || p.Name() != "alice" || !p.CanWrite("/queue/a") || p.CanRead("/queue/a") {
		t.Fatalf("alice: %v, %v", p, err)
	}
	if _, err := newSecurity(securityConfig{ConfigFile: path + ".missing"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a missing config file was accepted")
	}
	if _, err := newSecurity(securityConfig{TLSCert: path, TLSKey: path}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a config file was accepted as a certificate")
	}
}

// TestWebAuth checks the console's view of the users: the same
// passcodes, admin only with the tag, never anonymous.
func TestWebAuth(t *testing.T) {
	admin, _ := bcrypt.GenerateFromPassword([]byte("root-pw"), bcrypt.MinCost)
	user, _ := bcrypt.GenerateFromPassword([]byte("user-pw"), bcrypt.MinCost)
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.toml")
	config := "[[user]]\nname = \"root\"\npasscode = \"" + string(admin) + "\"\ntags = [\"admin\"]\n" +
		"[[user]]\nname = \"app\"\npasscode = \"" + string(user) + "\"\n"
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	configured, err := newSecurity(securityConfig{ConfigFile: path, AllowAnonymous: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	open, err := newSecurity(securityConfig{AllowAnonymous: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		sec        *security
		user, pass string
		remote     string
		ok, admin  bool
	}{
		{"admin", configured, "root", "root-pw", "203.0.113.1:5", true, true},
		{"not an admin", configured, "app", "user-pw", "203.0.113.1:5", true, false},
		{"wrong password", configured, "root", "user-pw", "127.0.0.1:5", false, false},
		{"anonymous", configured, "", "", "127.0.0.1:5", false, false},
		{"guest once users exist", configured, "guest", "guest", "127.0.0.1:5", false, false},
		{"guest without users", open, "guest", "guest", "127.0.0.1:5", true, true},
		{"guest from elsewhere", open, "guest", "guest", "203.0.113.1:5", false, false},
		{"no credentials without users", open, "", "", "127.0.0.1:5", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.sec.webAuthenticator(time.Millisecond).Authenticate(tc.user, tc.pass, tc.remote)
			if !tc.ok {
				if !errors.Is(err, web.ErrBadCredentials) {
					t.Fatalf("got %+v, %v; want ErrBadCredentials", u, err)
				}
				return
			}
			if err != nil || u.Name != tc.user || u.Admin != tc.admin {
				t.Fatalf("got %+v, %v", u, err)
			}
		})
	}
}
