package provisioner

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-cdp/cairn/internal/tenants"
)

// Placements returns the tenant's placements, one per Region, or
// tenants.ErrNotFound.
func (p *Provisioner) Placements(ctx context.Context, tenantID string) ([]Placement, error) {
	if _, err := p.tenants.Get(ctx, tenantID); err != nil {
		return nil, err
	}
	return p.store.PlacementList(ctx, tenantID)
}

// Events returns a page of the events of the tenant's stack in region,
// newest first; ErrNotFound when the tenant has no placement there.
func (p *Provisioner) Events(ctx context.Context, tenantID, region string, beforeSeq int64, limit int) ([]RecordedEvent, error) {
	if _, err := p.store.PlacementGet(ctx, tenantID, region); err != nil {
		return nil, err
	}
	return p.store.StackEventsList(ctx, tenantID, region, beforeSeq, limit)
}

// Pools returns every Region's pool with its pooled-tenant count.
func (p *Provisioner) Pools(ctx context.Context) ([]Pool, error) {
	return p.store.PoolList(ctx)
}

// RetryStack replaces the tenant's failed stack in region (for a pooled
// tenant, the Region's failed pool stack): the stack is deleted and
// created again. A failed tenant goes back to provisioning. It returns
// ErrNotFound, or ErrNotRetryable when nothing there has failed.
func (p *Provisioner) RetryStack(ctx context.Context, tenantID, region string) (Placement, error) {
	t, err := p.tenants.Get(ctx, tenantID)
	if err != nil {
		return Placement{}, err
	}
	pl, err := p.store.PlacementGet(ctx, tenantID, region)
	if err != nil {
		return Placement{}, err
	}
	if !t.Status.Live() {
		return Placement{}, &tenants.TransitionError{From: t.Status, Event: "retry a stack of"}
	}
	switch {
	case pl.Kind == KindDedicated && pl.Status == StatusFailed:
		if err := p.replace(ctx, pl); err != nil {
			return Placement{}, err
		}
	case pl.Kind == KindPooled:
		pool, err := p.store.PoolGet(ctx, region)
		if err != nil || pool.Status != StatusFailed {
			return Placement{}, errors.Join(ErrNotRetryable, err)
		}
		if err := p.engine.DeleteStack(ctx, region, pool.StackName, token(pool.StackName, "delete", pool.Attempt)); err != nil {
			return Placement{}, fmt.Errorf("delete failed pool: %w", err)
		}
		pool.Status = StatusReplacing
		if err := p.updatePool(ctx, pool); err != nil {
			return Placement{}, err
		}
	default:
		return Placement{}, ErrNotRetryable
	}
	if t.Status == tenants.StatusFailed {
		_, err = p.tenants.Retry(ctx, tenantID)
	} else {
		err = p.tenants.Reconcile(ctx, tenantID)
	}
	if err != nil {
		return Placement{}, err
	}
	return p.store.PlacementGet(ctx, tenantID, region)
}
