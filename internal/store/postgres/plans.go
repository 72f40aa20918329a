package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/plans"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

var _ plans.Store = (*DB)(nil)

// PlanGet implements plans.Store.
func (d *DB) PlanGet(ctx context.Context, name string) (plans.Plan, error) {
	row, err := d.queries.PlanGet(ctx, name)
	if errors.Is(err, pgx.ErrNoRows) {
		return plans.Plan{}, fmt.Errorf("get plan %s: %w", name, plans.ErrNotFound)
	}
	if err != nil {
		return plans.Plan{}, fmt.Errorf("get plan %s: %w", name, err)
	}
	return planFromRow(row)
}

// PlanList implements plans.Store.
func (d *DB) PlanList(ctx context.Context, after string, limit int) ([]plans.Plan, error) {
	rows, err := d.queries.PlanList(ctx, db.PlanListParams{After: after, MaxRows: int32(min(limit, 1<<30))})
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	out := make([]plans.Plan, 0, len(rows))
	for _, row := range rows {
		p, err := planFromRow(row)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// PlanInsert implements plans.Store.
func (d *DB) PlanInsert(ctx context.Context, p plans.Plan, rec audit.Event) error {
	limits, err := json.Marshal(p.Limits)
	if err != nil {
		return fmt.Errorf("insert plan %s: %w", p.Name, err)
	}
	_, err = audited(ctx, d, rec, func(q *db.Queries) (int64, error) {
		n, err := q.PlanInsert(ctx, db.PlanInsertParams{Name: p.Name, Description: p.Description, Limits: limits,
			MonthlyEventsMode: string(p.MonthlyEventsMode), ProfilesMode: string(p.ProfilesMode), Version: p.Version, CreatedAt: storedTime(p.CreatedAt), UpdatedAt: storedTime(p.UpdatedAt)})
		if err == nil && n == 0 {
			err = plans.ErrVersionMismatch // the audit event must not commit alone
		}
		return n, err
	})
	if err != nil {
		return fmt.Errorf("insert plan %s: %w", p.Name, err)
	}
	return nil
}

// PlanUpdate implements plans.Store.
func (d *DB) PlanUpdate(ctx context.Context, p plans.Plan, rec audit.Event) error {
	limits, err := json.Marshal(p.Limits)
	if err != nil {
		return fmt.Errorf("update plan %s: %w", p.Name, err)
	}
	_, err = audited(ctx, d, rec, func(q *db.Queries) (int64, error) {
		n, err := q.PlanUpdate(ctx, db.PlanUpdateParams{Description: p.Description, Limits: limits,
			MonthlyEventsMode: string(p.MonthlyEventsMode), ProfilesMode: string(p.ProfilesMode), Version: p.Version, UpdatedAt: storedTime(p.UpdatedAt),
			Name: p.Name, PrevVersion: p.Version - 1})
		if err == nil && n == 0 {
			if _, gerr := q.PlanGet(ctx, p.Name); errors.Is(gerr, pgx.ErrNoRows) {
				err = plans.ErrNotFound
			} else {
				err = plans.ErrVersionMismatch
			}
		}
		return n, err
	})
	if err != nil {
		return fmt.Errorf("update plan %s: %w", p.Name, err)
	}
	return nil
}

func planFromRow(r db.Plan) (plans.Plan, error) {
	p := plans.Plan{Name: r.Name, Description: r.Description, MonthlyEventsMode: plans.Mode(r.MonthlyEventsMode), ProfilesMode: plans.Mode(r.ProfilesMode), Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal(r.Limits, &p.Limits); err != nil {
		return plans.Plan{}, fmt.Errorf("plan %s: limits: %w", r.Name, err)
	}
	return p, nil
}
