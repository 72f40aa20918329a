// Package rollouts updates the fleet's stacks to a new template version in
// stages: a canary, then growing waves with a bake time between them.
//
// A rollout is resolved, when it is made, into targets: the stacks it
// selected (dedicated tenants' stacks and the Regions' pool stacks) that
// are not at the version yet, each assigned to a wave. Every target is
// updated through a change set (created, inspected, then executed), so a
// change that would replace or remove a stateful resource (a bucket, a
// table, a key, a stream) halts the rollout for an admin's approval
// instead of being applied. A stack whose update fails is rolled back by
// CloudFormation and counts against the rollout's failure threshold,
// which halts the rollout when reached.
//
// # Durability
//
// A rollout is driven by one durable job (StepArgs) that takes a step for
// every target in flight and snoozes, level-based: every run re-reads the
// rollout and its targets. Each target's state is stored before the
// engine call it leads to, and every call is safe to repeat: a change
// set's name and client token are derived from the rollout, and a change
// set is executed only after DescribeChangeSet says it is AVAILABLE, and
// CloudFormation executes it once. So a job that dies mid-wave and runs
// again (on any replica) resumes where it stopped and never updates a
// stack twice. A stack is held by at most one unfinished rollout: the
// store refuses a rollout that selects a stack another one holds
// (ErrStackBusy).
//
// # Events
//
// rollout.halted and rollout.completed go to the fleet outbox in the
// transaction that halts or completes the rollout.
package rollouts

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// State is where a rollout is.
type State string

// Rollout states.
const (
	// StateRunning: waves go on.
	StateRunning State = "running"
	// StatePaused: an admin paused it; no stack starts, those in flight
	// finish.
	StatePaused State = "paused"
	// StateHalted: a change needs approval or too many stacks failed;
	// like paused until an admin approves or resumes.
	StateHalted State = "halted"
	// StateAborted: an admin aborted it; stacks not started stay on their
	// version.
	StateAborted State = "aborted"
	// StateCompleted: every wave is done.
	StateCompleted State = "completed"
)

// Done reports whether a rollout in s will do nothing more once its
// targets in flight settle.
func (s State) Done() bool { return s == StateAborted || s == StateCompleted }

// TargetState is where one stack of a rollout is.
type TargetState string

// Target states.
const (
	// TargetPending: not started; its wave has not come.
	TargetPending TargetState = "pending"
	// TargetReviewing: its change set is asked for and being inspected.
	TargetReviewing TargetState = "reviewing"
	// TargetAwaitingApproval: its change set replaces or removes a
	// stateful resource; it is not applied until approved.
	TargetAwaitingApproval TargetState = "awaiting_approval"
	// TargetExecuting: its change set is being executed.
	TargetExecuting TargetState = "executing"
	// TargetSucceeded: updated to the version.
	TargetSucceeded TargetState = "succeeded"
	// TargetUnchanged: the version changes nothing in this stack.
	TargetUnchanged TargetState = "unchanged"
	// TargetFailed: the update failed and was rolled back, or its change
	// set could not be made; Reason says why.
	TargetFailed TargetState = "failed"
	// TargetSkipped: the rollout was aborted before the stack was
	// updated, or the stack went away; it stays on its version.
	TargetSkipped TargetState = "skipped"
)

// Terminal reports whether a target in s is finished.
func (s TargetState) Terminal() bool {
	switch s {
	case TargetSucceeded, TargetUnchanged, TargetFailed, TargetSkipped:
		return true
	}
	return false
}

// inFlight reports whether a target in s has a change set that may still
// be executed or is executing.
func (s TargetState) inFlight() bool {
	return s == TargetReviewing || s == TargetExecuting
}

// Stack kinds a rollout updates.
const (
	KindDedicated = string(provisioner.KindDedicated)
	KindPool      = "pool"
)

// Selector chooses the stacks of a rollout. Zero fields do not filter;
// every stack that passes all the filters set is selected.
type Selector struct {
	// Tier is "dedicated" (tenants' own stacks), "pooled" (the pool
	// stacks) or "" (both).
	Tier string
	// Regions keeps stacks in these Regions.
	Regions []string
	// Labels keeps tenants that have every one of these labels; with
	// TenantIDs, it keeps the tenants listed. A pool stack is selected
	// through them when one of the tenants kept is pooled in its Region.
	Labels    map[string]string
	TenantIDs []string
}

