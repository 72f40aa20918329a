package provisioner_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// rollbackEngine is a LocalEngine that reports the stacks named in failing
// as rolled back, as CloudFormation reports a create that failed.
type rollbackEngine struct {
	*provisioner.LocalEngine
	mu      sync.Mutex
	failing map[string]bool
}

func (e *rollbackEngine) Stacks(ctx context.Context, region string) (map[string]provisioner.Stack, error) {
	stacks, err := e.LocalEngine.Stacks(ctx, region)
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, st := range stacks {
		if e.failing[name] {
			st.Status, st.Reason, st.Outputs = provisioner.StackRollbackComplete, "The following resource(s) failed to create: [RawZoneBucket].", nil
			stacks[name] = st
		}
	}
	return stacks, err
}

type stackEnv struct {
	db     *sqlite.DB
	svc    *tenants.Service
	engine *rollbackEngine
	p      *provisioner.Provisioner
	now    time.Time
}

func newStackEnv(t *testing.T) stackEnv {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cairn.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := stackEnv{db: db, svc: tenants.NewService(db, nil), now: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)}
	e.engine = &rollbackEngine{LocalEngine: &provisioner.LocalEngine{Root: t.TempDir()}, failing: map[string]bool{}}
	e.p, err = provisioner.New(provisioner.Config{Engine: e.engine, Store: db, Tenants: e.svc, Logger: log, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e stackEnv) onboard(t *testing.T, slug string, tier tenants.Tier) tenants.Tenant {
	t.Helper()
	tn, err := e.svc.Onboard(t.Context(), tenants.OnboardParams{Name: "T", Slug: slug, Tier: tier, HomeRegion: "eu-west-1", Regions: []string{"eu-west-1"}})
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// step runs one provisioning step of the tenant, as its job does: a snooze
// is no failure.
func (e stackEnv) step(t *testing.T, id string) {
	t.Helper()
	var snooze *rivertype.JobSnoozeError
	if err := provisioner.Provision(e.p, t.Context(), id); err != nil && !errors.As(err, &snooze) {
		t.Fatalf("provision %s: %v", id, err)
	}
}

func (e stackEnv) status(t *testing.T, id string) tenants.Tenant {
	t.Helper()
	tn, err := e.svc.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// TestStackFailuresTakeOnePath fails a dedicated stack and a pool stack
// and checks that both records, observed by the one routine, fail with the
// engine's reason, are announced at the provisioner's clock, and fail
// their provisioning tenants: the dedicated one when its stack is
// observed, the pooled one at its job's next step.
func TestStackFailuresTakeOnePath(t *testing.T) {
	e := newStackEnv(t)
	ded := e.onboard(t, "one-path-ded", tenants.TierDedicated)
	pooled := e.onboard(t, "one-path-pool", tenants.TierPooled)
	e.engine.failing[provisioner.DedicatedStackName(ded.ID)] = true
	e.engine.failing[provisioner.PoolStackName()] = true
	e.step(t, ded.ID)
	e.step(t, pooled.ID)
	if err := e.p.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}

	pl, err := e.db.PlacementGet(t.Context(), ded.ID, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := e.db.PoolGet(t.Context(), "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	for what, rec := range map[string]provisioner.StackRecord{"dedicated stack": pl.StackRecord, "pool stack": pool.StackRecord} {
		if rec.Status != provisioner.StatusFailed || rec.StackStatus != provisioner.StackRollbackComplete ||
			!strings.Contains(rec.LastError, "RawZoneBucket") || !strings.HasPrefix(rec.StackID, "local:stack/"+rec.StackName+"/") {
			t.Errorf("%s: %+v; want failed, ROLLBACK_COMPLETE with the reason, and its stack ID", what, rec)
		}
	}
	if tn := e.status(t, ded.ID); tn.Status != tenants.StatusFailed || !strings.Contains(tn.StatusReason, "eu-west-1: ROLLBACK_COMPLETE") {
		t.Errorf("dedicated tenant %s (%q) after its stack failed, want failed with the stack's reason", tn.Status, tn.StatusReason)
	}
	e.step(t, pooled.ID)
	if tn := e.status(t, pooled.ID); tn.Status != tenants.StatusFailed || !strings.Contains(tn.StatusReason, "pool stack: ROLLBACK_COMPLETE") {
		t.Errorf("pooled tenant %s (%q) after its pool failed, want failed with the pool's reason", tn.Status, tn.StatusReason)
	}

	events, err := e.db.FleetEventList(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]time.Time{}
	for _, ev := range events {
		if ev.Type == fleet.StackFailed {
			failed[ev.Data.StackName] = ev.At
		}
	}
	for _, name := range []string{pl.StackName, pool.StackName} {
		if at, ok := failed[name]; !ok || !at.Equal(e.now) {
			t.Errorf("stack.failed of %s at %v (announced %t), want at the provisioner's clock %v", name, at, ok, e.now)
		}
	}
}

// TestTeardownWaitsWhileBusy: while Config.Busy says work on the
// tenant's data runs, Teardown touches nothing; once it has ended, the
// teardown goes on.
func TestTeardownWaitsWhileBusy(t *testing.T) {
	e := newStackEnv(t)
	busy := true
	p, err := provisioner.New(provisioner.Config{Engine: e.engine, Store: e.db, Tenants: e.svc, Now: func() time.Time { return e.now },
		Busy: func(context.Context, string) (bool, error) { return busy, nil }})
	if err != nil {
		t.Fatal(err)
	}
	tn := e.onboard(t, "busy", tenants.TierDedicated)
	e.step(t, tn.ID)
	if err := e.p.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.step(t, tn.ID)
	if _, err := e.svc.Offboard(t.Context(), audit.Event{}, tn.ID, nil, false); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if gone, err := p.Teardown(t.Context(), tn.ID, false); err != nil || gone {
			t.Fatalf("teardown while busy: gone %t, %v", gone, err)
		}
	}
	if pl, err := e.db.PlacementGet(t.Context(), tn.ID, "eu-west-1"); err != nil || pl.Status != provisioner.StatusReady {
		t.Fatalf("placement after teardowns while busy: %+v, %v; want ready", pl, err)
	}
	if stacks, err := e.engine.Stacks(t.Context(), "eu-west-1"); err != nil || len(stacks) != 1 {
		t.Fatalf("engine stacks after teardowns while busy: %v, %v; want the tenant's", stacks, err)
	}
	busy = false
	if gone, err := p.Teardown(t.Context(), tn.ID, false); err != nil || gone {
		t.Fatalf("teardown once idle: gone %t, %v; want the stack deleting", gone, err)
	}
	if pl, err := e.db.PlacementGet(t.Context(), tn.ID, "eu-west-1"); err != nil || pl.Status == provisioner.StatusReady {
		t.Fatalf("placement after the teardown once idle: %+v, %v; want it leaving", pl, err)
	}
}

// TestTeardownKeepsStackID offboards a dedicated tenant through Teardown
// and the poller: the stack is deleted, and its record keeps the stack's
// ID and its events.
func TestTeardownKeepsStackID(t *testing.T) {
	e := newStackEnv(t)
	tn := e.onboard(t, "kept-id", tenants.TierDedicated)
	e.step(t, tn.ID)
	if err := e.p.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.step(t, tn.ID)
	if got := e.status(t, tn.ID); got.Status != tenants.StatusActive {
		t.Fatalf("tenant %s, want active", got.Status)
	}
	ready, err := e.db.PlacementGet(t.Context(), tn.ID, "eu-west-1")
	if err != nil || ready.StackID == "" {
		t.Fatalf("ready placement %+v, %v; want its stack ID", ready, err)
	}
	if _, err := e.svc.Offboard(t.Context(), audit.Event{}, tn.ID, nil, false); err != nil {
		t.Fatal(err)
	}
	if gone, err := e.p.Teardown(t.Context(), tn.ID, false); err != nil || gone {
		t.Fatalf("first teardown: gone %t, %v; want the stack deleting", gone, err)
	}
	if err := e.p.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if gone, err := e.p.Teardown(t.Context(), tn.ID, false); err != nil || !gone {
		t.Fatalf("teardown after the poll: gone %t, %v; want gone", gone, err)
	}
	deleted, err := e.db.PlacementGet(t.Context(), tn.ID, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if deleted.Status != provisioner.StatusDeleted || deleted.StackID != ready.StackID {
		t.Errorf("deleted placement: status %s, stack ID %q; want deleted, %q", deleted.Status, deleted.StackID, ready.StackID)
	}
	if stacks, err := e.engine.Stacks(t.Context(), "eu-west-1"); err != nil || len(stacks) != 0 {
		t.Errorf("engine stacks after teardown: %v, %v; want none", stacks, err)
	}
	events, err := e.p.Events(t.Context(), tn.ID, "eu-west-1", 0, 100)
	if err != nil || len(events) == 0 {
		t.Errorf("events of the deleted stack: %d, %v; want its history", len(events), err)
	}
}

// TestUpgradeSliceGivesOwnRole: a pooled tenant's slice cut before pooled
// tenants had roles of their own (a provisioner without
// TenantRolePolicy) gets one on UpgradeSlice, once; a dedicated tenant's
// placement is left alone.
func TestUpgradeSliceGivesOwnRole(t *testing.T) {
	e := newStackEnv(t)
	pooled := e.onboard(t, "old-slice", tenants.TierPooled)
	dedicated := e.onboard(t, "own-stack", tenants.TierDedicated)
	for range 3 {
		for _, id := range []string{pooled.ID, dedicated.ID} {
			e.step(t, id)
		}
		if err := e.p.PollOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	old, err := e.db.PlacementGet(t.Context(), pooled.ID, "eu-west-1")
	if err != nil || old.Status != provisioner.StatusReady || old.Outputs["pool_role_arn"] != "" {
		t.Fatalf("slice cut without roles: %+v, %v", old, err)
	}
	policy := func(tenantID, region string, out map[string]string) (string, error) {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + out["raw_bucket"] + `/tenants/` + tenantID + `/*"}]}`, nil
	}
	p, err := provisioner.New(provisioner.Config{Engine: e.engine, Store: e.db, Tenants: e.svc, TenantRolePolicy: policy})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		if did, err := p.UpgradeSlice(t.Context(), pooled.ID, "eu-west-1"); err != nil || did != want {
			t.Fatalf("upgrade %d: %t, %v; want %t", i, did, err, want)
		}
	}
	if did, err := p.UpgradeSlice(t.Context(), dedicated.ID, "eu-west-1"); err != nil || did {
		t.Fatalf("upgrade of a dedicated placement: %t, %v", did, err)
	}
	now, err := e.db.PlacementGet(t.Context(), pooled.ID, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	own := now.Outputs["data_access_role_arn"]
	if now.Outputs["pool_role_arn"] != old.Outputs["data_access_role_arn"] || !strings.HasSuffix(own, provisioner.TenantRolePath+provisioner.TenantRoleName(pooled.ID, "eu-west-1")) {
		t.Fatalf("upgraded slice's roles: own %s, pool's %s (was %s)", own, now.Outputs["pool_role_arn"], old.Outputs["data_access_role_arn"])
	}
	if _, err := os.Stat(filepath.Join(e.engine.Root, "iam", "roles", provisioner.TenantRoleName(pooled.ID, "eu-west-1")+".json")); err != nil {
		t.Fatalf("the role: %v", err)
	}
}

// TestMoveReleaseOfAnUnrecordedSlice: the slice MoveTarget cuts for a
// tenant moving into the pool (its role, its catalog database) is taken
// away by MoveRelease from the Region and kind alone, as a migration that
// failed before recording its targets asks for it; and again without
// error.
func TestMoveReleaseOfAnUnrecordedSlice(t *testing.T) {
	e := newStackEnv(t)
	policy := func(tenantID, region string, out map[string]string) (string, error) {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + out["raw_bucket"] + `/*"}]}`, nil
	}
	p, err := provisioner.New(provisioner.Config{Engine: e.engine, Store: e.db, Tenants: e.svc, TenantRolePolicy: policy})
	if err != nil {
		t.Fatal(err)
	}
	mover := e.onboard(t, "mover", tenants.TierDedicated)
	var pl provisioner.Placement
	for ready := false; !ready; {
		if pl, ready, err = p.MoveTarget(t.Context(), mover, "eu-west-1", provisioner.KindPooled, 1); err != nil {
			t.Fatal(err)
		}
		if err := p.PollOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	role := filepath.Join(e.engine.Root, "iam", "roles", provisioner.TenantRoleName(mover.ID, "eu-west-1")+".json")
	db := filepath.Join(e.engine.Root, "eu-west-1", "catalog", pl.Outputs["glue_database"]+".json")
	for _, f := range []string{role, db} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("the cut slice: %v", err)
		}
	}
	for i := range 2 {
		gone, err := p.MoveRelease(t.Context(), provisioner.Placement{TenantID: mover.ID, Kind: provisioner.KindPooled,
			StackRecord: provisioner.StackRecord{Region: "eu-west-1", Attempt: 1}})
		if err != nil || !gone {
			t.Fatalf("release %d: gone %t, %v", i, gone, err)
		}
	}
	for _, f := range []string{role, db} {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("left after the release: %s (%v)", f, err)
		}
	}
}
