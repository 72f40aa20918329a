package provisioner

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// Placements returns the tenant's placements, one per Region, or
// tenants.ErrNotFound.
//
// A Region the tenant chose whose first step has not run yet is reported as
// a pending placement, so the list always covers every Region.
func (p *Provisioner) Placements(ctx context.Context, tenantID string) ([]Placement, error) {
	t, err := p.tenants.Get(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	list, err := p.store.PlacementList(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for _, region := range t.Regions {
		if !slices.ContainsFunc(list, func(pl Placement) bool { return pl.Region == region }) {
			pl := newPlacement(t, region)
			pl.CreatedAt, pl.UpdatedAt = t.UpdatedAt, t.UpdatedAt
			list = append(list, pl)
		}
	}
	slices.SortFunc(list, func(a, b Placement) int { return strings.Compare(a.Region, b.Region) })
	return list, nil
}

// placement returns the tenant's placement in region; a Region the tenant
// chose but whose first step has not run yet is a pending placement, one
// it did not choose ErrNotFound.
func (p *Provisioner) placement(ctx context.Context, tenantID, region string) (Placement, bool, error) {
	pl, err := p.store.PlacementGet(ctx, tenantID, region)
	if !errors.Is(err, ErrNotFound) {
		return pl, err == nil, err
	}
	t, err := p.tenants.Get(ctx, tenantID)
	if err != nil {
		return Placement{}, false, err
	}
	if !slices.Contains(t.Regions, region) {
		return Placement{}, false, ErrNotFound
	}
	return newPlacement(t, region), false, nil
}

// Events returns a page of the events of the tenant's stack in region,
// newest first; ErrNotFound when the tenant has no placement there.
func (p *Provisioner) Events(ctx context.Context, tenantID, region string, beforeSeq int64, limit int) ([]RecordedEvent, error) {
	if _, stored, err := p.placement(ctx, tenantID, region); err != nil || !stored {
		return nil, err
	}
	return p.store.StackEventsList(ctx, tenantID, region, beforeSeq, limit)
}

// Pools returns every Region's pool with its pooled-tenant count, its
// outputs under Cairn's keys (raw_bucket, ...) like a placement's: the
// template's output names are the store's, not the API's.
func (p *Provisioner) Pools(ctx context.Context) ([]Pool, error) {
	pools, err := p.store.PoolList(ctx)
	for i := range pools {
		pools[i].Outputs = stackOutputs(pools[i].Outputs)
	}
	return pools, err
}

// RetryStack replaces the tenant's failed stack in region (for a pooled
// tenant, the Region's failed pool stack): the stack is deleted and
// created again. A failed tenant goes back to provisioning. It returns
// ErrNotFound, or ErrNotRetryable when nothing there has failed. rec, the
// request's audit event, is written in the transaction that queues the
// tenant's provisioning job, the retry's last step: the stack's deletion
// before it is CloudFormation's, outside the database.
func (p *Provisioner) RetryStack(ctx context.Context, rec audit.Event, tenantID, region string) (Placement, error) {
	t, err := p.tenants.Get(ctx, tenantID)
	if err != nil {
		return Placement{}, err
	}
	pl, stored, err := p.placement(ctx, tenantID, region)
	if err != nil {
		return Placement{}, err
	}
	if !stored {
		return Placement{}, ErrNotRetryable
	}
	if !t.Status.Live() {
		return Placement{}, &tenants.TransitionError{From: t.Status, Event: "retry a stack of"}
	}
	switch {
	case pl.Kind == KindDedicated && pl.Status == StatusFailed:
		if err := p.replace(ctx, p.placementStack(pl, t)); err != nil {
			return Placement{}, err
		}
		pl.Status = StatusReplacing
	case pl.Kind == KindPooled:
		pool, err := p.store.PoolGet(ctx, region)
		if err != nil || pool.Status != StatusFailed {
			return Placement{}, errors.Join(ErrNotRetryable, err)
		}
		if err := p.replace(ctx, p.poolStack(pool)); err != nil {
			return Placement{}, err
		}
	default:
		return Placement{}, ErrNotRetryable
	}
	if t.Status == tenants.StatusFailed {
		_, err = p.tenants.Retry(ctx, rec, tenantID, nil)
	} else {
		err = p.tenants.Reconcile(ctx, rec.On(tenantID+"/"+region), tenantID)
	}
	if err != nil {
		return Placement{}, err
	}
	// The placement as this call left it; the poller may already have
	// moved it on.
	return pl, nil
}
