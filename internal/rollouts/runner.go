package rollouts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/periodic"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/templates"
)

// Fleet event types of rollouts.
const (
	EventHalted    = fleet.RolloutHalted
	EventCompleted = fleet.RolloutCompleted
)

// DefaultPollInterval is how often a rollout's job looks at its stacks
// in flight, unless RunnerConfig says otherwise.
const DefaultPollInterval = 5 * time.Second

// DefaultSweepInterval is how often every unfinished rollout's job is
// made sure to exist, and a job whose lease lapsed is taken over.
const DefaultSweepInterval = 10 * time.Second

// A rollout's job holds the rollout under a lease of LeaseTTL while it
// works it, renewed every LeaseRenew, and between runs for as long as it
// snoozes plus LeaseTTL. A replica that dies inside a run leaves River's
// job running until River rescues it (RescueStuckJobsAfter, over a
// minute); the sweep instead sees the lease lapse and inserts a job that
// takes over at once, and the dead job, rescued later, finds the lease
// held and ends. Two jobs therefore never work one rollout at a time.
const (
	LeaseTTL   = 15 * time.Second
	LeaseRenew = 5 * time.Second
)

// stepBudget bounds the time one run of a rollout's job spends starting
// and stepping stacks, within its timeout; what is left waits for the
// next run.
const stepBudget = 40 * time.Second

// RunnerConfig configures a Runner. Store and Engine are required.
type RunnerConfig struct {
	Store Store
	// Engine updates the stacks; wrap it in provisioner.Throttle to keep
	// within CloudFormation's rate.
	Engine provisioner.Engine
	// PollInterval defaults to DefaultPollInterval, SweepInterval to
	// DefaultSweepInterval.
	PollInterval  time.Duration
	SweepInterval time.Duration
	// Now defaults to time.Now; Logger to slog.Default().
	Now    func() time.Time
	Logger *slog.Logger
	// Fleet, if set, is told when an event was written to the fleet
	// outbox.
	Fleet fleet.Notifier
}

// Runner works rollouts' jobs. It is safe for concurrent use by any number
// of workers and replicas: all state is in the Store and the Engine.
type Runner struct {
	store Store
	eng   provisioner.Engine
	poll  time.Duration
	sweep time.Duration
	now   func() time.Time
	log   *slog.Logger
	fleet fleet.Notifier
	round periodic.Gate // the sweeps' (PeriodicJobs)
}

// NewRunner validates cfg and returns a Runner.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Store == nil || cfg.Engine == nil {
		return nil, errors.New("rollouts: Store and Engine are required")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Runner{store: cfg.Store, eng: cfg.Engine, poll: cfg.PollInterval, sweep: cfg.SweepInterval,
		now: func() time.Time { return cfg.Now().UTC().Truncate(time.Microsecond) }, log: cfg.Logger, fleet: cfg.Fleet}, nil
}

// StepArgs is a rollout's job. There is at most one of a rollout waiting
// or running at a time: it snoozes between steps.
type StepArgs struct {
	RolloutID string `json:"rollout_id"`
	// Takeover is set on a job that takes over from one whose lease
	// lapsed: when it lapsed (Unix microseconds), so that it is unique
	// apart from the dead job, and once per lapse.
	Takeover int64 `json:"takeover,omitempty"`
}

// Kind implements river.JobArgs.
func (StepArgs) Kind() string { return "rollout_step" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique per rollout
// while one is waiting, running, snoozed or retrying, so inserting it
// again (a resume, the sweep) never makes a second.
func (StepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateScheduled, rivertype.JobStateRetryable,
	}}}
}

// SweepArgs is the periodic job that inserts the step job of every
// unfinished rollout: a rollout resumed while its job was finishing, or
// whose job was lost, goes on.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "rollout_sweep" }

// Register adds the Runner's workers.
func (r *Runner) Register(w *river.Workers) {
	river.AddWorker(w, &stepWorker{r: r})
	river.AddWorker(w, &sweepWorker{r: r})
}

