// Package auth decides who may connect to the broker and where they may
// go: users with bcrypt passcodes and per-user destination patterns from a
// TOML file, JSON Web Tokens, the loopback-only built-in guest and, when
// switched on, anonymous clients. The file can be reloaded while clients
// stay connected: a login uses the configuration current at that moment,
// and a client keeps what it was granted then.
//
// The package knows nothing of the broker; Principal has the methods the
// broker's Principal interface asks for, and the admin tag tells the
// console who may use it.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Built-in identities.
const (
	// GuestName is the built-in user: login guest, passcode guest, from
	// loopback addresses only, and only while no users and no [jwt] are
	// configured.
	GuestName = "guest"
	// AnonymousName is who a CONNECT without credentials is, when
	// anonymous access is on.
	AnonymousName = "anonymous"
)

// ErrRefused is wrapped by every refusal. The wrapping error says why, for
// the operator's log; the client is told only "access refused".
var ErrRefused = errors.New("access refused")

// Principal is an authenticated client. It satisfies the broker's
// Principal interface.
type Principal struct {
	name        string
	tags        []string
	read, write *regexp.Regexp // nil: nothing
}

// Name is the user name.
func (p *Principal) Name() string { return p.name }

// CanRead reports whether the client may SUBSCRIBE to dest. A wildcard
// subscription is checked as written: the pattern itself must match.
func (p *Principal) CanRead(dest string) bool { return p.read != nil && p.read.MatchString(dest) }

// CanWrite reports whether the client may SEND to dest.
func (p *Principal) CanWrite(dest string) bool { return p.write != nil && p.write.MatchString(dest) }

// HasTag reports whether the user carries tag.
func (p *Principal) HasTag(tag string) bool { return slices.Contains(p.tags, tag) }

// Admin reports whether the user may use the admin console and API.
func (p *Principal) Admin() bool { return p.HasTag(TagAdmin) }

// Credentials are what a client presents.
type Credentials struct {
	// Login and Passcode come from CONNECT (or HTTP Basic). Passcode may
	// be a JWT.
	Login, Passcode string
	// Bearer is a token the transport received outside STOMP, such as
	// an "Authorization: Bearer" WebSocket handshake header. It is used
	// when the CONNECT carries no passcode.
	Bearer string
	// RemoteAddr is the client's host:port.
	RemoteAddr string
}

// Options configures an Authenticator.
type Options struct {
	// AllowAnonymous lets a CONNECT without credentials in, with the
	// permissions of the config's [anonymous] table (none without it).
	AllowAnonymous bool
	// Logger receives reload reports; nil discards them.
	Logger *slog.Logger
	// MaxFailures is how many failed logins an address may make before
	// it has to back off: each further failure doubles its wait, from a
	// second up to BackoffMax, and it is refused without a check while
	// it waits. Zero or less means no backoff.
	MaxFailures int
	// BackoffMax is the longest such wait; zero means DefaultBackoffMax.
	// An address's failures are forgotten twice that long after its last.
	BackoffMax time.Duration
	// MaxChecksPerAddress bounds the passcode checks (bcrypt) one
	// address may run or queue for at once; its other logins wait their
	// turn. Zero or less means no bound.
	MaxChecksPerAddress int
}

// Defaults for the login throttle, as the broker's flags give them.
const (
	DefaultMaxFailures         = 10
	DefaultBackoffMax          = time.Minute
	DefaultMaxChecksPerAddress = 1
)

// Authenticator checks credentials against the current configuration.
// It is safe for concurrent use.
type Authenticator struct {
	path string
	opts Options
	log  *slog.Logger
	cur  atomic.Pointer[compiled]
	// bcrypt is deliberately slow; a flood of logins must not take every
	// core from the clients already connected, so checks queue here, and
	// guessers must not keep honest logins queueing.
	throttle *throttle
	reloadMu sync.Mutex
}

// New returns an Authenticator for the config file at path; with path
// empty, no users are configured (only the loopback guest gets in).
func New(path string, opts Options) (*Authenticator, error) {
	a := &Authenticator{
		path:     path,
		opts:     opts,
		log:      opts.Logger,
		throttle: newThrottle(runtime.GOMAXPROCS(0)/2, opts),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	c, err := a.load()
	if err != nil {
		return nil, err
	}
	a.cur.Store(c)
	return a, nil
}

func (a *Authenticator) load() (*compiled, error) {
	if a.path == "" {
		return compile(&Config{})
	}
	cfg, err := LoadConfig(a.path)
	if err != nil {
		return nil, err
	}
	c, err := compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.path, err)
	}
	return c, nil
}

// Reload reads the config file again. On success new logins use it at
// once; clients already connected keep what they were granted. On error
// the previous configuration stays in force.
func (a *Authenticator) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.path == "" {
		return errors.New("no config file to reload")
	}
	c, err := a.load()
	if err != nil {
		return err
	}
	a.cur.Store(c)
	a.log.Info("security config loaded", "file", a.path, "users", len(c.users), "jwt", c.jwt != nil)
	return nil
}

// Summary describes the configuration in force, for a start-up log line.
func (a *Authenticator) Summary() (users int, jwt, guest bool) {
	c := a.cur.Load()
	return len(c.users), c.jwt != nil, c.open()
}

