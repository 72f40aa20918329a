package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is the controllable Config.Now of a test.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func pubOf(key ed25519.PrivateKey) ed25519.PublicKey { return key.Public().(ed25519.PublicKey) }

// kidOf computes the RFC 7638 thumbprint independently of the package:
// encoding/json sorts map keys and writes no whitespace, as 7638 requires.
func kidOf(t *testing.T, pub ed25519.PublicKey) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64(pub)})
	if err != nil {
		t.Fatal(err)
	}
	return b64(sha256Sum(b))
}

func newAuthority(t *testing.T, key ed25519.PrivateKey, cfg auth.Config) *auth.Authority {
	t.Helper()
	a, err := auth.New(t.Context(), key, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// sign builds a token with exactly the given header fields (alg is set from
// method) and claims.
func sign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	delete(tok.Header, "typ")
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// wantReason fails unless err is a *TokenError matching ErrUnauthenticated
// with the given reason; an empty reason wants no error.
func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("Verify: %v, want success", err)
		}
		return
	}
	if !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Verify error = %v, want ErrUnauthenticated", err)
	}
	var te *auth.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("Verify error %T is not a *TokenError", err)
	}
	if te.Reason != reason {
		t.Fatalf("reason = %q, want %q", te.Reason, reason)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
