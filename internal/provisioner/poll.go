package provisioner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// PollOnce reads the status of every in-flight stack, one Engine.Stacks
// call per Region that has any, and records what changed. A Region whose
// read fails is skipped this round and the error returned, so the job is
// retried with backoff.
func (p *Provisioner) PollOnce(ctx context.Context) error {
	placements, err := p.store.PlacementListInFlight(ctx)
	if err != nil {
		return fmt.Errorf("in-flight placements: %w", err)
	}
	pools, err := p.store.PoolList(ctx)
	if err != nil {
		return fmt.Errorf("pools: %w", err)
	}
	byRegion := map[string][]Placement{}
	poolByRegion := map[string]Pool{}
	settledPools := map[string]bool{}
	for _, pool := range pools {
		if pool.Status.InFlight() {
			poolByRegion[pool.Region] = pool
		}
		settledPools[pool.Region] = !pool.Status.InFlight()
	}
	for _, pl := range placements {
		if pl.Kind == KindPooled {
			// A slice waiting on its pool: once the pool is ready, wake the
			// tenant's job to cut it, and once it is back to pending (a
			// lost create) or failed, to claim it again or fail. The job
			// may have died with a replica.
			if settledPools[pl.Region] {
				p.wake(ctx, pl.TenantID)
			}
			continue
		}
		byRegion[pl.Region] = append(byRegion[pl.Region], pl)
	}
	regions := slices.Sorted(maps.Keys(byRegion))
	for r := range poolByRegion {
		if _, ok := byRegion[r]; !ok {
			regions = append(regions, r)
		}
	}

	errs := []error{p.resumeStalled(ctx)}
	for _, region := range regions {
		stacks, err := p.engine.Stacks(ctx, region)
		if err != nil {
			errs = append(errs, fmt.Errorf("read stacks in %s: %w", region, err))
			continue
		}
		var records []*stackRef
		for _, pl := range byRegion[region] {
			records = append(records, p.placementStack(pl, tenants.Tenant{ID: pl.TenantID}))
		}
		if pool, ok := poolByRegion[region]; ok {
			records = append(records, p.poolStack(pool))
		}
		for _, s := range records {
			st, found := stacks[s.StackName]
			if err := p.observe(ctx, s, st, found); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// stalledBatch bounds the stalled tenants one polling round resumes.
const stalledBatch = 100

// resumeStalled queues a job for every tenant whose provisioning stalled:
// still provisioning, yet for a lease nothing changed and no stack of its
// is in flight or claimed. That is a tenant whose job died with its
// replica before it claimed anything (or after its last step, before it
// marked the tenant active). River would run that job again only after
// its rescue, over a minute later; this takes it over a lease after it
// stopped.
func (p *Provisioner) resumeStalled(ctx context.Context) error {
	now := p.now()
	ids, err := p.store.TenantsStalled(ctx, now, now.Add(-p.lease), stalledBatch)
	if err != nil {
		return fmt.Errorf("stalled tenants: %w", err)
	}
	for _, id := range ids {
		// Cairn's own step, asked by no one: no audit event.
		if err := p.tenants.Enqueue(ctx, audit.Event{}, ResumeArgs{TenantID: id}); err != nil {
			return fmt.Errorf("resume tenant %s: %w", id, err)
		}
	}
	if len(ids) > 0 {
		p.log.DebugContext(ctx, "stalled provisioning resumed", "tenants", len(ids))
	}
	return nil
}

// wake queues the tenant's provisioning job now rather than at the end of
// its snooze. The snoozed job stays as the safety net, so a lost wake-up
// only costs time.
func (p *Provisioner) wake(ctx context.Context, tenantID string) {
	if err := p.tenants.Reconcile(ctx, audit.Event{}, tenantID); err != nil && !errors.Is(err, tenants.ErrNotFound) {
		p.log.WarnContext(ctx, "wake tenant job", "tenant_id", tenantID, "err", err)
	}
}

func reasonOf(st Stack) string {
	if st.Reason != "" {
		return st.Status + ": " + st.Reason
	}
	return st.Status
}

// placementFailed announces the failure of t's stack pl. Its ID names the
// stack, its attempt and the status it failed in, so a failed create and
// the failed delete of its replacement are two events, and a repeat of
// either is one.
func placementFailed(t tenants.Tenant, pl Placement, now time.Time) fleet.Event {
	d := tenants.FleetData(t, now)
	d.Region, d.StackName, d.Reason = pl.Region, pl.StackName, pl.LastError
	return fleet.Event{
		ID:   fleet.NewID(fleet.StackFailed, pl.TenantID, pl.Region, pl.StackName, strconv.Itoa(pl.Attempt), pl.StackStatus),
		Type: fleet.StackFailed, At: now, Data: d,
	}
}

// poolFailed announces the failure of a Region's pool stack, which is no
// one tenant's: its tenants' own failures follow as tenant.failed.
func poolFailed(pool Pool, now time.Time) fleet.Event {
	return fleet.Event{
		ID:   fleet.NewID(fleet.StackFailed, "pool", pool.Region, pool.StackName, strconv.Itoa(pool.Attempt), pool.StackStatus),
		Type: fleet.StackFailed, At: now,
		Data: fleet.Data{Region: pool.Region, StackName: pool.StackName, Reason: pool.LastError, At: fleet.FormatTime(now)},
	}
}

// announced tells the fleet notifier that events were written.
func (p *Provisioner) announced(events []fleet.Event) {
	if len(events) > 0 && p.fleet != nil {
		p.fleet.Notify()
	}
}
