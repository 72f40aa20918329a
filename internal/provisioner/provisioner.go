package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/periodic"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/templates"
)

// ErrNotRetryable is returned by RetryStack for a stack that has not failed.
var ErrNotRetryable = errors.New("stack has not failed")

// Lifecycle is the part of tenants.Service the provisioner drives.
type Lifecycle interface {
	Get(ctx context.Context, id string) (tenants.Tenant, error)
	MarkProvisioned(ctx context.Context, id string) (tenants.Tenant, error)
	MarkFailed(ctx context.Context, id string, version int64, reason string) (tenants.Tenant, error)
	MarkDeleted(ctx context.Context, id string) (tenants.Tenant, error)
	Retry(ctx context.Context, rec audit.Event, id string, ifVersion *int64) (tenants.Tenant, error)
	Reconcile(ctx context.Context, rec audit.Event, id string) error
	Enqueue(ctx context.Context, rec audit.Event, args tenants.JobArgs) error
}

var _ Lifecycle = (*tenants.Service)(nil)

// DefaultPollInterval is how often in-flight stacks are polled, and how
// long a job waiting on them snoozes, unless Config says otherwise.
const DefaultPollInterval = 5 * time.Second

// DefaultLease is how long a worker's claim on a stack create lasts
// unless renewed, unless Config says otherwise. The worker renews it every
// third of that while it works, so a claim of a replica that died is taken
// over within a lease of its last renewal.
const DefaultLease = 15 * time.Second

// Config wires a Provisioner. Engine, Store and Tenants are required.
type Config struct {
	Engine  Engine
	Store   Store
	Tenants Lifecycle
	// PollInterval defaults to DefaultPollInterval.
	PollInterval time.Duration
	// Lease defaults to DefaultLease.
	Lease time.Duration
	// Now is the provisioner's clock: leases are read and written by
	// it, and the times Cairn records of its own (fleet events, slice
	// events) are its. time.Now by default.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Fleet, if set, is told when a stack's failure was written to the
	// fleet outbox, so that it goes out at once.
	Fleet fleet.Notifier
	// Busy, if set, reports whether work that writes a tenant's data zones
	// and catalog (a lake refinery run) is still running for it. Teardown
	// waits until none is before it removes anything, so that no run that
	// started before the offboarding puts back what it removed. Such work
	// must not start for a tenant that is not active.
	Busy func(ctx context.Context, tenantID string) (bool, error)
	// TenantRolePolicy, if set, gives a pooled tenant a role of its own
	// (Engine.EnsureTenantRole) when its slice is cut: it returns the
	// role's inline policy for the slice's outputs (those sliceOutputs
	// makes). The slice's data_access_role_arn is then that role, and
	// pool_role_arn the pool's. Unset, a pooled tenant's
	// data_access_role_arn is the pool's role.
	TenantRolePolicy func(tenantID, region string, outputs map[string]string) (string, error)
	// TenantRoleBoundary, if set, is the permissions boundary (a managed
	// policy ARN) those roles are created with.
	TenantRoleBoundary string
}

// Provisioner reconciles tenants' stacks. It is safe for concurrent use by
// any number of workers and replicas: all state is in Store and Engine.
type Provisioner struct {
	engine  Engine
	store   Store
	tenants Lifecycle
	poll    time.Duration
	lease   time.Duration
	now     func() time.Time
	log     *slog.Logger
	fleet   fleet.Notifier
	busy    func(ctx context.Context, tenantID string) (bool, error)
	// rolePolicy and boundary: Config.TenantRolePolicy and TenantRoleBoundary.
	rolePolicy func(tenantID, region string, outputs map[string]string) (string, error)
	boundary   string
	round      periodic.Gate // the polling rounds' (PeriodicJobs)
}

