package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
	"github.com/cairn-cdp/cairn/internal/usage"
)

var _ usage.Store = (*DB)(nil)

// UsageAdd implements usage.Store.
func (d *DB) UsageAdd(ctx context.Context, flushID string, counts []usage.Count, at time.Time) (bool, error) {
	applied := false
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		n, err := q.UsageFlushRecord(ctx, db.UsageFlushRecordParams{ID: flushID, At: formatTime(at)})
		if err != nil || n == 0 {
			return err
		}
		for _, c := range counts {
			if err := q.UsageAdd(ctx, db.UsageAddParams{TenantID: c.TenantID, Metric: c.Metric, Dimension: c.Dimension,
				Hour: formatTime(c.Hour), Value: c.Value}); err != nil {
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
	rows, err := d.queries.UsageCounts(ctx, db.UsageCountsParams{TenantID: r.TenantID, FromHour: formatTime(r.From), ToHour: formatTime(r.To)})
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	out := make([]usage.Count, len(rows))
	for i, c := range rows {
		hour, err := parseTime(c.Hour)
		if err != nil {
			return nil, fmt.Errorf("read usage: %w", err)
		}
		out[i] = usage.Count{TenantID: c.TenantID, Hour: hour, Metric: c.Metric, Dimension: c.Dimension, Value: c.Value}
	}
	return out, nil
}

// UsageTotals implements usage.Store.
func (d *DB) UsageTotals(ctx context.Context, tq usage.TotalsQuery) ([]usage.Count, error) {
	rows, err := d.queries.UsageTotals(ctx, db.UsageTotalsParams{FromHour: formatTime(tq.From), ToHour: formatTime(tq.To),
		GaugeFrom: formatTime(tq.GaugeFrom), AfterTenant: tq.AfterTenant, MaxRows: int64(tq.MaxRows)})
	if err != nil {
		return nil, fmt.Errorf("total usage: %w", err)
	}
	out := make([]usage.Count, len(rows))
	for i, c := range rows {
		out[i] = usage.Count{TenantID: c.TenantID, Metric: c.Metric, Value: c.Value}
	}
	return out, nil
}

// UsageSample implements usage.Store: each sample is one upsert, in one
// transaction (a pass's samples land together or not at all).
func (d *DB) UsageSample(ctx context.Context, samples []usage.Sample) error {
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		for _, s := range samples {
			if err := q.UsageSample(ctx, db.UsageSampleParams{TenantID: s.TenantID, Metric: s.Metric,
				Hour: formatTime(s.At.Truncate(time.Hour)), Value: s.Value, SampledAt: formatTime(s.At)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("keep usage samples: %w", err)
	}
	return nil
}

// UsageIndexBuilds implements usage.Store.
func (d *DB) UsageIndexBuilds(ctx context.Context) ([]usage.IndexBuild, error) {
	rows, err := d.queries.UsageIndexBuilds(ctx)
	if err != nil {
		return nil, fmt.Errorf("read index builds: %w", err)
	}
	out := make([]usage.IndexBuild, len(rows))
	for i, r := range rows {
		out[i] = usage.IndexBuild{TenantID: r.TenantID}
		if r.BuiltAt.Valid {
			if out[i].BuiltAt, err = parseTime(r.BuiltAt.String); err != nil {
				return nil, fmt.Errorf("read index builds: %w", err)
			}
		}
	}
	return out, nil
}

// UsageIndexBuilt implements usage.Store.
func (d *DB) UsageIndexBuilt(ctx context.Context, tenant string, at time.Time, final bool) error {
	var err error
	if final {
		err = d.queries.UsageIndexBuildDone(ctx, tenant)
	} else {
		err = d.queries.UsageIndexBuilt(ctx, db.UsageIndexBuiltParams{TenantID: tenant, BuiltAt: sql.NullString{String: formatTime(at), Valid: true}})
	}
	if err != nil {
		return fmt.Errorf("record index build of %s: %w", tenant, err)
	}
	return nil
}

// UsageForgetFlushes implements usage.Store.
func (d *DB) UsageForgetFlushes(ctx context.Context, before time.Time) error {
	if err := d.queries.UsageForgetFlushes(ctx, formatTime(before)); err != nil {
		return fmt.Errorf("forget usage flushes: %w", err)
	}
	return nil
}

// UsageReportRecord implements usage.Store.
func (d *DB) UsageReportRecord(ctx context.Context, day, location string, at time.Time, ev fleet.Event) (bool, error) {
	recorded := false
	err := d.withTx(ctx, func(tx *sql.Tx) error {
		q := d.queries.WithTx(tx)
		n, err := q.UsageReportRecord(ctx, db.UsageReportRecordParams{Day: day, Location: location, ReportedAt: formatTime(at)})
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
