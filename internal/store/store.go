// Package store opens the control-plane database, embedded SQLite or
// PostgreSQL, behind one Backend interface. The adapters live in
// store/sqlite and store/postgres, store/backend opens the one a database
// URL names, and storetest holds the contract suite that runs against both.
package store

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/attention"
	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/drift"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/idempotency"
	"github.com/cairn-cdp/cairn/internal/kmskek"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/offboarding"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/plans"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/replicas"
	"github.com/cairn-cdp/cairn/internal/rollouts"
	"github.com/cairn-cdp/cairn/internal/signingkeys"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/usage"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// ErrSchemaBehind is returned (wrapped, with the database's and this
// version's schema versions) by Backend.CheckSchema when the database
// lacks migrations this version of Cairn needs: it was never migrated, or
// only by an older version.
var ErrSchemaBehind = errors.New("database schema is behind this version")

// Backend is everything the server needs from its control-plane database.
type Backend interface {
	tenants.Store
	provisioner.Store
	// placement.Reader reads a tenant's placements in one query, for the
	// profile store, the raw zone, the grants broker and the API.
	placement.Reader
	idempotency.Store
	profiles.SourceStore
	webhooks.Store
	// fleet.Store is the fleet outbox, written through tenants.Tx and the
	// provisioner's updates.
	fleet.Store
	// usage.Store keeps the tenants' metered usage.
	usage.Store
	// rollouts.Store keeps staged template rollouts and their targets.
	rollouts.Store
	// drift.Store keeps each stack's latest drift detection.
	drift.Store
	// audit.Store is the audit log; every Tx above also appends to it in
	// the transaction of the change it records.
	audit.Store
	// signingkeys.Store keeps the token signing keys, sealed, so every
	// replica signs and verifies with the same ones.
	signingkeys.Store
	// replicas.Store holds the replicas' leases.
	replicas.Store
	// kmskek.Store holds the KMS-wrapped key-encryption key.
	kmskek.Store
	// attention.Store lists the failed stacks and grants of the fleet.
	attention.Store
	// lake.Store holds the refinery's watermarks, table stats and
	// erased-ID filters.
	lake.Store
	// lake.QueryStore holds the tenants' queries over their lake.
	lake.QueryStore
	// plans.Store holds the ISV's plans, which tenants name.
	plans.Store
	// offboarding.Store records the finished steps of tenants'
	// offboarding.
	offboarding.Store
	// migration.Store keeps tenants' moves between tiers.
	migration.Store
	// Grants returns the grants broker's store on the same database.
	Grants() grants.Store
	// Migrate brings the schema (Cairn's tables and River's) up to date
	// under a lock, so concurrent replicas never race a migration.
	Migrate(ctx context.Context) error
	// CheckSchema reports, without migrating or waiting for Migrate's
	// lock, whether every migration this version knows has been applied:
	// nil if so (a schema migrated further by a newer version included),
	// an error wrapping ErrSchemaBehind if not.
	CheckSchema(ctx context.Context) error
	// Ping checks the database answers; /readyz uses it.
	Ping(ctx context.Context) error
	// JobCounts returns the number of jobs per River state (available,
	// running, retryable, scheduled, completed, discarded, cancelled).
	JobCounts(ctx context.Context) (map[string]int64, error)
	// RunningJobArgs returns the encoded arguments of the running jobs
	// of kind.
	RunningJobArgs(ctx context.Context, kind string) ([][]byte, error)
	// StartWorkers starts working jobs until ctx is done or the returned
	// stop function is called; stop waits for running jobs to finish or
	// its own context to end.
	StartWorkers(ctx context.Context, cfg WorkerConfig) (stop func(context.Context) error, err error)
	// Close releases the database.
	Close() error
}

// WorkerConfig configures job processing.
type WorkerConfig struct {
	Workers *river.Workers
	// PeriodicJobs are scheduled by the elected leader only.
	PeriodicJobs []*river.PeriodicJob
	// MaxWorkers bounds concurrent jobs; default 10.
	MaxWorkers int
	// PollInterval is how often to look for new jobs where the database has
	// no notifications (SQLite); default 1s. Tests shorten it.
	PollInterval time.Duration
	Logger       *slog.Logger
	// OnJobDone, if set, is called after each job attempt with its kind and
	// the resulting River state (completed, retryable, discarded,
	// cancelled, ...). Metrics use it.
	OnJobDone func(kind, state string)
}
