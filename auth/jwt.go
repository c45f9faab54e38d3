package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// The claims a token carries besides the registered ones (sub, exp, nbf,
// iss, aud). sub names the user; the others mirror a [[user]] table.
const (
	// ClaimRead is a regular expression of destinations the holder may
	// SUBSCRIBE to, with the same rules as a user's read.
	ClaimRead = "stomp_read"
	// ClaimWrite is a regular expression of destinations the holder may
	// SEND to.
	ClaimWrite = "stomp_write"
	// ClaimTags is an array of tags; "admin" opens the admin console.
	ClaimTags = "stomp_tags"
)

// tokenClaims is what a token may say.
type tokenClaims struct {
	jwt.RegisteredClaims
	Read  string   `json:"stomp_read"`
	Write string   `json:"stomp_write"`
	Tags  []string `json:"stomp_tags"`
}

// verifier checks tokens against one key. Only the algorithms of that
// key's kind are accepted, so a token cannot pick its own (the "none" and
// HMAC-with-the-public-key tricks).
type verifier struct {
	key    any
	parser *jwt.Parser
}

func newVerifier(c *JWTConfig) (*verifier, error) {
	var (
		key     any
		methods []string
	)
	switch {
	case c.HMACSecret != "" && c.PublicKeyFile != "":
		return nil, errors.New("set hmac_secret or public_key_file, not both")
	case c.HMACSecret != "":
		if len(c.HMACSecret) < minHMACSecret {
			return nil, fmt.Errorf("hmac_secret must be at least %d bytes", minHMACSecret)
		}
		key, methods = []byte(c.HMACSecret), []string{"HS256", "HS384", "HS512"}
	case c.PublicKeyFile != "":
		data, err := os.ReadFile(c.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		if key, err = parsePublicKey(data); err != nil {
			return nil, fmt.Errorf("%s: %w", c.PublicKeyFile, err)
		}
		switch key.(type) {
		case *rsa.PublicKey:
			methods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
		case *ecdsa.PublicKey:
			methods = []string{"ES256", "ES384", "ES512"}
		case ed25519.PublicKey:
			methods = []string{"EdDSA"}
		}
	default:
		return nil, errors.New("set hmac_secret or public_key_file")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		// A token without an end would be good forever.
		jwt.WithExpirationRequired(),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	return &verifier{key: key, parser: jwt.NewParser(opts...)}, nil
}

// parsePublicKey reads the first key in a PEM file: a PKIX public key, a
// PKCS #1 RSA public key, or a certificate's key.
func parsePublicKey(data []byte) (any, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no public key or certificate in PEM")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			// The broker only verifies: it should never hold the key
			// that can mint tokens.
			return nil, errors.New("found a private key; give the broker the public key only")
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		switch key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			return key, nil
		}
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
}

// verify checks a token and returns its holder.
func (v *verifier) verify(token string) (*Principal, error) {
	var claims tokenClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		// The library's messages name the failed check (expired,
		// signature invalid), never the token's contents.
		return nil, fmt.Errorf("%w: invalid token: %v", ErrRefused, err)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("%w: token has no sub claim", ErrRefused)
	}
	p := &Principal{name: claims.Subject, tags: claims.Tags}
	perms := Permissions{Read: claims.Read, Write: claims.Write}
	if p.read, p.write, err = perms.compile(); err != nil {
		return nil, fmt.Errorf("%w: token for %q has a bad permission claim: %v", ErrRefused, claims.Subject, err)
	}
	return p, nil
}

// looksLikeJWT tells a token given as a passcode from a password: three
// base64url parts whose first decodes to a JSON object naming an "alg".
// A password that happens to pass this is not a realistic worry.
func looksLikeJWT(s string) bool {
	head, rest, ok := strings.Cut(s, ".")
	if !ok || strings.Count(rest, ".") != 1 || len(head) > 1024 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(raw, &h) == nil && h.Alg != nil
}
