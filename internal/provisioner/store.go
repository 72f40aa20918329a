package provisioner

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-cdp/cairn/internal/fleet"
)

// Kind is how a tenant is placed in a Region.
type Kind string

// Placement kinds.
const (
	// KindDedicated is a stack of the tenant's own.
	KindDedicated Kind = "dedicated"
	// KindPooled is a tenant-prefixed slice of the Region's pool stack.
	KindPooled Kind = "pooled"
)

// Status is where a placement or a pool is in its own lifecycle.
type Status string

// Placement and pool statuses.
const (
	// StatusPending: nothing asked of the engine yet (or a retry starts over).
	StatusPending Status = "pending"
	// StatusCreating: the stack is being created; the poller watches it.
	StatusCreating Status = "creating"
	// StatusReady: the stack (or slice) exists and its outputs are recorded.
	StatusReady Status = "ready"
	// StatusFailed: the stack failed for good; LastError says why.
	StatusFailed Status = "failed"
	// StatusReplacing: a failed stack is being deleted so it can be
	// created again (a retry).
	StatusReplacing Status = "replacing"
	// StatusDeleting: the stack (or slice) is being taken away.
	StatusDeleting Status = "deleting"
	// StatusDeleted: gone; the record stays for audit.
	StatusDeleted Status = "deleted"
)

// InFlight reports whether the poller must watch a placement in s.
func (s Status) InFlight() bool {
	return s == StatusCreating || s == StatusReplacing || s == StatusDeleting
}

// StackRecord is what Cairn records of one stack, a tenant's own or a
// Region's pool: placements and pools share it, and one claim-then-create
// routine and one observe routine drive both (stack.go).
type StackRecord struct {
	Region string
	// StackName is the tenant's stack (dedicated) or the pool's (pooled).
	StackName string
	// StackID is the engine's ID of the latest stack created under
	// StackName (CloudFormation's StackId), "" until the engine reported
	// one. It is kept after the stack is deleted: a deleted stack's events
	// are found by its ID, no longer by its name.
	StackID string
	Status  Status
	// StackStatus is the engine's last reported status of the stack.
	StackStatus     string
	TemplateVersion string
	// Outputs are Cairn's snake_case names for what the stack made; a
	// pool's are keyed by the pool template's output logical IDs, but in
	// the pools that Provisioner.Pools returns, where they are under
	// Cairn's keys (stackOutputs).
	Outputs   map[string]string
	LastError string
	// Attempt counts creations; it is part of the ClientRequestToken, so a
	// retry is a new request and a repeat of the same step is not.
	Attempt int
	// Version increases on every update (optimistic concurrency).
	Version int64
	// ClaimVersion and LeaseUntil are the record's latest claim (see
	// PlacementClaim); a zero LeaseUntil means it was never claimed.
	ClaimVersion int64
	LeaseUntil   time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Placement is one tenant's stack, or slice of a pool, in one Region. A
// pooled placement's StackName is the pool's; its stack ID and outputs
// are the pool's as of when its slice was cut.
type Placement struct {
	TenantID string
	Kind     Kind
	StackRecord
}

// Pool is the shared stack of one Region for its pooled tenants.
type Pool struct {
	StackRecord
	// TenantCount is the number of pooled placements in the Region that
	// are not deleted; filled in by PoolList only.
	TenantCount int
}

// RecordedEvent is a stack event as Cairn keeps it.
type RecordedEvent struct {
	StackEvent
	TenantID string
	Region   string
	// Seq orders events as Cairn recorded them (and pages them).
	Seq int64
}

// Sentinel errors of Store implementations.
var (
	// ErrNotFound is returned when no placement or pool matches.
	ErrNotFound = errors.New("placement not found")
	// ErrConflict is returned by updates whose Version is stale.
	ErrConflict = errors.New("placement changed concurrently")
	// ErrClaimLost is returned by PlacementRenew and PoolRenew when the
	// claim is no longer the record's: its lease lapsed, or another worker
	// has claimed the record since.
	ErrClaimLost = errors.New("claim lost")
)

// Store is the provisioner's storage port. Implementations must be safe for
// concurrent use by several replicas.
type Store interface {
	// PlacementEnsure inserts p unless a placement for (p.TenantID,
	// p.Region) exists, and returns the stored one either way.
	PlacementEnsure(ctx context.Context, p Placement) (Placement, error)
	// PlacementGet returns the placement or ErrNotFound.
	PlacementGet(ctx context.Context, tenantID, region string) (Placement, error)
	// PlacementList returns a tenant's placements ordered by Region.
	PlacementList(ctx context.Context, tenantID string) ([]Placement, error)
	// PlacementListInFlight returns every placement whose status is
	// InFlight, ordered by Region.
	PlacementListInFlight(ctx context.Context) ([]Placement, error)
	// PlacementUpdate stores p if the stored Version equals p.Version and
	// returns it with Version increased and UpdatedAt set; ErrConflict if
	// the version is stale, ErrNotFound if absent. The events it is given
	// go to the fleet outbox in the same transaction (an ID the outbox
	// holds is ignored): they are written if and only if p is.
	PlacementUpdate(ctx context.Context, p Placement, announce ...fleet.Event) (Placement, error)
	// PlacementClaim is PlacementUpdate that also takes the placement's
	// claim: ClaimVersion increases by one and LeaseUntil is leaseUntil.
	// It returns ErrConflict, storing nothing, when the version is stale or
	// another claim's lease has not lapsed at now.
	PlacementClaim(ctx context.Context, p Placement, now, leaseUntil time.Time) (Placement, error)
	// PlacementRenew moves the lease of claim claimVersion to leaseUntil
	// and increases Version. It returns ErrClaimLost, changing nothing,
	// when that claim is no longer the placement's or its lease lapsed
	// before now.
	PlacementRenew(ctx context.Context, tenantID, region string, claimVersion int64, now, leaseUntil time.Time) error

	// PoolEnsure inserts p unless the Region's pool exists, and returns the
	// stored one either way.
	PoolEnsure(ctx context.Context, p Pool) (Pool, error)
	// PoolGet returns the Region's pool or ErrNotFound.
	PoolGet(ctx context.Context, region string) (Pool, error)
	// PoolList returns every pool ordered by Region, with TenantCount.
	PoolList(ctx context.Context) ([]Pool, error)
	// PoolUpdate is PlacementUpdate for pools.
	PoolUpdate(ctx context.Context, p Pool, announce ...fleet.Event) (Pool, error)
	// PoolClaim is PlacementClaim for pools.
	PoolClaim(ctx context.Context, p Pool, now, leaseUntil time.Time) (Pool, error)
	// PoolRenew is PlacementRenew for pools.
	PoolRenew(ctx context.Context, region string, claimVersion int64, now, leaseUntil time.Time) error

	// TenantsStalled returns, oldest first and at most limit, the tenants
	// in provisioning that nothing is being done for: neither they nor
	// any of their placements changed since quietSince, and none of their
	// placements is InFlight or under a claim whose lease is live at now.
	TenantsStalled(ctx context.Context, now, quietSince time.Time, limit int) ([]string, error)

	// StackEventsAppend records events of a tenant's stack in a Region,
	// ignoring events already recorded (same ID), and returns how many it
	// added. Events are recorded oldest first so Seq follows time.
	StackEventsAppend(ctx context.Context, tenantID, region string, events []StackEvent) (int, error)
	// StackEventsList returns recorded events, newest first: those with
	// Seq < beforeSeq when beforeSeq > 0, at most limit.
	StackEventsList(ctx context.Context, tenantID, region string, beforeSeq int64, limit int) ([]RecordedEvent, error)
}
