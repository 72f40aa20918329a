package rollouts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/enginetest"
	"github.com/cairn-cdp/cairn/internal/rollouts"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/templates"
)

// fleetEnv is a fleet of dedicated tenants' stacks on the local engine,
// ready at the embedded template's version, and the rollouts over it.
type fleetEnv struct {
	t       testing.TB
	db      *sqlite.DB
	eng     provisioner.Engine
	engine  *provisioner.LocalEngine
	root    string
	tenants []tenants.Tenant
	clock   *clock
	svc     *rollouts.Service
	next    templates.Template
}

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var discard = slog.New(slog.DiscardHandler)

// region is the Region of every test here: the emulator's tests use Regions
// no other package deletes stacks in (see cmd/server's awsenv_test.go).
const region = "ap-southeast-2"

// newFleet makes n dedicated tenants with ready stacks in region, and a
// Service that rolls out next (the dedicated template with one more
// resource) to them.
func newFleet(t testing.TB, n int, next templates.Template) *fleetEnv {
	t.Helper()
	root := t.TempDir()
	local := &provisioner.LocalEngine{Root: root}
	env := newFleetOn(t, n, next, local)
	env.engine, env.root = local, root
	return env
}

// newFleetOn is newFleet on any engine.
func newFleetOn(t testing.TB, n int, next templates.Template, engine provisioner.Engine) *fleetEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cairn.db"), discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	env := &fleetEnv{t: t, db: db, eng: engine,
		clock: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, next: next}
	tsvc := tenants.NewService(db, nil)
	current := templates.Dedicated()
	for i := range n {
		tn, err := tsvc.Onboard(ctx, tenants.OnboardParams{
			Name: "T", Slug: fmt.Sprintf("roll-%03d", i), Tier: tenants.TierDedicated, HomeRegion: region,
			Labels: map[string]string{"ring": fmt.Sprint(i % 2)},
		})
		if err != nil {
			t.Fatal(err)
		}
		name := provisioner.DedicatedStackName(tn.ID)
		if err := engine.CreateStack(ctx, provisioner.CreateStackInput{Region: region, Name: name, Template: current,
			Parameters: map[string]string{"TenantId": tn.ID, "TenantSlug": tn.Slug}, Token: name + "-create-1"}); err != nil {
			t.Fatal(err)
		}
		pl, err := db.PlacementEnsure(ctx, provisioner.Placement{TenantID: tn.ID, Kind: provisioner.KindDedicated,
			StackRecord: provisioner.StackRecord{Region: region, StackName: name, Status: provisioner.StatusReady, StackStatus: provisioner.StackCreateComplete,
				TemplateVersion: current.Version, Attempt: 1}})
		if err != nil || pl.Status != provisioner.StatusReady {
			t.Fatalf("placement: %+v, %v", pl, err)
		}
		if tn, err = tsvc.MarkProvisioned(ctx, tn.ID); err != nil {
			t.Fatal(err)
		}
		env.tenants = append(env.tenants, tn)
	}
	if _, err := engine.Stacks(ctx, region); err != nil { // the local engine builds them
		t.Fatal(err)
	}
	env.svc, err = rollouts.NewService(rollouts.ServiceConfig{Store: db, Now: env.clock.Now, Templates: func(kind string) templates.Template {
		if kind == rollouts.KindDedicated {
			return next
		}
		return templates.Pool()
	}})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// runner returns a Runner on engine (the fleet's when nil).
func (env *fleetEnv) runner(engine provisioner.Engine) *rollouts.Runner {
	env.t.Helper()
	if engine == nil {
		engine = env.eng
	}
	r, err := rollouts.NewRunner(rollouts.RunnerConfig{Store: env.db, Engine: engine, Now: env.clock.Now, Logger: discard})
	if err != nil {
		env.t.Fatal(err)
	}
	return r
}

func admin(action string) audit.Event {
	return audit.Event{Actor: "admin", Action: action, TargetType: "rollout", Outcome: audit.OutcomeOK}
}

