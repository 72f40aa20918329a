// Package offboarding takes an offboarded tenant away: its access, its
// data and, last, its stacks. It is the tenant_deprovision job
// (tenants.DeprovisionArgs), which runs named steps in order:
//
//  1. revoke_grants: the tenant's data grants go and its principals are
//     released (so another tenant may register them);
//  2. revoke_sources: no write key of the tenant authenticates, so nothing
//     more is written;
//  3. purge_profiles: its profile items are deleted, which would otherwise
//     outlive it in the Region's pool table or the embedded profiles.db;
//  4. any Config.Extra steps, in their order;
//  5. teardown_stacks: the provisioner deletes its stacks and slices
//     (provisioner.Provisioner.Teardown), and the job polls until they are
//     gone;
//
// then the tenant is marked deleted.
//
// Each finished step is recorded durably (Store), so a job that dies
// midway (a crash, a deploy, its replica killed) resumes at the first
// unfinished step and never runs a finished one again. A step itself must
// be safe to repeat until it is recorded: the job may die after the step
// and before its record.
package offboarding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// DefaultPurgeBudget is how long one run of the job purges profile items
// unless Config says otherwise: well inside the job's timeout (jobTimeout).
const DefaultPurgeBudget = 30 * time.Second

// DefaultPollInterval is how long the job waits before it asks again
// whether the tenant's stacks are gone, unless Config says otherwise.
const DefaultPollInterval = 5 * time.Second

// jobTimeout bounds one run of the job, as for the provisioner's jobs: a
// minute, the timeout River's stuck-job rescue follows (store.JobTimeout).
const jobTimeout = time.Minute

// The names of the built-in steps, as recorded.
const (
	StepRevokeGrants   = "revoke_grants"
	StepRevokeSources  = "revoke_sources"
	StepPurgeProfiles  = "purge_profiles"
	StepTeardownStacks = "teardown_stacks"
)

// Step is one named step of offboarding. Run must be safe to repeat until
// the step is recorded as finished: an error retries the job, which runs
// the step again; river.JobSnooze runs it again later without using up an
// attempt (a step that makes progress in bounded runs goes on that way).
type Step struct {
	// Name is recorded when the step finishes: a name must be unique and
	// must not change once tenants were offboarded with it.
	Name string
	Run  func(ctx context.Context, tenantID string) error
}

// StepDone is a finished step of a tenant's offboarding.
type StepDone struct {
	Step string
	At   time.Time
}

// Store records the finished steps. Implementations must be safe for
// concurrent use by several replicas.
type Store interface {
	// OffboardingStepList returns the tenant's finished steps, oldest first.
	OffboardingStepList(ctx context.Context, tenantID string) ([]StepDone, error)
	// OffboardingStepDone records that the tenant's step finished at at; a
	// step recorded already keeps its first time, and is not an error.
	OffboardingStepDone(ctx context.Context, tenantID, step string, at time.Time) error
}

