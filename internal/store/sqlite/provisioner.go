package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

var _ provisioner.Store = (*DB)(nil)

// PlacementEnsure implements provisioner.Store. A new placement is stored
// at Version 1, whatever p.Version; a zero CreatedAt means now and a zero
// UpdatedAt means CreatedAt. Statements run one at a time (see the
// package doc), so of concurrent calls for one key exactly one inserts.
func (d *DB) PlacementEnsure(ctx context.Context, p provisioner.Placement) (provisioner.Placement, error) {
	outputs, err := outputsColumn(p.Outputs)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("ensure placement: %w", err)
	}
	createdAt, updatedAt := insertTimes(p.CreatedAt, p.UpdatedAt)
	row, err := d.queries.PlacementInsert(ctx, db.PlacementInsertParams{
		TenantID:        p.TenantID,
		Region:          p.Region,
		Kind:            string(p.Kind),
		StackName:       p.StackName,
		Status:          string(p.Status),
		StackStatus:     p.StackStatus,
		TemplateVersion: p.TemplateVersion,
		Outputs:         outputs,
		LastError:       p.LastError,
		Attempt:         int64(p.Attempt),
		Version:         1,
		CreatedAt:       createdAt,
		UpdatedAt:       updatedAt,
	})
	if errors.Is(err, sql.ErrNoRows) {
		// The placement exists. Placements are never deleted, so it is
		// still there to read.
		row, err = d.queries.PlacementGet(ctx, db.PlacementGetParams{TenantID: p.TenantID, Region: p.Region})
	}
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("ensure placement: %w", translateProvisioner(err))
	}
	stored, err := placementFromRow(row)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("ensure placement: %w", err)
	}
	return stored, nil
}

// PlacementGet implements provisioner.Store.
func (d *DB) PlacementGet(ctx context.Context, tenantID, region string) (provisioner.Placement, error) {
	row, err := d.queries.PlacementGet(ctx, db.PlacementGetParams{TenantID: tenantID, Region: region})
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("get placement: %w", translateProvisioner(err))
	}
	stored, err := placementFromRow(row)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("get placement: %w", err)
	}
	return stored, nil
}

// PlacementList implements provisioner.Store.
func (d *DB) PlacementList(ctx context.Context, tenantID string) ([]provisioner.Placement, error) {
	rows, err := d.queries.PlacementList(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list placements: %w", translateProvisioner(err))
	}
	out, err := placementsFromRows(rows)
	if err != nil {
		return nil, fmt.Errorf("list placements: %w", err)
	}
	return out, nil
}

// PlacementListInFlight implements provisioner.Store. Placements of one
// Region are ordered by tenant ID.
func (d *DB) PlacementListInFlight(ctx context.Context) ([]provisioner.Placement, error) {
	rows, err := d.queries.PlacementListInFlight(ctx)
	if err != nil {
		return nil, fmt.Errorf("list in-flight placements: %w", translateProvisioner(err))
	}
	out, err := placementsFromRows(rows)
	if err != nil {
		return nil, fmt.Errorf("list in-flight placements: %w", err)
	}
	return out, nil
}

// PlacementUpdate implements provisioner.Store. It stores every field but
// the key and CreatedAt, and sets UpdatedAt to now. Of concurrent updates
// from one Version exactly one succeeds: statements run one at a time, and
// the others find the Version changed. With events to announce, the update
// and their insert are one transaction.
func (d *DB) PlacementUpdate(ctx context.Context, p provisioner.Placement, announce ...fleet.Event) (provisioner.Placement, error) {
	if len(announce) == 0 {
		return placementUpdate(ctx, d.queries, p)
	}
	var stored provisioner.Placement
	err := d.withTx(ctx, func(sqlTx *sql.Tx) error {
		q := d.queries.WithTx(sqlTx)
		var err error
		if stored, err = placementUpdate(ctx, q, p); err != nil {
			return err
		}
		return fleetEventInsert(ctx, q, announce)
	})
	return stored, err
}

