package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// activeTenant inserts a pooled tenant, active, with a ready pooled
// placement in its home Region (and only that Region).
func activeTenant(t *testing.T, b store.Backend) string {
	t.Helper()
	tn := newTenant(0)
	tn.Regions = []string{"eu-west-1"}
	id := insert(t, b, tn)[0].ID
	err := b.InTx(t.Context(), func(tx tenants.Tx) error {
		got, err := tx.TenantGet(t.Context(), id)
		if err != nil {
			return err
		}
		got.Status, got.Version = tenants.StatusActive, got.Version+1
		return tx.TenantUpdate(t.Context(), got)
	})
	if err != nil {
		t.Fatal(err)
	}
	pl := newPlacement(id, "eu-west-1", provisioner.KindPooled, provisioner.StatusReady)
	pl.StackName, pl.Outputs = "cairn-pool", map[string]string{"raw_bucket": "cairn-pool-raw", "s3_prefix": "tenants/" + id + "/"}
	ensurePlacement(t, b, pl)
	return id
}

func newMigration(tenantID string, at time.Time) migration.Migration {
	return migration.Migration{
		ID: "mig_" + tenantID, TenantID: tenantID, From: placement.Pooled, To: placement.Dedicated,
		Step: migration.StepProvision, State: migration.StateRunning, CreatedAt: at, UpdatedAt: at,
		Progress: migration.Progress{Attempt: 1, Sources: []migration.Home{{Region: "eu-west-1", Kind: placement.Pooled,
			StackName: "cairn-pool", Outputs: map[string]string{"raw_bucket": "cairn-pool-raw"}}}},
	}
}