// Authenticate checks a STOMP client's credentials:
//
//   - a passcode that is a JWT, or with no passcode a Bearer token, is
//     verified against [jwt]; login, when given, must equal its sub;
//   - otherwise login and passcode must match a [[user]];
//   - guest/guest, and a CONNECT without credentials, is the built-in
//     guest, with every permission, from loopback while no users and no
//     [jwt] are configured;
//   - otherwise a CONNECT without credentials is anonymous, if allowed.
//
// The error says which check failed; it never contains the passcode.
func (a *Authenticator) Authenticate(c Credentials) (*Principal, error) {
	return a.authenticate(c, true)
}

// AuthenticateUser checks a user name and password, for HTTP logins:
// like Authenticate, except that empty credentials are always refused.
func (a *Authenticator) AuthenticateUser(name, password, remoteAddr string) (*Principal, error) {
	return a.authenticate(Credentials{Login: name, Passcode: password, RemoteAddr: remoteAddr}, false)
}

func (a *Authenticator) authenticate(c Credentials, stomp bool) (*Principal, error) {
	addr := addressKey(c.RemoteAddr)
	if err := a.throttle.admit(addr); err != nil {
		return nil, err
	}
	p, err := a.check(c, stomp, addr)
	var backoff *backoffError
	if err != nil && !errors.As(err, &backoff) {
		a.throttle.failed(addr)
	}
	return p, err
}

// check is authenticate without the throttle's bookkeeping.
func (a *Authenticator) check(c Credentials, stomp bool, addr string) (*Principal, error) {
	cfg := a.cur.Load()
	token := ""
	switch {
	case cfg.jwt != nil && looksLikeJWT(c.Passcode):
		token = c.Passcode
	case c.Passcode == "" && c.Bearer != "":
		token = c.Bearer
	}
	if token != "" {
		if cfg.jwt == nil {
			return nil, fmt.Errorf("%w: token given but no [jwt] configured", ErrRefused)
		}
		p, err := cfg.jwt.verify(token)
		if err != nil {
			return nil, err
		}
		if c.Login != "" && c.Login != p.name {
			return nil, fmt.Errorf("%w: login %q differs from the token's sub %q", ErrRefused, c.Login, p.name)
		}
		return p, nil
	}
	if c.Login == "" && c.Passcode == "" {
		switch {
		case !stomp:
		case cfg.open() && IsLoopback(c.RemoteAddr):
			// As RabbitMQ's default user: with nothing configured, a
			// local client need not name itself.
			return cfg.guest, nil
		case a.opts.AllowAnonymous:
			return cfg.anonymous, nil
		}
		return nil, fmt.Errorf("%w: no credentials, and anonymous access is off", ErrRefused)
	}
	u := cfg.users[c.Login]
	if u == nil {
		if cfg.open() && c.Login == GuestName {
			if subtle.ConstantTimeCompare([]byte(c.Passcode), []byte(GuestName)) != 1 {
				return nil, fmt.Errorf("%w: wrong passcode for guest", ErrRefused)
			}
			if !IsLoopback(c.RemoteAddr) {
				return nil, fmt.Errorf("%w: guest may only connect from loopback", ErrRefused)
			}
			return cfg.guest, nil
		}
		// Spend the time a real check takes, so the answer's delay does
		// not tell which user names exist.
		if cfg.dummy != nil {
			if _, err := a.compare(addr, cfg.dummy, c.Passcode); err != nil {
				return nil, err
			}
		}
		return nil, fmt.Errorf("%w: unknown user %q", ErrRefused, c.Login)
	}
	if !cfg.logins.known(u, c.Passcode) {
		ok, err := a.compare(addr, u.hash, c.Passcode)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: wrong passcode for %q", ErrRefused, c.Login)
		}
		cfg.logins.add(u, c.Passcode)
	}
	return &Principal{name: u.name, tags: u.tags, read: u.read, write: u.write}, nil
}

// compare checks a passcode against a bcrypt hash, when the throttle
// lets addr have a slot; an error means it refused addr meanwhile.
func (a *Authenticator) compare(addr string, hash []byte, passcode string) (bool, error) {
	return a.throttle.check(addr, func() bool {
		return bcrypt.CompareHashAndPassword(hash, []byte(passcode)) == nil
	})
}

// maxCachedLogins bounds the login cache; when full it starts over.
const maxCachedLogins = 10000

// loginCache remembers passcodes that passed bcrypt, so a client that
// reconnects, or many clients sharing one account, do not pay bcrypt's
// cost again. Only successes are kept: a wrong guess always costs a full
// check. Entries are HMACs of user, hash and passcode under a key made for
// this cache, never the passcode itself. A reload starts a new cache, so a
// changed passcode takes effect at once.
type loginCache struct {
	key []byte
	mu  sync.Mutex
	m   map[[sha256.Size]byte]struct{}
}

func newLoginCache() *loginCache {
	key := make([]byte, 32)
	rand.Read(key) // never fails
	return &loginCache{key: key, m: make(map[[sha256.Size]byte]struct{})}
}

func (lc *loginCache) sum(u *user, passcode string) [sha256.Size]byte {
	h := hmac.New(sha256.New, lc.key)
	h.Write([]byte(u.name))
	h.Write([]byte{0})
	h.Write(u.hash)
	h.Write([]byte{0})
	h.Write([]byte(passcode))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

func (lc *loginCache) known(u *user, passcode string) bool {
	k := lc.sum(u, passcode)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	_, ok := lc.m[k]
	return ok
}

func (lc *loginCache) add(u *user, passcode string) {
	k := lc.sum(u, passcode)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if len(lc.m) >= maxCachedLogins {
		clear(lc.m)
	}
	lc.m[k] = struct{}{}
}