func (env *fleetEnv) create(p rollouts.CreateParams) rollouts.Rollout {
	env.t.Helper()
	p.Audit = admin("rollout.create")
	r, err := env.svc.Create(context.Background(), p)
	if err != nil {
		env.t.Fatal(err)
	}
	return r
}

// step runs one step of the rollout and returns it and its targets.
func (env *fleetEnv) step(r *rollouts.Runner, id string) (bool, rollouts.Rollout, []rollouts.Target) {
	env.t.Helper()
	again, err := r.Step(context.Background(), id)
	if err != nil {
		env.t.Fatal(err)
	}
	ro, targets, err := env.svc.Get(context.Background(), id)
	if err != nil {
		env.t.Fatal(err)
	}
	return again, ro, targets
}

// until steps the rollout until cond holds, at most 500 steps.
func (env *fleetEnv) until(r *rollouts.Runner, id string, cond func(rollouts.Rollout, []rollouts.Target) bool) (rollouts.Rollout, []rollouts.Target) {
	env.t.Helper()
	for range 500 {
		_, ro, targets := env.step(r, id)
		if cond(ro, targets) {
			return ro, targets
		}
	}
	ro, targets, _ := env.svc.Get(context.Background(), id)
	for _, tg := range targets {
		env.t.Logf("%s wave %d: %s executed %v approved %v %q %v", tg.StackName, tg.Wave, tg.State, tg.Executed, tg.Approved, tg.Reason, tg.Changes)
	}
	env.t.Fatalf("rollout never got there: %s (%s) wave %d, counts %v", ro.State, ro.Reason, ro.Wave, ro.Counts)
	return ro, targets
}

// executions returns how many change sets each stack of the fleet
// executed, from the local engine's records.
func (env *fleetEnv) executions() map[string]int {
	env.t.Helper()
	out := map[string]int{}
	for _, tn := range env.tenants {
		name := provisioner.DedicatedStackName(tn.ID)
		events, err := env.engine.StackEvents(context.Background(), region, name)
		if err != nil {
			env.t.Fatal(err)
		}
		for _, ev := range events {
			if ev.LogicalID == name && ev.Status == provisioner.StackUpdateInProgress {
				out[name]++
			}
		}
	}
	return out
}