// Plan is how a rollout proceeds.
type Plan struct {
	// Canary is the number of stacks of the first wave; default 1.
	Canary int
	// Waves are the cumulative percentages of the targets done at the end
	// of each wave after the canary; default 5, 25, 100. The last is 100.
	Waves []int
	// Bake is the time between the end of a wave and the start of the
	// next.
	Bake time.Duration
	// FailureThreshold is the number of failed stacks that halts the
	// rollout; default 1.
	FailureThreshold int
	// MaxInFlight bounds the stacks updated at once; default 25.
	MaxInFlight int
}

// Defaults of a Plan.
const (
	DefaultCanary           = 1
	DefaultFailureThreshold = 1
	DefaultMaxInFlight      = 25
)

// DefaultWaves are a Plan's default waves after the canary.
var DefaultWaves = []int{5, 25, 100}

// Template is a template version a rollout applies, kept whole with it so
// that any replica carries it out, whatever templates it embeds.
type Template struct {
	Name    string
	Version string
	Body    string
}

// Rollout is one staged rollout.
type Rollout struct {
	ID       string
	State    State
	Reason   string
	Selector Selector
	Plan     Plan
	// Templates are keyed by stack kind (KindDedicated, KindPool).
	Templates map[string]Template
	// Wave is the index of the wave under way (0 is the canary);
	// WaveCount is how many there are.
	Wave      int
	WaveCount int
	// BakeUntil is when the wave Wave may start, after the previous one.
	BakeUntil time.Time
	// FailureBase is the number of failed targets when the rollout was
	// last resumed: the threshold counts failures after it.
	FailureBase int
	CreatedBy   string
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	FinishedAt  time.Time
	// Seq is the store's insertion order, for paging.
	Seq int64
	// Counts are the targets per state; set by Service.Get and List.
	Counts map[TargetState]int
}

// Target is one stack of a rollout.
type Target struct {
	RolloutID string
	// Index orders the targets; waves take them in this order.
	Index int
	Wave  int
	Kind  string
	// TenantID is a dedicated stack's tenant; "" for a pool stack.
	TenantID   string
	TenantSlug string
	Region     string
	StackName  string
	// FromVersion is the version the stack had when selected; ToVersion
	// the one the rollout applies.
	FromVersion string
	ToVersion   string
	State       TargetState
	// ChangeSet names the target's change set; Changes summarise it.
	ChangeSet string
	Changes   []provisioner.ResourceChange
	// Approved is set once an admin approved a change set that needed it.
	Approved bool
	// Executed is set once ExecuteChangeSet was accepted.
	Executed bool
	// Refusals counts the engine's refusals to make the change set; at
	// maxRefusals the target fails.
	Refusals   int
	Reason     string
	Version    int64
	StartedAt  time.Time
	FinishedAt time.Time
}

// Candidate is a stack a rollout may select: a dedicated tenant's ready
// stack, or a Region's ready pool stack.
type Candidate struct {
	Kind            string
	Region          string
	StackName       string
	TemplateVersion string
	// TenantID, TenantSlug, TenantStatus, and TenantLabels describe a
	// dedicated stack's tenant; empty for a pool stack.
	TenantID     string
	TenantSlug   string
	TenantStatus string
	TenantLabels map[string]string
	// PooledTenants are the tenants with a slice of a pool stack: their
	// IDs and labels.
	PooledTenants []PooledTenant
}

// PooledTenant is a live tenant with a slice of a pool stack.
type PooledTenant struct {
	ID     string
	Labels map[string]string
}

// Update is a change to a rollout and what commits with it.
type Update struct {
	Rollout Rollout
	// Audit is the request's event, if an admin asked for the change.
	Audit audit.Event
	// Announce goes to the fleet outbox with the change.
	Announce []fleet.Event
	// Enqueue inserts the rollout's step job with the change.
	Enqueue bool
	// Approve moves the rollout's targets awaiting approval to executing,
	// approved.
	Approve bool
}

