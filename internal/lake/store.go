package lake

import (
	"context"
	"time"
)

// Watermark records a raw partition refined into the clean zone (or, with
// Partition "", the curated zone's last rebuild).
type Watermark struct {
	Partition string
	// Fingerprint identifies the raw objects refined (Fingerprint): a
	// partition whose objects changed since (late data, an erasure's
	// rewrite) is refined again.
	Fingerprint string
	RawObjects  int64
	RawBytes    int64
	// ErasedSeq is the highest sequence number of the erased-ID filter the
	// run applied.
	ErasedSeq int64
	RefinedAt time.Time
}

// Store keeps the refinery's state in the control-plane database.
type Store interface {
	// LakeWatermarks returns the tenant's watermarks, by partition.
	LakeWatermarks(ctx context.Context, tenant string) ([]Watermark, error)
	// LakeRecord stores w (unless nil) and the stats of the tables (or
	// table partitions) a run wrote, in one transaction; a TableStats
	// with no row removes the table's (partition's) entry.
	LakeRecord(ctx context.Context, tenant string, w *Watermark, stats []TableStats) error
	// LakeTables returns what the tenant's tables hold, per partition.
	LakeTables(ctx context.Context, tenant string) ([]TableStats, error)
	// LakeEraseAdd adds ids to the tenant's erased-ID filter (an ID there
	// already keeps its place).
	LakeEraseAdd(ctx context.Context, tenant, erasureID string, ids []string) error
	// LakeErased returns the tenant's erased-ID filter and its highest
	// sequence number (0 when empty).
	LakeErased(ctx context.Context, tenant string) ([]string, int64, error)
}