func placementUpdate(ctx context.Context, q *db.Queries, p provisioner.Placement) (provisioner.Placement, error) {
	outputs, err := outputsColumn(p.Outputs)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("update placement: %w", err)
	}
	row, err := q.PlacementUpdate(ctx, db.PlacementUpdateParams{
		Kind:            string(p.Kind),
		StackName:       p.StackName,
		StackID:         p.StackID,
		Status:          string(p.Status),
		StackStatus:     p.StackStatus,
		TemplateVersion: p.TemplateVersion,
		Outputs:         outputs,
		LastError:       p.LastError,
		Attempt:         int64(p.Attempt),
		PrevVersion:     p.Version,
		UpdatedAt:       formatTime(time.Now()),
		TenantID:        p.TenantID,
		Region:          p.Region,
	})
	return placementWritten(ctx, q, "update placement", p, row, err)
}

// PlacementClaim implements provisioner.Store. Of concurrent claims from
// one Version exactly one succeeds, as with PlacementUpdate.
func (d *DB) PlacementClaim(ctx context.Context, p provisioner.Placement, now, leaseUntil time.Time) (provisioner.Placement, error) {
	outputs, err := outputsColumn(p.Outputs)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("claim placement: %w", err)
	}
	row, err := d.queries.PlacementClaim(ctx, db.PlacementClaimParams{
		Kind:            string(p.Kind),
		StackName:       p.StackName,
		StackID:         p.StackID,
		Status:          string(p.Status),
		StackStatus:     p.StackStatus,
		TemplateVersion: p.TemplateVersion,
		Outputs:         outputs,
		LastError:       p.LastError,
		Attempt:         int64(p.Attempt),
		UpdatedAt:       formatTime(now),
		LeaseUntil:      leaseColumn(leaseUntil),
		TenantID:        p.TenantID,
		Region:          p.Region,
		PrevVersion:     p.Version,
		Now:             leaseColumn(now),
	})
	return placementWritten(ctx, d.queries, "claim placement", p, row, err)
}

// PlacementRenew implements provisioner.Store.
func (d *DB) PlacementRenew(ctx context.Context, tenantID, region string, claimVersion int64, now, leaseUntil time.Time) error {
	n, err := d.queries.PlacementRenew(ctx, db.PlacementRenewParams{
		LeaseUntil: leaseColumn(leaseUntil), TenantID: tenantID, Region: region, ClaimVersion: claimVersion, Now: leaseColumn(now),
	})
	return renewed("placement", n, err)
}

// PoolClaim implements provisioner.Store, as PlacementClaim does for
// placements.
func (d *DB) PoolClaim(ctx context.Context, p provisioner.Pool, now, leaseUntil time.Time) (provisioner.Pool, error) {
	outputs, err := outputsColumn(p.Outputs)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("claim pool: %w", err)
	}
	row, err := d.queries.PoolClaim(ctx, db.PoolClaimParams{
		StackName:       p.StackName,
		StackID:         p.StackID,
		Status:          string(p.Status),
		StackStatus:     p.StackStatus,
		TemplateVersion: p.TemplateVersion,
		Outputs:         outputs,
		LastError:       p.LastError,
		Attempt:         int64(p.Attempt),
		UpdatedAt:       formatTime(now),
		LeaseUntil:      leaseColumn(leaseUntil),
		Region:          p.Region,
		PrevVersion:     p.Version,
		Now:             leaseColumn(now),
	})
	return poolWritten(ctx, d.queries, "claim pool", p.Region, row, err)
}

// PoolRenew implements provisioner.Store.
func (d *DB) PoolRenew(ctx context.Context, region string, claimVersion int64, now, leaseUntil time.Time) error {
	n, err := d.queries.PoolRenew(ctx, db.PoolRenewParams{
		LeaseUntil: leaseColumn(leaseUntil), Region: region, ClaimVersion: claimVersion, Now: leaseColumn(now),
	})
	return renewed("pool", n, err)
}

// TenantsStalled implements provisioner.Store.
func (d *DB) TenantsStalled(ctx context.Context, now, quietSince time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return []string{}, nil
	}
	ids, err := d.queries.TenantsStalled(ctx, db.TenantsStalledParams{QuietSince: formatTime(quietSince), Now: leaseColumn(now), MaxRows: int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("stalled tenants: %w", translateProvisioner(err))
	}
	return ids, nil
}