func (env *fleetEnv) events(typ string) []fleet.Event {
	env.t.Helper()
	all, err := env.db.FleetEventList(context.Background(), 1000)
	if err != nil {
		env.t.Fatal(err)
	}
	var out []fleet.Event
	for _, ev := range all {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func started(t rollouts.Target) bool { return t.State != rollouts.TargetPending }

// TestRolloutWavesAndBake rolls a version out to 50 stacks on the local
// engine: a canary, then waves of 5%, 25% and 100%, each starting only
// once the one before is done and the bake time has passed; every stack
// is updated once, its placement records the version, and the rollout
// announces its completion.
func TestRolloutWavesAndBake(t *testing.T) {
	next := enginetest.WithMarker(templates.Dedicated(), "V2")
	env := newFleet(t, 50, next)
	ro := env.create(rollouts.CreateParams{Plan: rollouts.Plan{Bake: 10 * time.Minute, MaxInFlight: 10}})
	if ro.WaveCount != 4 || ro.Counts[rollouts.TargetPending] != 50 {
		t.Fatalf("rollout: %d waves, %v", ro.WaveCount, ro.Counts)
	}
	_, targets, err := env.svc.Get(context.Background(), ro.ID)
	if err != nil {
		t.Fatal(err)
	}
	perWave := map[int]int{}
	for _, tg := range targets {
		perWave[tg.Wave]++
	}
	if perWave[0] != 1 || perWave[1] != 2 || perWave[2] != 10 || perWave[3] != 37 {
		t.Fatalf("targets per wave: %v", perWave)
	}

	r := env.runner(nil)
	for wave := range 4 {
		// The wave runs to its end; nothing of a later wave starts.
		ro, targets = env.until(r, ro.ID, func(ro rollouts.Rollout, targets []rollouts.Target) bool {
			for _, tg := range targets {
				if tg.Wave > wave && started(tg) {
					t.Fatalf("a stack of wave %d started during wave %d", tg.Wave, wave)
				}
			}
			return ro.Wave > wave || ro.State == rollouts.StateCompleted
		})
		if wave == 3 {
			break
		}
		// Baking: steps start nothing until the bake time has passed.
		for range 3 {
			_, _, targets = env.step(r, ro.ID)
			for _, tg := range targets {
				if tg.Wave > wave && started(tg) {
					t.Fatalf("wave %d started before the bake time passed", tg.Wave)
				}
			}
		}
		env.clock.Add(10 * time.Minute)
	}
	if ro.State != rollouts.StateCompleted || ro.Counts[rollouts.TargetSucceeded] != 50 || ro.FinishedAt.IsZero() {
		t.Fatalf("rollout: %s, %v", ro.State, ro.Counts)
	}
	for name, n := range env.executions() {
		if n != 1 {
			t.Errorf("%s updated %d times", name, n)
		}
	}
	if n := len(env.executions()); n != 50 {
		t.Errorf("%d stacks updated, want 50", n)
	}
	for _, tn := range env.tenants {
		pl, err := env.db.PlacementGet(context.Background(), tn.ID, region)
		if err != nil || pl.TemplateVersion != next.Version {
			t.Fatalf("placement of %s: %q, %v", tn.ID, pl.TemplateVersion, err)
		}
	}
	if got := env.events(fleet.RolloutCompleted); len(got) != 1 || got[0].Data.RolloutID != ro.ID {
		t.Fatalf("rollout.completed events: %+v", got)
	}
	if again, _ := r.Step(context.Background(), ro.ID); again {
		t.Fatal("a completed rollout's job runs again")
	}
	// A version every stack has is nothing to roll out.
	if _, err := env.svc.Create(context.Background(), rollouts.CreateParams{Audit: admin("rollout.create")}); !errors.Is(err, rollouts.ErrNothingToRoll) {
		t.Fatalf("second rollout of the same version: %v", err)
	}
}

// breakBucket makes the local engine fail to update the stack: its raw
// zone's path becomes a file, which the update cannot make a directory.
func (env *fleetEnv) breakBucket(stack string) {
	env.t.Helper()
	dir := filepath.Join(env.root, region, "buckets", stack+"-raw")
	if err := os.RemoveAll(dir); err != nil {
		env.t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		env.t.Fatal(err)
	}
}

// TestRolloutHaltsOnFailureThreshold fails the updates of two stacks of
// the third wave: each is rolled back and the rollout halts once two have
// failed (the threshold), announcing it; resumed, it goes on and
// completes with the two failed stacks on their old version.
func TestRolloutHaltsOnFailureThreshold(t *testing.T) {
	next := enginetest.WithMarker(templates.Dedicated(), "V2")
	env := newFleet(t, 20, next)
	ro := env.create(rollouts.CreateParams{Plan: rollouts.Plan{FailureThreshold: 2, MaxInFlight: 20}})
	_, targets, _ := env.svc.Get(context.Background(), ro.ID)
	var broken []string
	for _, tg := range targets {
		if tg.Wave == 2 && len(broken) < 2 {
			env.breakBucket(tg.StackName)
			broken = append(broken, tg.StackName)
		}
	}
	r := env.runner(nil)
	ro, targets = env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State == rollouts.StateHalted })
	if ro.Counts[rollouts.TargetFailed] != 2 || !strings.Contains(ro.Reason, "2 stacks failed") {
		t.Fatalf("halted rollout: %q, %v", ro.Reason, ro.Counts)
	}
	for _, tg := range targets {
		if tg.Wave == 3 && started(tg) {
			t.Fatalf("wave 3 started after the threshold was reached")
		}
		if tg.State == rollouts.TargetFailed && !strings.Contains(tg.Reason, "rolled back") {
			t.Fatalf("failed target's reason: %q", tg.Reason)
		}
	}
	if got := env.events(fleet.RolloutHalted); len(got) != 1 || got[0].Data.RolloutID != ro.ID {
		t.Fatalf("rollout.halted events: %+v", got)
	}
	// Halted, its job stops once nothing is in flight.
	if again, _ := r.Step(context.Background(), ro.ID); again {
		t.Fatal("a halted rollout with nothing in flight runs again")
	}
	if _, err := env.svc.Resume(context.Background(), admin("rollout.resume"), ro.ID); err != nil {
		t.Fatal(err)
	}
	ro, _ = env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State == rollouts.StateCompleted })
	if ro.Counts[rollouts.TargetSucceeded] != 18 || ro.Counts[rollouts.TargetFailed] != 2 {
		t.Fatalf("completed rollout: %v", ro.Counts)
	}
	for _, tn := range env.tenants {
		pl, _ := env.db.PlacementGet(context.Background(), tn.ID, region)
		failed := pl.StackName == broken[0] || pl.StackName == broken[1]
		if failed != (pl.TemplateVersion != next.Version) {
			t.Fatalf("%s (failed %v) is at version %s", pl.StackName, failed, pl.TemplateVersion)
		}
	}
}

