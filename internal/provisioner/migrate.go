package provisioner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/templates"
)

// A tenant that moves between tiers (package migration) gets its target
// placement here, beside its current one: the placements table keeps one
// record per tenant and Region, which the migration switches to the
// target in one transaction once the data is copied. Until then the
// target is the migration's alone: nothing else reads it, and the poller
// does not watch it (MoveTarget observes its own stack).

// ErrMoveFailed is returned (wrapped, with the reason) by MoveTarget when
// the target cannot be made: its stack, or the Region's pool, failed.
var ErrMoveFailed = errors.New("target placement failed")

// MoveTarget takes the next step towards the placement in region that
// tenant t moves to, of kind to: a dedicated stack of its own (created
// with a token of attempt, so a repeat never makes a second one) or a
// slice of the Region's pool (whose stack is created if the Region has
// none). It returns the target once ready (with its outputs, its catalog
// database made) and true; false while its stack is on its way. A stack
// of the tenant's still being deleted (an earlier move back) is waited
// for. It is safe to repeat, and reads the Region's stacks once a call.
func (p *Provisioner) MoveTarget(ctx context.Context, t tenants.Tenant, region string, to Kind, attempt int) (Placement, bool, error) {
	if to == KindPooled {
		return p.movePooled(ctx, t, region)
	}
	pl := Placement{TenantID: t.ID, Kind: KindDedicated, StackRecord: StackRecord{Region: region, StackName: DedicatedStackName(t.ID),
		TemplateVersion: templates.Dedicated().Version, Attempt: attempt, Status: StatusCreating}}
	stacks, err := p.engine.Stacks(ctx, region)
	if err != nil {
		return Placement{}, false, fmt.Errorf("stacks in %s: %w", region, err)
	}
	st, found := stacks[pl.StackName]
	switch {
	case !found:
		err := p.engine.CreateStack(ctx, CreateStackInput{
			Region: region, Name: pl.StackName, Template: templates.Dedicated(),
			Parameters: map[string]string{"TenantId": t.ID, "TenantSlug": t.Slug},
			Tags:       tenantTags(t.ID),
			Token:      token(pl.StackName, "move", attempt),
		})
		if err != nil {
			return Placement{}, false, fmt.Errorf("create stack %s: %w", pl.StackName, err)
		}
		return pl, false, nil
	case failedStatus(st.Status):
		return Placement{}, false, fmt.Errorf("stack %s in %s: %w: %s", pl.StackName, region, ErrMoveFailed, reasonOf(st))
	case !completeStatus(st.Status):
		return pl, false, nil // creating, or an earlier stack still being deleted
	}
	out := stackOutputs(st.Outputs)
	if out["glue_database"] == "" {
		out["glue_database"] = templates.DedicatedGlueDatabase(t.ID)
	}
	if out["athena_workgroup"] == "" {
		out["athena_workgroup"] = templates.DedicatedWorkGroup(t.ID)
	}
	if err := p.engine.EnsureDatabase(ctx, region, out["glue_database"], "s3://"+out["raw_bucket"]+"/", tenantTags(t.ID)); err != nil {
		return Placement{}, false, fmt.Errorf("glue database for %s in %s: %w", t.ID, region, err)
	}
	pl.Status, pl.StackStatus, pl.Outputs = StatusReady, st.Status, out
	return pl, true, nil
}

