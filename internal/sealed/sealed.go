// Package sealed encrypts the secrets Cairn must keep recoverable at rest
// (webhook signing secrets, token signing keys) under a key-encryption key
// the operator supplies.
//
// A sealed value is an ASCII string, "sealed.v1.<key ID>.<base64url of
// nonce and AES-256-GCM ciphertext>", so it fits a TEXT column as well as a
// BLOB. The caller's associated data (for example the ID of the row that
// holds the value) is authenticated with it: a sealed value copied into
// another row does not open there. The key ID names the key that sealed
// the value, so a Keyring that lacks it says so (ErrUnknownKey) instead of
// failing authentication.
//
// A Keyring seals with its primary key and opens with any of its keys,
// which is how a key is rotated: the new key first, the old ones after it,
// until everything sealed under them has been sealed again.
//
// Keyring is safe for concurrent use.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key-encryption key: AES-256.
const KeySize = 32

// prefix starts every sealed value of this format version.
const prefix = "sealed.v1."

// Sentinel errors of Open and of key parsing.
var (
	// ErrMalformed: the value is not a sealed value (Open), or a key is
	// not 32 bytes in base64 or hex (ParseKey, Load).
	ErrMalformed = errors.New("sealed: malformed")
	// ErrUnknownKey: the value was sealed under a key the Keyring does
	// not hold (another installation's, or one rotated out too early).
	ErrUnknownKey = errors.New("sealed: sealed under an unknown key")
	// ErrOpen: the value does not authenticate under its key and the
	// associated data given: it was altered, or belongs elsewhere.
	ErrOpen = errors.New("sealed: cannot open")
)

// Key is one key-encryption key with its ID.
type Key struct {
	id   string
	aead cipher.AEAD
}

// NewKey makes a Key of raw, which must be KeySize bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("%w: a key is %d bytes, not %d", ErrMalformed, KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// The ID names the key without revealing it: a truncated hash under
	// a label of its own.
	sum := sha256.Sum256(append([]byte("cairn sealed key id\x00"), raw...))
	return &Key{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// ParseKey reads a key written as standard or URL-safe base64 (padded or
// not) or as hex; surrounding white space is ignored. Errors wrap
// ErrMalformed and never include the text.
func ParseKey(text string) (*Key, error) {
	text = strings.TrimSpace(text)
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
		hex.DecodeString,
	} {
		if raw, err := dec(text); err == nil && len(raw) == KeySize {
			return NewKey(raw)
		}
	}
	return nil, fmt.Errorf("%w: a key is %d bytes in base64 or hex", ErrMalformed, KeySize)
}

// GenerateKey returns a new random key as ParseKey reads it (standard
// base64).
func GenerateKey() string {
	raw := make([]byte, KeySize)
	_, _ = rand.Read(raw) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(raw)
}

// ID identifies the key in the values it seals: 16 hex digits.
func (k *Key) ID() string { return k.id }

// Keyring seals under its primary key and opens under any of its keys.
type Keyring struct {
	primary *Key
	keys    map[string]*Key
}

// NewKeyring returns a Keyring that seals under primary and opens under
// primary and older.
func NewKeyring(primary *Key, older ...*Key) *Keyring {
	r := &Keyring{primary: primary, keys: map[string]*Key{primary.id: primary}}
	for _, k := range older {
		if _, ok := r.keys[k.id]; !ok {
			r.keys[k.id] = k
		}
	}
	return r
}

// KeyID is the ID of the key Seal uses.
func (r *Keyring) KeyID() string { return r.primary.id }

// Has reports whether the Keyring opens values sealed under the key id.
func (r *Keyring) Has(id string) bool {
	_, ok := r.keys[id]
	return ok
}

// Seal encrypts plaintext under the primary key, authenticating ad with
// it; Open needs the same ad. Each call draws a fresh random nonce, so
// sealing one plaintext twice gives two different values.
func (r *Keyring) Seal(plaintext, ad []byte) string {
	k := r.primary
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	out := k.aead.Seal(nonce, nonce, plaintext, additional(k.id, ad))
	return prefix + k.id + "." + base64.RawURLEncoding.EncodeToString(out)
}

// Open decrypts a value Seal made with the same ad. Errors wrap
// ErrMalformed, ErrUnknownKey or ErrOpen, and never include the value.
func (r *Keyring) Open(sealed string, ad []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return nil, fmt.Errorf("%w: not a %s value", ErrMalformed, strings.TrimSuffix(prefix, "."))
	}
	id, enc, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, fmt.Errorf("%w: no key ID", ErrMalformed)
	}
	k, ok := r.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w %s (this server has %s)", ErrUnknownKey, id, r.ids())
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: bad ciphertext", ErrMalformed)
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], additional(id, ad))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// IsSealed reports whether s has the form of a sealed value (it may still
// fail to open).
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// additional binds the format version and key ID to the caller's data, so
// that neither can be relabelled.
func additional(id string, ad []byte) []byte {
	out := make([]byte, 0, len(prefix)+len(id)+1+len(ad))
	out = append(out, prefix...)
	out = append(out, id...)
	out = append(out, 0)
	return append(out, ad...)
}

func (r *Keyring) ids() string {
	ids := []string{r.primary.id}
	for id := range r.keys {
		if id != r.primary.id {
			ids = append(ids, id)
		}
	}
	return strings.Join(ids, ", ")
}
