package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// TenantGet implements tenants.Store.
func (d *DB) TenantGet(ctx context.Context, id string) (tenants.Tenant, error) {
	row, err := d.queries.TenantGet(ctx, id)
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("get tenant: %w", translate(err))
	}
	t, err := tenantFromRow(row)
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("get tenant: %w", err)
	}
	return t, nil
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
		MaxRows:       int32(p.Limit), //nolint:gosec // Limit is at most page.MaxLimit
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

// slugIndex is the partial unique index that keeps live slugs unique.
const slugIndex = "tenants_slug_live_key"

// translate maps driver errors to the tenants package's sentinel errors.
// Every tenant query error passes through it exactly once.
func translate(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return tenants.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" /* unique_violation */ && pgErr.ConstraintName == slugIndex {
		return tenants.ErrSlugTaken
	}
	return err
}

// columns holds the Tenant fields whose stored form differs from the
// domain's.
type columns struct {
	regions, labels      []byte
	createdAt, updatedAt time.Time
	deletedAt            *time.Time
}

// toColumns converts a domain Tenant's fields to their stored form. Times
// are truncated to the microseconds Postgres keeps (it would round).
func toColumns(t tenants.Tenant) (columns, error) {
	regions := t.Regions
	if regions == nil {
		regions = []string{}
	}
	labels := t.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	var (
		c   columns
		err error
	)
	if c.regions, err = json.Marshal(regions); err != nil {
		return columns{}, err
	}
	if c.labels, err = json.Marshal(labels); err != nil {
		return columns{}, err
	}
	c.createdAt = storedTime(t.CreatedAt)
	c.updatedAt = storedTime(t.UpdatedAt)
	if t.DeletedAt != nil {
		deleted := storedTime(*t.DeletedAt)
		c.deletedAt = &deleted
	}
	return c, nil
}

// storedTime is t as Postgres stores it: UTC, whole microseconds.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

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
		CreatedAt:    r.CreatedAt.UTC(),
		UpdatedAt:    r.UpdatedAt.UTC(),
		Seq:          r.Seq,
	}
	if err := json.Unmarshal(r.Regions, &t.Regions); err != nil {
		return tenants.Tenant{}, fmt.Errorf("tenant %s regions: %w", r.ID, err)
	}
	if err := json.Unmarshal(r.Labels, &t.Labels); err != nil {
		return tenants.Tenant{}, fmt.Errorf("tenant %s labels: %w", r.ID, err)
	}
	if r.DeletedAt != nil {
		deleted := r.DeletedAt.UTC()
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
