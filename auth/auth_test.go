package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

const (
	local  = "127.0.0.1:50000"
	local6 = "[::1]:50000"
	remote = "203.0.113.7:50000"
	secret = "0123456789abcdef0123456789abcdef" // HMAC secret, 32 bytes
)

// hash makes a cheap bcrypt hash: the tests check logic, not cost.
func hash(t testing.TB, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// usersConfig has alice (admin, everything under /queue and /topic) and
// bob (reads /topic/news.*, writes /queue/bob.*).
func usersConfig(t testing.TB) string {
	return fmt.Sprintf(`
[[user]]
name = "alice"
passcode = %q
tags = ["admin"]
read = "^/(queue|topic)/.*$"
write = "^/(queue|topic)/.*$"

[[user]]
name = "bob"
passcode = %q
read = "/topic/news\\..*"
write = "/queue/bob\\..*"

[jwt]
hmac_secret = %q

[anonymous]
read = "/topic/public"
`, hash(t, "alice-pass"), hash(t, "bob-pass"), secret)
}

func newAuth(t testing.TB, config string, opts Options) *Authenticator {
	t.Helper()
	path := ""
	if config != "" {
		path = writeFile(t, t.TempDir(), "broker.toml", config)
	}
	a, err := New(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func hmacToken(t testing.TB, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns valid claims for sub, expiring in an hour, plus kv.
func claims(sub string, kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

// access is what a principal may do, written as the checks the tests make.
type access struct {
	read, noRead, write, noWrite []string
}

func checkAccess(t *testing.T, p *Principal, a access) {
	t.Helper()
	for _, d := range a.read {
		if !p.CanRead(d) {
			t.Errorf("%s cannot read %s", p.Name(), d)
		}
	}
	for _, d := range a.noRead {
		if p.CanRead(d) {
			t.Errorf("%s can read %s", p.Name(), d)
		}
	}
	for _, d := range a.write {
		if !p.CanWrite(d) {
			t.Errorf("%s cannot write %s", p.Name(), d)
		}
	}
	for _, d := range a.noWrite {
		if p.CanWrite(d) {
			t.Errorf("%s can write %s", p.Name(), d)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	configured := usersConfig(t)
	alice := access{
		read: []string{"/queue/a", "/topic/x.#"}, write: []string{"/queue/a", "/topic/b"},
		noRead: []string{"/temp-queue/x", "/exchange/x"}, noWrite: []string{"/queued/a"},
	}
	bob := access{
		read: []string{"/topic/news.sport", "/topic/news.*"}, noRead: []string{"/topic/news", "/topic/#", "/queue/bob.in"},
		write: []string{"/queue/bob.out"}, noWrite: []string{"/queue/bob", "/queue/alice"},
	}
	everything := access{read: []string{"/queue/a", "/topic/#"}, write: []string{"/queue/a", "/topic/b"}}
	nothing := access{noRead: []string{"/queue/a", "/topic/public.x"}, noWrite: []string{"/queue/a", "/topic/public"}}
	cases := []struct {
		name   string
		config string
		anon   bool
		creds  Credentials
		want   string // user name; empty means refused
		admin  bool
		access access
		reason string // for refusals: part of the logged reason
	}{
		{name: "right passcode", config: configured, creds: Credentials{Login: "alice", Passcode: "alice-pass", RemoteAddr: remote}, want: "alice", admin: true, access: alice},
		{name: "second user", config: configured, creds: Credentials{Login: "bob", Passcode: "bob-pass", RemoteAddr: remote}, want: "bob", access: bob},
		{name: "wrong passcode", config: configured, creds: Credentials{Login: "alice", Passcode: "bob-pass", RemoteAddr: local}, reason: "wrong passcode"},
		{name: "empty passcode", config: configured, creds: Credentials{Login: "alice", RemoteAddr: local}, reason: "wrong passcode"},
		{name: "unknown user", config: configured, creds: Credentials{Login: "carol", Passcode: "alice-pass", RemoteAddr: local}, reason: "unknown user"},
		{name: "login is case sensitive", config: configured, creds: Credentials{Login: "Alice", Passcode: "alice-pass", RemoteAddr: local}, reason: "unknown user"},
		{name: "guest from loopback without users", creds: Credentials{Login: "guest", Passcode: "guest", RemoteAddr: local}, want: "guest", admin: true, access: everything},
		{name: "guest from IPv6 loopback", creds: Credentials{Login: "guest", Passcode: "guest", RemoteAddr: local6}, want: "guest", admin: true, access: everything},
		{name: "guest from elsewhere", creds: Credentials{Login: "guest", Passcode: "guest", RemoteAddr: remote}, reason: "loopback"},
		{name: "guest with a wrong passcode", creds: Credentials{Login: "guest", Passcode: "Guest", RemoteAddr: local}, reason: "wrong passcode"},
		{name: "guest once users exist", config: configured, creds: Credentials{Login: "guest", Passcode: "guest", RemoteAddr: local}, reason: "unknown user"},
		{name: "guest once only jwt exists", config: `[jwt]` + "\nhmac_secret = \"" + secret + "\"\n", creds: Credentials{Login: "guest", Passcode: "guest", RemoteAddr: local}, reason: "unknown user"},
		{name: "other user without users", creds: Credentials{Login: "alice", Passcode: "x", RemoteAddr: local}, reason: "unknown user"},
		{name: "no credentials from loopback without users", creds: Credentials{RemoteAddr: local}, want: "guest", admin: true, access: everything},
		{name: "no credentials from elsewhere without users", creds: Credentials{RemoteAddr: remote}, reason: "anonymous access is off"},
		{name: "no credentials with users", config: configured, creds: Credentials{RemoteAddr: local}, reason: "anonymous access is off"},
		{name: "anonymous allowed", config: configured, anon: true, creds: Credentials{RemoteAddr: remote}, want: "anonymous",
			access: access{read: []string{"/topic/public"}, noRead: []string{"/topic/public.x", "/queue/a"}, noWrite: []string{"/topic/public"}}},
		{name: "anonymous allowed without [anonymous]", anon: true, creds: Credentials{RemoteAddr: remote}, want: "anonymous", access: nothing},
		{name: "anonymous allowed still checks a login", config: configured, anon: true, creds: Credentials{Login: "alice", Passcode: "nope", RemoteAddr: local}, reason: "wrong passcode"},
		{name: "token as passcode", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(secret), claims("carol", "stomp_read", "/topic/a", "stomp_write", "/queue/c\\..*")), RemoteAddr: remote},
			want:  "carol", access: access{read: []string{"/topic/a"}, noRead: []string{"/topic/ab"}, write: []string{"/queue/c.1"}, noWrite: []string{"/topic/a"}}},
		{name: "token with admin tag", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(secret), claims("dave", "stomp_tags", []string{"admin"})), RemoteAddr: remote},
			want:  "dave", admin: true, access: nothing},
		{name: "token with matching login", config: configured,
			creds: Credentials{Login: "carol", Passcode: hmacToken(t, []byte(secret), claims("carol")), RemoteAddr: remote}, want: "carol", access: nothing},
		{name: "token with another login", config: configured,
			creds: Credentials{Login: "alice", Passcode: hmacToken(t, []byte(secret), claims("carol")), RemoteAddr: remote}, reason: "differs"},
		{name: "token as bearer", config: configured,
			creds: Credentials{Bearer: hmacToken(t, []byte(secret), claims("erin", "stomp_write", ".*")), RemoteAddr: remote},
			want:  "erin", access: access{write: []string{"/queue/x"}, noRead: []string{"/queue/x"}}},
		{name: "passcode wins over bearer", config: configured,
			creds: Credentials{Login: "bob", Passcode: "bob-pass", Bearer: hmacToken(t, []byte(secret), claims("erin")), RemoteAddr: remote}, want: "bob", access: bob},
		{name: "expired token", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(secret), jwt.MapClaims{"sub": "carol", "exp": time.Now().Add(-time.Minute).Unix()}), RemoteAddr: local}, reason: "expired"},
		{name: "expired bearer", config: configured,
			creds: Credentials{Bearer: hmacToken(t, []byte(secret), jwt.MapClaims{"sub": "carol", "exp": time.Now().Add(-time.Minute).Unix()}), RemoteAddr: local}, reason: "expired"},
		{name: "token not yet valid", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(secret), claims("carol", "nbf", time.Now().Add(time.Hour).Unix())), RemoteAddr: local}, reason: "not valid yet"},
		{name: "token without exp", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(secret), jwt.MapClaims{"sub": "carol"}), RemoteAddr: local}, reason: "exp"},
		{name: "token without sub", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(secret), jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}), RemoteAddr: local}, reason: "no sub"},
		{name: "token signed with another secret", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(strings.Repeat("x", 32)), claims("carol")), RemoteAddr: local}, reason: "signature"},
		{name: "tampered token", config: configured,
			creds: Credentials{Passcode: tamper(hmacToken(t, []byte(secret), claims("carol", "stomp_write", "/queue/a"))), RemoteAddr: local}, reason: "signature"},
		{name: "unsigned token", config: configured,
			creds: Credentials{Passcode: noneToken(t, claims("carol", "stomp_write", ".*")), RemoteAddr: local}, reason: "invalid token"},
		{name: "token with a bad pattern", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(secret), claims("carol", "stomp_read", "(")), RemoteAddr: local}, reason: "permission claim"},
		{name: "token that escapes its anchors", config: configured,
			creds: Credentials{Passcode: hmacToken(t, []byte(secret), claims("carol", "stomp_read", "a)|(.*")), RemoteAddr: local}, reason: "permission claim"},
		{name: "bearer without [jwt]", creds: Credentials{Bearer: hmacToken(t, []byte(secret), claims("carol")), RemoteAddr: local}, reason: "no [jwt]"},
		{name: "token-shaped passcode without [jwt] is a passcode", creds: Credentials{Login: "guest", Passcode: hmacToken(t, []byte(secret), claims("guest")), RemoteAddr: local}, reason: "wrong passcode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, tc.config, Options{AllowAnonymous: tc.anon})
			p, err := a.Authenticate(tc.creds)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("logged in as %s; want a refusal", p.Name())
				}
				if !errors.Is(err, ErrRefused) {
					t.Errorf("error %v does not wrap ErrRefused", err)
				}
				if !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("reason %q does not mention %q", err, tc.reason)
				}
				// (guest's passcode is its name, which may be logged.)
				if pass := tc.creds.Passcode + tc.creds.Bearer; pass != "" && pass != tc.creds.Login && strings.Contains(err.Error(), pass) {
					t.Errorf("the refusal repeats the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Name() != tc.want || p.Admin() != tc.admin {
				t.Fatalf("got %s (admin %v), want %s (admin %v)", p.Name(), p.Admin(), tc.want, tc.admin)
			}
			checkAccess(t, p, tc.access)
		})
	}
}