// New validates cfg and returns a Provisioner.
func New(cfg Config) (*Provisioner, error) {
	if cfg.Engine == nil || cfg.Store == nil || cfg.Tenants == nil {
		return nil, errors.New("provisioner: Engine, Store and Tenants are required")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Provisioner{
		engine: cfg.Engine, store: cfg.Store, tenants: cfg.Tenants, poll: cfg.PollInterval, log: cfg.Logger,
		lease: cfg.Lease, now: cfg.Now,
		fleet: cfg.Fleet, busy: cfg.Busy, rolePolicy: cfg.TenantRolePolicy, boundary: cfg.TenantRoleBoundary,
	}, nil
}

// jobTimeout is the timeout of every provisioner job: a minute, the job
// timeout River's stuck-job rescue is set to follow (store.JobTimeout).
const jobTimeout = time.Minute

// PollArgs is the periodic job that reads in-flight stacks' status, a
// Region at a time.
type PollArgs struct{}

// Kind implements river.JobArgs.
func (PollArgs) Kind() string { return "stack_poll" }

// ResumeArgs provisions a tenant whose provisioning stalled (see
// resumeStalled): a tenant job that died with its replica before it left
// any claim or in-flight stack behind. It is unique per tenant and
// DefaultLease, so a tenant whose job only waits in a long queue gets at
// most one more per lease.
type ResumeArgs struct {
	TenantID string `json:"tenant_id"`
}

// Kind implements river.JobArgs.
func (ResumeArgs) Kind() string { return "tenant_provision_resume" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (ResumeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: DefaultLease}}
}

// Register adds the provisioner's workers.
func (p *Provisioner) Register(w *river.Workers) {
	river.AddWorker(w, &provisionWorker{p: p})
	river.AddWorker(w, &resumeWorker{p: p})
	river.AddWorker(w, &pollWorker{p: p})
}

// PeriodicJobs returns the poller: one round per polling interval.
//
// Rounds are unique per interval, not per state: a round that a crashed
// process left "running" stays so until River rescues it
// (store.RescueAfter), and must not stop every round after it. A process runs one
// round at a time; a round due while one is still running is skipped.
// Below a second, where River has no unique periods, a round waits for
// the one inserted before it to start (periodic.Gate).
func (p *Provisioner) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(p.poll), func() (river.JobArgs, *river.InsertOpts) {
			if !p.round.Due(time.Now(), p.poll) {
				return nil, nil
			}
			if p.poll < time.Second {
				return PollArgs{}, nil // River's unique periods start at a second
			}
			return PollArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: p.poll}}
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

type provisionWorker struct {
	river.WorkerDefaults[tenants.ProvisionArgs]
	p *Provisioner
}

// Timeout bounds one step of a tenant's provisioning: a read of the
// tenant and, per Region, a claim and a CreateStack call. River works a
// job left running by a replica that died again after store.RescueAfter.
func (w *provisionWorker) Timeout(*river.Job[tenants.ProvisionArgs]) time.Duration {
	return jobTimeout
}

func (w *provisionWorker) Work(ctx context.Context, job *river.Job[tenants.ProvisionArgs]) error {
	return w.p.provision(ctx, job.Args.TenantID)
}

type resumeWorker struct {
	river.WorkerDefaults[ResumeArgs]
	p *Provisioner
}

// Timeout is provisionWorker's.
func (w *resumeWorker) Timeout(*river.Job[ResumeArgs]) time.Duration { return jobTimeout }

func (w *resumeWorker) Work(ctx context.Context, job *river.Job[ResumeArgs]) error {
	return w.p.provision(ctx, job.Args.TenantID)
}

type pollWorker struct {
	river.WorkerDefaults[PollArgs]
	p       *Provisioner
	running sync.Mutex
}

// Timeout bounds one polling round: a DescribeStacks round per Region and
// the records it changes.
func (w *pollWorker) Timeout(*river.Job[PollArgs]) time.Duration { return jobTimeout }

func (w *pollWorker) Work(ctx context.Context, _ *river.Job[PollArgs]) error {
	w.p.round.Started()
	if !w.running.TryLock() {
		return nil // this process is still in the previous round
	}
	defer w.running.Unlock()
	return w.p.PollOnce(ctx)
}

// ignoreTransition drops the error of a lifecycle event that another
// worker already applied.
func ignoreTransition(err error) error {
	var te *tenants.TransitionError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// outcome of one reconcile step for a Region.
type outcome int

const (
	done outcome = iota
	waiting
	failed
)

// provision takes the next step towards the tenant's desired stacks in each
// of its Regions, and moves the tenant to active (all ready) or failed.
func (p *Provisioner) provision(ctx context.Context, id string) error {
	t, err := p.tenants.Get(ctx, id)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read tenant: %w", err)
	}
	if t.Status != tenants.StatusProvisioning && t.Status != tenants.StatusActive && t.Status != tenants.StatusSuspended {
		return nil // desired state moved on: nothing to build
	}
	var (
		wait     bool
		failures []string
	)
	for _, region := range t.Regions {
		pl, err := p.store.PlacementEnsure(ctx, newPlacement(t, region))
		if err != nil {
			return fmt.Errorf("placement %s: %w", region, err)
		}
		out, reason, err := p.step(ctx, t, pl)
		if err != nil {
			return fmt.Errorf("%s in %s: %w", t.ID, region, err)
		}
		switch out {
		case waiting:
			wait = true
		case failed:
			failures = append(failures, region+": "+reason)
		}
	}
	switch {
	case len(failures) > 0 && t.Status == tenants.StatusProvisioning:
		err := p.failTenant(ctx, t, strings.Join(failures, "; "))
		if errors.Is(err, errTenantMoved) {
			return river.JobSnooze(0)
		}
		return err
	case wait:
		return river.JobSnooze(p.poll)
	case len(failures) == 0 && t.Status == tenants.StatusProvisioning:
		_, err := p.tenants.MarkProvisioned(ctx, t.ID)
		return ignoreTransition(err)
	}
	return nil
}

