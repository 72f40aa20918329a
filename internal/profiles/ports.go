package profiles

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/placement"
)

// RawZone is the tenant's immutable raw zone: every accepted event is
// appended to it unchanged, as newline-delimited JSON, compressed,
// partitioned by date and hour. S3 in AWS mode, files under the tenant's
// local raw zone in the embedded default.
type RawZone interface {
	// Append writes lines (one JSON event each) as one new object under
	// events/dt=YYYY-MM-DD/hh=HH/ of the tenant's raw zone (at gives the
	// partition) and returns its key. It returns only once the object is
	// durable.
	Append(ctx context.Context, tenantID string, at time.Time, lines [][]byte) (string, error)
	// Rewrite replaces the object with one that keeps only the lines for
	// which keep is true (erasure), and returns how many lines it removed.
	// An object left with no line is deleted.
	Rewrite(ctx context.Context, tenantID, key string, keep func(line []byte) bool) (int, error)
	// Read returns the object's lines (tests, audits).
	Read(ctx context.Context, tenantID, key string) ([][]byte, error)
	// List returns the keys of the tenant's raw zone objects.
	List(ctx context.Context, tenantID string) ([]string, error)
}

// RawZoneLocation is where a tenant's raw zone is: a bucket (or, locally, a
// directory named like it) in a Region, and a key prefix ("" for a
// dedicated tenant's own bucket, "tenants/<id>/" in a pool bucket).
type RawZoneLocation struct {
	Region string
	Bucket string
	Prefix string
}

// Source is a named event source of a tenant with its write key. Only the
// key's SHA-256 is stored; the key itself is shown once.
type Source struct {
	ID       string
	TenantID string
	Name     string
	// KeyHash is the SHA-256 of the current write key.
	KeyHash []byte
	// KeyHint is the key's first characters, to tell keys apart.
	KeyHint   string
	CreatedAt time.Time
	RotatedAt *time.Time
	RevokedAt *time.Time
	// AllowedOrigins are the browser origins (scheme://host[:port]) the
	// source's events may come from; empty allows any origin.
	AllowedOrigins []string
	Version        int64
	Seq            int64
}

// Sentinel errors of SourceStore implementations.
var (
	// ErrSourceNotFound: no such source for the tenant, or no source has
	// the key.
	ErrSourceNotFound = errors.New("source not found")
	// ErrSourceNameTaken: the tenant has a live source with the name.
	ErrSourceNameTaken = errors.New("source name taken")
	// ErrSourceConflict: the source changed concurrently.
	ErrSourceConflict = errors.New("source changed concurrently")
)

// SourceStore keeps sources in the control-plane database. The changes
// that take rec write it, the audit event of the request that asked for
// the change, in the change's transaction (a zero rec writes nothing).
type SourceStore interface {
	// SourceInsert stores a new source (ErrSourceNameTaken).
	SourceInsert(ctx context.Context, s Source, rec audit.Event) (Source, error)
	// SourceGet returns the tenant's source (ErrSourceNotFound).
	SourceGet(ctx context.Context, tenantID, id string) (Source, error)
	// SourceByKeyHash returns the source whose current key hashes to hash,
	// revoked or not (ErrSourceNotFound).
	SourceByKeyHash(ctx context.Context, hash []byte) (Source, error)
	// SourceList pages the tenant's sources in creation order, revoked
	// ones included.
	SourceList(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]Source, error)
	// SourceUpdate stores s (its name, key, times and allowed origins) if
	// the stored Version is s.Version; it returns
	// s with Version+1 (ErrSourceConflict, ErrSourceNotFound).
	SourceUpdate(ctx context.Context, s Source, rec audit.Event) (Source, error)
	// SourceRevokeAll revokes every live source of the tenant at at,
	// increasing each one's Version, and returns how many it revoked.
	// Sources already revoked keep their RevokedAt and Version, so a
	// second call returns 0.
	SourceRevokeAll(ctx context.Context, tenantID string, at time.Time) (int, error)
}

// PlacementLocator locates a tenant's raw zone and profile table in its
// home placement, through a placement.Locator: within one request (a
// placement.Scope) every call after the first answers from memory.
type PlacementLocator struct {
	Placements *placement.Locator
}

// RawZone locates the tenant's raw zone (placement.ErrNotReady).
func (l PlacementLocator) RawZone(ctx context.Context, tenantID string) (RawZoneLocation, error) {
	home, err := l.Placements.Home(ctx, tenantID)
	if err != nil {
		return RawZoneLocation{}, err
	}
	return RawZoneLocation{Region: home.Region, Bucket: home.RawBucket(), Prefix: home.S3Prefix()}, nil
}

// Table locates the tenant's profile table (placement.ErrNotReady).
func (l PlacementLocator) Table(ctx context.Context, tenantID string) (string, string, error) {
	home, err := l.Placements.Home(ctx, tenantID)
	return home.Region, home.Table(), err
}
