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

// TestPollingCostGrowsWithRegionsNotStacks puts 40 stacks in flight across
// two Regions and checks that one polling round reads each Region once.
func TestPollingCostGrowsWithRegionsNotStacks(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cairn.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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
				TenantID: tn.ID, Region: region, Kind: provisioner.KindDedicated, StackName: name,
				Status: provisioner.StatusCreating, Attempt: 1,
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
