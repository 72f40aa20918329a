package grants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// GrantOwnRole gives a pooled tenant's own role in region (its slice's
// data_access_role_arn, which provisioner.Config.TenantRolePolicy made)
// SELECT on tables of the pool's shared database: what its queries read
// there, through the tenant's data cells filter, so that Lake Formation
// confines them to its rows. The refinery calls it with the tables the
// tenant's lake has there after each run. The role is registered as the
// tenant's principal first. Tables the role has a live grant on are left
// alone; the others are granted as Cairn's, applied by the grant jobs.
// Nothing is done for a tenant that is not active, not pooled in region,
// or whose slice predates its own role. Safe to repeat.
func (s *Service) GrantOwnRole(ctx context.Context, tenantID, region string, tables []string) error {
	t, err := s.tenants.Get(ctx, tenantID)
	if err != nil || t.Status != tenants.StatusActive {
		return err
	}
	pl, err := s.catalogOf(ctx, t, region)
	if errors.Is(err, placement.ErrNotReady) || errors.Is(err, ErrOutsideCatalog) {
		return nil
	}
	if err != nil {
		return err
	}
	role := pl.Outputs["data_access_role_arn"]
	if pl.Kind != placement.Pooled || role == "" || role == pl.PoolRole() {
		return nil
	}
	live, err := s.store.GrantListLive(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("grant own role: %w", err)
	}
	pool := provisioner.PoolGlueDatabase()
	var missing []string
	for _, tbl := range tables {
		i := slices.IndexFunc(live, func(g Grant) bool {
			return g.Principal == role && g.Status != StatusRevoked && g.Resource.Region == region && g.Resource.Database == pool &&
				g.Resource.Table == tbl && len(g.Resource.Columns) == 0 && len(g.Resource.Tags) == 0 && slices.Contains(g.Permissions, "SELECT")
		})
		switch {
		case i < 0:
			missing = append(missing, tbl)
		case live[i].Status == StatusFailed && s.now().Sub(live[i].UpdatedAt) >= ownRoleRetry:
			// Lake Formation refused it (a role IAM had not yet made known
			// everywhere, say): tried again, no sooner than ownRoleRetry.
			if err := s.requeue(ctx, live[i]); err != nil {
				return err
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rec := func(action, targetType, target string) audit.Event {
		return audit.Event{TenantID: tenantID, Actor: audit.ActorCairn, Action: action, TargetType: targetType, TargetID: target,
			Detail: map[string]string{"reason": "the tenant's own role reads its lake tables"}}
	}
	registered := false
	for _, tbl := range missing {
		// A table the catalog does not have (yet) waits for a later run,
		// rather than fail this one and record a refusal each time.
		if _, err := s.catalog.Table(ctx, region, pool, tbl); errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("grant own role SELECT on %s: %w", tbl, err)
		}
		if !registered {
			if _, _, err := s.RegisterPrincipal(ctx, rec("principal.register", "principal", role), tenantID, role); err != nil {
				return fmt.Errorf("grant own role: %w", err)
			}
			registered = true
		}
		if _, _, err := s.Grant(ctx, GrantRequest{TenantID: tenantID, Principal: role, Permissions: []string{"SELECT"}, Admin: true,
			Resource: Resource{Region: region, Database: pool, Table: tbl}, Audit: rec("grant.create", "grant", "")}); err != nil {
			return fmt.Errorf("grant own role SELECT on %s: %w", tbl, err)
		}
	}
	return nil
}

// ownRoleRetry is how long a failed grant to a tenant's own role waits
// before GrantOwnRole applies it again.
const ownRoleRetry = time.Hour

// requeue records a failed grant pending again, with its apply job.
func (s *Service) requeue(ctx context.Context, g Grant) error {
	err := s.store.InTx(ctx, func(tx Tx) error {
		g.Status, g.Reason = StatusPending, ""
		if _, err := tx.GrantUpdate(ctx, g); err != nil {
			return err
		}
		if err := tx.JobInsert(ctx, ApplyArgs{TenantID: g.TenantID, GrantID: g.ID}); err != nil {
			return err
		}
		return tx.AuditAppend(ctx, audit.Event{Time: s.now(), TenantID: g.TenantID, Actor: audit.ActorCairn, Action: "grant.retry",
			TargetType: "grant", TargetID: g.ID, Outcome: string(StatusPending)})
	})
	if errors.Is(err, ErrConflict) {
		return nil // changed meanwhile: the next run looks again
	}
	if err != nil {
		return fmt.Errorf("retry grant %s: %w", g.ID, err)
	}
	return nil
}

// ownRole reports whether principal is the tenant's own pooled role in
// region (provisioner.TenantRoleName under provisioner.TenantRolePath).
func ownRole(principal, tenantID, region string) bool {
	return strings.HasPrefix(principal, "arn:") &&
		strings.HasSuffix(principal, ":role"+provisioner.TenantRolePath+provisioner.TenantRoleName(tenantID, region))
}