// PeriodicJobs returns the sweep.
func (r *Runner) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(r.sweep), func() (river.JobArgs, *river.InsertOpts) {
			if !r.round.Due(time.Now(), r.sweep) {
				return nil, nil // below a second, one waiting at a time (periodic.Gate)
			}
			return SweepArgs{}, nil // idempotent; a unique one could wait behind a dead replica's
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

type stepWorker struct {
	river.WorkerDefaults[StepArgs]
	r *Runner
}

// Timeout bounds one step: stepBudget of engine calls and their records.
func (w *stepWorker) Timeout(*river.Job[StepArgs]) time.Duration { return time.Minute }

func (w *stepWorker) Work(ctx context.Context, job *river.Job[StepArgs]) error {
	again, held, err := w.r.Run(ctx, job.Args.RolloutID, job.ID)
	if err != nil || !held {
		return err // another job holds the rollout: this one ends
	}
	if !again {
		// An admin may have resumed the rollout since the step read it:
		// that insert of this job was skipped while it ran, so it goes on
		// itself. (A resume between this read and the job's end is left
		// to the sweep.)
		ro, err := w.r.store.RolloutGet(ctx, job.Args.RolloutID)
		again = err == nil && ro.State == StateRunning
	}
	if again {
		return river.JobSnooze(w.r.poll)
	}
	return nil
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	r *Runner
}

func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	w.r.round.Started()
	return w.r.Sweep(ctx)
}

