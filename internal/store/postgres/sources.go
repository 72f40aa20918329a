package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

var _ profiles.SourceStore = (*DB)(nil)

// SourceInsert implements profiles.SourceStore. A new source is stored at
// Version 1, whatever s.Version, and a zero CreatedAt means now; Seq is
// always assigned. Of concurrent inserts of one live name exactly one
// succeeds: the others wait for it on the partial unique index and then
// return ErrSourceNameTaken. A KeyHash that another source (revoked or
// not) holds, or that is not 32 bytes long, is refused with the driver's
// error: keys are random, so that is a caller's bug, not a state to handle.
func (d *DB) SourceInsert(ctx context.Context, s profiles.Source, rec audit.Event) (profiles.Source, error) {
	createdAt, _ := insertTimes(s.CreatedAt, time.Time{})
	row, err := audited(ctx, d, rec, func(q *db.Queries) (db.Source, error) {
		return q.SourceInsert(ctx, db.SourceInsertParams{
			ID:             s.ID,
			TenantID:       s.TenantID,
			Name:           s.Name,
			KeyHash:        s.KeyHash,
			KeyHint:        s.KeyHint,
			CreatedAt:      createdAt,
			RotatedAt:      storedTimePtr(s.RotatedAt),
			RevokedAt:      storedTimePtr(s.RevokedAt),
			AllowedOrigins: originsColumn(s.AllowedOrigins),
			Version:        1,
		})
	})
	if err != nil {
		return profiles.Source{}, fmt.Errorf("insert source: %w", translateSources(err))
	}
	return sourceFromRow(row), nil
}

// SourceGet implements profiles.SourceStore.
func (d *DB) SourceGet(ctx context.Context, tenantID, id string) (profiles.Source, error) {
	row, err := d.queries.SourceGet(ctx, db.SourceGetParams{TenantID: tenantID, ID: id})
	if err != nil {
		return profiles.Source{}, fmt.Errorf("get source: %w", translateSources(err))
	}
	return sourceFromRow(row), nil
}

// SourceByKeyHash implements profiles.SourceStore.
func (d *DB) SourceByKeyHash(ctx context.Context, hash []byte) (profiles.Source, error) {
	row, err := d.queries.SourceByKeyHash(ctx, hash)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("get source by key: %w", translateSources(err))
	}
	return sourceFromRow(row), nil
}

// SourceList implements profiles.SourceStore. A limit <= 0 means no limit.
func (d *DB) SourceList(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]profiles.Source, error) {
	rows, err := d.queries.SourceList(ctx, db.SourceListParams{
		TenantID: tenantID,
		AfterSeq: afterSeq,
		MaxRows:  maxRows(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", translateSources(err))
	}
	out := make([]profiles.Source, 0, len(rows))
	for _, r := range rows {
		out = append(out, sourceFromRow(r))
	}
	return out, nil
}

// SourceUpdate implements profiles.SourceStore. It stores Name, KeyHash,
// KeyHint, RotatedAt, RevokedAt and AllowedOrigins; ID, TenantID, CreatedAt and Seq are as
// stored. Of concurrent updates from one Version exactly one succeeds: the
// others wait for its row lock, then find the Version changed. It returns
// ErrSourceNameTaken when the change would give the tenant two live
// sources of one name (a rename, or a revoke undone).
func (d *DB) SourceUpdate(ctx context.Context, s profiles.Source, rec audit.Event) (profiles.Source, error) {
	row, err := audited(ctx, d, rec, func(q *db.Queries) (db.Source, error) {
		return q.SourceUpdate(ctx, db.SourceUpdateParams{
			Name:           s.Name,
			KeyHash:        s.KeyHash,
			KeyHint:        s.KeyHint,
			RotatedAt:      storedTimePtr(s.RotatedAt),
			RevokedAt:      storedTimePtr(s.RevokedAt),
			AllowedOrigins: originsColumn(s.AllowedOrigins),
			TenantID:       s.TenantID,
			ID:             s.ID,
			PrevVersion:    s.Version,
		})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		exists, err = d.queries.SourceExists(ctx, db.SourceExistsParams{TenantID: s.TenantID, ID: s.ID})
		if err == nil {
			if exists {
				return profiles.Source{}, fmt.Errorf("update source: %w", profiles.ErrSourceConflict)
			}
			return profiles.Source{}, fmt.Errorf("update source: %w", profiles.ErrSourceNotFound)
		}
	}
	if err != nil {
		return profiles.Source{}, fmt.Errorf("update source: %w", translateSources(err))
	}
	return sourceFromRow(row), nil
}

// sourceNameIndex is the partial unique index that keeps a tenant's live
// source names unique.
const sourceNameIndex = "sources_tenant_name_live_key"

// SourceRevokeAll implements profiles.SourceStore in one statement, so a
// source the tenant creates meanwhile is either revoked with the others or
// created after it (offboarding refuses that: the tenant is no longer live).
func (d *DB) SourceRevokeAll(ctx context.Context, tenantID string, at time.Time) (int, error) {
	n, err := d.queries.SourceRevokeAll(ctx, db.SourceRevokeAllParams{TenantID: tenantID, RevokedAt: storedTimePtr(&at)})
	if err != nil {
		return 0, fmt.Errorf("revoke sources: %w", translateSources(err))
	}
	return int(n), nil
}

// translateSources maps driver errors to the profiles package's source
// sentinel errors, as translate does for tenants. Every source query error
// passes through it exactly once.
func translateSources(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return profiles.ErrSourceNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" /* unique_violation */ && pgErr.ConstraintName == sourceNameIndex {
		return profiles.ErrSourceNameTaken
	}
	return err
}

// storedTimePtr is the stored form of an optional time: nil, or t as
// storedTime makes it.
func storedTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	s := storedTime(*t)
	return &s
}

// timePtrFromColumn converts a stored optional time to UTC.
func timePtrFromColumn(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// originsColumn is the stored form of a source's allowed origins: never
// NULL, an empty array for none.
func originsColumn(origins []string) []string {
	if origins == nil {
		return []string{}
	}
	return origins
}

// sourceFromRow converts a stored row to a profiles.Source. No allowed
// origins read back as nil.
func sourceFromRow(r db.Source) profiles.Source {
	if len(r.AllowedOrigins) == 0 {
		r.AllowedOrigins = nil
	}
	return profiles.Source{
		ID:             r.ID,
		TenantID:       r.TenantID,
		Name:           r.Name,
		KeyHash:        r.KeyHash,
		KeyHint:        r.KeyHint,
		CreatedAt:      r.CreatedAt.UTC(),
		RotatedAt:      timePtrFromColumn(r.RotatedAt),
		RevokedAt:      timePtrFromColumn(r.RevokedAt),
		AllowedOrigins: r.AllowedOrigins,
		Version:        r.Version,
		Seq:            r.Seq,
	}
}
