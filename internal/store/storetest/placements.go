package storetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// testTenantPlacements checks the placement read model: the tenant's
// tier and Regions with its placements, ready or not, in one read.
func testTenantPlacements(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2) // pooled, home eu-west-1, Regions eu-west-1 and us-east-1

	if _, err := b.TenantPlacements(t.Context(), "ten_missing"); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("placements of an unknown tenant: err = %v, want tenants.ErrNotFound", err)
	}
	got, err := b.TenantPlacements(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	want := placement.Tenant{ID: ids[0], Tier: placement.Pooled, HomeRegion: "eu-west-1", Regions: []string{"eu-west-1", "us-east-1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a tenant without placements (-want +got):\n%s", diff)
	}
	if _, err := got.Home(); !errors.Is(err, placement.ErrNotReady) {
		t.Errorf("home of a tenant without placements: err = %v, want ErrNotReady", err)
	}

	home := newPlacement(ids[0], "eu-west-1", provisioner.KindPooled, provisioner.StatusReady)
	home.Outputs = map[string]string{"profile_table": "cairn-pool-profiles", "raw_bucket": "cairn-pool-raw", "s3_prefix": "tenants/" + ids[0] + "/"}
	ensurePlacement(t, b, home)
	ensurePlacement(t, b, newPlacement(ids[0], "us-east-1", provisioner.KindPooled, provisioner.StatusCreating))
	ensurePlacement(t, b, newPlacement(ids[1], "eu-west-1", provisioner.KindPooled, provisioner.StatusReady))

	got, err = b.TenantPlacements(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	want.Placements = []placement.Placement{
		{Region: "eu-west-1", Kind: placement.Pooled, Ready: true, StackName: home.StackName, Outputs: home.Outputs},
		{Region: "us-east-1", Kind: placement.Pooled, StackName: "cairn-" + ids[0] + "-us-east-1", Outputs: map[string]string{"events_bucket": "cairn-events-" + ids[0]}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("placements by Region (-want +got):\n%s", diff)
	}
	pl, err := got.Home()
	if err != nil || pl.Table() != "cairn-pool-profiles" || pl.RawBucket() != "cairn-pool-raw" || pl.S3Prefix() != "tenants/"+ids[0]+"/" {
		t.Errorf("home = %+v, %v; want the ready eu-west-1 placement", pl, err)
	}
	if _, err := got.In("us-east-1"); !errors.Is(err, placement.ErrNotReady) {
		t.Errorf("a creating placement: err = %v, want ErrNotReady", err)
	}
}