// Sentinel errors.
var (
	// ErrNotFound: no rollout has that ID (Store, Service).
	ErrNotFound = errors.New("rollout not found")
	// ErrConflict: the rollout or target changed since it was read
	// (Store updates).
	ErrConflict = errors.New("rollout changed concurrently")
	// ErrStackBusy: a stack selected is held by another unfinished
	// rollout (Store.RolloutCreate, Service.Create).
	ErrStackBusy = errors.New("a selected stack is in another rollout")
	// ErrNothingToRoll: no selected stack is behind the version
	// (Service.Create).
	ErrNothingToRoll = errors.New("no selected stack needs this version")
	// ErrState: the rollout is not in a state the operation applies to
	// (Service.Pause, Resume, Abort, Approve).
	ErrState = errors.New("rollout state does not allow this")
)

// ValidationError is a refused input; Field names it as the API does.
type ValidationError struct {
	Field, Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Store is the rollouts' storage port. Implementations must be safe for
// concurrent use by several replicas.
type Store interface {
	// RolloutCreate stores r (at Version 1, with Seq set) and its targets,
	// holding their stacks, records rec, and inserts the rollout's step
	// job, in one transaction. ErrStackBusy, storing nothing, when a
	// target's stack is held by another rollout.
	RolloutCreate(ctx context.Context, r Rollout, targets []Target, rec audit.Event) (Rollout, error)
	// RolloutGet returns the rollout or ErrNotFound.
	RolloutGet(ctx context.Context, id string) (Rollout, error)
	// RolloutList returns rollouts newest first: those with Seq <
	// beforeSeq when beforeSeq > 0, at most limit.
	RolloutList(ctx context.Context, beforeSeq int64, limit int) ([]Rollout, error)
	// RolloutListActive returns the rollouts that are not finished.
	RolloutListActive(ctx context.Context) ([]Rollout, error)
	// RolloutEnqueue inserts the rollout's step job unless one is waiting
	// or running (StepArgs.InsertOpts).
	RolloutEnqueue(ctx context.Context, id string) error
	// RolloutTakeover inserts a step job for the rollout that takes over
	// from the job whose lease lapsed at lapsed: one waiting or running
	// (the dead replica's) does not block it, and another takeover of the
	// same lapse is skipped.
	RolloutTakeover(ctx context.Context, id string, lapsed time.Time) error
	// RolloutClaim takes or renews the rollout's lease for the job until
	// until, and reports whether the job holds it: it held it, nobody did,
	// or its holder's lapsed before now. A finished rollout has none.
	RolloutClaim(ctx context.Context, id string, job int64, until, now time.Time) (bool, error)
	// RolloutLeaseRelease gives up the job's lease of the rollout, if it
	// holds it.
	RolloutLeaseRelease(ctx context.Context, id string, job int64) error
	// RolloutLapsed returns the unfinished rollouts whose lease lapsed
	// before now, by ID, with when it lapsed.
	RolloutLapsed(ctx context.Context, now time.Time) (map[string]time.Time, error)
	// RolloutCounts returns how many of the rollout's targets are in each
	// state.
	RolloutCounts(ctx context.Context, id string) (map[TargetState]int, error)
	// RolloutTargets returns the rollout's targets by Index.
	RolloutTargets(ctx context.Context, id string) ([]Target, error)
	// RolloutUpdate stores u.Rollout if its stored Version equals
	// u.Rollout.Version, with what u says commits with it, and returns it
	// with Version increased; ErrConflict if stale, ErrNotFound if absent.
	// A rollout stored Done with a FinishedAt releases its stacks.
	RolloutUpdate(ctx context.Context, u Update) (Rollout, error)
	// RolloutTargetUpdate stores t if its stored Version equals t.Version
	// and returns it with Version increased; ErrConflict otherwise. A
	// terminal target releases its stack.
	RolloutTargetUpdate(ctx context.Context, t Target) (Target, error)
	// RolloutCandidates returns every stack a rollout may select.
	RolloutCandidates(ctx context.Context) ([]Candidate, error)
	// StackTemplateVersionSet records that the stack (a dedicated
	// tenant's, or a Region's pool with its slices) is at version.
	StackTemplateVersionSet(ctx context.Context, kind, region, stackName, tenantID, version string) error
}