// TestRolloutPauseResumeAbort pauses a rollout after its canary (nothing
// starts), resumes it, then aborts it mid-wave: stacks not started stay
// on their version, those in flight finish, and the stacks are released
// for another rollout.
func TestRolloutPauseResumeAbort(t *testing.T) {
	next := enginetest.WithMarker(templates.Dedicated(), "V2")
	env := newFleet(t, 30, next)
	ctx := context.Background()
	ro := env.create(rollouts.CreateParams{Plan: rollouts.Plan{Waves: []int{50, 100}, MaxInFlight: 5}})
	r := env.runner(nil)
	ro, _ = env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.Wave == 1 })
	if _, err := env.svc.Pause(ctx, admin("rollout.pause"), ro.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := env.svc.Pause(ctx, admin("rollout.pause"), ro.ID); !errors.Is(err, rollouts.ErrState) {
		t.Fatalf("pausing a paused rollout: %v", err)
	}
	for range 5 {
		again, ro, targets := env.step(r, ro.ID)
		if again || ro.State != rollouts.StatePaused {
			t.Fatalf("paused rollout: again %v, %s", again, ro.State)
		}
		for _, tg := range targets {
			if tg.Wave == 1 && started(tg) {
				t.Fatal("a stack started while the rollout was paused")
			}
		}
	}
	if _, err := env.svc.Resume(ctx, admin("rollout.resume"), ro.ID); err != nil {
		t.Fatal(err)
	}
	// Some of wave 1 done, the rest not started: abort.
	ro, _ = env.until(r, ro.ID, func(_ rollouts.Rollout, targets []rollouts.Target) bool {
		done := 0
		for _, tg := range targets {
			if tg.State == rollouts.TargetSucceeded {
				done++
			}
		}
		return done >= 5
	})
	if _, err := env.svc.Abort(ctx, admin("rollout.abort"), ro.ID); err != nil {
		t.Fatal(err)
	}
	ro, targets := env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return !ro.FinishedAt.IsZero() })
	if ro.State != rollouts.StateAborted || ro.Counts[rollouts.TargetSkipped] == 0 || ro.Counts[rollouts.TargetPending] != 0 {
		t.Fatalf("aborted rollout: %s, %v", ro.State, ro.Counts)
	}
	updated := env.executions()
	for _, tg := range targets {
		pl, err := env.db.PlacementGet(ctx, tg.TenantID, region)
		if err != nil {
			t.Fatal(err)
		}
		switch tg.State {
		case rollouts.TargetSucceeded:
			if pl.TemplateVersion != next.Version || updated[tg.StackName] != 1 {
				t.Fatalf("%s succeeded: version %s, %d updates", tg.StackName, pl.TemplateVersion, updated[tg.StackName])
			}
		case rollouts.TargetSkipped:
			if pl.TemplateVersion == next.Version || updated[tg.StackName] != 0 {
				t.Fatalf("%s skipped: version %s, %d updates", tg.StackName, pl.TemplateVersion, updated[tg.StackName])
			}
		default:
			t.Fatalf("%s is %s after the abort", tg.StackName, tg.State)
		}
	}
	// Released: the stacks left behind can be rolled out again.
	again := env.create(rollouts.CreateParams{})
	if again.Counts[rollouts.TargetPending] != ro.Counts[rollouts.TargetSkipped] {
		t.Fatalf("second rollout: %v, first skipped %d", again.Counts, ro.Counts[rollouts.TargetSkipped])
	}
}

