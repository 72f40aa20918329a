package profiles_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore/dynamotest"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// countedPlacements is the control-plane store's placement read, counted.
type countedPlacements struct {
	tenant placement.Tenant
	reads  atomic.Int64
}

func (c *countedPlacements) TenantPlacements(context.Context, string) (placement.Tenant, error) {
	c.reads.Add(1)
	return c.tenant, nil
}

// TestIngestLocatesOncePerScope ingests a batch through the DynamoDB
// store, which asks where the tenant's table is on every call, and the raw
// zone: within a placement.Scope (what the API opens per request) the
// tenant's placement is read once; outside one, on every call.
func TestIngestLocatesOncePerScope(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	const region = "us-east-1"
	table := dynamotest.Table(t, endpoint, region)
	tenant := tenants.NewID()
	reads := &countedPlacements{tenant: placement.Tenant{ID: tenant, Tier: placement.Pooled, HomeRegion: region, Regions: []string{region},
		Placements: []placement.Placement{{Region: region, Kind: placement.Pooled, Ready: true, StackName: "cairn-pool",
			Outputs: map[string]string{"profile_table": table, "raw_bucket": "cairn-pool-raw", "s3_prefix": "tenants/" + tenant + "/"}}}}}
	locate := profiles.PlacementLocator{Placements: placement.NewLocator(reads)}
	cfg := awstest.Config(region)
	st, err := dynamostore.New(t.Context(), dynamostore.Config{
		AWS: awsclient.Settings{AWS: &cfg, EndpointURL: endpoint, HTTPClient: &dynamotest.SerialTransactions{}}, Tables: locate.Table,
	})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, region, "buckets", "cairn-pool-raw"), 0o700); err != nil {
		t.Fatal(err)
	}
	svc := profiles.NewService(st, &rawzone.Local{Root: root, Locate: locate.RawZone}, nil)

	batch := func(n int) []profiles.Event {
		evs := make([]profiles.Event, 10)
		for i := range evs {
			raw := fmt.Sprintf(`{"type":"identify","messageId":"m-%d-%d","userId":"u-%d","traits":{"email":"u%d@example.com"}}`, n, i, i, i)
			e, err := profiles.ParseEvent(i, []byte(raw), "", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			evs[i] = e
		}
		return evs
	}
	if _, err := svc.Ingest(placement.Scope(t.Context()), tenant, batch(1)); err != nil {
		t.Fatal(err)
	}
	if n := reads.reads.Load(); n != 1 {
		t.Errorf("one request read the placement %d times, want once", n)
	}
	reads.reads.Store(0)
	if _, err := svc.Ingest(t.Context(), tenant, batch(2)); err != nil {
		t.Fatal(err)
	}
	n := reads.reads.Load()
	if n < 2 {
		t.Errorf("without a scope the placement was read %d times; the store's calls should each read it", n)
	}
	t.Logf("placement reads of a 10-event batch: 1 in a request's scope, %d without one (one per store and raw-zone call)", n)
}