// tamper changes the payload of a token, keeping its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), "/queue/a", ".*", 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func noneToken(t testing.TB, c jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthenticateUser(t *testing.T) {
	cases := []struct {
		name       string
		config     string
		user, pass string
		remote     string
		want       string
		admin      bool
	}{
		{"admin user", usersConfig(t), "alice", "alice-pass", remote, "alice", true},
		{"user without the admin tag", usersConfig(t), "bob", "bob-pass", remote, "bob", false},
		{"wrong password", usersConfig(t), "alice", "x", local, "", false},
		{"guest without users", "", "guest", "guest", local, "guest", true},
		{"guest from elsewhere", "", "guest", "guest", remote, "", false},
		{"empty credentials are never the guest", "", "", "", local, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, tc.config, Options{AllowAnonymous: true})
			p, err := a.AuthenticateUser(tc.user, tc.pass, tc.remote)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("logged in as %s", p.Name())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != tc.want || p.Admin() != tc.admin {
				t.Fatalf("got %s admin %v", p.Name(), p.Admin())
			}
		})
	}
}

// keyPair makes a key of kind and returns the PEM of its public half and
// a signing function.
func keyPair(t testing.TB, kind string) (pubPEM []byte, sign func(jwt.MapClaims) string) {
	t.Helper()
	var (
		priv   any
		pub    any
		method jwt.SigningMethod
	)
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub, method = k, &k.PublicKey, jwt.SigningMethodRS256
	case "rsa-pss":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub, method = k, &k.PublicKey, jwt.SigningMethodPS256
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub, method = k, &k.PublicKey, jwt.SigningMethodES256
	case "ed25519":
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		priv, pub, method = k, p, jwt.SigningMethodEdDSA
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return pubPEM, func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestPublicKeyTokens(t *testing.T) {
	for _, kind := range []string{"rsa", "rsa-pss", "ecdsa", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			pub, sign := keyPair(t, kind)
			writeFile(t, dir, "jwt.pem", string(pub))
			// A relative path is relative to the config file.
			path := writeFile(t, dir, "broker.toml", "[jwt]\npublic_key_file = \"jwt.pem\"\n")
			a, err := New(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := a.Authenticate(Credentials{Passcode: sign(claims("carol", "stomp_read", "/topic/.*")), RemoteAddr: remote})
			if err != nil {
				t.Fatal(err)
			}
			checkAccess(t, p, access{read: []string{"/topic/a"}, noWrite: []string{"/topic/a"}})

			_, otherSign := keyPair(t, kind)
			if _, err := a.Authenticate(Credentials{Passcode: otherSign(claims("carol")), RemoteAddr: remote}); err == nil {
				t.Error("a token signed by another key was accepted")
			}
			// HMAC with the public key as the secret: the classic
			// algorithm confusion, refused because only the key's own
			// algorithms are accepted.
			forged := hmacToken(t, pub, claims("mallory", "stomp_write", ".*"))
			if _, err := a.Authenticate(Credentials{Passcode: forged, RemoteAddr: remote}); err == nil {
				t.Error("an HMAC token keyed with the public key was accepted")
			}
			if _, err := a.Authenticate(Credentials{Passcode: sign(jwt.MapClaims{"sub": "carol", "exp": time.Now().Add(-time.Second).Unix()}), RemoteAddr: remote}); err == nil || !strings.Contains(err.Error(), "expired") {
				t.Errorf("expired token: %v", err)
			}
		})
	}
}