// testTierMigrations checks a migration's record through its life: one
// running per tenant, updates at a version, the fence, the switch of the
// tenant's tier and placements in one transaction, and the end.
func testTierMigrations(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	id := activeTenant(t, b)
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	rec := audit.Event{Actor: "admin", Action: "tenant.migrate", TargetType: "migration", Outcome: audit.OutcomeAccepted}

	if _, err := b.MigrationLatest(ctx, id); !errors.Is(err, migration.ErrNotFound) {
		t.Fatalf("latest of a tenant without migrations: %v, want ErrNotFound", err)
	}
	m, err := b.MigrationCreate(ctx, newMigration(id, base), rec)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || m.Seq == 0 {
		t.Errorf("created: version %d seq %d", m.Version, m.Seq)
	}
	second := newMigration(id, base)
	second.ID = "mig_second"
	if _, err := b.MigrationCreate(ctx, second, rec); !errors.Is(err, migration.ErrRunning) {
		t.Fatalf("second running migration: %v, want ErrRunning", err)
	}
	got, err := b.MigrationLatest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("latest (-created +read):\n%s", diff)
	}
	running, err := b.MigrationRunning(ctx)
	if err != nil || len(running) != 1 || !running[id].IsZero() {
		t.Errorf("running = %v, %v; want the tenant, unfenced", running, err)
	}

	// Progress and the fence, at a version.
	m.Step, m.FencedAt, m.FenceUntil, m.UpdatedAt = migration.StepFence, base.Add(time.Minute), base.Add(2*time.Minute), base.Add(time.Minute)
	m.Progress.Targets = []migration.Home{{Region: "eu-west-1", Kind: placement.Dedicated, StackName: "cairn-x", TemplateVersion: "v9",
		Outputs: map[string]string{"raw_bucket": "cairn-x-raw", "glue_database": "cairn_x"}}}
	m.Progress.ObjectsCopied = 12
	stale := m
	if m, err = b.MigrationUpdate(ctx, m); err != nil {
		t.Fatal(err)
	}
	if m.Version != 2 || !m.FenceUntil.Equal(base.Add(2*time.Minute)) || m.Progress.ObjectsCopied != 12 {
		t.Errorf("updated: %+v", m)
	}
	if _, err := b.MigrationUpdate(ctx, stale); !errors.Is(err, migration.ErrConflict) {
		t.Errorf("stale update: %v, want ErrConflict", err)
	}
	if _, err := b.MigrationGet(ctx, "mig_missing"); !errors.Is(err, migration.ErrNotFound) {
		t.Errorf("get unknown: %v, want ErrNotFound", err)
	}
	if running, _ = b.MigrationRunning(ctx); !running[id].Equal(base.Add(2 * time.Minute)) {
		t.Errorf("fence = %v, want its end", running[id])
	}

	// The switch: tier, placement and migration together.
	m.Step, m.FenceUntil = migration.StepGrants, time.Time{}
	if m, err = b.MigrationSwitch(ctx, m, m.Progress.Targets); err != nil {
		t.Fatal(err)
	}
	where, err := b.TenantPlacements(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	home, err := where.Home()
	if err != nil || where.Tier != placement.Dedicated || home.Kind != placement.Dedicated || home.StackName != "cairn-x" || home.RawBucket() != "cairn-x-raw" {
		t.Errorf("after the switch: %+v, home %+v, %v", where, home, err)
	}
	if m.Step != migration.StepGrants || !m.FenceUntil.IsZero() {
		t.Errorf("switched migration: %+v", m)
	}
	// Again: the tenant is no longer pooled; nothing changes.
	again := m
	if _, err := b.MigrationSwitch(ctx, again, again.Progress.Targets); !errors.Is(err, migration.ErrConflict) {
		t.Errorf("second switch: %v, want ErrConflict", err)
	}
	if got, _ := b.MigrationGet(ctx, m.ID); got.Version != m.Version {
		t.Errorf("a refused switch changed the migration: version %d, want %d", got.Version, m.Version)
	}

	// Leases.
	claim := func(job int64, until, now time.Time, want bool) {
		t.Helper()
		if got, err := b.MigrationClaim(ctx, m.ID, job, until, now); err != nil || got != want {
			t.Fatalf("job %d claims until %s at %s: %v, %v; want %v", job, until.Format(time.TimeOnly), now.Format(time.TimeOnly), got, err, want)
		}
	}
	claim(1, base.Add(15*time.Second), base, true)
	claim(2, base.Add(20*time.Second), base.Add(5*time.Second), false)
	if lapsed, err := b.MigrationLapsed(ctx, base.Add(10*time.Second)); err != nil || len(lapsed) != 0 {
		t.Errorf("lapsed while held: %v, %v", lapsed, err)
	}
	if lapsed, err := b.MigrationLapsed(ctx, base.Add(16*time.Second)); err != nil || !lapsed[m.ID].Equal(base.Add(15*time.Second)) {
		t.Errorf("lapsed = %v, %v; want the migration at its lease's end", lapsed, err)
	}
	claim(2, base.Add(31*time.Second), base.Add(16*time.Second), true)

	// The end, announced with it; a new migration may start.
	m.Step, m.State, m.FinishedAt = migration.StepDone, migration.StateSucceeded, base.Add(time.Hour)
	ev := fleet.Event{ID: fleet.NewID(fleet.TenantMigrated, m.ID), Type: fleet.TenantMigrated, At: base.Add(time.Hour),
		Data: fleet.Data{TenantID: id, Tier: "dedicated", MigrationID: m.ID, At: fleet.FormatTime(base.Add(time.Hour))}}
	if m, err = b.MigrationUpdate(ctx, m, ev); err != nil {
		t.Fatal(err)
	}
	if !m.FinishedAt.Equal(base.Add(time.Hour)) {
		t.Errorf("finished at %v", m.FinishedAt)
	}
	events, err := b.FleetEventList(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		found = found || (e.ID == ev.ID && e.Data.MigrationID == m.ID)
	}
	if !found {
		t.Errorf("fleet outbox %+v lacks the migration's event", events)
	}
	claim(3, base.Add(2*time.Hour), base.Add(2*time.Hour), false) // finished: no lease
	if running, _ = b.MigrationRunning(ctx); len(running) != 0 {
		t.Errorf("running after the end: %v", running)
	}
	if _, err := b.MigrationCreate(ctx, second, rec); err != nil {
		t.Fatalf("a migration after the last ended: %v", err)
	}
	if latest, _ := b.MigrationLatest(ctx, id); latest.ID != second.ID {
		t.Errorf("latest = %s, want %s", latest.ID, second.ID)
	}
}
