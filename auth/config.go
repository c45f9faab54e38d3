package auth

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/bcrypt"
)

// Config is the security part of the broker's TOML config file.
//
//	[[user]]
//	name = "alice"
//	passcode = "$2a$10$…"          # bcrypt hash
//	tags = ["admin"]
//	read = "/(queue|topic)/.*"     # may SUBSCRIBE to matching destinations
//	write = "/(queue|topic)/.*"    # may SEND to matching destinations
//
//	[jwt]
//	hmac_secret = "…"              # or public_key_file = "…"
//
//	[anonymous]                    # used only with --allow-anonymous
//	read = "/topic/public\\..*"
type Config struct {
	Users []UserConfig `toml:"user"`
	// JWT, when set, lets clients log in with a signed token.
	JWT *JWTConfig `toml:"jwt"`
	// Anonymous is what a CONNECT without credentials may do when
	// anonymous access is switched on; absent, it may do nothing.
	Anonymous *Permissions `toml:"anonymous"`
	// Topics set topic history per pattern. Logins do not use them; they
	// live in the same file, which this package reads and checks.
	Topics []TopicConfig `toml:"topic"`
}

// TopicConfig is one [[topic]] table: how much history the topics a
// pattern matches keep. The broker interprets it; Age and Bytes are kept
// as written ("24h", "8MiB").
type TopicConfig struct {
	Match   string `toml:"match"`
	History int    `toml:"history"`
	Age     string `toml:"history_age"`
	Bytes   string `toml:"history_bytes"`
}

// Permissions are regular expressions over destination names. Each must
// match the whole name (it is anchored at both ends whether or not it is
// written with ^ and $). An empty one matches nothing.
type Permissions struct {
	// Read governs SUBSCRIBE, and reply-to headers (replies come back
	// there).
	Read string `toml:"read"`
	// Write governs SEND.
	Write string `toml:"write"`
}

// UserConfig is one [[user]] table.
type UserConfig struct {
	Name string `toml:"name"`
	// Passcode is a bcrypt hash, as `broker hash-password` prints it.
	Passcode string `toml:"passcode"`
	// Tags mark roles; "admin" opens the admin console and API.
	Tags []string `toml:"tags"`
	Permissions
}

// JWTConfig is the [jwt] table: how tokens are verified. Exactly one of
// HMACSecret and PublicKeyFile is set.
type JWTConfig struct {
	// HMACSecret verifies HS256/HS384/HS512 tokens; at least 32 bytes.
	HMACSecret string `toml:"hmac_secret"`
	// PublicKeyFile is a PEM file with an RSA, ECDSA or Ed25519 public
	// key (or a certificate holding one); relative paths are relative to
	// the config file.
	PublicKeyFile string `toml:"public_key_file"`
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `toml:"issuer"`
	// Audience, when set, must be among the token's aud claim.
	Audience string `toml:"audience"`
}

// TagAdmin is the tag that grants access to the admin console and API.
const TagAdmin = "admin"

// minHMACSecret is the shortest HMAC secret accepted: RFC 7518 (3.2) asks
// for a key at least as long as the hash, 32 bytes for HS256.
const minHMACSecret = 32

// LoadConfig reads and checks a config file. Keys it does not know are an
// error: a misspelt table (say [[users]]) would otherwise leave the broker
// with no users, which means open to loopback guests.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.JWT != nil && cfg.JWT.PublicKeyFile != "" && !filepath.IsAbs(cfg.JWT.PublicKeyFile) {
		cfg.JWT.PublicKeyFile = filepath.Join(filepath.Dir(path), cfg.JWT.PublicKeyFile)
	}
	return cfg, nil
}

// ParseConfig decodes a config file's contents; see LoadConfig.
func ParseConfig(data []byte) (*Config, error) {
	var cfg Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		unknown = append(unknown, k.String())
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown keys: %s", strings.Join(unknown, ", "))
	}
	return &cfg, nil
}

// user is a configured user, compiled.
type user struct {
	name        string
	hash        []byte
	tags        []string
	read, write *regexp.Regexp
}

// compiled is a Config ready for logins; it is never changed once built,
// so a reload swaps it whole.
type compiled struct {
	users     map[string]*user
	jwt       *verifier // nil: tokens are not accepted
	anonymous *Principal
	guest     *Principal
	// dummy is a hash of a random secret at the users' cost: checking a
	// passcode for an unknown user against it takes as long as for a
	// real one, so timing does not tell which user names exist.
	dummy []byte
	// logins caches successful passcode checks.
	logins *loginCache
}

// open reports whether the broker runs without configured identities,
// the only state in which the built-in guest exists.
func (c *compiled) open() bool { return len(c.users) == 0 && c.jwt == nil }

func compile(cfg *Config) (*compiled, error) {
	c := &compiled{users: make(map[string]*user, len(cfg.Users)), logins: newLoginCache()}
	for i, u := range cfg.Users {
		if u.Name == "" {
			return nil, fmt.Errorf("user %d has no name", i+1)
		}
		if c.users[u.Name] != nil {
			return nil, fmt.Errorf("user %q appears twice", u.Name)
		}
		// Checking the hash now turns a pasted plain password into a
		// config error instead of a user who can never log in.
		if _, err := bcrypt.Cost([]byte(u.Passcode)); err != nil {
			return nil, fmt.Errorf("user %q: passcode is not a bcrypt hash (make one with `broker hash-password`)", u.Name)
		}
		read, write, err := u.Permissions.compile()
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		c.users[u.Name] = &user{
			name: u.Name, hash: []byte(u.Passcode), tags: slices.Clone(u.Tags),
			read: read, write: write,
		}
	}
	if len(cfg.Users) > 0 {
		cost, _ := bcrypt.Cost([]byte(cfg.Users[0].Passcode))
		dummy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
		if err != nil {
			return nil, err
		}
		c.dummy = dummy
	}
	if cfg.JWT != nil {
		v, err := newVerifier(cfg.JWT)
		if err != nil {
			return nil, fmt.Errorf("[jwt]: %w", err)
		}
		c.jwt = v
	}
	everything := regexp.MustCompile(".*")
	c.guest = &Principal{name: GuestName, tags: []string{TagAdmin}, read: everything, write: everything}
	c.anonymous = &Principal{name: AnonymousName}
	if cfg.Anonymous != nil {
		read, write, err := cfg.Anonymous.compile()
		if err != nil {
			return nil, fmt.Errorf("[anonymous]: %w", err)
		}
		c.anonymous.read, c.anonymous.write = read, write
	}
	return c, nil
}

// maxPattern bounds a permission pattern. Go's regexp runs in linear time,
// but a pattern from a token is client input and its size should be too.
const maxPattern = 4096

func (p Permissions) compile() (read, write *regexp.Regexp, err error) {
	if read, err = compilePattern(p.Read); err != nil {
		return nil, nil, fmt.Errorf("read: %w", err)
	}
	if write, err = compilePattern(p.Write); err != nil {
		return nil, nil, fmt.Errorf("write: %w", err)
	}
	return read, write, nil
}

// compilePattern anchors a permission pattern, so "/queue/a" cannot also
// grant "/queue/a.secret" by accident. Empty means no destination: nil.
func compilePattern(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, nil
	}
	if len(p) > maxPattern {
		return nil, errors.New("pattern longer than 4096 bytes")
	}
	// Compiled alone first: a pattern that is not balanced on its own
	// (say "a)|(.*") could otherwise escape the anchoring group.
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}
