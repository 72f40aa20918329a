// Package offboarding is what Cairn does with an offboarded tenant's access
// and data before the provisioner takes its stacks away: the provisioner's
// BeforeTeardown hook.
package offboarding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// DefaultPurgeBudget is how long one run of the hook purges profile items
// unless Config says otherwise: well inside River's job timeout (a minute
// by default), with the revocations before it and the teardown after it.
const DefaultPurgeBudget = 30 * time.Second

// Config wires the hook. Every field but Logger and PurgeBudget is
// required; Tenants only when DedicatedTables is set.
type Config struct {
	// Grants takes the tenant's data grants away and releases its
	// principals (grants.Service).
	Grants interface {
		RevokeAll(ctx context.Context, tenantID string) error
	}
	// Sources revokes the tenant's write keys (profiles.Sources).
	Sources interface {
		RevokeAll(ctx context.Context, tenantID string) (int, error)
	}
	// Profiles deletes the tenant's profile items (profiles.Service).
	Profiles interface {
		PurgeTenant(ctx context.Context, tenantID string, budget time.Duration) (int, error)
	}
	// DedicatedTables says that a dedicated tenant's profile items are in a
	// table of their own, deleted with its stack (AWS mode): they are left
	// to that, rather than deleted an item at a time.
	DedicatedTables bool
	// Tenants reads the tenant's tier (tenants.Service).
	Tenants interface {
		Get(ctx context.Context, id string) (tenants.Tenant, error)
	}
	// PurgeBudget defaults to DefaultPurgeBudget.
	PurgeBudget time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// BeforeTeardown returns the hook: it revokes the tenant's grants and
// releases its principals (so another tenant may register them), then its
// sources, so that no write key of the tenant authenticates and nothing
// more is written, then deletes its profile items, which would otherwise
// outlive it in the Region's pool table or the embedded profiles.db.
//
// The provisioner runs the hook on every run of the deprovision job (again
// after a crash, and on each poll while a stack is deleted), so every step
// is idempotent, and an error retries the job. A purge that runs out of
// PurgeBudget after some progress (a large pool table) snoozes the job
// instead, which uses up no attempt, and goes on in its next run; one that
// makes no progress at all is an error like any other.
//
// A tenant whose home Region is not ready has no profile table left to
// purge: its placement is being or has been deleted (a dedicated table
// with its stack, a pooled slice only after an earlier run of this hook
// purged it), or it never became ready, and nothing was written.
func BeforeTeardown(cfg Config) (func(ctx context.Context, tenantID string) error, error) {
	if cfg.Grants == nil || cfg.Sources == nil || cfg.Profiles == nil || (cfg.DedicatedTables && cfg.Tenants == nil) {
		return nil, errors.New("offboarding: Grants, Sources and Profiles are required, and Tenants with DedicatedTables")
	}
	if cfg.PurgeBudget <= 0 {
		cfg.PurgeBudget = DefaultPurgeBudget
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger
	return func(ctx context.Context, tenantID string) error {
		if err := cfg.Grants.RevokeAll(ctx, tenantID); err != nil {
			return fmt.Errorf("revoke grants: %w", err)
		}
		revoked, err := cfg.Sources.RevokeAll(ctx, tenantID)
		if err != nil {
			return fmt.Errorf("revoke sources: %w", err)
		}
		if cfg.DedicatedTables {
			t, err := cfg.Tenants.Get(ctx, tenantID)
			if err != nil {
				return fmt.Errorf("read tenant: %w", err)
			}
			if t.Tier == tenants.TierDedicated {
				log.DebugContext(ctx, "offboarding: profile items go with the dedicated table", "tenant_id", tenantID, "sources_revoked", revoked)
				return nil
			}
		}
		deleted, err := cfg.Profiles.PurgeTenant(ctx, tenantID, cfg.PurgeBudget)
		switch {
		case errors.Is(err, placement.ErrNotReady):
			log.DebugContext(ctx, "offboarding: no profile table left to purge", "tenant_id", tenantID, "sources_revoked", revoked)
			return nil
		case errors.Is(err, profiles.ErrPurgeUnfinished):
			log.InfoContext(ctx, "offboarding: profile purge continues in the next run", "tenant_id", tenantID,
				"profile_items_deleted", deleted)
			return river.JobSnooze(time.Second)
		case err != nil:
			return err
		}
		log.InfoContext(ctx, "offboarding: sources revoked and profile items deleted", "tenant_id", tenantID,
			"sources_revoked", revoked, "profile_items_deleted", deleted)
		return nil
	}, nil
}
