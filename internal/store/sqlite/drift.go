package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"database/sql"

	"github.com/cairn-cdp/cairn/internal/drift"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

var _ drift.Store = (*DB)(nil)

// DriftStacks implements drift.Store.
func (d *DB) DriftStacks(ctx context.Context) ([]drift.Stack, error) {
	rows, err := d.queries.DriftStacks(ctx)
	if err != nil {
		return nil, fmt.Errorf("drift stacks: %w", err)
	}
	out := make([]drift.Stack, len(rows))
	for i, r := range rows {
		out[i] = drift.Stack{Kind: r.Kind, Region: r.Region, StackName: r.StackName, TenantID: r.TenantID}
	}
	return out, nil
}

// StackDriftList implements drift.Store.
func (d *DB) StackDriftList(ctx context.Context) ([]drift.Record, error) {
	rows, err := d.queries.StackDriftList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list stack drift: %w", err)
	}
	out := make([]drift.Record, len(rows))
	for i, r := range rows {
		if out[i], err = driftFromRow(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// StackDriftGet implements drift.Store.
func (d *DB) StackDriftGet(ctx context.Context, region, stackName string) (drift.Record, error) {
	row, err := d.queries.StackDriftGet(ctx, db.StackDriftGetParams{Region: region, StackName: stackName})
	if errors.Is(err, sql.ErrNoRows) {
		return drift.Record{}, drift.ErrNotFound
	}
	if err != nil {
		return drift.Record{}, fmt.Errorf("get stack drift: %w", err)
	}
	return driftFromRow(row)
}

// StackDriftSet implements drift.Store.
func (d *DB) StackDriftSet(ctx context.Context, r drift.Record, announce ...fleet.Event) error {
	resources, err := json.Marshal(nonNil(r.Resources))
	if err != nil {
		return fmt.Errorf("set stack drift: %w", err)
	}
	err = d.withTx(ctx, func(sqlTx *sql.Tx) error {
		q := d.queries.WithTx(sqlTx)
		if err := q.StackDriftUpsert(ctx, db.StackDriftUpsertParams{Region: r.Region, StackName: r.StackName, Status: r.Status,
			Resources: string(resources), DetectionID: r.DetectionID, CheckedAt: formatTime(r.CheckedAt)}); err != nil {
			return err
		}
		return fleetEventInsert(ctx, q, announce)
	})
	if err != nil {
		return fmt.Errorf("set stack drift: %w", err)
	}
	return nil
}

func nonNil(d []provisioner.ResourceDrift) []provisioner.ResourceDrift {
	if d == nil {
		return []provisioner.ResourceDrift{}
	}
	return d
}

func driftFromRow(r db.StackDrift) (drift.Record, error) {
	checked, err := parseTime(r.CheckedAt)
	if err != nil {
		return drift.Record{}, err
	}
	out := drift.Record{Region: r.Region, StackName: r.StackName, Status: r.Status, DetectionID: r.DetectionID, CheckedAt: checked}
	if err := json.Unmarshal([]byte(r.Resources), &out.Resources); err != nil {
		return drift.Record{}, fmt.Errorf("stack drift of %s: %w", r.StackName, err)
	}
	return out, nil
}
