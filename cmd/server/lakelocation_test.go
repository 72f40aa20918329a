package main

import (
	"context"
	"github.com/cairn-cdp/cairn/internal/migration"
	"testing"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/placement"
)

type placementsOf map[string]placement.Tenant

func (p placementsOf) TenantPlacements(_ context.Context, id string) (placement.Tenant, error) {
	return p[id], nil
}

// The lake's location comes from the home placement's outputs: the
// buckets and prefix, and for the Athena engine the tenant's Glue
// database and the workgroup its queries run in (the pool's, pooled).
func TestLakeLocator(t *testing.T) {
	out := map[string]string{"raw_bucket": "raw", "clean_bucket": "clean", "curated_bucket": "curated",
		"s3_prefix": "tenants/ten_a/", "glue_database": "cairn_pool_ten_a", "athena_workgroup": "cairn-pool"}
	locate := lakeLocator(placement.NewLocator(placementsOf{"ten_a": {ID: "ten_a", Tier: placement.Pooled, HomeRegion: "eu-west-1",
		Placements: []placement.Placement{{Region: "eu-west-1", Kind: placement.Pooled, Ready: true, Outputs: out}}}}), &migration.Fences{})
	got, err := locate(context.Background(), "ten_a")
	want := lake.Location{Region: "eu-west-1", RawBucket: "raw", CleanBucket: "clean", CuratedBucket: "curated", Prefix: "tenants/ten_a/",
		Tenant: "ten_a", Database: "cairn_pool_ten_a", SharedDatabase: "cairn_pool_shared", WorkGroup: "cairn-pool", Pooled: true}
	if err != nil || got != want {
		t.Errorf("location = %+v, %v; want %+v", got, err, want)
	}
}