// renewed is the error of a lease renewal that changed n rows.
func renewed(what string, n int64, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("renew %s claim: %w", what, translateProvisioner(err))
	case n == 0:
		return fmt.Errorf("renew %s claim: %w", what, provisioner.ErrClaimLost)
	}
	return nil
}

// leaseColumn is the stored form of a lease time, compared as text in
// the queries: NULL for the zero time.
func leaseColumn(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return optionalTimeColumn(&t)
}

// leaseFromColumn reads a stored lease time: NULL is the zero time.
func leaseFromColumn(c sql.NullString) (time.Time, error) {
	t, err := optionalTimeFromColumn(c)
	if err != nil || t == nil {
		return time.Time{}, err
	}
	return *t, nil
}

// PoolEnsure implements provisioner.Store, as PlacementEnsure does for
// placements.
func (d *DB) PoolEnsure(ctx context.Context, p provisioner.Pool) (provisioner.Pool, error) {
	outputs, err := outputsColumn(p.Outputs)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("ensure pool: %w", err)
	}
	createdAt, updatedAt := insertTimes(p.CreatedAt, p.UpdatedAt)
	row, err := d.queries.PoolInsert(ctx, db.PoolInsertParams{
		Region:          p.Region,
		StackName:       p.StackName,
		Status:          string(p.Status),
		StackStatus:     p.StackStatus,
		TemplateVersion: p.TemplateVersion,
		Outputs:         outputs,
		LastError:       p.LastError,
		Attempt:         int64(p.Attempt),
		Version:         1,
		CreatedAt:       createdAt,
		UpdatedAt:       updatedAt,
	})
	if errors.Is(err, sql.ErrNoRows) {
		// The pool exists; pools are never deleted.
		row, err = d.queries.PoolGet(ctx, p.Region)
	}
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("ensure pool: %w", translateProvisioner(err))
	}
	stored, err := poolFromRow(row, 0)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("ensure pool: %w", err)
	}
	return stored, nil
}

// PoolGet implements provisioner.Store. TenantCount is left zero.
func (d *DB) PoolGet(ctx context.Context, region string) (provisioner.Pool, error) {
	row, err := d.queries.PoolGet(ctx, region)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("get pool: %w", translateProvisioner(err))
	}
	stored, err := poolFromRow(row, 0)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("get pool: %w", err)
	}
	return stored, nil
}