// Config wires an Offboarder. Every field but DedicatedTables, Extra,
// PurgeBudget, PollInterval, Now and Logger is required.
type Config struct {
	Store Store
	// Tenants reads the tenant and marks it deleted (tenants.Service).
	Tenants interface {
		Get(ctx context.Context, id string) (tenants.Tenant, error)
		MarkDeleted(ctx context.Context, id string) (tenants.Tenant, error)
	}
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
	// Stacks takes the tenant's stacks and slices away
	// (provisioner.Provisioner): one step per call, reporting whether
	// they are all gone; purge deletes the data they retained too.
	Stacks interface {
		Teardown(ctx context.Context, tenantID string, purge bool) (bool, error)
	}
	// DedicatedTables says that a dedicated tenant's profile items are in a
	// table of their own, deleted with its stack (AWS mode): they are left
	// to that, rather than deleted an item at a time.
	DedicatedTables bool
	// Extra steps run after the profile purge and before the stacks go,
	// in order (forgetting the tenant's queries, removing its lake files).
	Extra []Step
	// PurgeBudget defaults to DefaultPurgeBudget.
	PurgeBudget time.Duration
	// PollInterval defaults to DefaultPollInterval.
	PollInterval time.Duration
	// Now is the clock finished steps are recorded by; time.Now by
	// default.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Offboarder runs tenants' offboarding. It is safe for concurrent use; two
// runs for one tenant at once (River runs a job once at a time, but a
// rescued job may overlap a slow one) repeat steps, which are safe to
// repeat, and record each once.
type Offboarder struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg and returns an Offboarder.
func New(cfg Config) (*Offboarder, error) {
	if cfg.Store == nil || cfg.Tenants == nil || cfg.Grants == nil || cfg.Sources == nil || cfg.Profiles == nil || cfg.Stacks == nil {
		return nil, errors.New("offboarding: Store, Tenants, Grants, Sources, Profiles and Stacks are required")
	}
	names := []string{StepRevokeGrants, StepRevokeSources, StepPurgeProfiles, StepTeardownStacks}
	for _, s := range cfg.Extra {
		if s.Name == "" || s.Run == nil || slices.Contains(names, s.Name) {
			return nil, fmt.Errorf("offboarding: extra step %q needs a unique name and a Run", s.Name)
		}
		names = append(names, s.Name)
	}
	if cfg.PurgeBudget <= 0 {
		cfg.PurgeBudget = DefaultPurgeBudget
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Offboarder{cfg: cfg, log: cfg.Logger}, nil
}

// Register adds the tenant_deprovision worker.
func (o *Offboarder) Register(w *river.Workers) {
	river.AddWorker(w, &worker{o: o})
}

type worker struct {
	river.WorkerDefaults[tenants.DeprovisionArgs]
	o *Offboarder
}

// Timeout bounds one run: the steps it gets through, the profile purge
// taking at most PurgeBudget of it.
func (w *worker) Timeout(*river.Job[tenants.DeprovisionArgs]) time.Duration { return jobTimeout }

func (w *worker) Work(ctx context.Context, job *river.Job[tenants.DeprovisionArgs]) error {
	return w.o.Run(ctx, job.Args.TenantID, job.Args.Purge)
}

// Steps returns the names of the steps, in the order they run.
func (o *Offboarder) Steps() []string {
	out := make([]string, 0, len(o.cfg.Extra)+4)
	for _, s := range o.steps(false) {
		out = append(out, s.Name)
	}
	return out
}

// Progress is how far a tenant's offboarding got.
type Progress struct {
	// Done are the finished steps, in the order they finished.
	Done []StepDone
	// Pending are the steps still to run, in the order they will.
	Pending []string
}

// Progress returns how far the tenant's offboarding got. A tenant whose
// offboarding has not started has every step pending.
func (o *Offboarder) Progress(ctx context.Context, tenantID string) (Progress, error) {
	done, err := o.cfg.Store.OffboardingStepList(ctx, tenantID)
	if err != nil {
		return Progress{}, fmt.Errorf("offboarding steps of %s: %w", tenantID, err)
	}
	p := Progress{Done: done, Pending: []string{}}
	for _, name := range o.Steps() {
		if !slices.ContainsFunc(done, func(d StepDone) bool { return d.Step == name }) {
			p.Pending = append(p.Pending, name)
		}
	}
	return p, nil
}

// Run is one run of the tenant's offboarding: it runs every step not yet
// finished, in order, recording each as it finishes, and marks the tenant
// deleted after the last. A step's error ends the run with that error (the
// job retries); a step that snoozes (the profile purge out of budget after
// progress, stacks still being deleted) ends it with the snooze. A tenant
// that is not (or no longer) deprovisioning is left alone.
func (o *Offboarder) Run(ctx context.Context, tenantID string, purge bool) error {
	t, err := o.cfg.Tenants.Get(ctx, tenantID)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read tenant: %w", err)
	}
	if t.Status != tenants.StatusDeprovisioning {
		return nil
	}
	done, err := o.cfg.Store.OffboardingStepList(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("offboarding steps of %s: %w", tenantID, err)
	}
	for _, s := range o.steps(purge) {
		if slices.ContainsFunc(done, func(d StepDone) bool { return d.Step == s.Name }) {
			continue
		}
		if err := s.Run(ctx, tenantID); err != nil {
			var snooze *rivertype.JobSnoozeError
			if errors.As(err, &snooze) {
				return err
			}
			return fmt.Errorf("offboard %s, step %s: %w", tenantID, s.Name, err)
		}
		if err := o.cfg.Store.OffboardingStepDone(ctx, tenantID, s.Name, o.cfg.Now()); err != nil {
			return fmt.Errorf("record step %s of %s: %w", s.Name, tenantID, err)
		}
		o.log.InfoContext(ctx, "offboarding step finished", "tenant_id", tenantID, "step", s.Name)
	}
	_, err = o.cfg.Tenants.MarkDeleted(ctx, tenantID)
	var te *tenants.TransitionError
	if errors.As(err, &te) {
		return nil // another run marked it
	}
	return err
}

// steps are the steps in order; purge is the offboarding's (it only
// changes the stacks' teardown).
func (o *Offboarder) steps(purge bool) []Step {
	steps := []Step{
		{Name: StepRevokeGrants, Run: o.cfg.Grants.RevokeAll},
		{Name: StepRevokeSources, Run: o.revokeSources},
		{Name: StepPurgeProfiles, Run: o.purgeProfiles},
	}
	steps = append(steps, o.cfg.Extra...)
	return append(steps, Step{Name: StepTeardownStacks, Run: func(ctx context.Context, tenantID string) error {
		gone, err := o.cfg.Stacks.Teardown(ctx, tenantID, purge)
		if err != nil {
			return err
		}
		if !gone {
			return river.JobSnooze(o.cfg.PollInterval)
		}
		return nil
	}})
}

func (o *Offboarder) revokeSources(ctx context.Context, tenantID string) error {
	n, err := o.cfg.Sources.RevokeAll(ctx, tenantID)
	if err != nil {
		return err
	}
	o.log.DebugContext(ctx, "offboarding: sources revoked", "tenant_id", tenantID, "sources_revoked", n)
	return nil
}

// purgeProfiles deletes the tenant's profile items. A purge that runs out
// of PurgeBudget after some progress (a large pool table) snoozes the job,
// which uses up no attempt, and goes on in its next run; one that makes no
// progress at all is an error like any other.
//
// A tenant whose home Region is not ready has no profile table left to
// purge: its placement is being or has been deleted (a dedicated table
// with its stack, a pooled slice only after an earlier run purged it), or
// it never became ready, and nothing was written.
func (o *Offboarder) purgeProfiles(ctx context.Context, tenantID string) error {
	if o.cfg.DedicatedTables {
		t, err := o.cfg.Tenants.Get(ctx, tenantID)
		if err != nil {
			return fmt.Errorf("read tenant: %w", err)
		}
		if t.Tier == tenants.TierDedicated {
			o.log.DebugContext(ctx, "offboarding: profile items go with the dedicated table", "tenant_id", tenantID)
			return nil
		}
	}
	deleted, err := o.cfg.Profiles.PurgeTenant(ctx, tenantID, o.cfg.PurgeBudget)
	switch {
	case errors.Is(err, placement.ErrNotReady):
		o.log.DebugContext(ctx, "offboarding: no profile table left to purge", "tenant_id", tenantID)
		return nil
	case errors.Is(err, profiles.ErrPurgeUnfinished):
		o.log.InfoContext(ctx, "offboarding: profile purge continues in the next run", "tenant_id", tenantID,
			"profile_items_deleted", deleted)
		return river.JobSnooze(time.Second)
	case err != nil:
		return err
	}
	o.log.InfoContext(ctx, "offboarding: profile items deleted", "tenant_id", tenantID, "profile_items_deleted", deleted)
	return nil
}
