package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

var _ placement.Reader = (*DB)(nil)

// TenantPlacements implements placement.Reader with one query; an unknown
// tenant is tenants.ErrNotFound.
func (d *DB) TenantPlacements(ctx context.Context, tenantID string) (placement.Tenant, error) {
	rows, err := d.queries.TenantPlacements(ctx, tenantID)
	if err != nil {
		return placement.Tenant{}, fmt.Errorf("read placements: %w", translate(err))
	}
	if len(rows) == 0 {
		return placement.Tenant{}, fmt.Errorf("read placements: %w", tenants.ErrNotFound)
	}
	t, err := tenantPlacementsFromRows(rows)
	if err != nil {
		return placement.Tenant{}, fmt.Errorf("read placements: %w", err)
	}
	return t, nil
}

// tenantPlacementsFromRows converts the rows of one tenant's placements.
func tenantPlacementsFromRows(rows []db.TenantPlacementsRow) (placement.Tenant, error) {
	first := rows[0]
	t := placement.Tenant{ID: first.ID, Tier: placement.Kind(first.Tier), HomeRegion: first.HomeRegion}
	if err := json.Unmarshal([]byte(first.Regions), &t.Regions); err != nil {
		return placement.Tenant{}, fmt.Errorf("tenant %s regions: %w", first.ID, err)
	}
	for _, r := range rows {
		if !r.Region.Valid {
			continue // the tenant has no placement yet
		}
		outputs, err := outputsFromColumn(r.Outputs.String)
		if err != nil {
			return placement.Tenant{}, fmt.Errorf("placement %s/%s outputs: %w", r.ID, r.Region.String, err)
		}
		t.Placements = append(t.Placements, placement.Placement{
			Region:    r.Region.String,
			Kind:      placement.Kind(r.Kind.String),
			Ready:     r.Status.String == string(provisioner.StatusReady),
			StackName: r.StackName.String,
			Outputs:   outputs,
		})
	}
	return t, nil
}
