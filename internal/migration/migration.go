// Package migration moves a tenant between tiers, pooled to dedicated and
// back, while it stays active and keeps sending events.
//
// A migration is a durable, resumable job that takes the tenant through
// these steps, recording each in the control-plane database (Store):
//
//   - provision: the target placement in each of the tenant's Regions, a
//     dedicated stack of its own or a slice of the Region's pool, through
//     the provisioner (Provisioner);
//   - copy: the tenant's raw, clean and curated zone objects and its
//     catalog entries to the target (Zones); the profile items, where
//     they live in a table of the placement (AWS mode), too;
//   - fence: a short write fence: ingestion for the tenant answers 503
//     with Retry-After (Fences), and the job waits the drain for requests
//     already admitted to finish, so every event acknowledged before the
//     fence is in the source;
//   - delta: what changed in the source since the copy, copied again;
//   - switch: in one transaction the tenant's placements point at the
//     target, its tier changes and the fence is lifted; reads and writes
//     go to the target from then on;
//   - grants: the tenant's grants are re-applied on the target's catalog;
//   - purge: the old slice or stack, and its data, are deleted.
//
// A failure before the switch leaves the tenant on its old tier, unharmed:
// the migration is marked failed with the reason, the fence is lifted and
// what the target received is removed. The tenant's status stays active
// throughout. A job that dies (with its replica) is taken over by the
// sweep once its lease lapses, and resumes at the step it recorded: every
// step is safe to repeat.
package migration

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/placement"
)

// Step is where a migration is.
type Step string

// Steps, in order.
const (
	StepProvision Step = "provision"
	StepCopy      Step = "copy"
	StepFence     Step = "fence"
	StepDelta     Step = "delta"
	StepSwitch    Step = "switch"
	StepGrants    Step = "grants"
	StepPurge     Step = "purge"
	StepDone      Step = "done"
)

// Steps lists the steps in order.
var Steps = []Step{StepProvision, StepCopy, StepFence, StepDelta, StepSwitch, StepGrants, StepPurge, StepDone}

// State is a migration's outcome so far.
type State string

// States.
const (
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
)

// Fleet event types of a migration's end.
const (
	EventMigrated = fleet.TenantMigrated
	EventFailed   = fleet.TenantMigrationFailed
)

// Home is a tenant's placement in one Region as a migration sees it: where
// it was (a source) or where it goes (a target).
type Home struct {
	Region          string            `json:"region"`
	Kind            placement.Kind    `json:"kind"`
	StackName       string            `json:"stack_name"`
	TemplateVersion string            `json:"template_version,omitempty"`
	Outputs         map[string]string `json:"outputs,omitempty"`
}

// RawBucket, CleanBucket, CuratedBucket, Prefix, GlueDatabase,
// ProfileTable and KMSKey read the outputs (placement.Placement's keys).
func (h Home) RawBucket() string     { return h.Outputs["raw_bucket"] }
func (h Home) CleanBucket() string   { return h.Outputs["clean_bucket"] }
func (h Home) CuratedBucket() string { return h.Outputs["curated_bucket"] }
func (h Home) Prefix() string        { return h.Outputs["s3_prefix"] }
func (h Home) GlueDatabase() string  { return h.Outputs["glue_database"] }
func (h Home) ProfileTable() string  { return h.Outputs["profile_table"] }
func (h Home) KMSKey() string        { return h.Outputs["kms_key_arn"] }

// Progress is what a migration did so far.
type Progress struct {
	// Attempt is the migration's attempt at provisioning, part of the
	// target stack's request token.
	Attempt int `json:"attempt"`
	// Sources are the tenant's placements when the migration started;
	// Targets, once provisioned, where it goes, in the same order.
	Sources []Home `json:"sources"`
	Targets []Home `json:"targets,omitempty"`
	// ObjectsCopied and BytesCopied count the zone objects (and catalog
	// entries) copied by the copy step; ObjectsTotal is how many the
	// source held then.
	ObjectsTotal  int64 `json:"objects_total"`
	ObjectsCopied int64 `json:"objects_copied"`
	BytesCopied   int64 `json:"bytes_copied"`
	// DeltaObjects counts what the delta step copied or removed.
	DeltaObjects int64 `json:"delta_objects"`
	// GrantsRehomed counts the grants re-applied on the target.
	GrantsRehomed int `json:"grants_rehomed"`
	// ObjectsPurged counts what the purge removed from the source.
	ObjectsPurged int64 `json:"objects_purged"`
}

