package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/offboarding"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

var _ offboarding.Store = (*DB)(nil)

// OffboardingStepList implements offboarding.Store.
func (d *DB) OffboardingStepList(ctx context.Context, tenantID string) ([]offboarding.StepDone, error) {
	rows, err := d.queries.OffboardingStepList(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list offboarding steps: %w", err)
	}
	out := make([]offboarding.StepDone, 0, len(rows))
	for _, r := range rows {
		out = append(out, offboarding.StepDone{Step: r.Step, At: r.DoneAt.UTC()})
	}
	return out, nil
}

// OffboardingStepDone implements offboarding.Store.
func (d *DB) OffboardingStepDone(ctx context.Context, tenantID, step string, at time.Time) error {
	err := d.queries.OffboardingStepInsert(ctx, db.OffboardingStepInsertParams{TenantID: tenantID, Step: step, DoneAt: storedTime(at)})
	if err != nil {
		return fmt.Errorf("record offboarding step: %w", err)
	}
	return nil
}
