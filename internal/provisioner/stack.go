package provisioner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/templates"
)

// stackRef is one stack record with what differs between its two kinds, a
// tenant's own stack (a placement) and a Region's pool: the store calls
// that write it, the stack it asks for, and what happens when it settles.
// Everything else about a stack (claim then create, replace, observe) is
// one routine for both, below.
type stackRef struct {
	StackRecord
	// tenantID is the placement's tenant, "" for a pool.
	tenantID string
	// what names the record in errors: "stack" or "pool stack".
	what string

	claim  func(ctx context.Context, rec StackRecord, now, until time.Time) (StackRecord, error)
	renew  func(ctx context.Context, claimVersion int64, now, until time.Time) error
	update func(ctx context.Context, rec StackRecord, announce ...fleet.Event) (StackRecord, error)
	// create is the stack the record asks for; Region, Name and Token
	// are the claim's.
	create CreateStackInput
	// outputs are the record's outputs once its stack is complete.
	outputs func(ctx context.Context, rec StackRecord, st Stack) (map[string]string, error)
	// failure announces the record's move to failed.
	failure func(ctx context.Context, rec StackRecord) (fleet.Event, error)
	// settled, if set, runs after observe stored a change from before to
	// rec; found says whether the engine reported the stack.
	settled func(ctx context.Context, before, rec StackRecord, found bool) error
}

// placementStack is a dedicated placement's stack; t is its tenant as
// last read (only its ID and slug, for the create, are used).
func (p *Provisioner) placementStack(pl Placement, t tenants.Tenant) *stackRef {
	with := func(rec StackRecord) Placement {
		pl := pl
		pl.StackRecord = rec
		return pl
	}
	return &stackRef{
		StackRecord: pl.StackRecord, tenantID: pl.TenantID, what: "stack",
		claim: func(ctx context.Context, rec StackRecord, now, until time.Time) (StackRecord, error) {
			stored, err := p.store.PlacementClaim(ctx, with(rec), now, until)
			return stored.StackRecord, err
		},
		renew: func(ctx context.Context, claimVersion int64, now, until time.Time) error {
			return p.store.PlacementRenew(ctx, pl.TenantID, pl.Region, claimVersion, now, until)
		},
		update: func(ctx context.Context, rec StackRecord, announce ...fleet.Event) (StackRecord, error) {
			stored, err := p.store.PlacementUpdate(ctx, with(rec), announce...)
			return stored.StackRecord, err
		},
		create: CreateStackInput{
			Template:   templates.Dedicated(),
			Parameters: map[string]string{"TenantId": pl.TenantID, "TenantSlug": t.Slug},
			Tags:       tenantTags(pl.TenantID),
		},
		outputs: func(ctx context.Context, rec StackRecord, st Stack) (map[string]string, error) {
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
			if err := p.engine.EnsureDatabase(ctx, rec.Region, out["glue_database"], location, tenantTags(pl.TenantID)); err != nil {
				return nil, fmt.Errorf("glue database for %s in %s: %w", pl.TenantID, rec.Region, err)
			}
			return out, nil
		},
		failure: func(ctx context.Context, rec StackRecord) (fleet.Event, error) {
			t, err := p.tenants.Get(ctx, pl.TenantID)
			if err != nil && !errors.Is(err, tenants.ErrNotFound) {
				return fleet.Event{}, fmt.Errorf("tenant of failed stack %s in %s: %w", rec.StackName, rec.Region, err)
			}
			if t.ID == "" {
				t.ID = pl.TenantID
			}
			return placementFailed(t, with(rec), p.now()), nil
		},
		settled: func(ctx context.Context, before, rec StackRecord, found bool) error {
			if found {
				p.recordEvents(ctx, pl.TenantID, rec)
			}
			switch rec.Status {
			case StatusReady, StatusPending:
				p.wake(ctx, pl.TenantID)
			case StatusFailed:
				t, err := p.tenants.Get(ctx, pl.TenantID)
				if errors.Is(err, tenants.ErrNotFound) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("tenant of failed stack %s in %s: %w", rec.StackName, rec.Region, err)
				}
				// A tenant that changed since it was read is judged again
				// by its own job.
				if err := p.failTenant(ctx, t, rec.Region+": "+rec.LastError); err != nil && !errors.Is(err, errTenantMoved) {
					return err
				}
			}
			return nil
		},
	}
}