// Migration is one move of a tenant between tiers.
type Migration struct {
	ID       string
	TenantID string
	From, To placement.Kind
	Step     Step
	State    State
	// Error says why a migration failed (or why its last attempt did).
	Error    string
	Progress Progress
	// FencedAt and FenceUntil are the write fence, zero when none.
	FencedAt   time.Time
	FenceUntil time.Time
	// Version increases on every update (optimistic concurrency).
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
	Seq        int64
}

// Percent is how far the migration is, by the steps done.
func (m Migration) Percent() int {
	if m.State == StateSucceeded {
		return 100
	}
	for i, s := range Steps {
		if s == m.Step {
			return i * 100 / (len(Steps) - 1)
		}
	}
	return 0
}

// Sentinel errors.
var (
	// ErrNotFound: the tenant has no migration, or none has the ID (Store,
	// Service.Get).
	ErrNotFound = errors.New("migration not found")
	// ErrRunning: the tenant has a migration running (Service.Start,
	// Store.MigrationCreate).
	ErrRunning = errors.New("a migration of the tenant is running")
	// ErrSameTier: the tenant is already on the tier asked for
	// (Service.Start).
	ErrSameTier = errors.New("tenant already on this tier")
	// ErrNotActive: only an active tenant moves (Service.Start).
	ErrNotActive = errors.New("tenant is not active")
	// ErrConflict: the migration (or the placement it switches) changed
	// concurrently (Store).
	ErrConflict = errors.New("migration changed concurrently")
	// ErrTargetFailed: the target could not be provisioned, for good
	// (Provisioner); the migration fails with its reason.
	ErrTargetFailed = errors.New("target placement failed")
)

// ValidationError is bad input: Field is a JSON Pointer into the body.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Store keeps migrations in the control-plane database. Implementations
// are safe for concurrent use by several replicas.
type Store interface {
	// MigrationCreate stores m (Seq and Version 1 set) with rec, the audit
	// event of the request, and the job that works it, in one
	// transaction. ErrRunning if the tenant has a running migration.
	MigrationCreate(ctx context.Context, m Migration, rec audit.Event) (Migration, error)
	// MigrationGet returns the migration or ErrNotFound.
	MigrationGet(ctx context.Context, id string) (Migration, error)
	// MigrationLatest returns the tenant's latest migration or ErrNotFound.
	MigrationLatest(ctx context.Context, tenantID string) (Migration, error)
	// MigrationUpdate stores m if the stored Version is m.Version and
	// returns it with Version+1 and UpdatedAt set; ErrConflict if stale.
	// The events go to the fleet outbox in the same transaction.
	MigrationUpdate(ctx context.Context, m Migration, announce ...fleet.Event) (Migration, error)
	// MigrationSwitch is MigrationUpdate that also, in its transaction,
	// points the tenant's placement in each target's Region at the target
	// (ready, with its kind, stack, template version and outputs; only if
	// it is still a ready placement of kind m.From) and sets the tenant's
	// tier to m.To. ErrConflict, changing nothing, if any of them moved.
	MigrationSwitch(ctx context.Context, m Migration, targets []Home) (Migration, error)
	// MigrationClaim takes or renews the lease of job on the running
	// migration until until: it holds it already, or nobody does, or its
	// holder's lapsed before now. False if another job holds it, or the
	// migration is finished.
	MigrationClaim(ctx context.Context, id string, job int64, until, now time.Time) (bool, error)
	// MigrationLapsed returns the running migrations whose job's lease
	// lapsed before now, with when it lapsed (zero if never taken).
	MigrationLapsed(ctx context.Context, now time.Time) (map[string]time.Time, error)
	// MigrationEnqueue inserts the job of the migration (StepArgs with
	// takeover), unless such a job is waiting or running.
	MigrationEnqueue(ctx context.Context, id string, takeover int64) error
	// MigrationRunning returns the running migrations' fences: tenant ID
	// → fence_until (zero when not fenced).
	MigrationRunning(ctx context.Context) (map[string]time.Time, error)
}
