package profiles

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"regexp"
	"strings"
	"time"
)

// Sources manages a tenant's event sources and their write keys. A write
// key is shown once, when it is made; only its SHA-256 is stored.
type Sources struct {
	store SourceStore
	now   func() time.Time
}

// NewSources returns Sources on store; now defaults to time.Now.
func NewSources(store SourceStore, now func() time.Time) *Sources {
	if now == nil {
		now = time.Now
	}
	return &Sources{store: store, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }}
}

var sourceNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$`)

// ErrSourceRevoked is returned by Authenticate for a revoked source's key.
var ErrSourceRevoked = errors.New("source revoked")

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func newWriteKey() (key string, hash []byte, hint string) {
	key = "wk_" + random(20)
	sum := sha256.Sum256([]byte(key))
	return key, sum[:], key[:9]
}

// Create makes a source and returns it with its write key.
func (s *Sources) Create(ctx context.Context, tenantID, name string) (Source, string, error) {
	if !sourceNamePattern.MatchString(name) {
		return Source{}, "", &ValidationError{Field: "name", Reason: "1 to 100 characters of letters, digits, space, '.', '_' and '-'"}
	}
	key, hash, hint := newWriteKey()
	src, err := s.store.SourceInsert(ctx, Source{
		ID: "src_" + random(16), TenantID: tenantID, Name: name, KeyHash: hash, KeyHint: hint, CreatedAt: s.now(), Version: 1,
	})
	return src, key, err
}

// Rotate gives a live source a new write key; the old one stops working.
func (s *Sources) Rotate(ctx context.Context, tenantID, id string) (Source, string, error) {
	src, err := s.store.SourceGet(ctx, tenantID, id)
	if err != nil {
		return Source{}, "", err
	}
	if src.RevokedAt != nil {
		return Source{}, "", ErrSourceRevoked
	}
	key, hash, hint := newWriteKey()
	now := s.now()
	src.KeyHash, src.KeyHint, src.RotatedAt = hash, hint, &now
	src, err = s.store.SourceUpdate(ctx, src)
	return src, key, err
}

// Revoke stops a source's write key for good; the record stays.
func (s *Sources) Revoke(ctx context.Context, tenantID, id string) (Source, error) {
	src, err := s.store.SourceGet(ctx, tenantID, id)
	if err != nil || src.RevokedAt != nil {
		return src, err
	}
	now := s.now()
	src.RevokedAt = &now
	return s.store.SourceUpdate(ctx, src)
}

// RevokeAll revokes every live source of the tenant, so that none of its
// write keys authenticates again, and returns how many it revoked. The
// records stay, as with Revoke. Offboarding calls it; it is idempotent.
func (s *Sources) RevokeAll(ctx context.Context, tenantID string) (int, error) {
	return s.store.SourceRevokeAll(ctx, tenantID, s.now())
}

// List pages the tenant's sources.
func (s *Sources) List(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]Source, error) {
	return s.store.SourceList(ctx, tenantID, afterSeq, limit)
}

// Authenticate returns the live source a write key belongs to;
// ErrSourceNotFound for an unknown key, ErrSourceRevoked for a revoked one.
func (s *Sources) Authenticate(ctx context.Context, key string) (Source, error) {
	if !strings.HasPrefix(key, "wk_") || len(key) > 100 {
		return Source{}, ErrSourceNotFound
	}
	sum := sha256.Sum256([]byte(key))
	src, err := s.store.SourceByKeyHash(ctx, sum[:])
	if err != nil {
		return Source{}, err
	}
	if src.RevokedAt != nil {
		return Source{}, ErrSourceRevoked
	}
	return src, nil
}