func TestIssuerAndAudience(t *testing.T) {
	cfg := "[jwt]\nhmac_secret = \"" + secret + "\"\nissuer = \"https://id.example\"\naudience = \"stampede\"\n"
	a := newAuth(t, cfg, Options{})
	cases := []struct {
		name string
		c    jwt.MapClaims
		ok   bool
	}{
		{"both right", claims("c", "iss", "https://id.example", "aud", "stampede"), true},
		{"audience in a list", claims("c", "iss", "https://id.example", "aud", []string{"other", "stampede"}), true},
		{"wrong issuer", claims("c", "iss", "https://evil.example", "aud", "stampede"), false},
		{"no issuer", claims("c", "aud", "stampede"), false},
		{"wrong audience", claims("c", "iss", "https://id.example", "aud", "other"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(Credentials{Passcode: hmacToken(t, []byte(secret), tc.c), RemoteAddr: remote})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	good := hash(t, "x")
	pub, _ := keyPair(t, "ecdsa")
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(ecPriv)
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	cases := []struct {
		name, config, want string
	}{
		{"not TOML", "[[user]\n", "toml"},
		{"misspelt table", "[[users]]\nname = \"a\"\n", "unknown keys: users"},
		{"unknown user key", "[[user]]\nname = \"a\"\npasscode = \"" + good + "\"\nwrites = \".*\"\n", "unknown keys: user.writes"},
		{"plain passcode", "[[user]]\nname = \"a\"\npasscode = \"secret\"\n", "not a bcrypt hash"},
		{"no name", "[[user]]\npasscode = \"" + good + "\"\n", "no name"},
		{"twice", "[[user]]\nname = \"a\"\npasscode = \"" + good + "\"\n[[user]]\nname = \"a\"\npasscode = \"" + good + "\"\n", "twice"},
		{"bad read pattern", "[[user]]\nname = \"a\"\npasscode = \"" + good + "\"\nread = \"(\"\n", "read"},
		{"unbalanced write pattern", "[[user]]\nname = \"a\"\npasscode = \"" + good + "\"\nwrite = \"a)|(.*\"\n", "write"},
		{"bad anonymous pattern", "[anonymous]\nread = \"[\"\n", "[anonymous]"},
		{"empty jwt", "[jwt]\n", "set hmac_secret or public_key_file"},
		{"both jwt keys", "[jwt]\nhmac_secret = \"" + secret + "\"\npublic_key_file = \"k.pem\"\n", "not both"},
		{"short secret", "[jwt]\nhmac_secret = \"short\"\n", "at least 32"},
		{"missing key file", "[jwt]\npublic_key_file = \"nope.pem\"\n", "nope.pem"},
		{"private key", "[jwt]\npublic_key_file = \"priv.pem\"\n", "public key only"},
		{"no key in file", "[jwt]\npublic_key_file = \"junk.pem\"\n", "no public key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "pub.pem", string(pub))
			writeFile(t, dir, "priv.pem", string(privPEM))
			writeFile(t, dir, "junk.pem", "hello\n")
			path := writeFile(t, dir, "broker.toml", tc.config)
			_, err := New(path, Options{})
			if err == nil {
				t.Fatal("config accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error repeats the secret: %v", err)
			}
		})
	}
	if _, err := New(filepath.Join(t.TempDir(), "missing.toml"), Options{}); err == nil {
		t.Error("a missing config file was accepted")
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	one := fmt.Sprintf("[[user]]\nname = \"alice\"\npasscode = %q\nwrite = \"/queue/a\"\n", hash(t, "a"))
	path := writeFile(t, dir, "broker.toml", one)
	a, err := New(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := a.Authenticate(Credentials{Login: "alice", Passcode: "a", RemoteAddr: remote})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(Credentials{Login: "bob", Passcode: "b", RemoteAddr: remote}); err == nil {
		t.Fatal("bob before he exists")
	}

	// Bob is added and alice's permissions change.
	two := fmt.Sprintf("[[user]]\nname = \"alice\"\npasscode = %q\nwrite = \"/queue/b\"\n[[user]]\nname = \"bob\"\npasscode = %q\n", hash(t, "a"), hash(t, "b"))
	writeFile(t, dir, "broker.toml", two)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(Credentials{Login: "bob", Passcode: "b", RemoteAddr: remote}); err != nil {
		t.Fatalf("bob after the reload: %v", err)
	}
	// What alice was granted at login stays; a new login gets the new.
	checkAccess(t, alice, access{write: []string{"/queue/a"}, noWrite: []string{"/queue/b"}})
	alice2, err := a.Authenticate(Credentials{Login: "alice", Passcode: "a", RemoteAddr: remote})
	if err != nil {
		t.Fatal(err)
	}
	checkAccess(t, alice2, access{write: []string{"/queue/b"}, noWrite: []string{"/queue/a"}})

	// A broken file leaves the last good config in force.
	writeFile(t, dir, "broker.toml", "[[user]]\nname = \"bob\"\npasscode = \"plain\"\n")
	if err := a.Reload(); err == nil {
		t.Fatal("a broken config was loaded")
	}
	if _, err := a.Authenticate(Credentials{Login: "bob", Passcode: "b", RemoteAddr: remote}); err != nil {
		t.Fatalf("bob after a failed reload: %v", err)
	}

	if err := newAuth(t, "", Options{}).Reload(); err == nil {
		t.Error("reload without a file succeeded")
	}
}

// TestConcurrentReload checks, under -race, that logins and reloads can
// overlap.
func TestConcurrentReload(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "broker.toml", fmt.Sprintf("[[user]]\nname = \"alice\"\npasscode = %q\nwrite = \".*\"\n", hash(t, "a")))
	a, err := New(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if err := a.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 50 {
		if _, err := a.Authenticate(Credentials{Login: "alice", Passcode: "a", RemoteAddr: remote}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

func TestLooksLikeJWT(t *testing.T) {
	cases := map[string]bool{
		hmacToken(t, []byte(secret), claims("a")): true,
		"a.b.c":                    false,
		"password":                 false,
		"eyJhbGciOiJIUzI1NiJ9":     false, // a header alone
		"eyJ0eXAiOiJKV1QifQ.e30.x": false, // no alg
		"eyJhbGciOiJub25lIn0.e30.": true,
	}
	for s, want := range cases {
		if got := looksLikeJWT(s); got != want {
			t.Errorf("looksLikeJWT(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestLoginCache checks that only right passcodes are remembered, and
// that a reload forgets them, so a changed passcode counts at once.
func TestLoginCache(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "broker.toml", fmt.Sprintf("[[user]]\nname = \"alice\"\npasscode = %q\n", hash(t, "old")))
	a, err := New(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	login := func(pass string) error {
		_, err := a.Authenticate(Credentials{Login: "alice", Passcode: pass, RemoteAddr: remote})
		return err
	}
	alice := a.cur.Load().users["alice"]
	if err := login("wrong"); err == nil {
		t.Fatal("wrong passcode accepted")
	}
	if a.cur.Load().logins.known(alice, "wrong") {
		t.Fatal("a wrong passcode was cached")
	}
	for range 2 {
		if err := login("old"); err != nil {
			t.Fatal(err)
		}
	}
	if !a.cur.Load().logins.known(alice, "old") {
		t.Fatal("a right passcode was not cached")
	}
	writeFile(t, dir, "broker.toml", fmt.Sprintf("[[user]]\nname = \"alice\"\npasscode = %q\n", hash(t, "new")))
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := login("old"); err == nil {
		t.Fatal("the old passcode still works after the reload")
	}
	if err := login("new"); err != nil {
		t.Fatal(err)
	}
}

// TestExampleConfig loads the example the README shows.
func TestExampleConfig(t *testing.T) {
	a, err := New(filepath.Join("..", "docs", "broker.example.toml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if users, jwt, guest := a.Summary(); users != 2 || jwt || guest {
		t.Fatalf("users %d, jwt %v, guest %v", users, jwt, guest)
	}
}