// TestRolloutOneAtATimePerStack refuses a rollout over a stack that an
// unfinished rollout holds, and changes nothing.
func TestRolloutOneAtATimePerStack(t *testing.T) {
	env := newFleet(t, 4, enginetest.WithMarker(templates.Dedicated(), "V2"))
	first := env.create(rollouts.CreateParams{Selector: rollouts.Selector{Labels: map[string]string{"ring": "0"}}})
	if first.Counts[rollouts.TargetPending] != 2 {
		t.Fatalf("first rollout: %v", first.Counts)
	}
	_, err := env.svc.Create(context.Background(), rollouts.CreateParams{Audit: admin("rollout.create")})
	if !errors.Is(err, rollouts.ErrStackBusy) {
		t.Fatalf("overlapping rollout: %v", err)
	}
	list, err := env.svc.List(context.Background(), 0, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("rollouts: %d, %v", len(list), err)
	}
	// Stacks outside the first rollout are free.
	second := env.create(rollouts.CreateParams{Selector: rollouts.Selector{Labels: map[string]string{"ring": "1"}}})
	if second.Counts[rollouts.TargetPending] != 2 {
		t.Fatalf("second rollout: %v", second.Counts)
	}
}

// TestRolloutApprovalOnReplacement rolls out a version that replaces each
// stack's raw bucket (a new BucketName): the canary's change set halts
// the rollout for approval, with the change in its summary and nothing
// applied; approved, the canary and then the rest are updated (each
// needing and getting its own approval).
func TestRolloutApprovalOnReplacement(t *testing.T) {
	next := enginetest.WithBucketName(templates.Dedicated(), "RawZoneBucket", "!Sub cairn-${TenantId}-raw-v2")
	env := newFleet(t, 3, next)
	ro := env.create(rollouts.CreateParams{Plan: rollouts.Plan{Waves: []int{100}}})
	r := env.runner(nil)
	ro, targets := env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State == rollouts.StateHalted })
	if !strings.Contains(ro.Reason, "approval needed") || ro.Counts[rollouts.TargetAwaitingApproval] != 1 {
		t.Fatalf("halted rollout: %q, %v", ro.Reason, ro.Counts)
	}
	var canary rollouts.Target
	for _, tg := range targets {
		if tg.State == rollouts.TargetAwaitingApproval {
			canary = tg
		}
	}
	replaces := false
	for _, c := range canary.Changes {
		replaces = replaces || (c.LogicalID == "RawZoneBucket" && c.Replacement == provisioner.ReplacementTrue)
	}
	if !replaces || !strings.Contains(canary.Reason, "replaces RawZoneBucket") {
		t.Fatalf("canary's change set summary: %+v (%q)", canary.Changes, canary.Reason)
	}
	if n := len(env.executions()); n != 0 {
		t.Fatalf("%d stacks updated before the approval", n)
	}
	if got := env.events(fleet.RolloutHalted); len(got) != 1 {
		t.Fatalf("rollout.halted events: %+v", got)
	}
	for range 3 {
		if _, err := env.svc.Approve(context.Background(), admin("rollout.approve"), ro.ID); err != nil {
			t.Fatal(err)
		}
		ro, _ = env.until(r, ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State != rollouts.StateRunning })
		if ro.State == rollouts.StateCompleted {
			break
		}
	}
	if ro.State != rollouts.StateCompleted || ro.Counts[rollouts.TargetSucceeded] != 3 {
		t.Fatalf("approved rollout: %s %q, %v", ro.State, ro.Reason, ro.Counts)
	}
	for name, n := range env.executions() {
		if n != 1 {
			t.Errorf("%s updated %d times", name, n)
		}
	}
}

