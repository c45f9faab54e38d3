package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/subprotocol"
	"golang.org/x/crypto/bcrypt"
)

// The users of docs/broker.example.toml and their passcodes.
const (
	alicePass  = "alice-secret"
	ordersPass = "orders-secret"
)

// exampleConfig returns docs/broker.example.toml, after checking that the
// README's security section shows exactly that file: what users copy is
// what the tests load.
func exampleConfig(t testing.TB) string {
	t.Helper()
	file, err := os.ReadFile("../docs/broker.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Security\n")
	if !ok {
		t.Fatal("README has no Security section")
	}
	_, block, ok := strings.Cut(section, "```toml\n")
	if !ok {
		t.Fatal("README's Security section has no toml block")
	}
	block, _, _ = strings.Cut(block, "```")
	if block != string(file) {
		t.Fatalf("the README's example config differs from docs/broker.example.toml:\nREADME:\n%s\nfile:\n%s", block, file)
	}
	return string(file)
}

// writeConfig writes a config file (and any extra files next to it) and
// returns its path.
func writeConfig(t testing.TB, config string, extra map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "broker.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSecured runs the broker with config as its --config file. Refused
// logins wait only briefly, to keep the tests quick, and never make the
// address back off, since every test client comes from loopback.
func startSecured(t testing.TB, config string, extra map[string][]byte, args ...string) *brokerProc {
	t.Helper()
	all := append([]string{"--config", writeConfig(t, config, extra), "--failed-login-delay", "10ms", "--max-login-failures-per-ip", "0"}, args...)
	return startBroker(t, all...)
}

// tryConnect sends CONNECT with the given headers. It returns CONNECTED,
// or the ERROR of a refusal after checking that the connection closed.
func tryConnect(t testing.TB, p *brokerProc, tr stompTransport, kv ...string) (*rawClient, *rawFrame) {
	t.Helper()
	c := dialRaw(t, p, tr)
	c.send("CONNECT", "", append([]string{"accept-version", "1.2", "host", "/"}, kv...)...)
	f := c.next()
	if f.Command == "ERROR" {
		c.expectClosed(waitFor)
	}
	return c, f
}

// expectRefused checks an ERROR frame's message and that it gives nothing
// away about the credentials.
func expectRefused(t testing.TB, f *rawFrame, want string) {
	t.Helper()
	if f.Command != "ERROR" {
		t.Fatalf("got %s, want ERROR %q", f, want)
	}
	if got := f.Value("message"); got != want {
		t.Fatalf("ERROR message %q, want %q", got, want)
	}
	if body := strings.ToLower(string(f.Body)); strings.Contains(body, "passcode") || strings.Contains(body, "password") || strings.Contains(body, "user") {
		t.Fatalf("the ERROR says too much: %q", f.Body)
	}
}

// authCase is a login and, once in, one frame with its expected outcome.
type authCase struct {
	name  string
	creds []string // CONNECT headers
	frame string   // sent after CONNECTED, with receipt:r
	want  string   // ERROR message expected; empty means CONNECTED and RECEIPT
}

func exampleAuthCases() []authCase {
	alice := []string{"login", "alice", "passcode", alicePass}
	orders := []string{"login", "orders", "passcode", ordersPass}
	return []authCase{
		{name: "alice sends anywhere", creds: alice, frame: "SEND\ndestination:/queue/sec.any\n\nhi\x00"},
		{name: "alice subscribes to a wildcard", creds: alice, frame: "SUBSCRIBE\nid:1\ndestination:/topic/anything.#\n\n\x00"},
		{name: "wrong passcode", creds: []string{"login", "alice", "passcode", "not-alices-passcode"}, want: "access refused"},
		{name: "passcode of another user", creds: []string{"login", "alice", "passcode", ordersPass}, want: "access refused"},
		{name: "unknown user", creds: []string{"login", "mallory", "passcode", alicePass}, want: "access refused"},
		{name: "no credentials", want: "access refused"},
		{name: "login without passcode", creds: []string{"login", "alice"}, want: "access refused"},
		{name: "guest once users exist", creds: []string{"login", "guest", "passcode", "guest"}, want: "access refused"},
		{name: "orders writes its queues", creds: orders, frame: "SEND\ndestination:/queue/orders.new\n\nhi\x00"},
		{name: "orders writes elsewhere", creds: orders, frame: "SEND\ndestination:/queue/x\n\nhi\x00", want: "access refused: write /queue/x"},
		{name: "orders writes a topic it may read", creds: orders, frame: "SEND\ndestination:/topic/prices.eur\n\n1\x00", want: "access refused: write /topic/prices.eur"},
		{name: "orders reads prices", creds: orders, frame: "SUBSCRIBE\nid:1\ndestination:/topic/prices.eur\n\n\x00"},
		{name: "orders reads all prices", creds: orders, frame: "SUBSCRIBE\nid:1\ndestination:/topic/prices.#\n\n\x00"},
		{name: "orders reads every topic", creds: orders, frame: "SUBSCRIBE\nid:1\ndestination:/topic/#\n\n\x00", want: "access refused: read /topic/#"},
		{name: "orders reads elsewhere", creds: orders, frame: "SUBSCRIBE\nid:1\ndestination:/queue/x\n\n\x00", want: "access refused: read /queue/x"},
		{name: "orders wants replies elsewhere", creds: orders, frame: "SEND\ndestination:/queue/orders.a\nreply-to:/queue/x\n\n\x00", want: "access refused: read /queue/x"},
		{name: "orders wants replies on a temp queue", creds: orders, frame: "SEND\ndestination:/queue/orders.a\nreply-to:/temp-queue/r\n\n\x00"},
		{name: "orders reads its temp queue", creds: orders, frame: "SUBSCRIBE\nid:1\ndestination:/temp-queue/mine\n\n\x00"},
	}
}

// TestSecurityExampleConfig runs the table of logins and permissions of
// the README's example config over TCP and WebSocket.
func TestSecurityExampleConfig(t *testing.T) {
	p := startSecured(t, exampleConfig(t), nil)
	for _, tr := range stompTransports {
		for _, tc := range exampleAuthCases() {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				c, f := tryConnect(t, p, tr, tc.creds...)
				if tc.frame == "" {
					if tc.want == "" {
						if f.Command != "CONNECTED" {
							t.Fatalf("got %s, want CONNECTED", f)
						}
						return
					}
					expectRefused(t, f, tc.want)
					return
				}
				if f.Command != "CONNECTED" {
					t.Fatalf("login refused: %s", f)
				}
				head, body, _ := strings.Cut(tc.frame, "\n\n")
				c.write(head + "\nreceipt:r\n\n" + body)
				f = c.next()
				if tc.want == "" {
					if f.Command != "RECEIPT" {
						t.Fatalf("got %s, want RECEIPT", f)
					}
					return
				}
				expectRefused(t, f, tc.want)
				if got := f.Value("receipt-id"); got != "r" {
					t.Errorf("ERROR receipt-id %q, want r", got)
				}
				c.expectClosed(waitFor)
			})
		}
	}

	// go-stomp, logged in, across transports: orders reads over
	// WebSocket what alice sends over TCP.
	alice := goConnect(t, p, tcpTransport, stomp.ConnOpt.Login("alice", alicePass))
	orders := goConnect(t, p, wsTransport, stomp.ConnOpt.Login("orders", ordersPass))
	sub := subscribeVia(t, orders, "/queue/orders.go", "/queue/orders.barrier")
	send(t, alice, "/queue/orders.go", "from alice")
	if got := recvBody(t, sub); got != "from alice" {
		t.Fatalf("orders got %q", got)
	}

	// Nothing refused was delivered or stored.
	x := subscribe(t, alice, "/queue/x", stomp.AckAuto)
	expectNothing(t, x, 300*time.Millisecond)

	// The admin API knows the same users, and wants the admin tag.
	for _, tc := range []struct {
		user, pass string
		status     int
	}{
		{"alice", alicePass, http.StatusOK},
		{"orders", ordersPass, http.StatusForbidden},
		{"alice", "not-alices-passcode", http.StatusUnauthorized},
		{"guest", "guest", http.StatusUnauthorized},
	} {
		req, err := http.NewRequest("GET", p.HTTPURL+"/api/v1/overview", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(tc.user, tc.pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("GET /api/v1/overview as %s: %s, want %d", tc.user, resp.Status, tc.status)
		}
	}

	logs := p.Logs()
	for _, secret := range []string{alicePass, ordersPass, "not-alices-passcode"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the broker's log contains a passcode (%q)", secret)
		}
	}
	if !strings.Contains(logs, "login refused") {
		t.Errorf("refused logins were not logged:\n%s", logs)
	}
}

