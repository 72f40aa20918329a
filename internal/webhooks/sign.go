package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every endpoint secret.
const SecretPrefix = "whsec_"

// The specification asks for keys of 24 to 64 bytes; NewSecret makes 32.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
	newSecretBytes = 32
)

// ErrSecret is wrapped by ParseSecret and Sign for a malformed secret.
var ErrSecret = errors.New("webhooks: malformed secret")

// ErrSignature is wrapped by every error Verify returns; the text says
// what failed (a missing header, a timestamp out of tolerance, no matching
// signature).
var ErrSignature = errors.New("webhooks: signature verification failed")

// NewSecret returns a fresh endpoint secret: "whsec_" and the standard
// base64 of 32 bytes from crypto/rand.
func NewSecret() string {
	key := make([]byte, newSecretBytes)
	rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// ParseSecret returns the key bytes of a "whsec_" secret. The key is
// standard base64, padded or not (receivers' libraries accept both), and
// 24 to 64 bytes long, the specification's bounds. Errors wrap ErrSecret;
// they never include the secret.
func ParseSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(enc)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the key is not standard base64", ErrSecret)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("%w: the key is %d bytes, not %d to %d", ErrSecret, len(key), minSecretBytes, maxSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message: one
// "v1,<base64 HMAC-SHA256>" per secret, space-separated, in the order
// given. Several secrets are signed with during a rotation's grace period,
// so a receiver holding either the old or the new one verifies. The signed
// content is id, ".", ts in Unix seconds, ".", body. Errors: no secrets,
// an empty id, or a malformed secret (wrapping ErrSecret).
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", errors.New("webhooks: sign: no secrets")
	}
	if id == "" {
		return "", errors.New("webhooks: sign: empty message id")
	}
	var b strings.Builder
	for i, s := range secrets {
		key, err := ParseSecret(s)
		if err != nil {
			return "", fmt.Errorf("webhooks: sign: secret %d: %w", i, err)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)))
	}
	return b.String(), nil
}

func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a request's headers as a receiver would: webhook-id,
// webhook-timestamp (Unix seconds, within tolerance of now either way) and
// a webhook-signature holding at least one v1 signature by secret over
// body. Signatures of other versions are ignored. A malformed secret is an
// error wrapping ErrSecret; every other failure wraps ErrSignature.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("%w: missing %s, %s or %s header", ErrSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || unix < 0 {
		return fmt.Errorf("%w: %s is not Unix seconds", ErrSignature, HeaderTimestamp)
	}
	// Compared in seconds: the header has no finer resolution, and
	// converting a hostile timestamp to a time.Duration could overflow.
	skew := now.Unix() - unix
	tol := int64(tolerance / time.Second)
	switch {
	case skew > tol:
		return fmt.Errorf("%w: timestamp too old (%ds)", ErrSignature, skew)
	case skew < -tol:
		return fmt.Errorf("%w: timestamp too new (%ds ahead)", ErrSignature, -skew)
	}
	want := mac(key, id, unix, body)
	for _, field := range strings.Fields(sigs) {
		version, enc, ok := strings.Cut(field, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(got, want) == 1 {
			return nil
		}
	}
	return fmt.Errorf("%w: no matching v1 signature", ErrSignature)
}
