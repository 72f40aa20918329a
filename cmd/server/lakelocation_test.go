package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/postgres"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

type placementsOf map[string]placement.Tenant

func (p placementsOf) TenantPlacements(_ context.Context, id string) (placement.Tenant, error) {
	return p[id], nil
}

// The lake's location comes from the home placement's outputs: the
// buckets and prefix, and for the Athena engine the tenant's Glue
// database and the workgroup its queries run in (the pool's, pooled).
// A tenant being offboarded has none.
func TestLakeLocator(t *testing.T) {
	out := map[string]string{"raw_bucket": "raw", "clean_bucket": "clean", "curated_bucket": "curated",
		"s3_prefix": "tenants/ten_a/", "glue_database": "cairn_pool_ten_a", "athena_workgroup": "cairn-pool"}
	status := tenants.StatusActive
	locate := lakeLocator(placement.NewLocator(placementsOf{"ten_a": {ID: "ten_a", Tier: placement.Pooled, HomeRegion: "eu-west-1",
		Placements: []placement.Placement{{Region: "eu-west-1", Kind: placement.Pooled, Ready: true, Outputs: out}}}}), &migration.Fences{},
		func(_ context.Context, id string) (tenants.Tenant, error) {
			return tenants.Tenant{ID: id, Status: status}, nil
		})
	got, err := locate(context.Background(), "ten_a")
	want := lake.Location{Region: "eu-west-1", RawBucket: "raw", CleanBucket: "clean", CuratedBucket: "curated", Prefix: "tenants/ten_a/",
		Tenant: "ten_a", Database: "cairn_pool_ten_a", SharedDatabase: "cairn_pool_shared", WorkGroup: "cairn-pool", Pooled: true}
	if err != nil || got != want {
		t.Errorf("location = %+v, %v; want %+v", got, err, want)
	}
	for _, status = range []tenants.Status{tenants.StatusDeprovisioning, tenants.StatusDeleted} {
		if got, err := locate(context.Background(), "ten_a"); !errors.Is(err, placement.ErrNotReady) {
			t.Errorf("location of a tenant %s = %+v, %v; want ErrNotReady", status, got, err)
		}
	}
}

// lakeRefining sees a refinery run under way for its tenant alone, and
// none once it has ended, on either database.
func TestLakeRefining(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, open := range map[string]func(t *testing.T) store.Backend{
		"sqlite": func(t *testing.T) store.Backend {
			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cairn.db"), log)
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		"postgres": func(t *testing.T) store.Backend {
			db, err := postgres.Open(t.Context(), testdb.Postgres(t), log)
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := open(t)
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			started, release := make(chan struct{}), make(chan struct{})
			workers := river.NewWorkers()
			river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[lake.RefineArgs]) error {
				close(started)
				<-release
				return nil
			}))
			stop, err := db.StartWorkers(t.Context(), store.WorkerConfig{Workers: workers, PollInterval: 20 * time.Millisecond, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = stop(context.Background()) })
			refining := lakeRefining(db)
			if busy, err := refining(t.Context(), "ten_a"); err != nil || busy {
				t.Fatalf("before any run: %v, %v", busy, err)
			}
			if err := db.InTx(t.Context(), func(tx tenants.Tx) error { return tx.JobInsert(t.Context(), lake.RefineArgs{TenantID: "ten_a"}) }); err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(time.Minute):
				t.Fatal("the refine job never started")
			}
			for id, want := range map[string]bool{"ten_a": true, "ten_b": false} {
				if busy, err := refining(t.Context(), id); err != nil || busy != want {
					t.Errorf("%s while ten_a's run is under way: %v, %v; want %v", id, busy, err, want)
				}
			}
			close(release)
			deadline := time.Now().Add(time.Minute)
			for {
				busy, err := refining(t.Context(), "ten_a")
				if err != nil {
					t.Fatal(err)
				}
				if !busy {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("ten_a's run still under way a minute after it returned")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