// Sweep makes sure every unfinished rollout has a job: it inserts the
// job of each (an insert while the job exists is skipped,
// StepArgs.InsertOpts), or, for a rollout whose job's lease lapsed, a
// job that takes over from it.
func (r *Runner) Sweep(ctx context.Context) error {
	active, err := r.store.RolloutListActive(ctx)
	if err != nil {
		return err
	}
	lapsed, err := r.store.RolloutLapsed(ctx, r.now())
	if err != nil {
		return err
	}
	var errs []error
	for _, ro := range active {
		if at, ok := lapsed[ro.ID]; ok {
			r.log.WarnContext(ctx, "rollout's job stopped renewing its lease: taking it over", "rollout_id", ro.ID, "lapsed_at", at)
			err = r.store.RolloutTakeover(ctx, ro.ID, at)
		} else {
			err = r.store.RolloutEnqueue(ctx, ro.ID)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rollout %s: %w", ro.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Run is one run of the rollout's job job: it takes the rollout's lease
// (held is false, and nothing done, when another job holds it), takes a
// Step while renewing the lease, and then keeps the lease over the
// snooze before the next run, or gives it up when the rollout needs no
// more runs. A lease it can no longer renew ends the step.
func (r *Runner) Run(ctx context.Context, id string, job int64) (again, held bool, err error) {
	now := r.now()
	if held, err = r.store.RolloutClaim(ctx, id, job, now.Add(LeaseTTL), now); err != nil || !held {
		return false, held, err
	}
	stepCtx, cancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(LeaseRenew)
		defer t.Stop()
		for {
			select {
			case <-stepCtx.Done():
				return
			case <-t.C:
				now := r.now()
				if ok, err := r.store.RolloutClaim(stepCtx, id, job, now.Add(LeaseTTL), now); err == nil && !ok {
					r.log.WarnContext(ctx, "rollout's lease lost to another job: ending this step", "rollout_id", id)
					cancel()
					return
				}
			}
		}
	}()
	again, err = r.Step(stepCtx, id)
	lost := stepCtx.Err() != nil && ctx.Err() == nil
	cancel()
	<-renewed
	if lost {
		return false, false, nil
	}
	if err != nil {
		return false, true, err
	}
	now = r.now()
	if again {
		_, err = r.store.RolloutClaim(ctx, id, job, now.Add(r.poll+LeaseTTL), now)
	} else {
		err = r.store.RolloutLeaseRelease(ctx, id, job)
	}
	return again, true, err
}

// Step takes the next step of every stack of the rollout in flight,
// starts the stacks its current wave allows, and moves the rollout on:
// to the next wave after the bake time, halted, or completed. It reports
// whether the rollout's job must run again (something is in flight, or
// the rollout is running). It is level-based and safe to repeat.
func (r *Runner) Step(ctx context.Context, id string) (bool, error) {
	ro, err := r.store.RolloutGet(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if ro.State.Done() && !ro.FinishedAt.IsZero() {
		return false, nil
	}
	targets, err := r.store.RolloutTargets(ctx, id)
	if err != nil {
		return false, err
	}
	budget, cancel := context.WithTimeout(ctx, stepBudget)
	defer cancel()

	// One DescribeStacks round per Region with updates under way.
	regions := map[string]map[string]provisioner.Stack{}
	for _, t := range targets {
		if t.State == TargetExecuting && t.Executed {
			regions[t.Region] = nil
		}
	}
	var errs []error
	for region := range regions {
		stacks, err := r.eng.Stacks(budget, region)
		if err != nil {
			errs = append(errs, fmt.Errorf("read stacks in %s: %w", region, err))
			delete(regions, region)
			continue
		}
		regions[region] = stacks
	}

	for i := range targets {
		t := &targets[i]
		if budget.Err() != nil {
			break
		}
		var stacks map[string]provisioner.Stack
		if s, ok := regions[t.Region]; ok {
			stacks = s
		} else if t.State == TargetExecuting && t.Executed {
			continue // its Region could not be read this round
		}
		if err := r.advance(budget, ro, t, stacks); err != nil {
			errs = append(errs, fmt.Errorf("%s in %s: %w", t.StackName, t.Region, err))
		}
	}

	if ro.State == StateRunning && !r.now().Before(ro.BakeUntil) {
		inFlight := 0
		for _, t := range targets {
			if t.State.inFlight() {
				inFlight++
			}
		}
		for i := range targets {
			t := &targets[i]
			if inFlight >= ro.Plan.MaxInFlight || budget.Err() != nil {
				break
			}
			if t.State != TargetPending || t.Wave != ro.Wave {
				continue
			}
			if err := r.start(budget, ro, t); err != nil {
				errs = append(errs, fmt.Errorf("start %s in %s: %w", t.StackName, t.Region, err))
				continue
			}
			inFlight++
		}
	}
	// Judged on the targets as stored: a write refused above (a
	// concurrent approval) leaves a target as it was, not as this step
	// would have had it.
	again := true
	if targets, err = r.store.RolloutTargets(ctx, id); err != nil {
		errs = append(errs, err)
	} else if again, err = r.judge(ctx, ro, targets); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		r.log.WarnContext(ctx, "rollout step", "rollout_id", id, "err", errors.Join(errs...))
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	// Errors are the engine's or the store's of the moment: the next
	// step tries again.
	return again, nil
}

// save stores t, keeping the stored copy; a concurrent change (another
// worker, an approval) leaves t as it was for the next step to re-read.
func (r *Runner) save(ctx context.Context, t *Target) error {
	stored, err := r.store.RolloutTargetUpdate(ctx, *t)
	if err != nil {
		return err
	}
	*t = stored
	return nil
}

// start claims a pending target and asks for its change set.
func (r *Runner) start(ctx context.Context, ro Rollout, t *Target) error {
	t.State, t.StartedAt = TargetReviewing, r.now()
	if err := r.save(ctx, t); err != nil {
		return err
	}
	return r.createChangeSet(ctx, ro, t)
}

func (r *Runner) createChangeSet(ctx context.Context, ro Rollout, t *Target) error {
	tmpl := ro.Templates[t.Kind]
	in := provisioner.ChangeSetInput{
		Region: t.Region, StackName: t.StackName, Name: t.ChangeSet,
		Template: templates.Template{Name: tmpl.Name, Body: tmpl.Body, Version: tmpl.Version},
		Token:    t.ChangeSet + "-" + strconv.Itoa(t.Index),
	}
	if t.Kind == KindPool {
		in.Parameters = map[string]string{"PoolId": provisioner.PoolID}
		in.Tags = map[string]string{"cairn:pool-id": provisioner.PoolID, "cairn:managed-by": "cairn"}
	} else {
		in.Parameters = map[string]string{"TenantId": t.TenantID, "TenantSlug": t.TenantSlug}
		in.Tags = map[string]string{"cairn:tenant-id": t.TenantID, "cairn:managed-by": "cairn"}
	}
	err := r.eng.CreateChangeSet(ctx, in)
	switch {
	case err == nil, ctx.Err() != nil:
		return err
	case errors.Is(err, provisioner.ErrStackNotFound):
		return r.finish(ctx, t, TargetSkipped, "the stack no longer exists")
	}
	// A stack CloudFormation will not update now (an operation of its own
	// under way, a failed state) is asked again in later steps, and fails
	// after maxRefusals, rather than holding the rollout up for good.
	t.Refusals++
	if t.Refusals >= maxRefusals {
		return r.finish(ctx, t, TargetFailed, "change set refused: "+err.Error())
	}
	if serr := r.save(ctx, t); serr != nil {
		return serr
	}
	return err
}

// maxRefusals is how many times a target's change set may be refused
// before the target fails.
const maxRefusals = 5

// advance takes the next step of one target in flight.
func (r *Runner) advance(ctx context.Context, ro Rollout, t *Target, stacks map[string]provisioner.Stack) error {
	switch {
	case t.State == TargetPending && ro.State == StateAborted:
		return r.finish(ctx, t, TargetSkipped, "rollout aborted before the stack started")
	case t.State == TargetReviewing, t.State == TargetAwaitingApproval && ro.State == StateAborted,
		t.State == TargetExecuting && !t.Executed:
		return r.review(ctx, ro, t)
	case t.State == TargetExecuting:
		return r.observe(ctx, t, stacks)
	}
	return nil
}

// review inspects the target's change set and executes it when it is
// safe (or approved), the rollout goes on, and it is still AVAILABLE:
// CloudFormation executes a change set once, and a change set executed
// before a crash is found executing or executed here, not run again.
func (r *Runner) review(ctx context.Context, ro Rollout, t *Target) error {
	cs, err := r.eng.DescribeChangeSet(ctx, t.Region, t.StackName, t.ChangeSet)
	if errors.Is(err, provisioner.ErrChangeSetNotFound) {
		if t.State == TargetReviewing {
			// Asked for before a crash, but the call never landed.
			return r.createChangeSet(ctx, ro, t)
		}
		return r.finish(ctx, t, TargetFailed, "its change set is gone")
	}
	if err != nil {
		return err
	}
	switch cs.ExecutionStatus {
	case provisioner.ExecutionInProgress, provisioner.ExecutionComplete, provisioner.ExecutionFailed:
		// Executed already: only watch it now.
		t.State, t.Executed, t.Changes = TargetExecuting, true, cs.Changes
		return r.save(ctx, t)
	}
	switch {
	case cs.Status == provisioner.ChangeSetCreatePending || cs.Status == provisioner.ChangeSetCreateInProgress:
		return nil
	case cs.NoChanges:
		return r.finish(ctx, t, TargetUnchanged, "")
	case cs.Status == provisioner.ChangeSetFailed:
		return r.finish(ctx, t, TargetFailed, "change set failed: "+cs.Reason)
	}
	t.Changes = cs.Changes
	if ro.State == StateAborted {
		if err := r.eng.DeleteChangeSet(ctx, t.Region, t.StackName, t.ChangeSet); err != nil {
			return err
		}
		return r.finish(ctx, t, TargetSkipped, "rollout aborted before the change set was executed")
	}
	if risky := Risky(cs.Changes); len(risky) > 0 && !t.Approved {
		if t.State == TargetAwaitingApproval {
			return nil
		}
		t.State, t.Reason = TargetAwaitingApproval, "needs approval: "+strings.Join(risky, "; ")
		return r.save(ctx, t)
	}
	if cs.ExecutionStatus != provisioner.ExecutionAvailable || (t.State == TargetReviewing && ro.State != StateRunning) {
		// Not executable yet, or the rollout was paused or halted while
		// this change set was made: it waits for the rollout to go on.
		return nil
	}
	t.State, t.Reason = TargetExecuting, ""
	if err := r.save(ctx, t); err != nil {
		return err
	}
	if err := r.eng.ExecuteChangeSet(ctx, t.Region, t.StackName, t.ChangeSet, t.ChangeSet+"-execute-"+strconv.Itoa(t.Index)); err != nil {
		return err
	}
	t.Executed = true
	return r.save(ctx, t)
}

// observe reads the outcome of an executed change set from its stack.
func (r *Runner) observe(ctx context.Context, t *Target, stacks map[string]provisioner.Stack) error {
	st, ok := stacks[t.StackName]
	if !ok {
		return r.finish(ctx, t, TargetFailed, "the stack no longer exists")
	}
	switch st.Status {
	case provisioner.StackUpdateComplete:
		if err := r.store.StackTemplateVersionSet(ctx, t.Kind, t.Region, t.StackName, t.TenantID, t.ToVersion); err != nil {
			return err
		}
		return r.finish(ctx, t, TargetSucceeded, "")
	case provisioner.StackUpdateRollbackComplete, "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED":
		reason := st.Status
		if st.Reason != "" {
			reason += ": " + st.Reason
		}
		return r.finish(ctx, t, TargetFailed, "update rolled back: "+reason)
	}
	return nil // still updating
}

// finish moves t to a terminal state, which releases its stack.
func (r *Runner) finish(ctx context.Context, t *Target, state TargetState, reason string) error {
	t.State, t.Reason, t.FinishedAt = state, reason, r.now()
	return r.save(ctx, t)
}

// Risky returns, for each change that replaces or removes a stateful
// resource (a bucket, a table, a key, a stream), what it would do: such a
// change set needs an admin's approval.
func Risky(changes []provisioner.ResourceChange) []string {
	var out []string
	for _, c := range changes {
		if !stateful(c.ResourceType) {
			continue
		}
		switch {
		case c.Action == provisioner.ActionRemove:
			out = append(out, "removes "+c.LogicalID+" ("+c.ResourceType+")")
		case c.Action == provisioner.ActionModify && (c.Replacement == provisioner.ReplacementTrue || c.Replacement == provisioner.ReplacementConditional):
			out = append(out, "replaces "+c.LogicalID+" ("+c.ResourceType+", replacement "+c.Replacement+")")
		}
	}
	return out
}

// statefulTypes are the resource types that hold a tenant's data or the
// key to it.
var statefulTypes = []string{
	"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::Kinesis::Stream",
	"AWS::Glue::Database", "AWS::DynamoDB::GlobalTable",
}

func stateful(typ string) bool { return slices.Contains(statefulTypes, typ) }

// judge moves the rollout on from what its targets are now: halted on an
// approval or the failure threshold, to the next wave once the current
// one is done (after the bake time), completed after the last, and an
// aborted rollout finished once nothing is in flight. It reports whether
// the job must run again.
func (r *Runner) judge(ctx context.Context, ro Rollout, targets []Target) (bool, error) {
	counts := countTargets(targets)
	inFlight := counts[TargetReviewing] + counts[TargetExecuting]
	now := r.now()
	next := ro
	var announce []fleet.Event
	switch ro.State {
	case StateAborted:
		if inFlight > 0 || counts[TargetPending] > 0 || counts[TargetAwaitingApproval] > 0 {
			return true, nil
		}
		next.FinishedAt = now
	case StateRunning:
		failed := counts[TargetFailed] - ro.FailureBase
		switch {
		case failed >= ro.Plan.FailureThreshold:
			next.State = StateHalted
			next.Reason = fmt.Sprintf("%d stacks failed (threshold %d)", failed, ro.Plan.FailureThreshold)
			announce = append(announce, r.event(next, EventHalted, strconv.Itoa(counts[TargetFailed])+"-failed", now))
		case counts[TargetAwaitingApproval] > 0:
			var names []string
			for _, t := range targets {
				if t.State == TargetAwaitingApproval {
					names = append(names, t.StackName+" in "+t.Region)
				}
			}
			next.State = StateHalted
			next.Reason = "approval needed: a change set replaces or removes a stateful resource (" + strings.Join(names, ", ") + ")"
			announce = append(announce, r.event(next, EventHalted, "approval-"+strings.Join(names, ","), now))
		default:
			waveDone := true
			for _, t := range targets {
				if t.Wave <= ro.Wave && !t.State.Terminal() {
					waveDone = false
					break
				}
			}
			if !waveDone {
				return true, nil
			}
			if ro.Wave+1 < ro.WaveCount {
				next.Wave, next.BakeUntil = ro.Wave+1, now.Add(ro.Plan.Bake)
				break
			}
			next.State, next.FinishedAt = StateCompleted, now
			announce = append(announce, r.event(next, EventCompleted, "", now))
		}
	default: // paused, halted: the job runs while something is in flight
		return inFlight > 0, nil
	}
	next.UpdatedAt = now
	stored, err := r.store.RolloutUpdate(ctx, Update{Rollout: next, Announce: announce})
	if errors.Is(err, ErrConflict) {
		return true, nil // an admin steered it meanwhile: judge again
	}
	if err != nil {
		return true, fmt.Errorf("update rollout: %w", err)
	}
	if len(announce) > 0 && r.fleet != nil {
		r.fleet.Notify()
	}
	if stored.State != ro.State || stored.Wave != ro.Wave {
		r.log.InfoContext(ctx, "rollout moved", "rollout_id", ro.ID, "state", stored.State, "wave", stored.Wave, "reason", stored.Reason)
	}
	switch {
	case stored.State == StateRunning:
		return true, nil
	case stored.State.Done():
		return false, nil
	}
	return inFlight > 0, nil
}

// event is a fleet event about the rollout; its ID names the rollout, the
// type and what happened, so a repeat is one event.
func (r *Runner) event(ro Rollout, typ, what string, now time.Time) fleet.Event {
	return fleet.Event{
		ID:   fleet.NewID(typ, ro.ID, what),
		Type: typ, At: now,
		Data: fleet.Data{RolloutID: ro.ID, Status: string(ro.State), Reason: ro.Reason, At: fleet.FormatTime(now)},
	}
}