// TestSecurityAnonymous: with --allow-anonymous, a CONNECT without
// credentials gets the [anonymous] permissions, and only those.
func TestSecurityAnonymous(t *testing.T) {
	p := startSecured(t, exampleConfig(t), nil, "--allow-anonymous")
	for _, tr := range stompTransports {
		t.Run(tr.name, func(t *testing.T) {
			c, f := tryConnect(t, p, tr)
			if f.Command != "CONNECTED" {
				t.Fatalf("anonymous CONNECT: %s", f)
			}
			c.send("SUBSCRIBE", "", "id", "1", "destination", "/topic/public.news", "receipt", "r1")
			c.expect("RECEIPT")
			c.send("SEND", "hi", "destination", "/topic/public.news", "receipt", "r2")
			expectRefused(t, c.next(), "access refused: write /topic/public.news")
			c.expectClosed(waitFor)
			// A wrong passcode is still refused.
			_, f = tryConnect(t, p, tr, "login", "alice", "passcode", "nope")
			expectRefused(t, f, "access refused")
		})
	}
}

// TestSecurityGuest: with no users configured, guest/guest (or no
// credentials) works from loopback. (That it does not from elsewhere is
// in the auth package's tests: the tests reach the broker over loopback
// only.) A SIGHUP without --config leaves the broker running.
func TestSecurityGuest(t *testing.T) {
	p := startBroker(t, "--failed-login-delay", "10ms")
	for _, tr := range stompTransports {
		t.Run(tr.name, func(t *testing.T) {
			for _, creds := range [][]string{{"login", "guest", "passcode", "guest"}, nil} {
				if _, f := tryConnect(t, p, tr, creds...); f.Command != "CONNECTED" {
					t.Fatalf("guest %v: %s", creds, f)
				}
			}
			_, f := tryConnect(t, p, tr, "login", "guest", "passcode", "Guest")
			expectRefused(t, f, "access refused")
			_, f = tryConnect(t, p, tr, "login", "alice", "passcode", "guest")
			expectRefused(t, f, "access refused")
		})
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p, "no --config file to reload")
	goConnect(t, p, tcpTransport, stomp.ConnOpt.Login("guest", "guest"))
}