// crashingEngine cancels the step it serves right after its nth
// ExecuteChangeSet and its mth CreateChangeSet have been accepted: the
// replica died between the call and its record.
type crashingEngine struct {
	provisioner.Engine
	cancel            context.CancelFunc
	executes, creates atomic.Int32
	executeAt         int32
	createAt          int32
}

func (c *crashingEngine) ExecuteChangeSet(ctx context.Context, region, stack, name, token string) error {
	err := c.Engine.ExecuteChangeSet(ctx, region, stack, name, token)
	if c.executes.Add(1) == c.executeAt {
		c.cancel()
		return context.Canceled
	}
	return err
}

func (c *crashingEngine) CreateChangeSet(ctx context.Context, in provisioner.ChangeSetInput) error {
	err := c.Engine.CreateChangeSet(ctx, in)
	if c.creates.Add(1) == c.createAt {
		c.cancel()
		return context.Canceled
	}
	return err
}

// TestRolloutResumesAfterCrash kills the rollout's step twice mid-wave,
// right after an ExecuteChangeSet and a CreateChangeSet were accepted and
// before they were recorded, and carries on with a new Runner (another
// replica): the rollout completes and no stack is updated twice.
func TestRolloutResumesAfterCrash(t *testing.T) {
	next := enginetest.WithMarker(templates.Dedicated(), "V2")
	env := newFleet(t, 12, next)
	ro := env.create(rollouts.CreateParams{Plan: rollouts.Plan{Waves: []int{100}, MaxInFlight: 6}})
	for _, crash := range []struct{ execute, create int32 }{{execute: 2}, {create: 3}, {execute: 4}} {
		ctx, cancel := context.WithCancel(context.Background())
		eng := &crashingEngine{Engine: env.eng, cancel: cancel, executeAt: crash.execute, createAt: crash.create}
		r := env.runner(eng)
		for ctx.Err() == nil {
			if _, err := r.Step(ctx, ro.ID); err != nil && ctx.Err() == nil {
				t.Fatal(err)
			}
		}
		cancel()
	}
	ro, _ = env.until(env.runner(nil), ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State == rollouts.StateCompleted })
	if ro.Counts[rollouts.TargetSucceeded] != 12 {
		t.Fatalf("rollout after the crashes: %v", ro.Counts)
	}
	updated := env.executions()
	for _, tn := range env.tenants {
		if n := updated[provisioner.DedicatedStackName(tn.ID)]; n != 1 {
			t.Errorf("%s updated %d times", tn.ID, n)
		}
	}
}