// PoolList implements provisioner.Store. It counts tenants in the same
// query, so the counts and the pools are one snapshot.
func (d *DB) PoolList(ctx context.Context) ([]provisioner.Pool, error) {
	rows, err := d.queries.PoolList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", translateProvisioner(err))
	}
	out := make([]provisioner.Pool, 0, len(rows))
	for _, r := range rows {
		p, err := poolFromRow(r.Pool, r.TenantCount)
		if err != nil {
			return nil, fmt.Errorf("list pools: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// PoolUpdate implements provisioner.Store, as PlacementUpdate does for
// placements.
func (d *DB) PoolUpdate(ctx context.Context, p provisioner.Pool, announce ...fleet.Event) (provisioner.Pool, error) {
	if len(announce) == 0 {
		return poolUpdate(ctx, d.queries, p)
	}
	var stored provisioner.Pool
	err := d.withTx(ctx, func(sqlTx *sql.Tx) error {
		q := d.queries.WithTx(sqlTx)
		var err error
		if stored, err = poolUpdate(ctx, q, p); err != nil {
			return err
		}
		return fleetEventInsert(ctx, q, announce)
	})
	return stored, err
}

func poolUpdate(ctx context.Context, q *db.Queries, p provisioner.Pool) (provisioner.Pool, error) {
	outputs, err := outputsColumn(p.Outputs)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("update pool: %w", err)
	}
	row, err := q.PoolUpdate(ctx, db.PoolUpdateParams{
		StackName:       p.StackName,
		StackID:         p.StackID,
		Status:          string(p.Status),
		StackStatus:     p.StackStatus,
		TemplateVersion: p.TemplateVersion,
		Outputs:         outputs,
		LastError:       p.LastError,
		Attempt:         int64(p.Attempt),
		PrevVersion:     p.Version,
		UpdatedAt:       formatTime(time.Now()),
		Region:          p.Region,
	})
	return poolWritten(ctx, q, "update pool", p.Region, row, err)
}

// StackEventsAppend implements provisioner.Store. It inserts the events one
// by one in one transaction, so their Seq follow the order given.
func (d *DB) StackEventsAppend(ctx context.Context, tenantID, region string, events []provisioner.StackEvent) (int, error) {
	var added int64
	err := d.withTx(ctx, func(sqlTx *sql.Tx) error {
		q := d.queries.WithTx(sqlTx)
		for _, e := range events {
			n, err := q.StackEventInsert(ctx, db.StackEventInsertParams{
				TenantID:     tenantID,
				Region:       region,
				EventID:      e.ID,
				Time:         formatTime(e.Time),
				LogicalID:    e.LogicalID,
				ResourceType: e.ResourceType,
				Status:       e.Status,
				Reason:       e.Reason,
			})
			if err != nil {
				return translateProvisioner(err)
			}
			added += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append stack events: %w", err)
	}
	return int(added), nil
}

// StackEventsList implements provisioner.Store. A limit <= 0 returns no
// events.
func (d *DB) StackEventsList(ctx context.Context, tenantID, region string, beforeSeq int64, limit int) ([]provisioner.RecordedEvent, error) {
	if limit <= 0 {
		return []provisioner.RecordedEvent{}, nil
	}
	rows, err := d.queries.StackEventList(ctx, db.StackEventListParams{
		TenantID:  tenantID,
		Region:    region,
		BeforeSeq: beforeSeq,
		MaxRows:   int64(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list stack events: %w", translateProvisioner(err))
	}
	out := make([]provisioner.RecordedEvent, 0, len(rows))
	for _, r := range rows {
		t, err := parseTime(r.Time)
		if err != nil {
			return nil, fmt.Errorf("list stack events: %w", err)
		}
		out = append(out, provisioner.RecordedEvent{
			StackEvent: provisioner.StackEvent{
				ID:           r.EventID,
				Time:         t,
				LogicalID:    r.LogicalID,
				ResourceType: r.ResourceType,
				Status:       r.Status,
				Reason:       r.Reason,
			},
			TenantID: r.TenantID,
			Region:   r.Region,
			Seq:      r.Seq,
		})
	}
	return out, nil
}

// placementWritten is the result of a conditional write of p (op) that
// returned row and err: the stored placement, or ErrConflict or
// ErrNotFound when it matched no row.
func placementWritten(ctx context.Context, q *db.Queries, op string, p provisioner.Placement, row db.Placement, err error) (provisioner.Placement, error) {
	if errors.Is(err, sql.ErrNoRows) {
		var exists bool
		exists, err = q.PlacementExists(ctx, db.PlacementExistsParams{TenantID: p.TenantID, Region: p.Region})
		if err == nil {
			return provisioner.Placement{}, fmt.Errorf("%s: %w", op, staleOrMissing(exists))
		}
	}
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("%s: %w", op, translateProvisioner(err))
	}
	stored, err := placementFromRow(row)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("%s: %w", op, err)
	}
	return stored, nil
}

// poolWritten is placementWritten for the pool of region.
func poolWritten(ctx context.Context, q *db.Queries, op, region string, row db.Pool, err error) (provisioner.Pool, error) {
	if errors.Is(err, sql.ErrNoRows) {
		var exists bool
		exists, err = q.PoolExists(ctx, region)
		if err == nil {
			return provisioner.Pool{}, fmt.Errorf("%s: %w", op, staleOrMissing(exists))
		}
	}
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("%s: %w", op, translateProvisioner(err))
	}
	stored, err := poolFromRow(row, 0)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("%s: %w", op, err)
	}
	return stored, nil
}

// translateProvisioner maps driver errors to the provisioner package's
// sentinel errors, as translate does for tenants. Every placement, pool and
// stack event query error passes through it exactly once.
func translateProvisioner(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return provisioner.ErrNotFound
	}
	return err
}

// staleOrMissing is the error of an update that matched no row: the record
// exists at another version, or does not exist.
func staleOrMissing(exists bool) error {
	if exists {
		return provisioner.ErrConflict
	}
	return provisioner.ErrNotFound
}

// insertTimes returns the stored CreatedAt and UpdatedAt of a new record:
// zero means now, and a zero UpdatedAt means CreatedAt.
func insertTimes(createdAt, updatedAt time.Time) (string, string) {
	if createdAt.IsZero() {
		createdAt = time.Now()
	}
	if updatedAt.IsZero() {
		updatedAt = createdAt
	}
	return formatTime(createdAt), formatTime(updatedAt)
}

// parseTimes parses a stored created_at and updated_at.
func parseTimes(createdAt, updatedAt string) (time.Time, time.Time, error) {
	c, err := parseTime(createdAt)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	u, err := parseTime(updatedAt)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return c, u, nil
}

// outputsColumn is the stored form of outputs: a JSON object, {} for nil.
func outputsColumn(outputs map[string]string) (string, error) {
	if outputs == nil {
		outputs = map[string]string{}
	}
	b, err := json.Marshal(outputs)
	return string(b), err
}

// outputsFromColumn parses a stored outputs object; it never returns a nil
// map.
func outputsFromColumn(s string) (map[string]string, error) {
	outputs := map[string]string{}
	if err := json.Unmarshal([]byte(s), &outputs); err != nil {
		return nil, err
	}
	return outputs, nil
}

// placementFromRow converts a stored row to a provisioner.Placement.
func placementFromRow(r db.Placement) (provisioner.Placement, error) {
	outputs, err := outputsFromColumn(r.Outputs)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("placement %s/%s outputs: %w", r.TenantID, r.Region, err)
	}
	createdAt, updatedAt, err := parseTimes(r.CreatedAt, r.UpdatedAt)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("placement %s/%s: %w", r.TenantID, r.Region, err)
	}
	lease, err := leaseFromColumn(r.LeaseUntil)
	if err != nil {
		return provisioner.Placement{}, fmt.Errorf("placement %s/%s lease: %w", r.TenantID, r.Region, err)
	}
	return provisioner.Placement{
		TenantID: r.TenantID,
		Kind:     provisioner.Kind(r.Kind),
		StackRecord: provisioner.StackRecord{
			Region:          r.Region,
			StackName:       r.StackName,
			StackID:         r.StackID,
			Status:          provisioner.Status(r.Status),
			StackStatus:     r.StackStatus,
			TemplateVersion: r.TemplateVersion,
			Outputs:         outputs,
			LastError:       r.LastError,
			Attempt:         int(r.Attempt),
			Version:         r.Version,
			ClaimVersion:    r.ClaimVersion,
			LeaseUntil:      lease,
			CreatedAt:       createdAt,
			UpdatedAt:       updatedAt,
		},
	}, nil
}

