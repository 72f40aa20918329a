package profiles

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/ids"
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

// ErrSourceRevoked is returned by Authenticate for a revoked source's key,
// and by Rotate and SetAllowedOrigins for a revoked source.
var ErrSourceRevoked = errors.New("source revoked")

func newWriteKey() (key string, hash []byte, hint string) {
	key = "wk_" + ids.Random(20)
	sum := sha256.Sum256([]byte(key))
	return key, sum[:], key[:9]
}

// Create makes a source and returns it with its write key. allowedOrigins
// (see SetAllowedOrigins) may be empty: any origin. Each change of a source
// writes rec, the request's audit event, with it.
func (s *Sources) Create(ctx context.Context, rec audit.Event, tenantID, name string, allowedOrigins []string) (Source, string, error) {
	if !sourceNamePattern.MatchString(name) {
		return Source{}, "", &ValidationError{Field: "name", Reason: "1 to 100 characters of letters, digits, space, '.', '_' and '-'"}
	}
	origins, err := checkOrigins(allowedOrigins)
	if err != nil {
		return Source{}, "", err
	}
	key, hash, hint := newWriteKey()
	id := ids.New("src_")
	src, err := s.store.SourceInsert(ctx, Source{
		ID: id, TenantID: tenantID, Name: name, KeyHash: hash, KeyHint: hint, CreatedAt: s.now(),
		AllowedOrigins: origins, Version: 1,
	}, rec.On(id))
	return src, key, err
}

// MaxAllowedOrigins is how many origins a source may list.
const MaxAllowedOrigins = 100

// SetAllowedOrigins replaces the browser origins the source accepts events
// from; an empty list allows any origin. Each origin is what browsers send
// in the Origin header: "http" or "https", "://", a lower-case host and
// maybe a port (the scheme's default port is left out, as browsers do). A
// revoked source no longer changes (ErrSourceRevoked). It returns
// ValidationError, ErrSourceNotFound, or ErrSourceConflict when the source
// changed meanwhile.
func (s *Sources) SetAllowedOrigins(ctx context.Context, rec audit.Event, tenantID, id string, origins []string) (Source, error) {
	origins, err := checkOrigins(origins)
	if err != nil {
		return Source{}, err
	}
	src, err := s.store.SourceGet(ctx, tenantID, id)
	if err != nil {
		return Source{}, err
	}
	if src.RevokedAt != nil {
		return Source{}, ErrSourceRevoked
	}
	src.AllowedOrigins = origins
	return s.store.SourceUpdate(ctx, src, rec.On(id))
}

// checkOrigins validates a list of origins and returns it normalized (a
// scheme's default port left out) without duplicates, never nil.
func checkOrigins(origins []string) ([]string, error) {
	if len(origins) > MaxAllowedOrigins {
		return nil, &ValidationError{Field: "allowed_origins", Reason: fmt.Sprintf("at most %d origins", MaxAllowedOrigins)}
	}
	out := make([]string, 0, len(origins))
	for i, o := range origins {
		o, ok := normalizeOrigin(o)
		if !ok {
			return nil, &ValidationError{Field: fmt.Sprintf("allowed_origins/%d", i),
				Reason: "an origin as browsers send it: http:// or https://, a lower-case host, and a port if any"}
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// originPattern is a serialized origin (RFC 6454) as browsers send it:
// scheme, lower-case host name or bracketed IPv6 address, and a port from
// 1 to 65535 without leading zeros. api/openapi.yaml states the same
// pattern, so that what the spec admits is valid here.
var originPattern = regexp.MustCompile(`^https?://([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$`)

// normalizeOrigin reports whether o is an origin, and returns it as a
// browser sends it: without the scheme's default port, which browsers
// leave out, so that comparing strings compares origins.
func normalizeOrigin(o string) (string, bool) {
	if len(o) > 200 || !originPattern.MatchString(o) {
		return "", false
	}
	if strings.HasPrefix(o, "http://") {
		o = strings.TrimSuffix(o, ":80")
	} else {
		o = strings.TrimSuffix(o, ":443")
	}
	return o, true
}

// AllowsOrigin reports whether a browser at origin may send the source's
// events: any origin when the source lists none.
func (s Source) AllowsOrigin(origin string) bool {
	return len(s.AllowedOrigins) == 0 || slices.Contains(s.AllowedOrigins, origin)
}

// Rotate gives a live source a new write key; the old one stops working.
func (s *Sources) Rotate(ctx context.Context, rec audit.Event, tenantID, id string) (Source, string, error) {
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
	src, err = s.store.SourceUpdate(ctx, src, rec.On(id))
	return src, key, err
}

// Revoke stops a source's write key for good; the record stays.
func (s *Sources) Revoke(ctx context.Context, rec audit.Event, tenantID, id string) (Source, error) {
	src, err := s.store.SourceGet(ctx, tenantID, id)
	if err != nil || src.RevokedAt != nil {
		return src, err
	}
	now := s.now()
	src.RevokedAt = &now
	return s.store.SourceUpdate(ctx, src, rec.On(id))
}

// RevokeAll revokes every live source of the tenant, so that none of its
// write keys authenticates again, and returns how many it revoked. The
// records stay, as with Revoke. Offboarding calls it; it is idempotent.
func (s *Sources) RevokeAll(ctx context.Context, tenantID string) (int, error) {
	return s.store.SourceRevokeAll(ctx, tenantID, s.now())
}

// Get returns the tenant's source (ErrSourceNotFound).
func (s *Sources) Get(ctx context.Context, tenantID, id string) (Source, error) {
	return s.store.SourceGet(ctx, tenantID, id)
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
