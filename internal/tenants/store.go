package tenants

import (
	"context"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
)

// ListParams selects and pages tenants. Zero values do not filter.
type ListParams struct {
	Status Status
	Tier   Tier
	Region string
	// Search, when not empty, keeps tenants whose name (ignoring ASCII
	// case), slug or ID contains it. Service.List lowers its ASCII letters
	// before it reaches a Store.
	Search string
	// LabelKey, when not empty, keeps tenants with that label; with
	// LabelValue set, only those whose label has that value.
	LabelKey   string
	LabelValue *string
	// AfterSeq returns only tenants inserted after the one with this Seq.
	AfterSeq int64
	// Limit is the most tenants to return; Store implementations may assume
	// it is between 1 and the API's maximum.
	Limit int
}

// JobArgs is a durable job to insert with a change. Its Kind names the
// worker that runs it; the job system serialises it as JSON.
type JobArgs interface {
	Kind() string
}

// Store is the storage port of this package. Implementations must be safe
// for concurrent use.
type Store interface {
	// InTx runs fn in one database transaction, committing when fn returns
	// nil and rolling back otherwise.
	InTx(ctx context.Context, fn func(Tx) error) error
	// TenantGet returns the tenant or ErrNotFound.
	TenantGet(ctx context.Context, id string) (Tenant, error)
	// TenantList returns tenants matching p in ascending Seq order.
	TenantList(ctx context.Context, p ListParams) ([]Tenant, error)
}

// Tx is the part of Store that runs inside a transaction.
type Tx interface {
	// TenantGet returns the tenant or ErrNotFound, locking it for update
	// where the database supports row locks.
	TenantGet(ctx context.Context, id string) (Tenant, error)
	// TenantInsert stores a new tenant and returns it with Seq set. It
	// returns ErrSlugTaken when a tenant that is not deleted has the slug.
	TenantInsert(ctx context.Context, t Tenant) (Tenant, error)
	// TenantUpdate stores t if the stored version is still t.Version-1 and
	// returns ErrVersionMismatch otherwise (ErrNotFound if it is gone).
	// The caller has already increased t.Version.
	TenantUpdate(ctx context.Context, t Tenant) error
	// JobInsert inserts a durable job that commits or rolls back with the
	// transaction.
	JobInsert(ctx context.Context, args JobArgs) error
	// FleetEventInsert adds ev to the fleet outbox, committing or rolling
	// back with the transaction. An event whose ID the outbox holds is
	// ignored, so a retried change announces itself once.
	FleetEventInsert(ctx context.Context, ev fleet.Event) error
	// Appender records the audit event of a change in its transaction.
	audit.Appender
}