func placementsFromRows(rows []db.Placement) ([]provisioner.Placement, error) {
	out := make([]provisioner.Placement, 0, len(rows))
	for _, r := range rows {
		p, err := placementFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// poolFromRow converts a stored row and its tenant count to a
// provisioner.Pool.
func poolFromRow(r db.Pool, tenantCount int64) (provisioner.Pool, error) {
	outputs, err := outputsFromColumn(r.Outputs)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("pool %s outputs: %w", r.Region, err)
	}
	createdAt, updatedAt, err := parseTimes(r.CreatedAt, r.UpdatedAt)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("pool %s: %w", r.Region, err)
	}
	lease, err := leaseFromColumn(r.LeaseUntil)
	if err != nil {
		return provisioner.Pool{}, fmt.Errorf("pool %s lease: %w", r.Region, err)
	}
	return provisioner.Pool{
		StackRecord: provisioner.StackRecord{
			Region:          r.Region,
			StackName:       r.StackName,
			StackID:         r.StackID,
			Status:          provisioner.Status(r.Status),
			StackStatus:     r.StackStatus,
			TemplateVersion: r.TemplateVersion,
			Outputs:         outputs,
			LastError:       r.LastError,
			Attempt:         int(r.Attempt),
			Version:         r.Version,
			ClaimVersion:    r.ClaimVersion,
			LeaseUntil:      lease,
			CreatedAt:       createdAt,
			UpdatedAt:       updatedAt,
		},
		TenantCount: int(tenantCount),
	}, nil
}
