// Package provisioner brings each tenant's CDP data stack in line with the
// tenant: it works the durable provisioning and deprovisioning jobs that
// package tenants inserts, one Region at a time, through an ZoneEngine.
//
// Workers are level-based and idempotent: a job carries only the tenant ID,
// every run re-reads the tenant and the engine's actual state, and repeating
// a run never creates anything twice.
package provisioner

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/tenants"
)

// ZoneEngine lays a tenant's data stack out in one Region, or takes it away.
// Both calls must be idempotent.
type ZoneEngine interface {
	// Provision makes the tenant's stack in region exist.
	Provision(ctx context.Context, t tenants.Tenant, region string) error
	// Deprovision removes it; data is retained unless purge.
	Deprovision(ctx context.Context, t tenants.Tenant, region string, purge bool) error
}

// FailedError is returned by an ZoneEngine when a stack failed for good (it
// rolled back): retrying the job will not help, an admin must retry the
// tenant. Other errors are retried with backoff.
type FailedError struct {
	Reason string
}

func (e *FailedError) Error() string { return "stack failed: " + e.Reason }

// Lifecycle is the part of tenants.Service the workers drive.
type Lifecycle interface {
	Get(ctx context.Context, id string) (tenants.Tenant, error)
	MarkProvisioned(ctx context.Context, id string) (tenants.Tenant, error)
	MarkFailed(ctx context.Context, id, reason string) (tenants.Tenant, error)
	MarkDeleted(ctx context.Context, id string) (tenants.Tenant, error)
}

var _ Lifecycle = (*tenants.Service)(nil)

// Register adds the provisioner's workers to workers.
func Register(workers *river.Workers, lc Lifecycle, engine ZoneEngine) {
	river.AddWorker(workers, &provisionWorker{lc: lc, engine: engine})
	river.AddWorker(workers, &deprovisionWorker{lc: lc, engine: engine})
}

type provisionWorker struct {
	river.WorkerDefaults[tenants.ProvisionArgs]
	lc     Lifecycle
	engine ZoneEngine
}

func (w *provisionWorker) Work(ctx context.Context, job *river.Job[tenants.ProvisionArgs]) error {
	t, err := w.lc.Get(ctx, job.Args.TenantID)
	if err != nil {
		return fmt.Errorf("read tenant: %w", err)
	}
	if t.Status != tenants.StatusProvisioning {
		return nil // desired state moved on (offboarded, already active)
	}
	for _, region := range t.Regions {
		err := w.engine.Provision(ctx, t, region)
		var failed *FailedError
		if errors.As(err, &failed) {
			if _, err := w.lc.MarkFailed(ctx, t.ID, region+": "+failed.Reason); err != nil {
				return fmt.Errorf("mark failed: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("provision %s in %s: %w", t.ID, region, err)
		}
	}
	if _, err := w.lc.MarkProvisioned(ctx, t.ID); err != nil {
		return fmt.Errorf("mark provisioned: %w", err)
	}
	return nil
}

type deprovisionWorker struct {
	river.WorkerDefaults[tenants.DeprovisionArgs]
	lc     Lifecycle
	engine ZoneEngine
}

func (w *deprovisionWorker) Work(ctx context.Context, job *river.Job[tenants.DeprovisionArgs]) error {
	t, err := w.lc.Get(ctx, job.Args.TenantID)
	if err != nil {
		return fmt.Errorf("read tenant: %w", err)
	}
	if t.Status != tenants.StatusDeprovisioning {
		return nil
	}
	for _, region := range t.Regions {
		if err := w.engine.Deprovision(ctx, t, region, job.Args.Purge); err != nil {
			return fmt.Errorf("deprovision %s in %s: %w", t.ID, region, err)
		}
	}
	if _, err := w.lc.MarkDeleted(ctx, t.ID); err != nil {
		return fmt.Errorf("mark deleted: %w", err)
	}
	return nil
}
