package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

var _ profiles.SourceStore = (*DB)(nil)

// SourceInsert implements profiles.SourceStore. A new source is stored at
// Version 1, whatever s.Version, and a zero CreatedAt means now; Seq is
// always assigned. Statements run one at a time (see the package doc), so
// of concurrent inserts of one live name exactly one succeeds and the
// others return ErrSourceNameTaken. A KeyHash that another source (revoked
// or not) holds, or that is not 32 bytes long, is refused with the
// driver's error: keys are random, so that is a caller's bug, not a state
// to handle.
func (d *DB) SourceInsert(ctx context.Context, s profiles.Source, rec audit.Event) (profiles.Source, error) {
	createdAt, _ := insertTimes(s.CreatedAt, time.Time{})
	row, err := audited(ctx, d, rec, func(q *db.Queries) (db.Source, error) {
		return q.SourceInsert(ctx, db.SourceInsertParams{
			ID:        s.ID,
			TenantID:  s.TenantID,
			Name:      s.Name,
			KeyHash:   s.KeyHash,
			KeyHint:   s.KeyHint,
			CreatedAt: createdAt,
			RotatedAt: optionalTimeColumn(s.RotatedAt),
			RevokedAt: optionalTimeColumn(s.RevokedAt),
			// AllowedOrigins is a JSON array; nil is stored as [].
			AllowedOrigins: originsColumn(s.AllowedOrigins),
			Version:        1,
		})
	})
	if err != nil {
		return profiles.Source{}, fmt.Errorf("insert source: %w", translateSources(err))
	}
	stored, err := sourceFromRow(row)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("insert source: %w", err)
	}
	return stored, nil
}

// SourceGet implements profiles.SourceStore.
func (d *DB) SourceGet(ctx context.Context, tenantID, id string) (profiles.Source, error) {
	row, err := d.queries.SourceGet(ctx, db.SourceGetParams{TenantID: tenantID, ID: id})
	if err != nil {
		return profiles.Source{}, fmt.Errorf("get source: %w", translateSources(err))
	}
	stored, err := sourceFromRow(row)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("get source: %w", err)
	}
	return stored, nil
}

// SourceByKeyHash implements profiles.SourceStore.
func (d *DB) SourceByKeyHash(ctx context.Context, hash []byte) (profiles.Source, error) {
	row, err := d.queries.SourceByKeyHash(ctx, hash)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("get source by key: %w", translateSources(err))
	}
	stored, err := sourceFromRow(row)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("get source by key: %w", err)
	}
	return stored, nil
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
		s, err := sourceFromRow(r)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// SourceUpdate implements profiles.SourceStore. It stores Name, KeyHash,
// KeyHint, RotatedAt, RevokedAt and AllowedOrigins; ID, TenantID, CreatedAt and Seq are as
// stored. Of concurrent updates from one Version exactly one succeeds:
// statements run one at a time, and the others find the Version changed.
// It returns ErrSourceNameTaken when the change would give the tenant two
// live sources of one name (a rename, or a revoke undone).
func (d *DB) SourceUpdate(ctx context.Context, s profiles.Source, rec audit.Event) (profiles.Source, error) {
	row, err := audited(ctx, d, rec, func(q *db.Queries) (db.Source, error) {
		return q.SourceUpdate(ctx, db.SourceUpdateParams{
			Name:           s.Name,
			KeyHash:        s.KeyHash,
			KeyHint:        s.KeyHint,
			RotatedAt:      optionalTimeColumn(s.RotatedAt),
			RevokedAt:      optionalTimeColumn(s.RevokedAt),
			AllowedOrigins: originsColumn(s.AllowedOrigins),
			TenantID:       s.TenantID,
			ID:             s.ID,
			PrevVersion:    s.Version,
		})
	})
	if errors.Is(err, sql.ErrNoRows) {
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
	stored, err := sourceFromRow(row)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("update source: %w", err)
	}
	return stored, nil
}

// SourceRevokeAll implements profiles.SourceStore in one statement, so a
// source the tenant creates meanwhile is either revoked with the others or
// created after it (offboarding refuses that: the tenant is no longer live).
func (d *DB) SourceRevokeAll(ctx context.Context, tenantID string, at time.Time) (int, error) {
	n, err := d.queries.SourceRevokeAll(ctx, db.SourceRevokeAllParams{TenantID: tenantID, RevokedAt: optionalTimeColumn(&at)})
	if err != nil {
		return 0, fmt.Errorf("revoke sources: %w", translateSources(err))
	}
	return int(n), nil
}

// translateSources maps driver errors to the profiles package's source
// sentinel errors, as translate does for tenants. Every source query error
// passes through it exactly once.
func translateSources(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return profiles.ErrSourceNotFound
	}
	// The partial unique index sources_tenant_name_live_key is the only
	// unique constraint on (tenant_id, name); SQLite names the columns, not
	// the index.
	var serr *sqlite.Error
	if errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE &&
		strings.Contains(serr.Error(), "sources.tenant_id, sources.name") {
		return profiles.ErrSourceNameTaken
	}
	return err
}

// optionalTimeColumn is the stored form of an optional time: NULL for nil.
func optionalTimeColumn(t *time.Time) sql.NullString {
	if t == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: formatTime(*t), Valid: true}
}

// optionalTimeFromColumn parses a stored optional time; NULL reads back as
// nil.
func optionalTimeFromColumn(c sql.NullString) (*time.Time, error) {
	if !c.Valid {
		return nil, nil
	}
	t, err := parseTime(c.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// originsColumn is the stored form of a source's allowed origins: a JSON
// array, [] for none.
func originsColumn(origins []string) string {
	if len(origins) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(origins) // strings always marshal
	return string(b)
}

// sourceFromRow converts a stored row to a profiles.Source.
func sourceFromRow(r db.Source) (profiles.Source, error) {
	createdAt, err := parseTime(r.CreatedAt)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("source %s: %w", r.ID, err)
	}
	rotatedAt, err := optionalTimeFromColumn(r.RotatedAt)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("source %s rotated_at: %w", r.ID, err)
	}
	revokedAt, err := optionalTimeFromColumn(r.RevokedAt)
	if err != nil {
		return profiles.Source{}, fmt.Errorf("source %s revoked_at: %w", r.ID, err)
	}
	var origins []string
	if err := json.Unmarshal([]byte(r.AllowedOrigins), &origins); err != nil {
		return profiles.Source{}, fmt.Errorf("source %s allowed_origins: %w", r.ID, err)
	}
	if len(origins) == 0 {
		origins = nil // none reads back as nil, as on PostgreSQL
	}
	return profiles.Source{
		AllowedOrigins: origins,
		ID:             r.ID,
		TenantID:       r.TenantID,
		Name:           r.Name,
		KeyHash:        r.KeyHash,
		KeyHint:        r.KeyHint,
		CreatedAt:      createdAt,
		RotatedAt:      rotatedAt,
		RevokedAt:      revokedAt,
		Version:        r.Version,
		Seq:            r.Seq,
	}, nil
}
