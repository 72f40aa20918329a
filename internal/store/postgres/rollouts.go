package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/rollouts"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

var _ rollouts.Store = (*DB)(nil)

// heldIndex is the unique index that lets one rollout at a time hold a
// stack.
const heldIndex = "rollout_targets_held_key"

// RolloutCreate implements rollouts.Store.
func (d *DB) RolloutCreate(ctx context.Context, r rollouts.Rollout, targets []rollouts.Target, rec audit.Event) (rollouts.Rollout, error) {
	body, err := store.EncodeRollout(r)
	if err != nil {
		return rollouts.Rollout{}, fmt.Errorf("create rollout: %w", err)
	}
	err = d.withTx(ctx, func(pgxTx pgx.Tx) error {
		q := d.queries.WithTx(pgxTx)
		seq, err := q.RolloutInsert(ctx, db.RolloutInsertParams{ID: r.ID, State: string(r.State), Body: body, CreatedAt: storedTime(r.CreatedAt)})
		if err != nil {
			return err
		}
		r.Seq, r.Version = seq, 1
		for _, t := range targets {
			detail, err := store.EncodeTarget(t)
			if err != nil {
				return err
			}
			if err := q.RolloutTargetInsert(ctx, db.RolloutTargetInsertParams{
				RolloutID: r.ID, Idx: int32(t.Index), Region: t.Region, StackName: t.StackName, State: string(t.State),
				Detail: detail, UpdatedAt: storedTime(r.CreatedAt),
			}); err != nil {
				return err
			}
		}
		if err := auditAppend(ctx, q, rec); err != nil {
			return err
		}
		_, err = d.jobs.InsertTx(ctx, pgxTx, rollouts.StepArgs{RolloutID: r.ID}, nil)
		return err
	})
	if err != nil {
		return rollouts.Rollout{}, fmt.Errorf("create rollout: %w", translateRollouts(err))
	}
	return r, nil
}

// RolloutGet implements rollouts.Store.
func (d *DB) RolloutGet(ctx context.Context, id string) (rollouts.Rollout, error) {
	row, err := d.queries.RolloutGet(ctx, id)
	if err != nil {
		return rollouts.Rollout{}, fmt.Errorf("get rollout: %w", translateRollouts(err))
	}
	return rolloutFromRow(row)
}

// RolloutList implements rollouts.Store.
func (d *DB) RolloutList(ctx context.Context, beforeSeq int64, limit int) ([]rollouts.Rollout, error) {
	rows, err := d.queries.RolloutList(ctx, db.RolloutListParams{BeforeSeq: beforeSeq, MaxRows: int32(min(max(limit, 0), 1<<30))})
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	return rolloutsFromRows(rows)
}

// RolloutListActive implements rollouts.Store.
func (d *DB) RolloutListActive(ctx context.Context) ([]rollouts.Rollout, error) {
	rows, err := d.queries.RolloutListActive(ctx)
	if err != nil {
		return nil, fmt.Errorf("list active rollouts: %w", err)
	}
	return rolloutsFromRows(rows)
}

// RolloutEnqueue implements rollouts.Store.
func (d *DB) RolloutEnqueue(ctx context.Context, id string) error {
	if _, err := d.jobs.Insert(ctx, rollouts.StepArgs{RolloutID: id}, nil); err != nil {
		return fmt.Errorf("enqueue rollout %s: %w", id, err)
	}
	return nil
}