// subscribeVia subscribes and waits until the subscription is in place,
// with a receipted SEND to barrier: unlike subscribe, for users who may
// not write to /topic/barrier.
func subscribeVia(t testing.TB, c *stomp.Conn, dest, barrier string) *stomp.Subscription {
	t.Helper()
	sub, err := c.Subscribe(dest, stomp.AckAuto)
	if err != nil {
		t.Fatalf("subscribe %s: %v", dest, err)
	}
	send(t, c, barrier, "barrier")
	return sub
}

// waitForLog waits until the broker has logged s.
func waitForLog(t testing.TB, p *brokerProc, s string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(p.Logs(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the broker did not log %q within %v", s, waitFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSecurityReload adds a user and narrows another by SIGHUP, with
// clients connected throughout.
func TestSecurityReload(t *testing.T) {
	example := exampleConfig(t)
	path := writeConfig(t, example, nil)
	p := startBroker(t, "--config", path, "--failed-login-delay", "10ms")

	orders := goConnect(t, p, tcpTransport, stomp.ConnOpt.Login("orders", ordersPass))
	sub := subscribeVia(t, orders, "/queue/orders.reload", "/queue/orders.barrier")
	if _, f := tryConnect(t, p, wsTransport, "login", "carol", "passcode", "carol-pass"); f.Command != "ERROR" {
		t.Fatalf("carol before she exists: %s", f)
	}

	hash, err := bcrypt.GenerateFromPassword([]byte("carol-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	narrowed := strings.Replace(example, `write = '/queue/orders\..*'`, `write = '/queue/orders\.audit'`, 1)
	if narrowed == example {
		t.Fatal("the example config no longer has the orders write pattern this test changes")
	}
	updated := narrowed + "\n[[user]]\nname = \"carol\"\npasscode = \"" + string(hash) + "\"\nread = \"/queue/orders\\\\..*\"\nwrite = \"/queue/carol\"\n"
	if err := os.WriteFile(path, []byte(updated), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p, "security config loaded")

	// Carol gets in, with her permissions.
	carol := goConnect(t, p, wsTransport, stomp.ConnOpt.Login("carol", "carol-pass"))
	carolSub := subscribeVia(t, carol, "/queue/orders.reload", "/queue/carol")
	// The connection made before the reload is still up and keeps what
	// it was granted: it may still send to /queue/orders.reload.
	send(t, orders, "/queue/orders.reload", "still here")
	select {
	case m := <-sub.C:
		if m.Err != nil || string(m.Body) != "still here" {
			t.Fatalf("orders' own subscription: %v %q", m.Err, m.Body)
		}
	case m := <-carolSub.C:
		if m.Err != nil || string(m.Body) != "still here" {
			t.Fatalf("carol's subscription: %v %q", m.Err, m.Body)
		}
	case <-time.After(waitFor):
		t.Fatal("the message sent after the reload did not arrive")
	}
	// A new login of orders gets the narrowed permissions.
	c, f := tryConnect(t, p, tcpTransport, "login", "orders", "passcode", ordersPass)
	if f.Command != "CONNECTED" {
		t.Fatalf("orders after the reload: %s", f)
	}
	c.send("SEND", "x", "destination", "/queue/orders.reload", "receipt", "r")
	expectRefused(t, c.next(), "access refused: write /queue/orders.reload")

	// A broken file is refused and the last good one stays.
	if err := os.WriteFile(path, []byte("[[users]]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, p, "config reload failed")
	goConnect(t, p, tcpTransport, stomp.ConnOpt.Login("carol", "carol-pass"))
	if _, f := tryConnect(t, p, tcpTransport); f.Command != "ERROR" {
		t.Fatalf("no credentials after a failed reload: %s", f)
	}
	send(t, orders, "/queue/orders.reload", "after a failed reload")
}

// jwtCase is a token and what it may do.
type jwtCase struct {
	name   string
	creds  func(tok string) []string // CONNECT headers
	bearer bool                      // send the token on the WebSocket handshake
	claims jwt.MapClaims
	sign   func(jwt.MapClaims) string // default: the configured key
	want   string                     // ERROR at CONNECT; empty means CONNECTED
}

func validClaims(sub string, kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func expiredClaims(sub string) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "exp": time.Now().Add(-time.Minute).Unix()}
}

func hs256(key []byte) func(jwt.MapClaims) string {
	return func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
		if err != nil {
			panic(err)
		}
		return s
	}
}

func asPasscode(tok string) []string { return []string{"passcode", tok} }

// dialBearer opens a WebSocket with the token in the handshake.
func dialBearer(t testing.TB, p *brokerProc, tok string) io.ReadWriteCloser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	rwc, err := subprotocol.Dial(ctx, p.WSURL, subprotocol.WithHeader(http.Header{"Authorization": {"Bearer " + tok}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rwc.Close() })
	return rwc
}

// runJWTCases checks each case's login, and that a token's permissions
// hold: sub "writer" carries stomp_write /queue/jwt\..*.
func runJWTCases(t *testing.T, p *brokerProc, sign func(jwt.MapClaims) string, cases []jwtCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := sign
			if tc.sign != nil {
				s = tc.sign
			}
			tok := s(tc.claims)
			var (
				c *rawClient
				f *rawFrame
			)
			if tc.bearer {
				c = newRawClient(t, dialBearer(t, p, tok))
				c.send("CONNECT", "", append([]string{"accept-version", "1.2"}, tc.creds(tok)...)...)
				f = c.next()
			} else {
				c, f = tryConnect(t, p, tcpTransport, tc.creds(tok)...)
			}
			if tc.want != "" {
				expectRefused(t, f, tc.want)
				return
			}
			if f.Command != "CONNECTED" {
				t.Fatalf("token refused: %s", f)
			}
			if tc.claims["stomp_write"] == nil {
				return
			}
			c.send("SEND", "ok", "destination", "/queue/jwt.in", "receipt", "r1")
			c.expect("RECEIPT")
			c.send("SEND", "no", "destination", "/queue/x", "receipt", "r2")
			expectRefused(t, c.next(), "access refused: write /queue/x")
		})
	}
	logs := p.Logs()
	if strings.Contains(logs, "eyJ") {
		t.Errorf("the broker's log contains a token")
	}
}

func commonJWTCases() []jwtCase {
	writer := validClaims("writer", "stomp_write", `/queue/jwt\..*`)
	return []jwtCase{
		{name: "token as passcode", creds: asPasscode, claims: writer},
		{name: "token with its sub as login", creds: func(tok string) []string { return []string{"login", "writer", "passcode", tok} }, claims: writer},
		{name: "token with another login", creds: func(tok string) []string { return []string{"login", "alice", "passcode", tok} }, claims: writer, want: "access refused"},
		{name: "token in the handshake", creds: func(string) []string { return nil }, bearer: true, claims: writer},
		{name: "expired token as passcode", creds: asPasscode, claims: expiredClaims("writer"), want: "access refused"},
		{name: "expired token in the handshake", creds: func(string) []string { return nil }, bearer: true, claims: expiredClaims("writer"), want: "access refused"},
		{name: "token without exp", creds: asPasscode, claims: jwt.MapClaims{"sub": "writer"}, want: "access refused"},
		{name: "token signed with another key", creds: asPasscode, claims: writer, sign: hs256([]byte(strings.Repeat("k", 32))), want: "access refused"},
	}
}

// TestSecurityJWTHMAC: tokens signed with the configured HMAC secret, on
// top of the example config's users.
func TestSecurityJWTHMAC(t *testing.T) {
	secret := []byte("a-test-secret-of-at-least-32-bytes-0123456789")
	p := startSecured(t, exampleConfig(t)+"\n[jwt]\nhmac_secret = \""+string(secret)+"\"\n", nil)
	runJWTCases(t, p, hs256(secret), commonJWTCases())
	// Users of the file still log in with their passcodes.
	goConnect(t, p, wsTransport, stomp.ConnOpt.Login("alice", alicePass))
	// go-stomp with a token.
	c := goConnect(t, p, tcpTransport, stomp.ConnOpt.Login("", hs256(secret)(validClaims("reader", "stomp_read", "/topic/jwt", "stomp_write", "/queue/jwt.barrier"))))
	subscribeVia(t, c, "/topic/jwt", "/queue/jwt.barrier")
}

// TestSecurityJWTPublicKey: tokens signed by an ECDSA or RSA key, of
// which the broker has the public half.
func TestSecurityJWTPublicKey(t *testing.T) {
	for _, kind := range []string{"ecdsa", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			var (
				priv   any
				pub    any
				method jwt.SigningMethod
			)
			if kind == "ecdsa" {
				k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				priv, pub, method = k, &k.PublicKey, jwt.SigningMethodES256
			} else {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				priv, pub, method = k, &k.PublicKey, jwt.SigningMethodRS256
			}
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			sign := func(c jwt.MapClaims) string {
				s, err := jwt.NewWithClaims(method, c).SignedString(priv)
				if err != nil {
					panic(err)
				}
				return s
			}
			p := startSecured(t, "[jwt]\npublic_key_file = \"jwt-public.pem\"\n", map[string][]byte{"jwt-public.pem": pubPEM})
			cases := append(commonJWTCases(), jwtCase{
				// The public key as an HMAC secret: refused, since
				// only the key's own algorithms are accepted.
				name: "HMAC keyed with the public key", creds: asPasscode,
				claims: validClaims("mallory", "stomp_write", ".*"), sign: hs256(pubPEM), want: "access refused",
			})
			runJWTCases(t, p, sign, cases)
		})
	}
}

