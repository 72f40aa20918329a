package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/rollouts"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

func newRollout() rollouts.Rollout {
	return rollouts.Rollout{
		ID: rollouts.NewID(), State: rollouts.StateRunning,
		Selector:  rollouts.Selector{Tier: "dedicated", Regions: []string{"eu-west-1"}, Labels: map[string]string{"ring": "0"}},
		Plan:      rollouts.Plan{Canary: 1, Waves: []int{50, 100}, Bake: time.Minute, FailureThreshold: 2, MaxInFlight: 5},
		Templates: map[string]rollouts.Template{"dedicated": {Name: "tenant-dedicated.yaml", Version: "v2", Body: "body"}},
		WaveCount: 2, CreatedBy: "admin", Version: 1, CreatedAt: base, UpdatedAt: base,
	}
}

func newTarget(r rollouts.Rollout, idx int, stack string) rollouts.Target {
	return rollouts.Target{
		RolloutID: r.ID, Index: idx, Wave: idx, Kind: rollouts.KindDedicated, TenantID: "ten_x", TenantSlug: "x",
		Region: "eu-west-1", StackName: stack, FromVersion: "v1", ToVersion: "v2", State: rollouts.TargetPending,
		ChangeSet: "cairn-" + r.ID, Version: 1,
	}
}

