package migration

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// StepArgs is a migration's job. There is at most one of a migration
// waiting or running at a time: it snoozes while a stack is on its way.
type StepArgs struct {
	MigrationID string `json:"migration_id"`
	// Takeover is set on a job that takes over from one whose lease
	// lapsed: when it lapsed (Unix microseconds), so that it is unique
	// apart from the dead job, and once per lapse.
	Takeover int64 `json:"takeover,omitempty"`
}

// Kind implements river.JobArgs.
func (StepArgs) Kind() string { return "tier_migration" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique per migration
// (and takeover) while one is waiting, running, snoozed or retrying.
func (StepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateScheduled, rivertype.JobStateRetryable,
	}}}
}

// SweepArgs is the periodic job that takes over the migrations whose job
// stopped renewing its lease (its replica died).
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "tier_migration_sweep" }

// Register adds the workers.
func (s *Service) Register(w *river.Workers) {
	river.AddWorker(w, &stepWorker{s: s})
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, _ *river.Job[SweepArgs]) error { return s.Sweep(ctx) }))
}

// PeriodicJobs returns the sweep, every poll interval and at start.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(s.poll), func() (river.JobArgs, *river.InsertOpts) {
			return SweepArgs{}, nil
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

// Sweep inserts a job that takes over each running migration whose job's
// lease lapsed.
func (s *Service) Sweep(ctx context.Context) error {
	lapsed, err := s.store.MigrationLapsed(ctx, s.clock())
	if err != nil {
		return err
	}
	var errs []error
	for id, at := range lapsed {
		s.log.WarnContext(ctx, "migration's job stopped renewing its lease: taking it over", "migration_id", id, "lapsed_at", at)
		if err := s.store.MigrationEnqueue(ctx, id, at.UnixMicro()); err != nil {
			errs = append(errs, fmt.Errorf("migration %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// clock is now in UTC, to the microsecond the databases keep.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

type stepWorker struct {
	river.WorkerDefaults[StepArgs]
	s *Service
}

// Timeout bounds one run: the copy of a tenant's zones is its longest step.
func (w *stepWorker) Timeout(*river.Job[StepArgs]) time.Duration { return 10 * time.Minute }

func (w *stepWorker) Work(ctx context.Context, job *river.Job[StepArgs]) error {
	return w.s.run(ctx, job.Args.MigrationID, job.ID, job.Attempt >= job.MaxAttempts)
}

// run is one run of the migration's job: it takes the migration's lease
// (or ends, when another job holds it), renews it while it works, and
// takes steps until the migration is done or waits for a stack. An error
// of a step is recorded on the migration and retried by River; a failure
// for good before the switch, or the job's last attempt, fails the
// migration.
func (s *Service) run(ctx context.Context, id string, job int64, last bool) error {
	now := s.clock()
	held, err := s.store.MigrationClaim(ctx, id, job, now.Add(s.lease), now)
	if err != nil || !held {
		return err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(s.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				now := s.clock()
				if ok, err := s.store.MigrationClaim(runCtx, id, job, now.Add(s.lease), now); err == nil && !ok {
					cancel(errors.New("migration's lease lost to another job"))
					return
				}
			}
		}
	}()
	defer func() { cancel(nil); <-renewed }()

	for conflicts := 0; ; {
		m, err := s.store.MigrationGet(runCtx, id)
		if err != nil {
			return err
		}
		if m.State != StateRunning {
			s.fences.set(m.TenantID, time.Time{}, true)
			return nil
		}
		next, wait, err := s.step(runCtx, m)
		if runCtx.Err() != nil && ctx.Err() == nil {
			// The lease went to another job, which goes on.
			s.log.WarnContext(ctx, "migration step ended", "migration_id", id, "reason", context.Cause(runCtx))
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrConflict) && conflicts < 3 {
				conflicts++
				continue // changed under this job (the sweep's takeover): read it again
			}
			if last || terminal(err) {
				return s.fail(ctx, m, err)
			}
			m.Error = err.Error()
			if _, uerr := s.store.MigrationUpdate(ctx, m); uerr != nil && !errors.Is(uerr, ErrConflict) {
				s.log.WarnContext(ctx, "record migration error", "migration_id", id, "err", uerr)
			}
			return fmt.Errorf("migration %s, step %s: %w", id, m.Step, err)
		}
		if wait > 0 {
			// Keep the lease while snoozed, so the sweep leaves it alone.
			now := s.clock()
			if _, err := s.store.MigrationClaim(ctx, id, job, now.Add(wait+s.lease), now); err != nil {
				return err
			}
			return river.JobSnooze(wait)
		}
		if next.State != StateRunning {
			return nil
		}
	}
}

// terminal reports whether err fails a migration for good.
func terminal(err error) bool {
	return errors.Is(err, ErrTargetFailed) || errors.Is(err, provisioner.ErrMoveFailed) || errors.Is(err, ErrNotActive) ||
		errors.Is(err, tenants.ErrNotFound)
}

// update stores m with UpdatedAt now.
func (s *Service) update(ctx context.Context, m Migration, announce ...fleet.Event) (Migration, error) {
	m.UpdatedAt = s.clock()
	return s.store.MigrationUpdate(ctx, m, announce...)
}

// step takes the migration's current step. It returns the migration as
// stored after it, or how long to wait before the next run.
func (s *Service) step(ctx context.Context, m Migration) (Migration, time.Duration, error) {
	switch m.Step {
	case StepProvision:
		return s.provision(ctx, m)
	case StepCopy:
		c, err := s.syncAll(ctx, m)
		if err != nil {
			return m, 0, err
		}
		m.Progress.ObjectsTotal, m.Progress.ObjectsCopied, m.Progress.BytesCopied = c.Objects, c.Written, c.Bytes
		m.Step, m.Error = StepFence, ""
		m, err = s.update(ctx, m)
		return m, 0, err
	case StepFence:
		return s.fence(ctx, m)
	case StepDelta:
		if s.fenceShort(m) {
			return s.refence(ctx, m)
		}
		c, err := s.syncAll(ctx, m)
		if err != nil {
			return m, 0, err
		}
		m.Progress.DeltaObjects += c.Written + c.Removed
		m.Progress.BytesCopied += c.Bytes
		m.Step, m.Error = StepSwitch, ""
		m, err = s.update(ctx, m)
		return m, 0, err
	case StepSwitch:
		if s.fenceShort(m) {
			return s.refence(ctx, m)
		}
		m.Step, m.Error, m.FenceUntil = StepGrants, "", time.Time{}
		m.UpdatedAt = s.clock()
		next, err := s.store.MigrationSwitch(ctx, m, m.Progress.Targets)
		if errors.Is(err, ErrConflict) {
			if now, gerr := s.store.MigrationGet(ctx, m.ID); gerr == nil && now.Version == m.Version {
				// The migration is as read: the tenant or its placement
				// moved on (offboarded, say). It stays where it was.
				return m, 0, fmt.Errorf("%w: %v", ErrTargetFailed, err)
			}
		}
		if err != nil {
			return m, 0, err
		}
		s.fences.set(m.TenantID, time.Time{}, false)
		s.log.InfoContext(ctx, "tenant switched to its new tier", "tenant_id", m.TenantID, "migration_id", m.ID, "tier", m.To)
		return next, 0, nil
	case StepGrants:
		n := 0
		for i, src := range m.Progress.Sources {
			dst := m.Progress.Targets[i]
			k, err := s.grants.Rehome(ctx, m.TenantID, src.Region, src.GlueDatabase(), dst.GlueDatabase(), m.To == placement.Pooled)
			if err != nil {
				return m, 0, err
			}
			n += k
		}
		m.Progress.GrantsRehomed = n
		m.Step, m.Error = StepPurge, ""
		m, err := s.update(ctx, m)
		return m, 0, err
	case StepPurge:
		gone, purged, err := s.release(ctx, m, m.Progress.Sources)
		if err != nil {
			return m, 0, err
		}
		m.Progress.ObjectsPurged += purged
		if !gone {
			if purged > 0 {
				// A repeated Clear finds these gone: keep their count.
				m, err = s.update(ctx, m)
			}
			return m, s.poll, err
		}
		now := s.clock()
		m.Step, m.State, m.Error, m.FinishedAt = StepDone, StateSucceeded, "", now
		m, err = s.update(ctx, m, s.event(m, EventMigrated, now))
		if err != nil {
			return m, 0, err
		}
		s.fences.set(m.TenantID, time.Time{}, true)
		s.notify()
		s.log.InfoContext(ctx, "tenant migrated", "tenant_id", m.TenantID, "migration_id", m.ID, "from", m.From, "to", m.To)
		return m, 0, nil
	}
	return m, 0, fmt.Errorf("%w: unknown step %q", ErrTargetFailed, m.Step)
}

// provision takes the next step towards the target in every Region.
func (s *Service) provision(ctx context.Context, m Migration) (Migration, time.Duration, error) {
	t, err := s.tenants.Get(ctx, m.TenantID)
	if err != nil {
		return m, 0, err
	}
	if t.Status != tenants.StatusActive && t.Status != tenants.StatusSuspended {
		return m, 0, fmt.Errorf("%w: it is %s", ErrNotActive, t.Status)
	}
	var targets []Home
	ready := true
	for _, src := range m.Progress.Sources {
		pl, ok, err := s.prov.MoveTarget(ctx, t, src.Region, provisioner.Kind(m.To), m.Progress.Attempt)
		if err != nil {
			return m, 0, err
		}
		ready = ready && ok
		targets = append(targets, Home{Region: pl.Region, Kind: placement.Kind(pl.Kind), StackName: pl.StackName,
			TemplateVersion: pl.TemplateVersion, Outputs: pl.Outputs})
	}
	if !ready {
		return m, s.poll, nil
	}
	m.Progress.Targets = targets
	m.Step, m.Error = StepCopy, ""
	m, err = s.update(ctx, m)
	return m, 0, err
}

// fence raises the write fence (unless it holds), waits for this
// replica's admitted writes and the drain, and moves on to the delta.
func (s *Service) fence(ctx context.Context, m Migration) (Migration, time.Duration, error) {
	now := s.clock()
	if m.FencedAt.IsZero() || s.fenceShort(m) {
		m.FencedAt, m.FenceUntil = now, now.Add(s.fenceTTL)
		var err error
		if m, err = s.update(ctx, m); err != nil {
			return m, 0, err
		}
	}
	s.fences.set(m.TenantID, m.FenceUntil, false)
	if err := s.fences.waitIdle(ctx, m.TenantID); err != nil {
		return m, 0, err
	}
	if left := m.FencedAt.Add(s.drain).Sub(s.clock()); left > 0 {
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return m, 0, ctx.Err()
		case <-t.C:
		}
	}
	m.Step, m.Error = StepDelta, ""
	m, err := s.update(ctx, m)
	return m, 0, err
}

// fenceShort reports whether the fence lapses within a drain: too soon to
// trust it for the delta and the switch (a job that ran late, or one that
// took over).
func (s *Service) fenceShort(m Migration) bool {
	return m.FenceUntil.Sub(s.clock()) < s.drain
}

// refence goes back to the fence step: the delta is copied again under a
// fresh fence.
func (s *Service) refence(ctx context.Context, m Migration) (Migration, time.Duration, error) {
	m.Step, m.FencedAt, m.FenceUntil = StepFence, time.Time{}, time.Time{}
	m, err := s.update(ctx, m)
	return m, 0, err
}

// syncAll syncs every Region's source into its target.
func (s *Service) syncAll(ctx context.Context, m Migration) (SyncCounts, error) {
	var total SyncCounts
	if len(m.Progress.Targets) != len(m.Progress.Sources) {
		return total, fmt.Errorf("%w: targets not recorded", ErrTargetFailed)
	}
	for i, src := range m.Progress.Sources {
		c, err := s.zones.Sync(ctx, m.TenantID, src, m.Progress.Targets[i])
		if err != nil {
			return total, err
		}
		total.Objects += c.Objects
		total.Written += c.Written
		total.Removed += c.Removed
		total.Bytes += c.Bytes
	}
	return total, nil
}

// release takes homes away (what Zones.Clear removes, then their slices
// or stacks); true once all are gone. It returns how many objects Clear
// removed.
func (s *Service) release(ctx context.Context, m Migration, homes []Home) (bool, int64, error) {
	all, purged := true, int64(0)
	for _, h := range homes {
		n, err := s.zones.Clear(ctx, m.TenantID, h)
		purged += n
		if err != nil {
			return false, purged, err
		}
		gone, err := s.prov.MoveRelease(ctx, provisioner.Placement{
			TenantID: m.TenantID, Kind: provisioner.Kind(h.Kind), StackRecord: provisioner.StackRecord{
				Region: h.Region, StackName: h.StackName, Outputs: h.Outputs, Attempt: m.Progress.Attempt,
			},
		})
		if err != nil {
			return false, purged, err
		}
		all = all && gone
	}
	return all, purged, nil
}

// fail ends a migration that failed before its switch: the fence is
// lifted, the target is taken away as far as it goes at once, and the
// migration is recorded failed with the reason. The tenant stays where it
// was. A migration past its switch is recorded failed too, on its new
// tier, with the reason.
func (s *Service) fail(ctx context.Context, m Migration, cause error) error {
	s.log.ErrorContext(ctx, "migration failed", "tenant_id", m.TenantID, "migration_id", m.ID, "step", m.Step, "err", cause)
	switched := m.Step == StepGrants || m.Step == StepPurge
	if !switched {
		targets := abandoned(m)
		// A few rounds: the local engine deletes a stack on the next read,
		// CloudFormation later (the stack is left to be deleted then).
		for range 3 {
			gone, _, err := s.release(ctx, m, targets)
			if err != nil {
				s.log.WarnContext(ctx, "take away the failed migration's target", "migration_id", m.ID, "err", err)
				break
			}
			if gone {
				break
			}
		}
	}
	now := s.clock()
	m.State, m.Error, m.FenceUntil, m.FinishedAt = StateFailed, cause.Error(), time.Time{}, now
	if _, err := s.update(ctx, m, s.event(m, EventFailed, now)); err != nil {
		return fmt.Errorf("record failed migration %s: %w", m.ID, err)
	}
	s.fences.set(m.TenantID, time.Time{}, true)
	s.notify()
	return nil
}

// abandoned is what a migration that failed before its switch takes
// away: its targets, or, when it failed before it recorded them, a home
// of its tier in each source's Region, for what MoveTarget may have made
// there before another Region failed (a dedicated stack; a pooled slice's
// role and catalog database).
func abandoned(m Migration) []Home {
	if len(m.Progress.Targets) > 0 {
		return m.Progress.Targets
	}
	homes := make([]Home, 0, len(m.Progress.Sources))
	for _, src := range m.Progress.Sources {
		homes = append(homes, Home{Region: src.Region, Kind: m.To})
	}
	return homes
}

// event is the fleet event of the migration's end.
func (s *Service) event(m Migration, typ string, at time.Time) fleet.Event {
	tier := m.To
	if typ == EventFailed && m.Step != StepGrants && m.Step != StepPurge {
		tier = m.From
	}
	return fleet.Event{
		ID: fleet.NewID(typ, m.ID), Type: typ, At: at,
		Data: fleet.Data{TenantID: m.TenantID, Tier: string(tier), FromTier: string(m.From), MigrationID: m.ID,
			Reason: m.Error, At: fleet.FormatTime(at)},
	}
}

func (s *Service) notify() {
	if s.fleet != nil {
		s.fleet.Notify()
	}
}
