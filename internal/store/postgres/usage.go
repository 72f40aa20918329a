package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
	"github.com/cairn-cdp/cairn/internal/usage"
)

var _ usage.Store = (*DB)(nil)

// UsageAdd implements usage.Store.
func (d *DB) UsageAdd(ctx context.Context, flushID string, counts []usage.Count, at time.Time) (bool, error) {
	applied := false
	err := d.withTx(ctx, func(tx pgx.Tx) error {
		q := d.queries.WithTx(tx)
		n, err := q.UsageFlushRecord(ctx, db.UsageFlushRecordParams{ID: flushID, At: storedTime(at)})
		if err != nil || n == 0 {
			return err
		}
		for _, c := range counts {
			if err := q.UsageAdd(ctx, db.UsageAddParams{TenantID: c.TenantID, Metric: c.Metric, Dimension: c.Dimension,
				Hour: storedTime(c.Hour), Value: c.Value}); err != nil {
				return err
			}
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("add usage: %w", err)
	}
	return applied, nil
}

// UsageCounts implements usage.Store.
func (d *DB) UsageCounts(ctx context.Context, r usage.Range) ([]usage.Count, error) {
	rows, err := d.queries.UsageCounts(ctx, db.UsageCountsParams{TenantID: r.TenantID, FromHour: storedTime(r.From), ToHour: storedTime(r.To)})
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	out := make([]usage.Count, len(rows))
	for i, c := range rows {
		out[i] = usage.Count{TenantID: c.TenantID, Hour: c.Hour.UTC(), Metric: c.Metric, Dimension: c.Dimension, Value: c.Value}
	}
	return out, nil
}

// UsageTotals implements usage.Store.
func (d *DB) UsageTotals(ctx context.Context, from, to time.Time, afterTenant string, maxRows int) ([]usage.Count, error) {
	rows, err := d.queries.UsageTotals(ctx, db.UsageTotalsParams{FromHour: storedTime(from), ToHour: storedTime(to),
		AfterTenant: afterTenant, MaxRows: int32(min(maxRows, 1<<30))})
	if err != nil {
		return nil, fmt.Errorf("total usage: %w", err)
	}
	out := make([]usage.Count, len(rows))
	for i, c := range rows {
		out[i] = usage.Count{TenantID: c.TenantID, Metric: c.Metric, Value: c.Value}
	}
	return out, nil
}

// UsageForgetFlushes implements usage.Store.
func (d *DB) UsageForgetFlushes(ctx context.Context, before time.Time) error {
	if err := d.queries.UsageForgetFlushes(ctx, storedTime(before)); err != nil {
		return fmt.Errorf("forget usage flushes: %w", err)
	}
	return nil
}

// UsageReportRecord implements usage.Store.
func (d *DB) UsageReportRecord(ctx context.Context, day, location string, at time.Time, ev fleet.Event) (bool, error) {
	recorded := false
	err := d.withTx(ctx, func(tx pgx.Tx) error {
		q := d.queries.WithTx(tx)
		n, err := q.UsageReportRecord(ctx, db.UsageReportRecordParams{Day: day, Location: location, ReportedAt: storedTime(at)})
		if err != nil || n == 0 {
			return err
		}
		recorded = true
		return fleetEventInsert(ctx, q, []fleet.Event{ev})
	})
	if err != nil {
		return false, fmt.Errorf("record usage report %s: %w", day, err)
	}
	return recorded, nil
}

// UsageReportedDays implements usage.Store.
func (d *DB) UsageReportedDays(ctx context.Context, from, to string) ([]string, error) {
	days, err := d.queries.UsageReportedDays(ctx, db.UsageReportedDaysParams{FromDay: from, ToDay: to})
	if err != nil {
		return nil, fmt.Errorf("read usage reports: %w", err)
	}
	return days, nil
}
