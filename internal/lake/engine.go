package lake

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Location is where a tenant's zones are: its buckets in its home Region
// and its prefix in them ("" for a dedicated tenant, "tenants/<id>/" in a
// pool's buckets), as its placement's outputs say.
type Location struct {
	Region        string
	RawBucket     string
	CleanBucket   string
	CuratedBucket string
	Prefix        string
	// Tenant is the tenant's ID.
	Tenant string
	// Database is the tenant's Glue database (its own, pooled or not): in
	// AWS mode, its raw and staging tables, and a dedicated tenant's clean
	// and curated tables.
	Database string
	// SharedDatabase is, for a pooled tenant in AWS mode, the pool's Glue
	// database: its clean and curated tables are shared by the pool's
	// tenants, each tenant's rows in its own tenant_id partition ("" for
	// a dedicated tenant).
	SharedDatabase string
	// WorkGroup is the Athena workgroup the tenant's queries run in: its
	// own (dedicated) or the pool's (pooled).
	WorkGroup string
	// Pooled is true for a slice of a pool's stack: its workgroup is
	// shared and does not enforce a result location, so callers set one
	// under the tenant's prefix.
	Pooled bool
}

// Partition is an hour of the raw zone, and the clean partition refined
// from it.
type Partition struct {
	Date string // YYYY-MM-DD
	Hour string // HH
}

var partitionPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}$`)

// ParsePartition reads a partition written by String.
func ParsePartition(s string) (Partition, error) {
	if !partitionPattern.MatchString(s) {
		return Partition{}, fmt.Errorf("partition %q: want YYYY-MM-DDTHH", s)
	}
	p := Partition{Date: s[:10], Hour: s[11:]}
	if _, err := time.Parse("2006-01-02T15", s); err != nil {
		return Partition{}, fmt.Errorf("partition %q: %w", s, err)
	}
	return p, nil
}

// String returns the partition as YYYY-MM-DDTHH, which sorts as time does.
func (p Partition) String() string { return p.Date + "T" + p.Hour }

// Start returns the partition's first instant.
func (p Partition) Start() time.Time {
	t, _ := time.Parse("2006-01-02T15", p.String())
	return t
}

// End returns the instant after the partition's hour.
func (p Partition) End() time.Time { return p.Start().Add(time.Hour) }

// RawObject is one object of a raw partition.
type RawObject struct {
	Key  string
	Size int64
	// Modified is when the object was written (S3's LastModified, a
	// file's modification time): when its events arrived, give or take a
	// delivery stream's buffering. The raw zone's contract gives object
	// names no meaning (docs/raw-zone.md), so nothing is read from them.
	Modified time.Time
}

// RawPartition is a partition of the raw zone and its objects.
type RawPartition struct {
	Partition Partition
	Objects   []RawObject
}

// TableStats is what a table (or one partition of it) holds.
type TableStats struct {
	Table string
	// Partition is the clean partition ("" for a curated table).
	Partition string
	Rows      int64
	Bytes     int64
}

// RefineInput is one raw partition to refine.
type RefineInput struct {
	Tenant    string
	Location  Location
	Partition RawPartition
	// Snapshot resolves profiles (its members and identifiers).
	Snapshot profiles.Snapshot
	// Erased is the tenant's erased-ID filter.
	Erased []string
}

// CurateInput rebuilds the curated zone.
type CurateInput struct {
	Tenant   string
	Location Location
	Snapshot profiles.Snapshot
}

// PurgeInput removes the rows naming erased IDs.
type PurgeInput struct {
	Tenant   string
	Location Location
	// IDs are the message and profile IDs to remove.
	IDs []string
}

// PurgeResult counts what a purge removed, by zone.
type PurgeResult struct {
	Zone       string
	Partitions int
	Rows       int64
}

// Engine runs the transformations over a tenant's zones and reads what
// they hold: DuckDB over the local zones in the embedded default
// (package lake/duckdb), Athena and Glue in AWS mode (package lake/athena). Every method is idempotent: a partition or table
// it writes is replaced whole, never appended to. Implementations are
// safe for concurrent use on different tenants.
type Engine interface {
	// Dialect is the SQL dialect the engine renders transformations in.
	Dialect() Dialect
	// RawPartitions lists the tenant's raw partitions and their objects.
	RawPartitions(ctx context.Context, loc Location) ([]RawPartition, error)
	// Refine runs CleanEvents over one raw partition and replaces the
	// partition of every clean table with its rows (removing it from a
	// table with none), returning each table's partition.
	Refine(ctx context.Context, in RefineInput) ([]TableStats, error)
	// Curate rebuilds every curated table from the snapshot and the clean
	// zone, returning each table.
	Curate(ctx context.Context, in CurateInput) ([]TableStats, error)
	// Purge rewrites the clean partitions holding rows whose message or
	// profile ID is in in.IDs without them, and counts the rows of the
	// curated tables naming them (which Curate then drops). It returns
	// what it removed from each zone and the clean partitions it rewrote.
	Purge(ctx context.Context, in PurgeInput) ([]PurgeResult, []TableStats, error)
	// Stats returns every table's partitions as stored.
	Stats(ctx context.Context, loc Location) ([]TableStats, error)
	// Sample returns up to limit rows of a table, column → value (a JSON
	// column's value as its text): of the given partitions of a clean
	// table, of the whole of a curated table.
	Sample(ctx context.Context, loc Location, t Table, partitions []string, limit int) ([]map[string]any, error)
}
