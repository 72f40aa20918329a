package provisioner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// countingEngine counts Stacks calls per Region.
type countingEngine struct {
	provisioner.Engine
	mu     sync.Mutex
	stacks map[string]int
}

func (c *countingEngine) Stacks(ctx context.Context, region string) (map[string]provisioner.Stack, error) {
	c.mu.Lock()
	c.stacks[region]++
	c.mu.Unlock()
	return c.Engine.Stacks(ctx, region)
}

// openDB opens a migrated embedded store for the test.
func openDB(t *testing.T, log *slog.Logger) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cairn.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestPollingCostGrowsWithRegionsNotStacks puts 40 stacks in flight across
// two Regions and checks that one polling round reads each Region once.
func TestPollingCostGrowsWithRegionsNotStacks(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := openDB(t, log)
	svc := tenants.NewService(db, nil)
	engine := &countingEngine{Engine: &provisioner.LocalEngine{Root: t.TempDir()}, stacks: map[string]int{}}
	p, err := provisioner.New(provisioner.Config{Engine: engine, Store: db, Tenants: svc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 20 {
		tn, err := svc.Onboard(ctx, tenants.OnboardParams{
			Name: "T", Slug: fmt.Sprintf("poll-%02d", i), Tier: tenants.TierDedicated,
			HomeRegion: "us-east-1", Regions: []string{"eu-west-1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tn.ID)
		for _, region := range tn.Regions {
			name := provisioner.DedicatedStackName(tn.ID)
			if _, err := db.PlacementEnsure(ctx, provisioner.Placement{
				TenantID: tn.ID, Kind: provisioner.KindDedicated, StackRecord: provisioner.StackRecord{
					Region: region, StackName: name, Status: provisioner.StatusCreating, Attempt: 1,
				},
			}); err != nil {
				t.Fatal(err)
			}
			if err := engine.CreateStack(ctx, provisioner.CreateStackInput{Region: region, Name: name, Parameters: map[string]string{"TenantId": tn.ID}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if engine.stacks["us-east-1"] != 1 || engine.stacks["eu-west-1"] != 1 || len(engine.stacks) != 2 {
		t.Fatalf("Stacks calls per Region in one round: %v; want 1 each", engine.stacks)
	}
	for _, id := range ids {
		list, err := db.PlacementList(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, pl := range list {
			if pl.Status != provisioner.StatusReady || pl.Outputs["raw_bucket"] == "" {
				t.Fatalf("after one round %s/%s is %s: %v", id, pl.Region, pl.Status, pl.Outputs)
			}
		}
	}
	// Nothing in flight: the next round reads nothing.
	clear(engine.stacks)
	if err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(engine.stacks) != 0 {
		t.Fatalf("idle round read %v", engine.stacks)
	}
}

// failingEngine reports every stack as rolled back.
type failingEngine struct{ provisioner.Engine }

func (f failingEngine) Stacks(ctx context.Context, region string) (map[string]provisioner.Stack, error) {
	stacks, err := f.Engine.Stacks(ctx, region)
	for name, st := range stacks {
		st.Status, st.Reason = provisioner.StackRollbackComplete, "The following resource(s) failed to create: [RawZoneBucket]."
		stacks[name] = st
	}
	return stacks, err
}

// changedMeanwhile is the tenant service with a change (an admin's) landing
// between the provisioner's reading of a tenant and its failure verdict.
type changedMeanwhile struct{ *tenants.Service }

func (c changedMeanwhile) MarkFailed(ctx context.Context, id string, version int64, reason string) (tenants.Tenant, error) {
	name := "Changed meanwhile"
	if _, err := c.Update(ctx, id, tenants.UpdateParams{Name: &name}); err != nil {
		return tenants.Tenant{}, err
	}
	return c.Service.MarkFailed(ctx, id, version, reason)
}

// TestStaleFailureVerdictIsDropped: a stack's failure fails its tenant only
// at the version the poller read; after a change since (a retry, say) the
// verdict is dropped, so it cannot undo the change, and the placement
// still records the failure for the tenant's job to judge again.
func TestStaleFailureVerdictIsDropped(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := openDB(t, log)
	svc := tenants.NewService(db, nil)
	engine := failingEngine{&provisioner.LocalEngine{Root: t.TempDir()}}
	p, err := provisioner.New(provisioner.Config{Engine: engine, Store: db, Tenants: changedMeanwhile{svc}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	tn, err := svc.Onboard(ctx, tenants.OnboardParams{
		Name: "T", Slug: "stale-verdict", Tier: tenants.TierDedicated, HomeRegion: "eu-west-1", Regions: []string{"eu-west-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	name := provisioner.DedicatedStackName(tn.ID)
	if _, err := db.PlacementEnsure(ctx, provisioner.Placement{
		TenantID: tn.ID, Kind: provisioner.KindDedicated, StackRecord: provisioner.StackRecord{
			Region: "eu-west-1", StackName: name, Status: provisioner.StatusCreating, Attempt: 1,
		},
	}); err != nil {
		t.Fatal(err)
	}
	if err := engine.CreateStack(ctx, provisioner.CreateStackInput{Region: "eu-west-1", Name: name, Parameters: map[string]string{"TenantId": tn.ID}}); err != nil {
		t.Fatal(err)
	}
	if err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	pl, err := db.PlacementGet(ctx, tn.ID, "eu-west-1")
	if err != nil || pl.Status != provisioner.StatusFailed {
		t.Fatalf("placement after the poll: %+v, %v; want failed", pl, err)
	}
	got, err := svc.Get(ctx, tn.ID)
	if err != nil || got.Status != tenants.StatusProvisioning || got.Name != "Changed meanwhile" {
		t.Fatalf("tenant after a verdict on a stale version: %s %q, %v; want provisioning, renamed", got.Status, got.Name, err)
	}
}