// poolStack is a Region's pool stack.
func (p *Provisioner) poolStack(pool Pool) *stackRef {
	with := func(rec StackRecord) Pool {
		pool := pool
		pool.StackRecord = rec
		return pool
	}
	return &stackRef{
		StackRecord: pool.StackRecord, what: "pool stack",
		claim: func(ctx context.Context, rec StackRecord, now, until time.Time) (StackRecord, error) {
			stored, err := p.store.PoolClaim(ctx, with(rec), now, until)
			return stored.StackRecord, err
		},
		renew: func(ctx context.Context, claimVersion int64, now, until time.Time) error {
			return p.store.PoolRenew(ctx, pool.Region, claimVersion, now, until)
		},
		update: func(ctx context.Context, rec StackRecord, announce ...fleet.Event) (StackRecord, error) {
			stored, err := p.store.PoolUpdate(ctx, with(rec), announce...)
			return stored.StackRecord, err
		},
		create: CreateStackInput{
			Template:   templates.Pool(),
			Parameters: map[string]string{"PoolId": PoolID},
			Tags:       map[string]string{"cairn:pool-id": PoolID, "cairn:managed-by": "cairn"},
		},
		outputs: func(_ context.Context, _ StackRecord, st Stack) (map[string]string, error) {
			out := maps.Clone(st.Outputs)
			if out == nil {
				out = map[string]string{}
			}
			if out["AthenaWorkGroup"] == "" {
				out["AthenaWorkGroup"] = templates.PoolWorkGroup(PoolID)
			}
			return out, nil
		},
		failure: func(_ context.Context, rec StackRecord) (fleet.Event, error) {
			return poolFailed(with(rec), p.now()), nil
		},
	}
}

// advance takes the next step for a stack record towards ready, for
// tenant t (whose retry, if any, sends a failed stack to be replaced). It
// reports done once the stack is ready, failed with the reason when it
// failed and t has not been retried since.
//
// A stack (a tenant's or a pool) is created in two moves, "claim, then
// create": the worker first records the record as creating, under its
// version, and only the worker whose update wins calls CreateStack. So:
//
//   - of the jobs that find a stack pending at once (every pooled tenant
//     onboarded together finds its Region's pool pending; a tenant's job
//     woken by the poller runs beside its snoozed one), exactly one asks
//     CloudFormation for it, instead of one call per job;
//   - the claim carries a lease that the worker renews while its call
//     runs (claim.go); if the process dies during the call, the poller
//     already watches the stack: it finds it (the create landed) or, once
//     the lease has lapsed without one, sends the record back to pending
//     for a new claim and create with the same token. Nothing waits for
//     the dead process's job, which River leaves "running" until it
//     rescues it.
func (p *Provisioner) advance(ctx context.Context, t tenants.Tenant, s *stackRef) (outcome, string, error) {
	switch s.Status {
	case StatusReady:
		return done, "", nil
	case StatusCreating, StatusReplacing, StatusDeleting:
		return waiting, "", nil
	case StatusFailed:
		if !retrying(t, s.UpdatedAt) {
			return failed, s.LastError, nil
		}
		return waiting, "", p.replace(ctx, s)
	}
	return waiting, "", p.claimCreate(ctx, s)
}

// claimCreate claims the record's create and, if this worker's claim
// wins, asks the engine for the stack under the claim's lease (see
// advance). A claim lost to another worker is not an error: the stack is
// that worker's to create.
func (p *Provisioner) claimCreate(ctx context.Context, s *stackRef) error {
	rec := s.StackRecord
	if rec.Status == StatusDeleted {
		rec.Attempt++ // a new stack: a new request
	}
	// StackID stays the previous stack's until the engine reports the new
	// one, so a failed stack's events stay findable meanwhile.
	rec.Status, rec.StackStatus, rec.TemplateVersion, rec.LastError = StatusCreating, "", s.create.Template.Version, ""
	now := p.now()
	claimed, err := s.claim(ctx, rec, now, now.Add(p.lease))
	if errors.Is(err, ErrConflict) {
		return nil // another job claimed it
	}
	if err != nil {
		return fmt.Errorf("claim %s create: %w", s.what, err)
	}
	p.stackMoved(ctx, s.tenantID, claimed.Region, claimed.StackName, s.Status, claimed.Status, "")
	renew := func(ctx context.Context, now, until time.Time) error {
		return s.renew(ctx, claimed.ClaimVersion, now, until)
	}
	in := s.create
	in.Region, in.Name, in.Token = claimed.Region, claimed.StackName, token(claimed.StackName, "create", claimed.Attempt)
	err = p.underClaim(ctx, claimed.LeaseUntil, renew, func(ctx context.Context) error {
		return p.engine.CreateStack(ctx, in)
	})
	return p.claimEnded(ctx, "create "+s.what, claimed.StackName, claimed.Region, err)
}

// replace deletes a failed stack so the poller can send its record back
// to pending for a new attempt.
func (p *Provisioner) replace(ctx context.Context, s *stackRef) error {
	if err := p.engine.DeleteStack(ctx, s.Region, s.StackName, token(s.StackName, "delete", s.Attempt)); err != nil {
		return fmt.Errorf("delete failed %s: %w", s.what, err)
	}
	rec := s.StackRecord
	rec.Status = StatusReplacing
	if _, err := s.update(ctx, rec); err != nil && !errors.Is(err, ErrConflict) {
		// A concurrent change by another worker is not an error: every
		// step is re-derived on the next run.
		return fmt.Errorf("update %s: %w", s.what, err)
	}
	p.stackMoved(ctx, s.tenantID, s.Region, s.StackName, s.Status, rec.Status, "")
	return nil
}