// TestRolloutRefusedChangeSet leaves one stack in a state CloudFormation
// will not update (UPDATE_ROLLBACK_FAILED, set outside Cairn): its change
// set is refused, asked again in later steps, and the stack fails after
// the fifth refusal instead of holding the rollout up; the others are
// updated.
func TestRolloutRefusedChangeSet(t *testing.T) {
	env := newFleet(t, 3, enginetest.WithMarker(templates.Dedicated(), "V2"))
	stuck := provisioner.DedicatedStackName(env.tenants[1].ID)
	file := filepath.Join(env.root, region, "stacks", stuck+".json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st["Status"] = "UPDATE_ROLLBACK_FAILED"
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ro := env.create(rollouts.CreateParams{Plan: rollouts.Plan{Waves: []int{100}, FailureThreshold: 2}})
	ro, targets := env.until(env.runner(nil), ro.ID, func(ro rollouts.Rollout, _ []rollouts.Target) bool { return ro.State == rollouts.StateCompleted })
	if ro.Counts[rollouts.TargetSucceeded] != 2 || ro.Counts[rollouts.TargetFailed] != 1 {
		t.Fatalf("rollout: %v", ro.Counts)
	}
	for _, tg := range targets {
		if tg.StackName == stuck && (tg.State != rollouts.TargetFailed || !strings.Contains(tg.Reason, "change set refused") || tg.Refusals != 5) {
			t.Fatalf("stuck stack: %s %q after %d refusals", tg.State, tg.Reason, tg.Refusals)
		}
	}
}

// sweepLog records the jobs a sweep inserts.
type sweepLog struct {
	rollouts.Store
	mu        sync.Mutex
	enqueued  []string
	takeovers []time.Time
}

func (s *sweepLog) RolloutEnqueue(ctx context.Context, id string) error {
	s.mu.Lock()
	s.enqueued = append(s.enqueued, id)
	s.mu.Unlock()
	return s.Store.RolloutEnqueue(ctx, id)
}

func (s *sweepLog) RolloutTakeover(ctx context.Context, id string, lapsed time.Time) error {
	s.mu.Lock()
	s.takeovers = append(s.takeovers, lapsed)
	s.mu.Unlock()
	return s.Store.RolloutTakeover(ctx, id, lapsed)
}

// TestRolloutLeaseTakeover: a rollout's job holds it under a lease, so a
// second job does nothing while the first lives; when the first's replica
// dies mid-run, its lease lapses after LeaseTTL, the sweep inserts a job
// that takes over, that job finishes the rollout, and the dead job,
// rescued later, finds the lease held and does nothing.
func TestRolloutLeaseTakeover(t *testing.T) {
	env := newFleet(t, 4, enginetest.WithMarker(templates.Dedicated(), "V2"))
	ro := env.create(rollouts.CreateParams{Plan: rollouts.Plan{Waves: []int{100}, MaxInFlight: 4}})
	log := &sweepLog{Store: env.db}
	r, err := rollouts.NewRunner(rollouts.RunnerConfig{Store: log, Engine: env.eng, Now: env.clock.Now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const dead, other, takeover = 101, 102, 103

	again, held, err := r.Run(ctx, ro.ID, dead)
	if err != nil || !held || !again {
		t.Fatalf("the first job's run: again %v held %v, %v", again, held, err)
	}
	// The first job snoozes with the lease: another job does nothing,
	// and the sweep takes nothing over.
	if _, held, err := r.Run(ctx, ro.ID, other); err != nil || held {
		t.Fatalf("a second job while the first holds the lease: held %v, %v", held, err)
	}
	if err := r.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if len(log.takeovers) != 0 || len(log.enqueued) != 1 {
		t.Fatalf("sweep with a live lease: takeovers %v, enqueued %v", log.takeovers, log.enqueued)
	}

	// The first job's replica dies: no run renews the lease, which lapses.
	env.clock.Add(rollouts.DefaultPollInterval + rollouts.LeaseTTL + time.Second)
	if err := r.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if len(log.takeovers) != 1 {
		t.Fatalf("sweep after the lease lapsed: takeovers %v", log.takeovers)
	}
	before := env.executions()
	for i := 0; ; i++ {
		again, held, err := r.Run(ctx, ro.ID, takeover)
		if err != nil || !held {
			t.Fatalf("the taking-over job's run %d: held %v, %v", i, held, err)
		}
		if i == 0 {
			// The dead job, rescued, finds the lease held.
			if _, held, err := r.Run(ctx, ro.ID, dead); err != nil || held {
				t.Fatalf("the rescued job while the takeover holds the lease: held %v, %v", held, err)
			}
		}
		if !again {
			break
		}
		if i > 200 {
			t.Fatal("the rollout never finished")
		}
	}
	got, _, err := env.svc.Get(ctx, ro.ID)
	if err != nil || got.State != rollouts.StateCompleted || got.Counts[rollouts.TargetSucceeded] != 4 {
		t.Fatalf("after the takeover: %s %v, %v", got.State, got.Counts, err)
	}
	for stack, n := range env.executions() {
		if n != 1 {
			t.Errorf("%s updated %d times (%d before the takeover)", stack, n, before[stack])
		}
	}
	// Finished, the rollout has no lease: nothing lapses, nothing is
	// taken over again.
	env.clock.Add(time.Hour)
	if err := r.Sweep(ctx); err != nil || len(log.takeovers) != 1 {
		t.Fatalf("sweep after the end: takeovers %v, %v", log.takeovers, err)
	}
}
