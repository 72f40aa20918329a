package placement_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-cdp/cairn/internal/placement"
)

// reader answers from a map and counts its reads; fail makes the next read
// fail.
type reader struct {
	tenants map[string]placement.Tenant
	reads   atomic.Int64
	fail    atomic.Bool
}

var errDown = errors.New("database down")

func (r *reader) TenantPlacements(_ context.Context, id string) (placement.Tenant, error) {
	r.reads.Add(1)
	if r.fail.Swap(false) {
		return placement.Tenant{}, errDown
	}
	return r.tenants[id], nil
}

func newReader() *reader {
	ready := placement.Placement{Region: "eu-west-1", Kind: placement.Pooled, Ready: true, StackName: "cairn-pool",
		Outputs: map[string]string{"profile_table": "cairn-pool-profiles", "raw_bucket": "raw", "s3_prefix": "tenants/ten_a/", "key_prefix": "TENANT#ten_a#",
			"glue_database": "cairn_pool_ten_a", "athena_workgroup": "cairn-pool"}}
	creating := placement.Placement{Region: "us-east-1", Kind: placement.Pooled, StackName: "cairn-pool"}
	return &reader{tenants: map[string]placement.Tenant{
		"ten_a": {ID: "ten_a", Tier: placement.Pooled, HomeRegion: "eu-west-1", Regions: []string{"eu-west-1", "us-east-1"}, Placements: []placement.Placement{ready, creating}},
		"ten_b": {ID: "ten_b", Tier: placement.Dedicated, HomeRegion: "us-east-1", Regions: []string{"us-east-1", "eu-west-1"}, Placements: []placement.Placement{ready, creating}},
	}}
}

func TestTenantIn(t *testing.T) {
	r := newReader()
	a := r.tenants["ten_a"]
	home, err := a.Home()
	if err != nil || home.Table() != "cairn-pool-profiles" || home.RawBucket() != "raw" || home.S3Prefix() != "tenants/ten_a/" || home.KeyPrefix() != "TENANT#ten_a#" ||
		home.GlueDatabase() != "cairn_pool_ten_a" || home.WorkGroup() != "cairn-pool" {
		t.Errorf("home = %+v, %v", home, err)
	}
	for name, tc := range map[string]struct {
		t      placement.Tenant
		region string
	}{
		"not ready":      {a, "us-east-1"},
		"none there":     {a, "ap-south-1"},
		"home not ready": {r.tenants["ten_b"], "us-east-1"},
	} {
		if _, err := tc.t.In(tc.region); !errors.Is(err, placement.ErrNotReady) {
			t.Errorf("%s: err = %v, want ErrNotReady", name, err)
		}
	}
	if _, err := r.tenants["ten_b"].Home(); !errors.Is(err, placement.ErrNotReady) {
		t.Errorf("home of ten_b: err = %v, want ErrNotReady", err)
	}
}

func TestLocatorReadsOncePerScope(t *testing.T) {
	r := newReader()
	l := placement.NewLocator(r)

	ctx := placement.Scope(t.Context())
	if placement.Scope(ctx) != ctx {
		t.Error("Scope within a scope opened another")
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.Home(ctx, "ten_a"); err != nil {
				t.Error(err)
			}
			if _, err := l.Home(ctx, "ten_b"); !errors.Is(err, placement.ErrNotReady) {
				t.Errorf("ten_b: err = %v, want ErrNotReady", err)
			}
		}()
	}
	wg.Wait()
	if n := r.reads.Load(); n != 2 {
		t.Errorf("40 lookups of 2 tenants in one scope read %d times, want 2", n)
	}

	r.reads.Store(0)
	for range 3 {
		if _, err := l.Home(t.Context(), "ten_a"); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.reads.Load(); n != 3 {
		t.Errorf("3 lookups outside a scope read %d times, want 3", n)
	}

	r.reads.Store(0)
	ctx = placement.Scope(t.Context())
	r.fail.Store(true)
	if _, err := l.Home(ctx, "ten_a"); !errors.Is(err, errDown) {
		t.Fatalf("err = %v, want the read's", err)
	}
	if _, err := l.Home(ctx, "ten_a"); err != nil {
		t.Fatalf("after a failed read: %v", err)
	}
	if n := r.reads.Load(); n != 2 {
		t.Errorf("a failed read was remembered: %d reads, want 2", n)
	}
}