func newPlacement(t tenants.Tenant, region string) Placement {
	pl := Placement{TenantID: t.ID, StackRecord: StackRecord{Region: region, Attempt: 1, Status: StatusPending}}
	if t.Tier == tenants.TierDedicated {
		pl.Kind, pl.StackName, pl.TemplateVersion = KindDedicated, DedicatedStackName(t.ID), templates.Dedicated().Version
	} else {
		pl.Kind, pl.StackName, pl.TemplateVersion = KindPooled, PoolStackName(), templates.Pool().Version
	}
	return pl
}

func newPool(region string) Pool {
	return Pool{StackRecord: StackRecord{
		Region: region, StackName: PoolStackName(), Status: StatusPending, TemplateVersion: templates.Pool().Version, Attempt: 1,
	}}
}

func tenantTags(tenantID string) map[string]string {
	return map[string]string{"cairn:tenant-id": tenantID, "cairn:managed-by": "cairn"}
}

// retrying reports whether a failure recorded at failedAt predates the
// tenant's latest move back to provisioning, i.e. an admin retried since.
func retrying(t tenants.Tenant, failedAt time.Time) bool {
	return t.Status == tenants.StatusProvisioning && t.UpdatedAt.After(failedAt)
}

// step takes the next step for a tenant's placement in one Region: its own
// stack's (advance), or its pool's and then its slice's.
func (p *Provisioner) step(ctx context.Context, t tenants.Tenant, pl Placement) (outcome, string, error) {
	if pl.Kind == KindDedicated {
		return p.advance(ctx, t, p.placementStack(pl, t))
	}
	if pl.Status == StatusReady {
		return done, "", nil
	}
	pool, err := p.store.PoolEnsure(ctx, newPool(pl.Region))
	if err != nil {
		return waiting, "", fmt.Errorf("pool: %w", err)
	}
	if pool.Status != StatusReady && pl.Status != StatusCreating {
		// Waiting on the pool is in flight: the poller watches the slice
		// and wakes this tenant's job when the pool is ready, so a job
		// lost in a crash does not leave the tenant waiting.
		pl.Status = StatusCreating
		if err := p.updatePlacement(ctx, pl); err != nil {
			return waiting, "", err
		}
	}
	out, reason, err := p.advance(ctx, t, p.poolStack(pool))
	if out == failed {
		reason = "pool stack: " + reason
	}
	if out != done || err != nil {
		return out, reason, err
	}

	// The pool is ready: cut the tenant's slice.
	outputs, err := p.cutSlice(ctx, pool, t.ID)
	if err != nil {
		return waiting, "", err
	}
	location := "s3://" + outputs["raw_bucket"] + "/" + S3Prefix(t.ID)
	pl.Status, pl.Outputs, pl.TemplateVersion, pl.LastError = StatusReady, outputs, pool.TemplateVersion, ""
	pl.StackID, pl.StackStatus = pool.StackID, pool.StackStatus
	if err := p.updatePlacement(ctx, pl); err != nil {
		return waiting, "", err
	}
	p.recordCairnEvent(ctx, pl, "Slice", "Cairn::Pool::Slice", StackCreateComplete, "glue database "+outputs["glue_database"]+" over "+location)
	return done, "", nil
}

