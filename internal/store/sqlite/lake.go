package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

var _ lake.Store = (*DB)(nil)

// LakeWatermarks implements lake.Store.
func (d *DB) LakeWatermarks(ctx context.Context, tenant string) ([]lake.Watermark, error) {
	rows, err := d.queries.LakePartitions(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("lake watermarks: %w", err)
	}
	out := make([]lake.Watermark, len(rows))
	for i, r := range rows {
		at, err := parseTime(r.RefinedAt)
		if err != nil {
			return nil, fmt.Errorf("lake watermarks: %w", err)
		}
		out[i] = lake.Watermark{Partition: r.Partition, Fingerprint: r.Fingerprint, RawObjects: r.RawObjects, RawBytes: r.RawBytes, ErasedSeq: r.ErasedSeq, RefinedAt: at}
	}
	return out, nil
}

// LakeRecord implements lake.Store.
func (d *DB) LakeRecord(ctx context.Context, tenant string, w *lake.Watermark, stats []lake.TableStats) error {
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		if w != nil {
			if err := q.LakePartitionPut(ctx, db.LakePartitionPutParams{TenantID: tenant, Partition: w.Partition, Fingerprint: w.Fingerprint,
				RawObjects: w.RawObjects, RawBytes: w.RawBytes, ErasedSeq: w.ErasedSeq, RefinedAt: formatTime(w.RefinedAt)}); err != nil {
				return err
			}
		}
		for _, s := range stats {
			if s.Rows == 0 {
				if err := q.LakeTableDelete(ctx, db.LakeTableDeleteParams{TenantID: tenant, TableName: s.Table, Partition: s.Partition}); err != nil {
					return err
				}
				continue
			}
			if err := q.LakeTablePut(ctx, db.LakeTablePutParams{TenantID: tenant, TableName: s.Table, Partition: s.Partition, Rows: s.Rows, Bytes: s.Bytes}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lake record: %w", err)
	}
	return nil
}

// LakeTables implements lake.Store.
func (d *DB) LakeTables(ctx context.Context, tenant string) ([]lake.TableStats, error) {
	rows, err := d.queries.LakeTables(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("lake tables: %w", err)
	}
	out := make([]lake.TableStats, len(rows))
	for i, r := range rows {
		out[i] = lake.TableStats{Table: r.TableName, Partition: r.Partition, Rows: r.Rows, Bytes: r.Bytes}
	}
	return out, nil
}

// LakeEraseAdd implements lake.Store.
func (d *DB) LakeEraseAdd(ctx context.Context, tenant, erasureID string, ids []string) error {
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		for _, id := range ids {
			if err := q.LakeErasedAdd(ctx, db.LakeErasedAddParams{TenantID: tenant, ID: id, ErasureID: erasureID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("lake erase: %w", err)
	}
	return nil
}

// LakeErased implements lake.Store.
func (d *DB) LakeErased(ctx context.Context, tenant string) ([]string, int64, error) {
	rows, err := d.queries.LakeErased(ctx, tenant)
	if err != nil {
		return nil, 0, fmt.Errorf("lake erased: %w", err)
	}
	out := make([]string, len(rows))
	var seq int64
	for i, r := range rows {
		out[i], seq = r.ID, max(seq, r.Seq)
	}
	return out, seq, nil
}