// testRollouts checks a rollout and its targets round-trip, that a stack
// is held by one unfinished rollout at a time, that updates are
// optimistic, and what commits with an update.
func testRollouts(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	rec := audit.Event{Actor: "admin", Action: "rollout.create", TargetType: "rollout", Outcome: audit.OutcomeOK}

	r := newRollout()
	created, err := b.RolloutCreate(ctx, r, []rollouts.Target{newTarget(r, 0, "cairn-a"), newTarget(r, 1, "cairn-b")}, rec.On(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.RolloutGet(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.Seq = created.Seq
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored rollout (-want +got):\n%s", diff)
	}
	if _, err := b.RolloutGet(ctx, "rol_none"); !errors.Is(err, rollouts.ErrNotFound) {
		t.Errorf("get of a missing rollout: %v", err)
	}

	// Another rollout over cairn-b is refused whole.
	other := newRollout()
	if _, err := b.RolloutCreate(ctx, other, []rollouts.Target{newTarget(other, 0, "cairn-c"), newTarget(other, 1, "cairn-b")}, rec.On(other.ID)); !errors.Is(err, rollouts.ErrStackBusy) {
		t.Fatalf("overlapping rollout: %v", err)
	}
	if _, err := b.RolloutGet(ctx, other.ID); !errors.Is(err, rollouts.ErrNotFound) {
		t.Fatalf("the refused rollout was stored: %v", err)
	}

	targets, err := b.RolloutTargets(ctx, r.ID)
	if err != nil || len(targets) != 2 {
		t.Fatalf("targets: %v, %v", targets, err)
	}
	tg := targets[1]
	tg.State, tg.Executed, tg.Changes = rollouts.TargetExecuting, true, []provisioner.ResourceChange{{Action: "Modify", LogicalID: "Raw", ResourceType: "AWS::S3::Bucket", Replacement: "True"}}
	updated, err := b.RolloutTargetUpdate(ctx, tg)
	if err != nil || updated.Version != 2 || !updated.Executed || len(updated.Changes) != 1 {
		t.Fatalf("target update: %+v, %v", updated, err)
	}
	if _, err := b.RolloutTargetUpdate(ctx, tg); !errors.Is(err, rollouts.ErrConflict) {
		t.Fatalf("stale target update: %v", err)
	}
	// A terminal target releases its stack.
	updated.State = rollouts.TargetSucceeded
	if _, err := b.RolloutTargetUpdate(ctx, updated); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RolloutCreate(ctx, other, []rollouts.Target{newTarget(other, 0, "cairn-b")}, rec.On(other.ID)); err != nil {
		t.Fatalf("rollout over a released stack: %v", err)
	}

	// Approval, events and release commit with the update.
	aw := targets[0]
	aw.State = rollouts.TargetAwaitingApproval
	if _, err := b.RolloutTargetUpdate(ctx, aw); err != nil {
		t.Fatal(err)
	}
	next := got
	next.State, next.Reason, next.Wave = rollouts.StateRunning, "", 1
	ev := fleet.Event{ID: fleet.NewID("rollout-test", r.ID), Type: fleet.RolloutHalted, At: base, Data: fleet.Data{RolloutID: r.ID}}
	stored, err := b.RolloutUpdate(ctx, rollouts.Update{Rollout: next, Approve: true, Announce: []fleet.Event{ev}, Audit: rec.On(r.ID)})
	if err != nil || stored.Version != 2 || stored.Wave != 1 {
		t.Fatalf("rollout update: %+v, %v", stored, err)
	}
	if _, err := b.RolloutUpdate(ctx, rollouts.Update{Rollout: next}); !errors.Is(err, rollouts.ErrConflict) {
		t.Fatalf("stale rollout update: %v", err)
	}
	if counts, err := b.RolloutCounts(ctx, r.ID); err != nil || counts[rollouts.TargetExecuting] != 1 || counts[rollouts.TargetSucceeded] != 1 {
		t.Fatalf("counts: %v, %v", counts, err)
	}
	targets, _ = b.RolloutTargets(ctx, r.ID)
	if targets[0].State != rollouts.TargetExecuting || !targets[0].Approved || targets[0].Executed {
		t.Fatalf("approved target: %+v", targets[0])
	}
	events, _ := b.FleetEventList(ctx, 100)
	if len(events) != 1 || events[0].Data.RolloutID != r.ID {
		t.Fatalf("fleet events: %+v", events)
	}
	active, err := b.RolloutListActive(ctx)
	if err != nil || len(active) != 2 {
		t.Fatalf("active rollouts: %d, %v", len(active), err)
	}
	stored.State, stored.FinishedAt = rollouts.StateAborted, base.Add(time.Hour)
	if _, err := b.RolloutUpdate(ctx, rollouts.Update{Rollout: stored}); err != nil {
		t.Fatal(err)
	}
	third := newRollout()
	if _, err := b.RolloutCreate(ctx, third, []rollouts.Target{newTarget(third, 0, "cairn-a")}, rec.On(third.ID)); err != nil {
		t.Fatalf("rollout over the stacks of a finished one: %v", err)
	}
	list, err := b.RolloutList(ctx, 0, 2)
	if err != nil || len(list) != 2 || list[0].ID != third.ID {
		t.Fatalf("list: %v, %v", list, err)
	}
	older, err := b.RolloutList(ctx, list[1].Seq, 10)
	if err != nil || len(older) != 1 || older[0].ID != r.ID {
		t.Fatalf("list before %d: %v, %v", list[1].Seq, older, err)
	}
}

// testRolloutCandidates checks the stacks a rollout may select and that
// a pool's new version reaches its slices.
func testRolloutCandidates(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	ded, pooled := newTenant(1), newTenant(2)
	ded.Tier, ded.Status = tenants.TierDedicated, tenants.StatusActive
	pooled.Status = tenants.StatusActive
	insert(t, b, ded, pooled)
	pl := newPlacement(ded.ID, "eu-west-1", provisioner.KindDedicated, provisioner.StatusReady)
	ensurePlacement(t, b, pl)
	slice := newPlacement(pooled.ID, "eu-west-1", provisioner.KindPooled, provisioner.StatusReady)
	ensurePlacement(t, b, slice)
	pool := newPool("eu-west-1", provisioner.StatusReady)
	ensurePool(t, b, pool)

	got, err := b.RolloutCandidates(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("candidates: %+v, %v", got, err)
	}
	for _, c := range got {
		switch c.Kind {
		case rollouts.KindDedicated:
			if c.TenantID != ded.ID || c.StackName != pl.StackName || c.TenantLabels["team"] != "data" || c.TenantStatus != "active" {
				t.Errorf("dedicated candidate: %+v", c)
			}
		case rollouts.KindPool:
			if len(c.PooledTenants) != 1 || c.PooledTenants[0].ID != pooled.ID || c.StackName != pool.StackName {
				t.Errorf("pool candidate: %+v", c)
			}
		}
	}
	if err := b.StackTemplateVersionSet(ctx, rollouts.KindPool, "eu-west-1", pool.StackName, "", "v9"); err != nil {
		t.Fatal(err)
	}
	if err := b.StackTemplateVersionSet(ctx, rollouts.KindDedicated, "eu-west-1", pl.StackName, ded.ID, "v8"); err != nil {
		t.Fatal(err)
	}
	p, _ := b.PoolGet(ctx, "eu-west-1")
	s, _ := b.PlacementGet(ctx, pooled.ID, "eu-west-1")
	d, _ := b.PlacementGet(ctx, ded.ID, "eu-west-1")
	if p.TemplateVersion != "v9" || s.TemplateVersion != "v9" || d.TemplateVersion != "v8" {
		t.Fatalf("versions: pool %s, slice %s, dedicated %s", p.TemplateVersion, s.TemplateVersion, d.TemplateVersion)
	}
}

// testRolloutLeases checks a rollout's lease: one job holds it at a time,
// renews it, loses it only once it lapses, gives it up, and a finished
// rollout has none.
func testRolloutLeases(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	r := newRollout()
	if _, err := b.RolloutCreate(ctx, r, []rollouts.Target{newTarget(r, 0, "cairn-lease")},
		audit.Event{Actor: "admin", Action: "rollout.create", TargetType: "rollout", Outcome: audit.OutcomeOK}.On(r.ID)); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	claim := func(job int64, until, now time.Time, want bool) {
		t.Helper()
		if got, err := b.RolloutClaim(ctx, r.ID, job, until, now); err != nil || got != want {
			t.Fatalf("job %d claims until %s at %s: %v, %v; want %v", job, until.Format(time.TimeOnly), now.Format(time.TimeOnly), got, err, want)
		}
	}
	lapsed := func(now time.Time, want ...time.Time) {
		t.Helper()
		got, err := b.RolloutLapsed(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if at, ok := got[r.ID]; ok != (len(want) == 1) || (ok && !at.Equal(want[0])) {
			t.Fatalf("lapsed at %s: %v, want %v", now.Format(time.TimeOnly), got, want)
		}
	}
	claim(1, base.Add(15*time.Second), base, true)
	claim(2, base.Add(20*time.Second), base.Add(5*time.Second), false) // held
	claim(1, base.Add(30*time.Second), base.Add(10*time.Second), true) // renewed
	lapsed(base.Add(29 * time.Second))
	claim(2, base.Add(44*time.Second), base.Add(29*time.Second), false) // still held
	lapsed(base.Add(31*time.Second), base.Add(30*time.Second))
	claim(2, base.Add(46*time.Second), base.Add(31*time.Second), true) // taken over
	claim(1, base.Add(47*time.Second), base.Add(32*time.Second), false)
	// Released by its holder only.
	if err := b.RolloutLeaseRelease(ctx, r.ID, 1); err != nil {
		t.Fatal(err)
	}
	claim(3, base.Add(48*time.Second), base.Add(33*time.Second), false)
	if err := b.RolloutLeaseRelease(ctx, r.ID, 2); err != nil {
		t.Fatal(err)
	}
	lapsed(base.Add(time.Hour))
	claim(3, base.Add(48*time.Second), base.Add(33*time.Second), true)
	// Finished: no lease to take, none lapses.
	got, err := b.RolloutGet(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.State, got.FinishedAt = rollouts.StateCompleted, base.Add(time.Minute)
	if _, err := b.RolloutUpdate(ctx, rollouts.Update{Rollout: got}); err != nil {
		t.Fatal(err)
	}
	lapsed(base.Add(time.Hour))
	claim(3, base.Add(2*time.Hour), base.Add(time.Hour), false)
}
