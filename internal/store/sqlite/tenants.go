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

	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// TenantGet implements tenants.Store.
func (d *DB) TenantGet(ctx context.Context, id string) (tenants.Tenant, error) {
	return tenantGet(ctx, d.queries, id)
}

// TenantList implements tenants.Store.
func (d *DB) TenantList(ctx context.Context, p tenants.ListParams) ([]tenants.Tenant, error) {
	rows, err := d.queries.TenantList(ctx, db.TenantListParams{
		AfterSeq:      p.AfterSeq,
		Status:        string(p.Status),
		Tier:          string(p.Tier),
		Region:        p.Region,
		Search:        p.Search,
		LabelKey:      p.LabelKey,
		LabelHasValue: p.LabelValue != nil,
		LabelValue:    deref(p.LabelValue),
		MaxRows:       int64(p.Limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", translate(err))
	}
	out := make([]tenants.Tenant, 0, len(rows))
	for _, r := range rows {
		t, err := tenantFromRow(r)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

func tenantGet(ctx context.Context, q *db.Queries, id string) (tenants.Tenant, error) {
	row, err := q.TenantGet(ctx, id)
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("get tenant: %w", translate(err))
	}
	t, err := tenantFromRow(row)
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("get tenant: %w", err)
	}
	return t, nil
}

func tenantInsert(ctx context.Context, q *db.Queries, t tenants.Tenant) (tenants.Tenant, error) {
	c, err := toColumns(t)
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("insert tenant: %w", err)
	}
	seq, err := q.TenantInsert(ctx, db.TenantInsertParams{
		ID:           t.ID,
		Slug:         t.Slug,
		Name:         t.Name,
		Tier:         string(t.Tier),
		Status:       string(t.Status),
		StatusReason: t.StatusReason,
		HomeRegion:   t.HomeRegion,
		Regions:      c.regions,
		Plan:         t.Plan,
		ContactEmail: t.ContactEmail,
		Labels:       c.labels,
		Version:      t.Version,
		CreatedAt:    c.createdAt,
		UpdatedAt:    c.updatedAt,
		DeletedAt:    c.deletedAt,
	})
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("insert tenant: %w", translate(err))
	}
	t.Seq = seq
	return t, nil
}

func tenantUpdate(ctx context.Context, q *db.Queries, t tenants.Tenant) error {
	c, err := toColumns(t)
	if err != nil {
		return fmt.Errorf("update tenant: %w", err)
	}
	n, err := q.TenantUpdate(ctx, db.TenantUpdateParams{
		Slug:         t.Slug,
		Name:         t.Name,
		Tier:         string(t.Tier),
		Status:       string(t.Status),
		StatusReason: t.StatusReason,
		HomeRegion:   t.HomeRegion,
		Regions:      c.regions,
		Plan:         t.Plan,
		ContactEmail: t.ContactEmail,
		Labels:       c.labels,
		Version:      t.Version,
		UpdatedAt:    c.updatedAt,
		DeletedAt:    c.deletedAt,
		ID:           t.ID,
		PrevVersion:  t.Version - 1,
	})
	if err != nil {
		return fmt.Errorf("update tenant: %w", translate(err))
	}
	if n == 1 {
		return nil
	}
	exists, err := q.TenantExists(ctx, t.ID)
	switch {
	case err != nil:
		return fmt.Errorf("update tenant: %w", translate(err))
	case !exists:
		return fmt.Errorf("update tenant: %w", tenants.ErrNotFound)
	}
	return fmt.Errorf("update tenant: %w", tenants.ErrVersionMismatch)
}

// translate maps driver errors to the tenants package's sentinel errors.
// Every tenant query error passes through it exactly once.
func translate(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return tenants.ErrNotFound
	}
	// The partial unique index tenants_slug_live_key is the only unique
	// constraint on the slug column; SQLite names the column, not the index.
	var serr *sqlite.Error
	if errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE &&
		strings.Contains(serr.Error(), "tenants.slug") {
		return tenants.ErrSlugTaken
	}
	return err
}

// timeLayout is how timestamps are stored: fixed width, UTC, microseconds,
// so that they sort and compare as text.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}

// columns holds the Tenant fields whose stored form differs from the
// domain's.
type columns struct {
	regions, labels      string
	createdAt, updatedAt string
	deletedAt            sql.NullString
}

// toColumns converts a domain Tenant's fields to their stored form.
func toColumns(t tenants.Tenant) (columns, error) {
	regions := t.Regions
	if regions == nil {
		regions = []string{}
	}
	labels := t.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	r, err := json.Marshal(regions)
	if err != nil {
		return columns{}, err
	}
	l, err := json.Marshal(labels)
	if err != nil {
		return columns{}, err
	}
	c := columns{
		regions:   string(r),
		labels:    string(l),
		createdAt: formatTime(t.CreatedAt),
		updatedAt: formatTime(t.UpdatedAt),
	}
	if t.DeletedAt != nil {
		c.deletedAt = sql.NullString{String: formatTime(*t.DeletedAt), Valid: true}
	}
	return c, nil
}

// tenantFromRow converts a stored row to a domain Tenant.
func tenantFromRow(r db.Tenant) (tenants.Tenant, error) {
	t := tenants.Tenant{
		ID:           r.ID,
		Slug:         r.Slug,
		Name:         r.Name,
		Tier:         tenants.Tier(r.Tier),
		Status:       tenants.Status(r.Status),
		StatusReason: r.StatusReason,
		HomeRegion:   r.HomeRegion,
		Plan:         r.Plan,
		ContactEmail: r.ContactEmail,
		Version:      r.Version,
		Seq:          r.Seq,
	}
	if err := json.Unmarshal([]byte(r.Regions), &t.Regions); err != nil {
		return tenants.Tenant{}, fmt.Errorf("tenant %s regions: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Labels), &t.Labels); err != nil {
		return tenants.Tenant{}, fmt.Errorf("tenant %s labels: %w", r.ID, err)
	}
	var err error
	if t.CreatedAt, err = parseTime(r.CreatedAt); err != nil {
		return tenants.Tenant{}, err
	}
	if t.UpdatedAt, err = parseTime(r.UpdatedAt); err != nil {
		return tenants.Tenant{}, err
	}
	if r.DeletedAt.Valid {
		deleted, err := parseTime(r.DeletedAt.String)
		if err != nil {
			return tenants.Tenant{}, err
		}
		t.DeletedAt = &deleted
	}
	return t, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