// observe applies the engine's report of a record's stack (st, if found)
// to the record: a create that completed, failed or was lost, a delete
// that finished or has not started.
func (p *Provisioner) observe(ctx context.Context, s *stackRef, st Stack, found bool) error {
	before, rec := s.StackRecord, s.StackRecord
	if found {
		rec.StackStatus = st.Status
		if st.ID != "" {
			rec.StackID = st.ID
		}
	}
	switch rec.Status {
	case StatusCreating:
		switch {
		case !found && p.leaseLive(rec.LeaseUntil):
			// Claimed: the CreateStack call may still be on its way.
		case !found:
			// The claim lapsed and the create never landed: a job claims
			// it again and sends it with the same token.
			rec.Status = StatusPending
		case completeStatus(st.Status):
			out, err := s.outputs(ctx, rec, st)
			if err != nil {
				return err
			}
			rec.Status, rec.Outputs, rec.LastError = StatusReady, out, ""
		case failedStatus(st.Status):
			rec.Status, rec.LastError = StatusFailed, reasonOf(st)
		}
	case StatusReplacing, StatusDeleting:
		switch {
		case !found && rec.Status == StatusReplacing:
			rec.Status, rec.Attempt, rec.StackStatus = StatusPending, rec.Attempt+1, ""
		case !found:
			rec.Status, rec.StackStatus = StatusDeleted, "DELETE_COMPLETE"
		case st.Status == StackDeleteFailed:
			rec.Status, rec.LastError = StatusFailed, reasonOf(st)
		case st.Status != StackDeleteInProgress:
			// The delete has not started (a crash between the call and the
			// record, or a throttled call): ask again, idempotently.
			if err := p.engine.DeleteStack(ctx, rec.Region, rec.StackName, token(rec.StackName, "delete", rec.Attempt)); err != nil {
				return fmt.Errorf("delete %s %s in %s: %w", s.what, rec.StackName, rec.Region, err)
			}
		}
	}
	if rec.Status == before.Status && rec.StackStatus == before.StackStatus && rec.StackID == before.StackID {
		return nil
	}
	var announce []fleet.Event
	if rec.Status == StatusFailed && before.Status != StatusFailed {
		ev, err := s.failure(ctx, rec)
		if err != nil {
			return err
		}
		announce = append(announce, ev)
	}
	if _, err := s.update(ctx, rec, announce...); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil // a worker moved it; the next round sees the new record
		}
		return fmt.Errorf("update %s %s in %s: %w", s.what, rec.StackName, rec.Region, err)
	}
	p.stackMoved(ctx, s.tenantID, rec.Region, rec.StackName, before.Status, rec.Status, rec.LastError)
	p.announced(announce)
	if s.settled != nil {
		return s.settled(ctx, before, rec, found)
	}
	return nil
}

// errTenantMoved is failTenant's answer when the tenant changed since it
// was read.
var errTenantMoved = errors.New("tenant changed since read")

// failTenant is the one place that decides a tenant's failure: a tenant
// still provisioning (as read, at t.Version) fails for reason; any other
// tenant is left as it is, since a live tenant's failed stack is that
// stack's failure alone. It returns errTenantMoved when the tenant changed
// since t was read (an admin retried, say): the caller judges again from
// what it is now.
func (p *Provisioner) failTenant(ctx context.Context, t tenants.Tenant, reason string) error {
	if t.Status != tenants.StatusProvisioning {
		return nil
	}
	_, err := p.tenants.MarkFailed(ctx, t.ID, t.Version, reason)
	if errors.Is(err, tenants.ErrVersionMismatch) {
		return errTenantMoved
	}
	if err := ignoreTransition(err); err != nil {
		return fmt.Errorf("mark %s failed: %w", t.ID, err)
	}
	return nil
}

// recordEvents copies the stack's events into Cairn's record; a failure
// only costs history, so it is logged, not returned.
func (p *Provisioner) recordEvents(ctx context.Context, tenantID string, rec StackRecord) {
	events, err := p.engine.StackEvents(ctx, rec.Region, rec.StackName)
	if err == nil {
		slices.Reverse(events) // oldest first
		_, err = p.store.StackEventsAppend(ctx, tenantID, rec.Region, events)
	}
	if err != nil && !errors.Is(err, ErrStackNotFound) {
		p.log.WarnContext(ctx, "record stack events", "tenant_id", tenantID, "region", rec.Region, "err", err)
	}
}