// cutSlice makes a pooled tenant's catalog database in the ready pool and,
// with Config.TenantRolePolicy, its own role, and returns the slice's
// outputs. Safe to repeat.
func (p *Provisioner) cutSlice(ctx context.Context, pool Pool, tenantID string) (map[string]string, error) {
	outputs := sliceOutputs(pool, tenantID)
	location := "s3://" + outputs["raw_bucket"] + "/" + S3Prefix(tenantID)
	if err := p.engine.EnsureDatabase(ctx, pool.Region, outputs["glue_database"], location, tenantTags(tenantID)); err != nil {
		return nil, fmt.Errorf("glue database: %w", err)
	}
	if p.rolePolicy == nil {
		return outputs, nil
	}
	policy, err := p.rolePolicy(tenantID, pool.Region, outputs)
	if err != nil {
		return nil, fmt.Errorf("tenant role policy: %w", err)
	}
	poolRole := outputs["data_access_role_arn"]
	arn, err := p.engine.EnsureTenantRole(ctx, pool.Region, TenantRole{
		TenantID: tenantID, AccountID: accountOf(poolRole), Policy: policy, Boundary: p.boundary, Tags: tenantTags(tenantID),
	})
	if err != nil {
		return nil, fmt.Errorf("tenant role: %w", err)
	}
	outputs["pool_role_arn"], outputs["data_access_role_arn"] = poolRole, arn
	return outputs, nil
}

// UpgradeSlice gives a pooled tenant's ready slice in region the role of
// its own that Config.TenantRolePolicy asks for, when the slice was cut
// before pooled tenants had one (its outputs have no pool_role_arn), and
// reports whether it did. It does nothing for other placements, without
// the policy, or while the pool is not ready; a placement changed since
// it was read is left for a later call. Safe to repeat.
func (p *Provisioner) UpgradeSlice(ctx context.Context, tenantID, region string) (bool, error) {
	if p.rolePolicy == nil {
		return false, nil
	}
	pl, err := p.store.PlacementGet(ctx, tenantID, region)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if pl.Kind != KindPooled || pl.Status != StatusReady || pl.Outputs["pool_role_arn"] != "" {
		return false, nil
	}
	pool, err := p.store.PoolGet(ctx, region)
	if err != nil || pool.Status != StatusReady {
		return false, err
	}
	outputs, err := p.cutSlice(ctx, pool, tenantID)
	if err != nil {
		return false, err
	}
	pl.Outputs = outputs
	if _, err := p.store.PlacementUpdate(ctx, pl); errors.Is(err, ErrConflict) {
		// Changed meanwhile: if the slice went (a teardown, a move out of
		// the pool), so does the role just made for it.
		now, err := p.store.PlacementGet(ctx, tenantID, region)
		if errors.Is(err, ErrNotFound) || err == nil && (now.Kind != KindPooled || now.Status != StatusReady) {
			return false, p.engine.DeleteTenantRole(ctx, region, tenantID)
		}
		return false, err
	} else if err != nil {
		return false, err
	}
	p.recordCairnEvent(ctx, pl, "Slice", "Cairn::Pool::Slice", StackUpdateComplete, "the tenant's own role "+outputs["data_access_role_arn"])
	return true, nil
}

// accountOf returns the account ID in an ARN ("arn:aws:iam::123456789012:role/x").
func accountOf(arn string) string {
	if parts := strings.Split(arn, ":"); len(parts) > 4 {
		return parts[4]
	}
	return ""
}