// RolloutUpdate implements rollouts.Store: the update, the approval, the
// release of a finished rollout's stacks, its audit event, fleet events
// and job are one transaction.
func (d *DB) RolloutUpdate(ctx context.Context, u rollouts.Update) (rollouts.Rollout, error) {
	r := u.Rollout
	body, err := store.EncodeRollout(r)
	if err != nil {
		return rollouts.Rollout{}, fmt.Errorf("update rollout: %w", err)
	}
	var stored rollouts.Rollout
	err = d.withTx(ctx, func(pgxTx pgx.Tx) error {
		q := d.queries.WithTx(pgxTx)
		row, err := q.RolloutUpdate(ctx, db.RolloutUpdateParams{
			State: string(r.State), Body: body, FinishedAt: optionalTime(r.FinishedAt), ID: r.ID, PrevVersion: r.Version,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			exists, xerr := q.RolloutExists(ctx, r.ID)
			if xerr != nil {
				return xerr
			}
			if exists {
				return rollouts.ErrConflict
			}
			return rollouts.ErrNotFound
		}
		if err != nil {
			return err
		}
		if stored, err = rolloutFromRow(row); err != nil {
			return err
		}
		now := storedTime(time.Now())
		if u.Approve {
			if err := q.RolloutApprove(ctx, db.RolloutApproveParams{RolloutID: r.ID, UpdatedAt: now}); err != nil {
				return err
			}
		}
		if r.State.Done() && !r.FinishedAt.IsZero() {
			if err := q.RolloutRelease(ctx, r.ID); err != nil {
				return err
			}
		}
		if err := auditAppend(ctx, q, u.Audit); err != nil {
			return err
		}
		if err := fleetEventInsert(ctx, q, u.Announce); err != nil {
			return err
		}
		if u.Enqueue {
			if _, err := d.jobs.InsertTx(ctx, pgxTx, rollouts.StepArgs{RolloutID: r.ID}, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rollouts.Rollout{}, fmt.Errorf("update rollout: %w", err)
	}
	return stored, nil
}

// RolloutTargets implements rollouts.Store.
func (d *DB) RolloutTargets(ctx context.Context, id string) ([]rollouts.Target, error) {
	rows, err := d.queries.RolloutTargets(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("rollout targets: %w", err)
	}
	out := make([]rollouts.Target, len(rows))
	for i, row := range rows {
		if out[i], err = targetFromRow(row); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RolloutTargetUpdate implements rollouts.Store.
func (d *DB) RolloutTargetUpdate(ctx context.Context, t rollouts.Target) (rollouts.Target, error) {
	detail, err := store.EncodeTarget(t)
	if err != nil {
		return rollouts.Target{}, fmt.Errorf("update rollout target: %w", err)
	}
	row, err := d.queries.RolloutTargetUpdate(ctx, db.RolloutTargetUpdateParams{
		State: string(t.State), Held: !t.State.Terminal(), Detail: detail, UpdatedAt: storedTime(time.Now()),
		RolloutID: t.RolloutID, Idx: int32(t.Index), PrevVersion: t.Version,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return rollouts.Target{}, fmt.Errorf("update rollout target: %w", rollouts.ErrConflict)
	}
	if err != nil {
		return rollouts.Target{}, fmt.Errorf("update rollout target: %w", err)
	}
	return targetFromRow(row)
}

// RolloutCandidates implements rollouts.Store.
func (d *DB) RolloutCandidates(ctx context.Context) ([]rollouts.Candidate, error) {
	dedicated, err := d.queries.RolloutCandidatesDedicated(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollout candidates: %w", err)
	}
	pools, err := d.queries.RolloutCandidatesPools(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollout candidates: %w", err)
	}
	pooled, err := d.queries.RolloutPooledTenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("rollout candidates: %w", err)
	}
	out := make([]rollouts.Candidate, 0, len(dedicated)+len(pools))
	for _, c := range dedicated {
		labels, err := store.DecodeLabels(c.Labels)
		if err != nil {
			return nil, err
		}
		out = append(out, rollouts.Candidate{Kind: rollouts.KindDedicated, Region: c.Region, StackName: c.StackName,
			TemplateVersion: c.TemplateVersion, TenantID: c.TenantID, TenantSlug: c.Slug, TenantStatus: c.Status, TenantLabels: labels})
	}
	slices := map[string][]rollouts.PooledTenant{}
	for _, p := range pooled {
		labels, err := store.DecodeLabels(p.Labels)
		if err != nil {
			return nil, err
		}
		slices[p.Region] = append(slices[p.Region], rollouts.PooledTenant{ID: p.ID, Labels: labels})
	}
	for _, p := range pools {
		out = append(out, rollouts.Candidate{Kind: rollouts.KindPool, Region: p.Region, StackName: p.StackName,
			TemplateVersion: p.TemplateVersion, PooledTenants: slices[p.Region]})
	}
	return out, nil
}

// StackTemplateVersionSet implements rollouts.Store. A pool's slices
// follow it in the same transaction.
func (d *DB) StackTemplateVersionSet(ctx context.Context, kind, region, stackName, tenantID, version string) error {
	now := storedTime(time.Now())
	err := d.withTx(ctx, func(pgxTx pgx.Tx) error {
		q := d.queries.WithTx(pgxTx)
		if kind != rollouts.KindPool {
			return q.StackVersionSetDedicated(ctx, db.StackVersionSetDedicatedParams{TemplateVersion: version,
				StackStatus: provisioner.StackUpdateComplete, UpdatedAt: now, TenantID: tenantID, Region: region, StackName: stackName})
		}
		if err := q.StackVersionSetPool(ctx, db.StackVersionSetPoolParams{TemplateVersion: version,
			StackStatus: provisioner.StackUpdateComplete, UpdatedAt: now, Region: region, StackName: stackName}); err != nil {
			return err
		}
		return q.StackVersionSetSlices(ctx, db.StackVersionSetSlicesParams{TemplateVersion: version, UpdatedAt: now, Region: region})
	})
	if err != nil {
		return fmt.Errorf("set template version of %s in %s: %w", stackName, region, err)
	}
	return nil
}

func rolloutFromRow(row db.Rollout) (rollouts.Rollout, error) {
	var finished time.Time
	if row.FinishedAt != nil {
		finished = row.FinishedAt.UTC()
	}
	return store.DecodeRollout(row.Seq, row.ID, row.State, row.Body, row.Version, row.CreatedAt, finished)
}

func rolloutsFromRows(rows []db.Rollout) ([]rollouts.Rollout, error) {
	out := make([]rollouts.Rollout, len(rows))
	for i, row := range rows {
		var err error
		if out[i], err = rolloutFromRow(row); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func targetFromRow(row db.RolloutTarget) (rollouts.Target, error) {
	return store.DecodeTarget(row.RolloutID, int(row.Idx), row.Region, row.StackName, row.State, row.Detail, row.Version)
}

// translateRollouts maps the driver's errors to the rollouts package's.
func translateRollouts(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return rollouts.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" /* unique_violation */ && pgErr.ConstraintName == heldIndex {
		return rollouts.ErrStackBusy
	}
	return err
}

// RolloutCounts implements rollouts.Store.
func (d *DB) RolloutCounts(ctx context.Context, id string) (map[rollouts.TargetState]int, error) {
	rows, err := d.queries.RolloutCounts(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("count rollout targets: %w", err)
	}
	out := make(map[rollouts.TargetState]int, len(rows))
	for _, r := range rows {
		out[rollouts.TargetState(r.State)] = int(r.N)
	}
	return out, nil
}

// RolloutTakeover implements rollouts.Store.
func (d *DB) RolloutTakeover(ctx context.Context, id string, lapsed time.Time) error {
	if _, err := d.jobs.Insert(ctx, rollouts.StepArgs{RolloutID: id, Takeover: lapsed.UTC().UnixMicro()}, nil); err != nil {
		return fmt.Errorf("take over rollout %s: %w", id, err)
	}
	return nil
}

// RolloutClaim implements rollouts.Store.
func (d *DB) RolloutClaim(ctx context.Context, id string, job int64, until, now time.Time) (bool, error) {
	n, err := d.queries.RolloutClaim(ctx, db.RolloutClaimParams{Job: pgtype.Int8{Int64: job, Valid: true},
		LeaseUntil: optionalTime(until), ID: id, Now: optionalTime(now)})
	if err != nil {
		return false, fmt.Errorf("claim rollout %s: %w", id, err)
	}
	return n == 1, nil
}

// RolloutLeaseRelease implements rollouts.Store.
func (d *DB) RolloutLeaseRelease(ctx context.Context, id string, job int64) error {
	if err := d.queries.RolloutLeaseRelease(ctx, db.RolloutLeaseReleaseParams{ID: id, Job: pgtype.Int8{Int64: job, Valid: true}}); err != nil {
		return fmt.Errorf("release rollout %s: %w", id, err)
	}
	return nil
}

// RolloutLapsed implements rollouts.Store.
func (d *DB) RolloutLapsed(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := d.queries.RolloutLapsed(ctx, optionalTime(now))
	if err != nil {
		return nil, fmt.Errorf("lapsed rollouts: %w", err)
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.ID] = r.LeaseUntil.UTC()
	}
	return out, nil
}
