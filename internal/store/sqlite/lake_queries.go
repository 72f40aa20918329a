package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

var _ lake.QueryStore = (*DB)(nil)

// LakeQueryInsert implements lake.QueryStore.
func (d *DB) LakeQueryInsert(ctx context.Context, q lake.Query, job lake.QueryArgs) (lake.Query, error) {
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		seq, err := d.queries.WithTx(tx).LakeQueryInsert(ctx, db.LakeQueryInsertParams{ID: q.ID, TenantID: q.Tenant, Sql: q.SQL, State: string(q.State), CreatedAt: formatTime(q.CreatedAt)})
		if err != nil {
			return err
		}
		q.Seq = seq
		if _, err := d.jobs.InsertTx(ctx, tx, job, nil); err != nil {
			return fmt.Errorf("insert %s job: %w", job.Kind(), err)
		}
		return nil
	})
	if err != nil {
		return lake.Query{}, fmt.Errorf("insert query: %w", err)
	}
	return q, nil
}

// LakeQueryGet implements lake.QueryStore.
func (d *DB) LakeQueryGet(ctx context.Context, tenant, id string) (lake.Query, error) {
	row, err := d.queries.LakeQueryGet(ctx, db.LakeQueryGetParams{TenantID: tenant, ID: id})
	if errors.Is(err, sql.ErrNoRows) {
		return lake.Query{}, lake.ErrQueryNotFound
	}
	if err != nil {
		return lake.Query{}, fmt.Errorf("get query: %w", err)
	}
	q, err := queryFromRow(row)
	if err != nil {
		return lake.Query{}, fmt.Errorf("get query: %w", err)
	}
	return q, nil
}

// LakeQueryList implements lake.QueryStore.
func (d *DB) LakeQueryList(ctx context.Context, tenant string, beforeSeq int64, limit int) ([]lake.Query, error) {
	rows, err := d.queries.LakeQueryList(ctx, db.LakeQueryListParams{TenantID: tenant, BeforeSeq: beforeSeq, MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("list queries: %w", err)
	}
	out := make([]lake.Query, len(rows))
	for i, r := range rows {
		if out[i], err = queryFromRow(r); err != nil {
			return nil, fmt.Errorf("list queries: %w", err)
		}
	}
	return out, nil
}

// LakeQueryUpdate implements lake.QueryStore.
func (d *DB) LakeQueryUpdate(ctx context.Context, q lake.Query, from ...lake.QueryState) (bool, error) {
	if len(from) == 0 {
		return false, nil
	}
	states := make([]string, len(from))
	for i, s := range from {
		states[i] = string(s)
	}
	n, err := d.queries.LakeQueryUpdate(ctx, db.LakeQueryUpdateParams{
		State: string(q.State), Error: q.Error, Rows: q.Rows, BytesScanned: q.BytesScanned, ElapsedMs: q.Elapsed.Milliseconds(),
		Result: q.Result, ResultBytes: q.ResultBytes, StartedAt: optionalTimeColumn(nonZero(q.StartedAt)), FinishedAt: optionalTimeColumn(nonZero(q.FinishedAt)),
		TenantID: q.Tenant, ID: q.ID, FromStates: states,
	})
	if err != nil {
		return false, fmt.Errorf("update query: %w", err)
	}
	return n == 1, nil
}

// LakeQueryDeleteTenant implements lake.QueryStore.
func (d *DB) LakeQueryDeleteTenant(ctx context.Context, tenant string) ([]string, error) {
	results, err := d.queries.LakeQueryDeleteTenant(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("delete queries: %w", err)
	}
	return results, nil
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func queryFromRow(r db.LakeQuery) (lake.Query, error) {
	q := lake.Query{ID: r.ID, Tenant: r.TenantID, SQL: r.Sql, State: lake.QueryState(r.State), Error: r.Error, Rows: r.Rows,
		BytesScanned: r.BytesScanned, Elapsed: time.Duration(r.ElapsedMs) * time.Millisecond, Result: r.Result, ResultBytes: r.ResultBytes,
		Seq: r.Seq}
	var err error
	if q.CreatedAt, err = parseTime(r.CreatedAt); err != nil {
		return q, err
	}
	if q.StartedAt, err = leaseFromColumn(r.StartedAt); err != nil {
		return q, err
	}
	if q.FinishedAt, err = leaseFromColumn(r.FinishedAt); err != nil {
		return q, err
	}
	return q, nil
}