// claimEnded is the result of a step taken under a claim: a claim lost to
// another worker is its work now, not a failure of this job.
func (p *Provisioner) claimEnded(ctx context.Context, step, stack, region string, err error) error {
	if errors.Is(err, ErrClaimLost) {
		p.log.InfoContext(ctx, "claim lost to another worker; it goes on", "step", step, "stack_name", stack, "region", region, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}

// stackMoved logs a stack's move from one status to another, once, at
// INFO; a pool stack has no tenant.
func (p *Provisioner) stackMoved(ctx context.Context, tenant, region, stack string, from, to Status, reason string) {
	if from == to {
		return
	}
	attrs := []any{"region", region, "stack_name", stack, "from", from, "to", to}
	if tenant != "" {
		attrs = append(attrs, "tenant_id", tenant)
	}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	p.log.InfoContext(ctx, "stack status changed", attrs...)
}

// updatePlacement stores pl; a concurrent change by another worker is not
// an error, since every step is re-derived on the next run.
func (p *Provisioner) updatePlacement(ctx context.Context, pl Placement) error {
	if _, err := p.store.PlacementUpdate(ctx, pl); err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("update placement: %w", err)
	}
	return nil
}

// recordCairnEvent records an event Cairn itself produced, for stacks (and
// slices) whose history CloudFormation does not hold.
func (p *Provisioner) recordCairnEvent(ctx context.Context, pl Placement, logicalID, typ, status, reason string) {
	now := p.now().UTC()
	ev := StackEvent{
		ID: fmt.Sprintf("cairn-%s-%d", strings.ToLower(status), now.UnixNano()), Time: now,
		LogicalID: logicalID, ResourceType: typ, Status: status, Reason: reason,
	}
	if _, err := p.store.StackEventsAppend(ctx, pl.TenantID, pl.Region, []StackEvent{ev}); err != nil {
		p.log.WarnContext(ctx, "record stack event", "tenant_id", pl.TenantID, "region", pl.Region, "err", err)
	}
}

// Teardown takes the next step in taking an offboarded tenant's stacks and
// slices away, and reports whether they are all gone: a dedicated stack is
// asked to be deleted and then watched by the poller, so the caller calls
// Teardown again (after PollInterval, say) until it reports true. Every
// call is safe to repeat. With purge, the data a deleted stack retained
// (its buckets) and a slice's objects are deleted too; without, they stay.
//
// Teardown does nothing for a tenant that is not deprovisioning, nor while
// Config.Busy says work on its data still runs, and reports true for one
// that does not exist or is deleted. Its caller (the offboarding job) asks
// again after the polling interval.
func (p *Provisioner) Teardown(ctx context.Context, tenantID string, purge bool) (bool, error) {
	t, err := p.tenants.Get(ctx, tenantID)
	if errors.Is(err, tenants.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read tenant: %w", err)
	}
	if t.Status != tenants.StatusDeprovisioning {
		return t.Status == tenants.StatusDeleted, nil
	}
	if p.busy != nil {
		busy, err := p.busy(ctx, tenantID)
		if err != nil {
			return false, fmt.Errorf("work on the tenant's data: %w", err)
		}
		if busy {
			return false, nil
		}
	}
	placements, err := p.store.PlacementList(ctx, tenantID)
	if err != nil {
		return false, fmt.Errorf("placements: %w", err)
	}
	gone := true
	for _, pl := range placements {
		ok, err := p.teardown(ctx, t, pl, purge)
		if err != nil {
			return false, fmt.Errorf("%s in %s: %w", t.ID, pl.Region, err)
		}
		gone = gone && ok
	}
	return gone, nil
}

func (p *Provisioner) teardown(ctx context.Context, t tenants.Tenant, pl Placement, purge bool) (bool, error) {
	glue := GlueDatabase(pl.Kind, t.ID)
	if pl.Kind == KindPooled {
		if pl.Status == StatusDeleted {
			return true, nil
		}
		// Its partitions of the lake tables the pool shares go with it.
		if err := p.engine.DropTenantPartitions(ctx, pl.Region, PoolGlueDatabase(), t.ID); err != nil {
			return false, fmt.Errorf("the pool's shared tables: %w", err)
		}
		if err := p.engine.DeleteTenantRole(ctx, pl.Region, t.ID); err != nil {
			return false, fmt.Errorf("tenant role: %w", err)
		}
		if err := p.engine.DeleteDatabase(ctx, pl.Region, glue); err != nil {
			return false, fmt.Errorf("delete glue database: %w", err)
		}
		if purge {
			for _, key := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
				if b := pl.Outputs[key]; b != "" {
					if err := p.engine.DeletePrefix(ctx, pl.Region, b, S3Prefix(t.ID)); err != nil {
						return false, fmt.Errorf("purge %s: %w", key, err)
					}
				}
			}
		}
		pl.Status = StatusDeleted
		return true, p.updatePlacement(ctx, pl)
	}
	switch pl.Status {
	case StatusCreating, StatusReplacing, StatusDeleting:
		return false, nil // let the stack settle first
	case StatusDeleted:
		// The stack is gone; the catalog and (on purge) retained data follow.
		if err := p.engine.DeleteDatabase(ctx, pl.Region, glue); err != nil {
			return false, fmt.Errorf("delete glue database: %w", err)
		}
		if purge {
			var buckets []string
			for _, key := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
				if b := pl.Outputs[key]; b != "" {
					buckets = append(buckets, b)
				}
			}
			if err := p.engine.DeleteBuckets(ctx, pl.Region, buckets); err != nil {
				return false, fmt.Errorf("purge buckets: %w", err)
			}
		}
		return true, nil
	}
	if err := p.engine.DeleteStack(ctx, pl.Region, pl.StackName, token(pl.StackName, "delete", pl.Attempt)); err != nil {
		return false, fmt.Errorf("delete stack: %w", err)
	}
	pl.Status = StatusDeleting
	return false, p.updatePlacement(ctx, pl)
}
