package grants

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// Rehome re-applies the tenant's grants in region on the catalog database
// it moved to (package migration): each live grant on database from (or,
// leaving a pool, on the pool's database of shared lake tables) is taken
// out of the Catalog there (with its data cells filter, which thus leaves
// the pool), recorded on database to, and put in the Catalog again unless
// it is suspended. Moving into a pool (pooled says whether to is a pooled
// tenant's catalog), a grant on a table the pool shares is recorded on
// the pool's database instead, through the tenant's data cells filter. It returns how many
// grants it moved. Grants already on to are put again, so that a repeat
// (a job that died half-way) finishes what the first run started; every
// step is safe to repeat. With from and to the same database, a pooled
// tenant's own, it moves the grants on the tables the pool's shared tables
// took in (the lake's adoption of a pooled tenant's own tables) onto them,
// through its filters. A grant the Catalog refuses on to is recorded
// failed with the reason, as its apply job would; so is one to the pool's
// data-access role, moving into the pool (Grant refuses those). Leaving
// the pool, a grant to the tenant's own pooled role (GrantOwnRole) is
// revoked instead: the role goes with the slice.
func (s *Service) Rehome(ctx context.Context, tenantID, region, from, to string, pooled bool) (int, error) {
	live, err := s.store.GrantListLive(ctx, tenantID)
	if err != nil {
		return 0, fmt.Errorf("rehome grants: %w", err)
	}
	var poolRole string
	if pooled {
		where, err := s.placements.TenantPlacements(ctx, tenantID)
		if err != nil {
			return 0, fmt.Errorf("rehome grants: %w", err)
		}
		if pl, err := where.In(region); err == nil {
			poolRole = pl.PoolRole()
		}
	}
	pool := provisioner.PoolGlueDatabase()
	moved := 0
	for _, g := range live {
		db := g.Resource.Database
		onFrom := db == from || (!pooled && db == pool)
		onTo := db == to || (pooled && db == pool)
		if g.Resource.Region != region || !onFrom && !onTo {
			continue
		}
		if g.Status == StatusRevoking {
			continue // its revoke job takes it away
		}
		if !pooled && from != to && ownRole(g.Principal, tenantID, region) {
			// The tenant's own pooled role leaves with its slice (the
			// provisioner deletes it): its grants are revoked, not moved.
			if err := s.dropOwnRoleGrant(ctx, g); err != nil {
				return moved, err
			}
			continue
		}
		next := g
		next.Resource.Database = to
		next.CellsFilter = ""
		if g.Resource.Table != "" && pooled {
			tbl, err := s.catalog.Table(ctx, region, pool, g.Resource.Table)
			switch {
			case err == nil && tbl.Shared:
				next.Resource.Database = pool
			case err == nil || errors.Is(err, ErrNotFound):
				tbl, err = s.catalog.Table(ctx, region, to, g.Resource.Table)
			}
			if err != nil && !errors.Is(err, ErrNotFound) {
				return moved, fmt.Errorf("rehome grant %s: read table: %w", g.ID, err)
			}
			if err == nil && tbl.Shared {
				next.CellsFilter = CellsFilterName(tenantID, g.Resource.Columns)
				if len(g.Resource.Tags) > 0 {
					next.CellsFilter = TagCellsFilterName(tenantID, g.Resource.Tags)
				}
			}
		}
		// A grant that changes database leaves the one it was on (its table
		// adopted into the pool's shared one, too), with its filter there.
		if next.Resource.Database != db && g.Status != StatusSuspended {
			if err := s.take(ctx, g); err != nil {
				return moved, fmt.Errorf("rehome grant %s: take from %s: %w", g.ID, db, err)
			}
		}
		if onFrom && !onTo && g.CellsFilter != "" {
			if err := s.catalog.DeleteCellsFilter(ctx, region, db, g.Resource.Table, g.CellsFilter); err != nil {
				return moved, fmt.Errorf("rehome grant %s: data cells filter: %w", g.ID, err)
			}
		}
		status, reason := g.Status, ""
		switch {
		case poolRole != "" && g.Principal == poolRole:
			status, reason = StatusFailed, poolRoleReason(g.Principal)
		case g.Status != StatusSuspended:
			status = StatusActive
			if err := s.put(ctx, next); err != nil {
				status, reason = StatusFailed, err.Error()
			}
		}
		if err := s.rehomed(ctx, next, status, reason, from); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// dropOwnRoleGrant takes a grant to the tenant's own pooled role out of
// the Catalog, with its data cells filter unless another grant goes
// through it, and records it revoked.
func (s *Service) dropOwnRoleGrant(ctx context.Context, g Grant) error {
	if g.Status != StatusSuspended {
		if err := s.take(ctx, g); err != nil {
			return fmt.Errorf("rehome grant %s: take: %w", g.ID, err)
		}
	}
	if err := s.dropFilters(ctx, g.TenantID, []Grant{g}); err != nil {
		return err
	}
	if err := s.setStatus(ctx, g, StatusRevoked, "the tenant left the pool, and its own role with it", "grant.revoked"); err != nil {
		return err
	}
	return s.dropFilters(ctx, g.TenantID, []Grant{g})
}

// rehomed records a grant moved to its new database, with an audit event.
func (s *Service) rehomed(ctx context.Context, g Grant, status Status, reason, from string) error {
	err := s.store.InTx(ctx, func(tx Tx) error {
		g.Status, g.Reason = status, reason
		if _, err := tx.GrantUpdate(ctx, g); err != nil {
			return err
		}
		detail := map[string]string{"from_database": from, "database": g.Resource.Database}
		if reason != "" {
			detail["reason"] = reason
		}
		return tx.AuditAppend(ctx, audit.Event{Time: s.now(), TenantID: g.TenantID, Actor: audit.ActorCairn, Action: "grant.rehome",
			TargetType: "grant", TargetID: g.ID, Outcome: string(status), Detail: detail})
	})
	if err != nil {
		// A conflict too: the grant changed since it was read; the
		// migration's step runs again and reads it again.
		return fmt.Errorf("rehome grant %s: %w", g.ID, err)
	}
	return nil
}
