package drift_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/drift"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/templates"
)

// orderEngine records the Region of every DetectDrift call.
type orderEngine struct {
	provisioner.Engine
	mu      sync.Mutex
	regions []string
}

func (o *orderEngine) DetectDrift(ctx context.Context, region, stack string) (string, error) {
	o.mu.Lock()
	o.regions = append(o.regions, region)
	o.mu.Unlock()
	return o.Engine.DetectDrift(ctx, region, stack)
}

// TestDriftRounds checks every stack of two Regions on the local engine, a
// Region at a time and at most two detections at once: the stack whose
// raw zone was deleted is recorded DRIFTED with the bucket DELETED and
// announced once (a later round that finds the same drift announces
// nothing); the others are IN_SYNC.
func TestDriftRounds(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cairn.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	local := &provisioner.LocalEngine{Root: root}
	tsvc := tenants.NewService(db, nil)
	var drifted string
	for i, region := range []string{"us-east-1", "eu-west-1", "us-east-1", "eu-west-1", "eu-west-1"} {
		tn, err := tsvc.Onboard(ctx, tenants.OnboardParams{Name: "T", Slug: fmt.Sprintf("drift-%d", i), Tier: tenants.TierDedicated, HomeRegion: region})
		if err != nil {
			t.Fatal(err)
		}
		name := provisioner.DedicatedStackName(tn.ID)
		if err := local.CreateStack(ctx, provisioner.CreateStackInput{Region: region, Name: name, Template: templates.Dedicated(),
			Parameters: map[string]string{"TenantId": tn.ID}}); err != nil {
			t.Fatal(err)
		}
		if _, err := local.Stacks(ctx, region); err != nil {
			t.Fatal(err)
		}
		if _, err := db.PlacementEnsure(ctx, provisioner.Placement{TenantID: tn.ID, Kind: provisioner.KindDedicated,
			StackRecord: provisioner.StackRecord{Region: region, StackName: name, Status: provisioner.StatusReady, Attempt: 1}}); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			drifted = name
			if err := os.RemoveAll(filepath.Join(root, region, "buckets", name+"-raw")); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	engine := &orderEngine{Engine: local}
	d, err := drift.New(drift.Config{Store: db, Engine: engine, MaxInFlight: 2, Interval: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	round := func() {
		t.Helper()
		for range 20 {
			done, err := d.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				return
			}
		}
		t.Fatal("the round never ended")
	}
	round()
	want := []string{"eu-west-1", "eu-west-1", "eu-west-1", "us-east-1", "us-east-1"}
	if fmt.Sprint(engine.regions) != fmt.Sprint(want) {
		t.Fatalf("detections by Region: %v, want %v (a Region at a time)", engine.regions, want)
	}
	records, err := db.StackDriftList(ctx)
	if err != nil || len(records) != 5 {
		t.Fatalf("records: %v, %v", records, err)
	}
	for _, r := range records {
		switch {
		case r.StackName == drifted:
			if r.Status != provisioner.DriftDrifted || len(r.Resources) != 1 || r.Resources[0].LogicalID != "RawBucket" || r.Resources[0].Status != "DELETED" {
				t.Fatalf("drifted stack: %+v", r)
			}
		case r.Status != provisioner.DriftInSync || r.DetectionID != "":
			t.Fatalf("stack in sync: %+v", r)
		}
	}
	events := func() []fleet.Event {
		all, err := db.FleetEventList(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []fleet.Event
		for _, ev := range all {
			if ev.Type == fleet.StackDrifted {
				out = append(out, ev)
			}
		}
		return out
	}
	if got := events(); len(got) != 1 || got[0].Data.StackName != drifted || got[0].Data.DriftStatus != "DRIFTED" {
		t.Fatalf("stack.drifted events: %+v", got)
	}
	// Not due again within the interval; due after it, and the same drift
	// is not announced twice.
	if done, _ := d.RunOnce(ctx); !done {
		t.Fatal("a round started before the interval passed")
	}
	now = now.Add(time.Hour)
	round()
	if got := events(); len(got) != 1 {
		t.Fatalf("stack.drifted events after a second round: %+v", got)
	}
	if len(engine.regions) != 10 {
		t.Fatalf("%d detections after two rounds of 5 stacks", len(engine.regions))
	}
}

// refusingEngine refuses every drift detection, as the AWS emulator does.
type refusingEngine struct{ provisioner.Engine }

func (refusingEngine) DetectDrift(context.Context, string, string) (string, error) {
	return "", errors.New("DetectStackDrift is not implemented")
}

// TestDriftRefused records a stack whose detection is refused as UNKNOWN
// and ends the round, rather than asking again until the next one.
func TestDriftRefused(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cairn.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PoolEnsure(ctx, provisioner.Pool{StackRecord: provisioner.StackRecord{Region: "eu-west-1", StackName: provisioner.PoolStackName(), Status: provisioner.StatusReady, Attempt: 1}}); err != nil {
		t.Fatal(err)
	}
	d, err := drift.New(drift.Config{Store: db, Engine: refusingEngine{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if done, err := d.RunOnce(ctx); done || err == nil {
		t.Fatalf("first run: done %v, %v", done, err)
	}
	if done, err := d.RunOnce(ctx); !done || err != nil {
		t.Fatalf("second run: done %v, %v; want the round over", done, err)
	}
	r, err := db.StackDriftGet(ctx, "eu-west-1", provisioner.PoolStackName())
	if err != nil || r.Status != provisioner.DriftUnknown || r.DetectionID != "" {
		t.Fatalf("record: %+v, %v", r, err)
	}
}