// movePooled is MoveTarget's pooled slice: the pool's outputs with the
// tenant's prefixes and Glue database, once the pool is ready.
func (p *Provisioner) movePooled(ctx context.Context, t tenants.Tenant, region string) (Placement, bool, error) {
	tmpl := templates.Pool()
	pl := Placement{TenantID: t.ID, Kind: KindPooled, StackRecord: StackRecord{Region: region, StackName: PoolStackName(), Status: StatusCreating}}
	pool, err := p.store.PoolEnsure(ctx, Pool{StackRecord: StackRecord{Region: region, StackName: PoolStackName(), Status: StatusPending, TemplateVersion: tmpl.Version, Attempt: 1}})
	if err != nil {
		return Placement{}, false, fmt.Errorf("pool: %w", err)
	}
	switch pool.Status {
	case StatusReady:
	case StatusFailed:
		return Placement{}, false, fmt.Errorf("pool stack in %s: %w: %s", region, ErrMoveFailed, pool.LastError)
	case StatusPending, StatusDeleted:
		// Claim the pool's create as a pooled tenant's job does (step);
		// the poller watches it from then on.
		pool.Status, pool.StackStatus, pool.TemplateVersion, pool.LastError = StatusCreating, "", tmpl.Version, ""
		now := p.now()
		claimed, err := p.store.PoolClaim(ctx, pool, now, now.Add(p.lease))
		if errors.Is(err, ErrConflict) {
			return pl, false, nil
		}
		if err != nil {
			return Placement{}, false, fmt.Errorf("claim pool stack create: %w", err)
		}
		renew := func(ctx context.Context, now, until time.Time) error {
			return p.store.PoolRenew(ctx, claimed.Region, claimed.ClaimVersion, now, until)
		}
		err = p.underClaim(ctx, claimed.LeaseUntil, renew, func(ctx context.Context) error {
			return p.engine.CreateStack(ctx, CreateStackInput{
				Region: claimed.Region, Name: claimed.StackName, Template: tmpl,
				Parameters: map[string]string{"PoolId": PoolID},
				Tags:       map[string]string{"cairn:pool-id": PoolID, "cairn:managed-by": "cairn"},
				Token:      token(claimed.StackName, "create", claimed.Attempt),
			})
		})
		return pl, false, p.claimEnded(ctx, "create pool stack", claimed.StackName, claimed.Region, err)
	default:
		return pl, false, nil // in flight: the poller watches it
	}
	out, err := p.cutSlice(ctx, pool, t.ID)
	if err != nil {
		return Placement{}, false, err
	}
	pl.Status, pl.Outputs, pl.TemplateVersion = StatusReady, out, pool.TemplateVersion
	return pl, true, nil
}

// MoveRelease takes away a placement that a tenant moved out of (or a
// target it will not move to): a dedicated stack is deleted and then its
// retained buckets and its catalog database; a pooled slice's objects
// under its prefix in the pool buckets and its catalog database. It
// returns true once all is gone, false while the stack is being deleted.
// It is safe to repeat.
func (p *Provisioner) MoveRelease(ctx context.Context, pl Placement) (bool, error) {
	glue := GlueDatabase(pl.Kind, pl.TenantID)
	if pl.Kind == KindPooled {
		for _, key := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
			if b := pl.Outputs[key]; b != "" {
				if err := p.engine.DeletePrefix(ctx, pl.Region, b, S3Prefix(pl.TenantID)); err != nil {
					return false, fmt.Errorf("purge %s: %w", key, err)
				}
			}
		}
		if err := p.engine.DeleteTenantRole(ctx, pl.Region, pl.TenantID); err != nil {
			return false, fmt.Errorf("tenant role: %w", err)
		}
		return true, p.engine.DeleteDatabase(ctx, pl.Region, glue)
	}
	name := DedicatedStackName(pl.TenantID)
	stacks, err := p.engine.Stacks(ctx, pl.Region)
	if err != nil {
		return false, fmt.Errorf("stacks in %s: %w", pl.Region, err)
	}
	if st, found := stacks[name]; found {
		if st.Status != StackDeleteInProgress {
			if err := p.engine.DeleteStack(ctx, pl.Region, name, token(name, "move-delete", pl.Attempt)); err != nil {
				return false, fmt.Errorf("delete stack %s: %w", name, err)
			}
		}
		return false, nil
	}
	var buckets []string
	for _, key := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
		if b := pl.Outputs[key]; b != "" {
			buckets = append(buckets, b)
		}
	}
	if err := p.engine.DeleteBuckets(ctx, pl.Region, buckets); err != nil {
		return false, fmt.Errorf("purge buckets: %w", err)
	}
	return true, p.engine.DeleteDatabase(ctx, pl.Region, glue)
}
