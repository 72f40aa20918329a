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
	"github.com/cairn-cdp/cairn/templates"
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
		for _, pl := range byRegion[region] {
			st, found := stacks[pl.StackName]
			if err := p.observe(ctx, pl, st, found); err != nil {
				errs = append(errs, err)
			}
		}
		if pool, ok := poolByRegion[region]; ok {
			st, found := stacks[pool.StackName]
			if err := p.observePool(ctx, pool, st, found); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// observe applies a dedicated stack's reported status to its placement.
func (p *Provisioner) observe(ctx context.Context, pl Placement, st Stack, found bool) error {
	before := pl
	if found {
		pl.StackStatus = st.Status
	}
	var failure string
	switch pl.Status {
	case StatusCreating:
		switch {
		case !found && p.leaseLive(pl.LeaseUntil):
			// Claimed: the CreateStack call may still be on its way.
		case !found:
			// The claim lapsed and the create never landed: the job claims
			// it again and sends it with the same token.
			pl.Status = StatusPending
		case completeStatus(st.Status):
			out := stackOutputs(st.Outputs)
			if out["glue_database"] == "" {
				out["glue_database"] = templates.DedicatedGlueDatabase(pl.TenantID)
			}
			if out["athena_workgroup"] == "" {
				out["athena_workgroup"] = templates.DedicatedWorkGroup(pl.TenantID)
			}
			// The catalog the grants broker relies on is verified through
			// the Glue API, not taken on the template's word.
			location := "s3://" + out["raw_bucket"] + "/"
			if err := p.engine.EnsureDatabase(ctx, pl.Region, out["glue_database"], location, map[string]string{"cairn:tenant-id": pl.TenantID, "cairn:managed-by": "cairn"}); err != nil {
				return fmt.Errorf("glue database for %s in %s: %w", pl.TenantID, pl.Region, err)
			}
			pl.Status, pl.Outputs, pl.LastError = StatusReady, out, ""
		case failedStatus(st.Status):
			failure = reasonOf(st)
			pl.Status, pl.LastError = StatusFailed, failure
		}
	case StatusReplacing, StatusDeleting:
		switch {
		case !found && pl.Status == StatusReplacing:
			pl.Status, pl.Attempt, pl.StackStatus = StatusPending, pl.Attempt+1, ""
		case !found:
			pl.Status, pl.StackStatus = StatusDeleted, "DELETE_COMPLETE"
		case st.Status == StackDeleteFailed:
			pl.Status, pl.LastError = StatusFailed, reasonOf(st)
		case st.Status != StackDeleteInProgress:
			// The delete has not started (a crash between the call and the
			// record, or a throttled call): ask again, idempotently.
			if err := p.engine.DeleteStack(ctx, pl.Region, pl.StackName, token(pl.StackName, "delete", pl.Attempt)); err != nil {
				return fmt.Errorf("delete stack %s in %s: %w", pl.StackName, pl.Region, err)
			}
		}
	}
	if pl.Status == before.Status && pl.StackStatus == before.StackStatus {
		return nil
	}
	var announce []fleet.Event
	if pl.Status == StatusFailed && before.Status != StatusFailed {
		t, err := p.tenants.Get(ctx, pl.TenantID)
		if err != nil && !errors.Is(err, tenants.ErrNotFound) {
			return fmt.Errorf("tenant of failed stack %s in %s: %w", pl.StackName, pl.Region, err)
		}
		if t.ID == "" {
			t.ID = pl.TenantID
		}
		announce = append(announce, placementFailed(t, pl, time.Now()))
	}
	if _, err := p.store.PlacementUpdate(ctx, pl, announce...); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil // a worker moved it; the next round sees the new record
		}
		return fmt.Errorf("update placement %s/%s: %w", pl.TenantID, pl.Region, err)
	}
	p.stackMoved(ctx, pl.TenantID, pl.Region, pl.StackName, before.Status, pl.Status, pl.LastError)
	p.announced(announce)
	if found {
		p.recordEvents(ctx, pl)
	}
	if pl.Status == StatusReady || pl.Status == StatusPending {
		p.wake(ctx, pl.TenantID)
	}
	if failure != "" {
		t, err := p.tenants.Get(ctx, pl.TenantID)
		if err == nil && t.Status == tenants.StatusProvisioning {
			_, err = p.tenants.MarkFailed(ctx, pl.TenantID, t.Version, pl.Region+": "+failure)
		}
		if errors.Is(err, tenants.ErrVersionMismatch) {
			err = nil // changed since read: the tenant's job judges it again
		}
		if err := ignoreTransition(err); err != nil {
			return fmt.Errorf("mark %s failed: %w", pl.TenantID, err)
		}
	}
	return nil
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

// recordEvents copies the stack's events into Cairn's record; a failure
// only costs history, so it is logged, not returned.
func (p *Provisioner) recordEvents(ctx context.Context, pl Placement) {
	events, err := p.engine.StackEvents(ctx, pl.Region, pl.StackName)
	if err == nil {
		slices.Reverse(events) // oldest first
		_, err = p.store.StackEventsAppend(ctx, pl.TenantID, pl.Region, events)
	}
	if err != nil && !errors.Is(err, ErrStackNotFound) {
		p.log.WarnContext(ctx, "record stack events", "tenant_id", pl.TenantID, "region", pl.Region, "err", err)
	}
}

// observePool applies the pool stack's reported status to the pool.
func (p *Provisioner) observePool(ctx context.Context, pool Pool, st Stack, found bool) error {
	before := pool
	if found {
		pool.StackStatus = st.Status
	}
	switch {
	case pool.Status == StatusCreating && !found && p.leaseLive(pool.LeaseUntil):
		// Claimed: the CreateStack call may still be on its way.
	case pool.Status == StatusCreating && !found:
		pool.Status = StatusPending
	case pool.Status == StatusCreating && completeStatus(st.Status):
		pool.Status, pool.Outputs, pool.LastError = StatusReady, st.Outputs, ""
		if pool.Outputs["AthenaWorkGroup"] == "" {
			pool.Outputs = maps.Clone(pool.Outputs)
			pool.Outputs["AthenaWorkGroup"] = templates.PoolWorkGroup(PoolID)
		}
	case pool.Status == StatusCreating && failedStatus(st.Status):
		pool.Status, pool.LastError = StatusFailed, reasonOf(st)
	case pool.Status == StatusReplacing && !found:
		pool.Status, pool.Attempt, pool.StackStatus = StatusPending, pool.Attempt+1, ""
	case pool.Status == StatusReplacing && st.Status == StackDeleteFailed:
		pool.Status, pool.LastError = StatusFailed, reasonOf(st)
	case pool.Status == StatusReplacing && st.Status != StackDeleteInProgress:
		if err := p.engine.DeleteStack(ctx, pool.Region, pool.StackName, token(pool.StackName, "delete", pool.Attempt)); err != nil {
			return fmt.Errorf("delete pool in %s: %w", pool.Region, err)
		}
	}
	if pool.Status == before.Status && pool.StackStatus == before.StackStatus {
		return nil
	}
	var announce []fleet.Event
	if pool.Status == StatusFailed && before.Status != StatusFailed {
		announce = append(announce, poolFailed(pool, time.Now()))
	}
	if _, err := p.store.PoolUpdate(ctx, pool, announce...); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil // a worker moved it; the next round sees the new record
		}
		return fmt.Errorf("update pool in %s: %w", pool.Region, err)
	}
	p.stackMoved(ctx, "", pool.Region, pool.StackName, before.Status, pool.Status, pool.LastError)
	p.announced(announce)
	return nil
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