// TestSecurityNodeSTOMPJS runs js/auth.mjs against the example config.
func TestSecurityNodeSTOMPJS(t *testing.T) {
	node := requireNode(t)
	p := startSecured(t, exampleConfig(t), nil)
	runNodeScript(t, node, 40*time.Second, "auth", p.WSURL)
}

// testPKI is a CA and a server certificate for 127.0.0.1 and localhost.
type testPKI struct {
	roots             *x509.CertPool
	certPEM, keyPEM   []byte
	certFile, keyFile string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Stampede test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	k := &testPKI{roots: x509.NewCertPool()}
	k.roots.AddCert(ca)
	k.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	k.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	dir := t.TempDir()
	k.certFile, k.keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(k.certFile, k.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.keyFile, k.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *testPKI) client(maxVersion uint16) *tls.Config {
	return &tls.Config{RootCAs: k.roots, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}
}

// startTLSBroker runs the broker with TLS on both listeners.
func startTLSBroker(t testing.TB, k *testPKI, args ...string) *brokerProc {
	t.Helper()
	return startBroker(t, append([]string{"--tls-cert", k.certFile, "--tls-key", k.keyFile}, args...)...)
}

// TestSecurityTLS: wss:// and STOMP over TLS with a certificate made
// here; TLS 1.1 is refused on both listeners; HTTP stays HTTP/1.1.
func TestSecurityTLS(t *testing.T) {
	k := newTestPKI(t)
	p := startTLSBroker(t, k)
	host, _, _ := net.SplitHostPort(p.TCPAddr)
	if host != "127.0.0.1" && host != "localhost" {
		t.Fatalf("unexpected STOMP address %s", p.TCPAddr)
	}

	tlsTCP := stompTransport{"tls", func(ctx context.Context, p *brokerProc) (io.ReadWriteCloser, error) {
		d := tls.Dialer{Config: k.client(0)}
		return d.DialContext(ctx, "tcp", p.TCPAddr)
	}}
	wss := stompTransport{"wss", func(ctx context.Context, p *brokerProc) (io.ReadWriteCloser, error) {
		return subprotocol.Dial(ctx, p.WSURL, subprotocol.WithDialer(&websocket.Dialer{TLSClientConfig: k.client(0), HandshakeTimeout: waitFor}))
	}}
	// go-stomp over each, both ways.
	pub := goConnect(t, p, tlsTCP, stomp.ConnOpt.Login("guest", "guest"))
	sub := goConnect(t, p, wss, stomp.ConnOpt.Login("guest", "guest"))
	s1 := subscribe(t, sub, "/queue/tls", stomp.AckAuto)
	s2 := subscribe(t, pub, "/topic/tls", stomp.AckAuto)
	send(t, pub, "/queue/tls", "over stomp+ssl")
	send(t, sub, "/topic/tls", "over wss")
	if got := recvBody(t, s1); got != "over stomp+ssl" {
		t.Fatalf("wss subscriber got %q", got)
	}
	if got := recvBody(t, s2); got != "over wss" {
		t.Fatalf("stomp+ssl subscriber got %q", got)
	}

	// The negotiated version is 1.2 or later, and HTTP/2 is not offered
	// (WebSocket upgrades need HTTP/1.1).
	conn, err := tls.Dial("tcp", p.TCPAddr, k.client(0))
	if err != nil {
		t.Fatal(err)
	}
	if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("STOMP listener negotiated TLS version %x", v)
	}
	conn.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: k.client(0), ForceAttemptHTTP2: true}, Timeout: waitFor}
	resp, err := client.Get(p.HTTPURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/1.1" {
		t.Errorf("GET /healthz over TLS: %s %s", resp.Proto, resp.Status)
	}

	// TLS 1.1 (and 1.0) are refused by both listeners.
	httpAddr := strings.TrimPrefix(p.HTTPURL, "https://")
	for _, addr := range []string{p.TCPAddr, httpAddr} {
		for _, v := range []uint16{tls.VersionTLS11, tls.VersionTLS10} {
			d := tls.Dialer{NetDialer: &net.Dialer{Timeout: waitFor}, Config: k.client(v)}
			conn, err := d.DialContext(t.Context(), "tcp", addr)
			if err == nil {
				conn.Close()
				t.Errorf("%s accepted TLS version %x", addr, v)
				continue
			}
			// The server's alert, not a client that would not even
			// try: the broker must be the one refusing.
			if msg := err.Error(); !strings.Contains(msg, "remote error") || !strings.Contains(msg, "protocol version") {
				t.Errorf("%s with TLS %x: %v; want the server's protocol_version alert", addr, v, err)
			}
		}
	}
	// Plain text on the TLS ports gets no STOMP.
	plain := dialRaw(t, p, tcpTransport)
	plain.write("CONNECT\naccept-version:1.2\n\n\x00")
	for _, f := range plain.expectClosed(waitFor) {
		if f.Command == "CONNECTED" {
			t.Fatal("a plain-text CONNECT was answered on the TLS port")
		}
	}
	if _, err := subprotocol.Dial(t.Context(), strings.Replace(p.WSURL, "wss://", "ws://", 1)); err == nil {
		t.Error("a plain ws:// handshake succeeded on the TLS port")
	}
}
