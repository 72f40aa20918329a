package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/migration"
)

// MigrationService is what the tier migration routes need.
type MigrationService interface {
	Start(ctx context.Context, rec audit.Event, tenantID, tier string) (migration.Migration, error)
	Get(ctx context.Context, tenantID string) (migration.Migration, error)
}

var _ MigrationService = (*migration.Service)(nil)

// IngestFence admits the writes of a tenant's events, or refuses them while
// the tenant's migration fences its writes (migration.Fences).
type IngestFence interface {
	Enter(tenantID string) (release func(), retry time.Duration, ok bool)
}

var _ IngestFence = (*migration.Fences)(nil)

// migrationProblem maps the migration package's errors.
func migrationProblem(err error) *problem {
	var ve *migration.ValidationError
	switch {
	case errors.As(err, &ve):
		return badRequest(ve.Field, ve.Reason)
	case errors.Is(err, migration.ErrNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "The tenant has never moved between tiers.")
	case errors.Is(err, migration.ErrSameTier):
		return newProblem(http.StatusConflict, "same-tier", "Already on this tier", "The tenant is already on the tier asked for.")
	case errors.Is(err, migration.ErrRunning):
		return newProblem(http.StatusConflict, "migration-running", "Migration running",
			"A migration of the tenant is running; wait for it to finish (GET its migration).")
	case errors.Is(err, migration.ErrNotActive):
		return newProblem(http.StatusConflict, "tenant-not-active", "Tenant not active", "Only an active tenant moves between tiers.")
	}
	return nil
}

// errFenced is the refusal of a write while the tenant's migration fences
// them: the client retries after Retry-After, and nothing it sent was
// acknowledged.
func errFenced(retry time.Duration) *problem {
	secs := max(int((retry+time.Second-1)/time.Second), 1)
	p := newProblem(http.StatusServiceUnavailable, "tenant-migrating", "Tenant moving between tiers",
		"The tenant's data is switching to its new tier; nothing was accepted: send again in "+strconv.Itoa(secs)+" s.")
	p.header = http.Header{"Retry-After": []string{strconv.Itoa(secs)}}
	return p
}

func (s *Server) MigrateTenant(ctx context.Context, req MigrateTenantRequestObject) (MigrateTenantResponseObject, error) {
	if req.Body == nil {
		return nil, badRequest("body", "a JSON request body is required")
	}
	rec := auditOf(ctx, req.TenantId, "tenant.migrate", "migration", "")
	rec.Outcome = audit.OutcomeAccepted
	m, err := s.migrations.Start(ctx, rec, req.TenantId, string(req.Body.Tier))
	if err != nil {
		return nil, err
	}
	return MigrateTenant202JSONResponse{Body: toAPIMigration(m, s.now()),
		Headers: MigrateTenant202ResponseHeaders{Location: "/v1/tenants/" + req.TenantId + "/migration"}}, nil
}

func (s *Server) GetTenantMigration(ctx context.Context, req GetTenantMigrationRequestObject) (GetTenantMigrationResponseObject, error) {
	m, err := s.migrations.Get(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	return GetTenantMigration200JSONResponse(toAPIMigration(m, s.now())), nil
}

func toAPIMigration(m migration.Migration, now time.Time) Migration {
	return Migration{
		Id: m.ID, TenantId: m.TenantID, FromTier: Tier(m.From), ToTier: Tier(m.To), Step: MigrationStep(m.Step),
		State: MigrationState(m.State), Percent: m.Percent(), Error: optional(m.Error),
		Fenced: m.State == migration.StateRunning && m.FenceUntil.After(now),
		Counts: MigrationCounts{
			ObjectsTotal: m.Progress.ObjectsTotal, ObjectsCopied: m.Progress.ObjectsCopied, BytesCopied: m.Progress.BytesCopied,
			DeltaObjects: m.Progress.DeltaObjects, GrantsRehomed: m.Progress.GrantsRehomed, ObjectsPurged: m.Progress.ObjectsPurged,
		},
		CreatedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC(), FinishedAt: optionalTime(m.FinishedAt),
	}
}
