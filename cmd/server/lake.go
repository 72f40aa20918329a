package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/grants/pii"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/athena"
	"github.com/cairn-cdp/cairn/internal/lake/duckdb"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// newLake makes the refinery: on AWS's engines in AWS mode (Athena in
// each tenant's workgroup, Glue for the catalog, with settings), DuckDB
// over the local zones otherwise. The engine (*athena.Engine or
// *duckdb.Engine) is returned too: tenants' queries run on it. Its tables
// are classified by the grants broker (lakeClassifier).
func newLake(ctx context.Context, cfg *config, settings awsclient.Settings, db lake.Store, profileSvc *profiles.Service, grantSvc *grants.Service, prov *provisioner.Provisioner, placements *placement.Locator, fences *migration.Fences, tenantOf func(context.Context, string) (tenants.Tenant, error), now func() time.Time) (*lake.Service, lake.Engine, func() error, error) {
	var engine lake.Engine
	closeEngine := func() error { return nil }
	if cfg.Cloud == "aws" {
		// A pooled tenant's tables adopted into the pool's shared tables
		// take their grants along, through its data cells filters.
		adopted := func(ctx context.Context, tenant, region, database string) error {
			_, err := grantSvc.Rehome(ctx, tenant, region, database, database, true)
			return err
		}
		e, err := athena.New(ctx, athena.Config{AWS: settings, Adopted: adopted})
		if err != nil {
			return nil, nil, nil, err
		}
		engine = e
	} else {
		e, err := duckdb.New(duckdb.Config{Root: filepath.Join(cfg.DataDir, "zones")})
		if err != nil {
			return nil, nil, nil, err
		}
		engine, closeEngine = e, e.Close
	}
	svc, err := lake.New(lake.Config{Store: db, Engine: engine, Profiles: profileSvc, Locate: lakeLocator(placements, fences, tenantOf), Now: now,
		Classifier: newLakeClassifier(grantSvc, profileSvc),
		// A pooled tenant's own role reads its rows of the pool's shared
		// tables, through its data cells filter; a slice cut before pooled
		// tenants had roles gets its role first (granted at the next run).
		Readers: func(ctx context.Context, tenant string, loc lake.Location, tables []string) error {
			if _, err := prov.UpgradeSlice(ctx, tenant, loc.Region); err != nil {
				return fmt.Errorf("tenant role: %w", err)
			}
			return grantSvc.GrantOwnRole(ctx, tenant, loc.Region, tables)
		}})
	if err != nil {
		closeEngine()
		return nil, nil, nil, err
	}
	return svc, engine, closeEngine, nil
}

// lakeClassifier is the refinery's Classifier: pii.Classify with the
// tenant's identifier types (its identity configuration), the findings
// added to the table's LF-tags by the grants broker (AddFindings). It
// remembers the findings it last added per table, so that a sample that
// finds the same costs no catalog call.
type lakeClassifier struct {
	grants   *grants.Service
	profiles *profiles.Service
	mu       sync.Mutex
	added    map[string]string // tenant/region/database/table → fingerprint of the findings
}

func newLakeClassifier(g *grants.Service, p *profiles.Service) *lakeClassifier {
	return &lakeClassifier{grants: g, profiles: p, added: map[string]string{}}
}

// ClassifyTable implements lake.Classifier.
func (c *lakeClassifier) ClassifyTable(ctx context.Context, tenant string, loc lake.Location, t lake.Table, sample []map[string]any) error {
	idc, err := c.profiles.IdentityConfig(ctx, tenant)
	if err != nil {
		return err
	}
	idTypes := make([]string, len(idc.Identifiers))
	for i, r := range idc.Identifiers {
		idTypes[i] = r.Type
	}
	schema := make([]pii.Column, len(t.Columns))
	for i, col := range t.Columns {
		schema[i] = pii.Column{Name: col.Name, Type: lake.Athena.Type(col.Type)}
	}
	findings := pii.Classify(schema, sample, idTypes)
	h := sha256.New()
	for _, f := range findings {
		h.Write([]byte(f.String() + "\n"))
	}
	key, fp := tenant+"/"+loc.Region+"/"+loc.Database+"/"+t.Name, hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	same := c.added[key] == fp
	c.mu.Unlock()
	if same {
		return nil
	}
	if err := c.grants.AddFindings(ctx, tenant, loc.Region, t.Name, findings); err != nil {
		return err
	}
	c.mu.Lock()
	c.added[key] = fp
	c.mu.Unlock()
	return nil
}

// lakeLocator reads a tenant's zones from its home placement's outputs
// (placement.ErrNotReady before it has one, and while the tenant moves
// between tiers: the refinery leaves its zones alone while they are
// copied, and refines them in their new place after). Once the tenant is
// being offboarded (tenantOf says), its zones are not there either: no
// refinery run starts that teardown, which waits for the runs under way
// (lakeRefining), would have to wait for.
func lakeLocator(placements *placement.Locator, fences *migration.Fences, tenantOf func(context.Context, string) (tenants.Tenant, error)) func(context.Context, string) (lake.Location, error) {
	return func(ctx context.Context, tenant string) (lake.Location, error) {
		if fences.Migrating(tenant) {
			return lake.Location{}, placement.ErrNotReady
		}
		t, err := tenantOf(ctx, tenant)
		if err != nil {
			return lake.Location{}, err
		}
		if t.Status == tenants.StatusDeprovisioning || t.Status == tenants.StatusDeleted {
			return lake.Location{}, placement.ErrNotReady
		}
		home, err := placements.Home(ctx, tenant)
		if err != nil {
			return lake.Location{}, err
		}
		loc := lake.Location{Region: home.Region, RawBucket: home.RawBucket(), CleanBucket: home.CleanBucket(),
			CuratedBucket: home.CuratedBucket(), Prefix: home.S3Prefix(), Tenant: tenant,
			Database: home.GlueDatabase(), WorkGroup: home.WorkGroup(), Pooled: home.Kind == placement.Pooled}
		if loc.Pooled {
			loc.SharedDatabase = provisioner.PoolGlueDatabase()
		}
		return loc, nil
	}
}

// lakeRefining reports whether a refinery run of the tenant is under way,
// on any replica: the provisioner's teardown waits for it
// (provisioner.Config.Busy).
func lakeRefining(jobs interface {
	RunningJobArgs(ctx context.Context, kind string) ([][]byte, error)
}) func(context.Context, string) (bool, error) {
	return func(ctx context.Context, tenant string) (bool, error) {
		running, err := jobs.RunningJobArgs(ctx, lake.RefineArgs{}.Kind())
		if err != nil {
			return false, err
		}
		for _, raw := range running {
			var args lake.RefineArgs
			if err := json.Unmarshal(raw, &args); err == nil && args.TenantID == tenant {
				return true, nil
			}
		}
		return false, nil
	}
}

// lakeSweepArgs queues a refine job for every active tenant.
type lakeSweepArgs struct{}

func (lakeSweepArgs) Kind() string { return "lake_sweep" }

type lakeSweeper struct {
	river.WorkerDefaults[lakeSweepArgs]
	tenants *tenants.Service
	store   tenants.Store
}

func (w *lakeSweeper) Work(ctx context.Context, _ *river.Job[lakeSweepArgs]) error {
	p := tenants.ListParams{Status: tenants.StatusActive, Limit: 200}
	for {
		list, err := w.tenants.List(ctx, p)
		if err != nil {
			return err
		}
		if len(list) > 0 {
			err = w.store.InTx(ctx, func(tx tenants.Tx) error {
				for _, t := range list {
					if err := tx.JobInsert(ctx, lake.RefineArgs{TenantID: t.ID}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if len(list) < p.Limit {
			return nil
		}
		p.AfterSeq = list[len(list)-1].Seq
	}
}

// lakeJobs is the sweep, every interval (none when 0).
func lakeJobs(interval time.Duration) []*river.PeriodicJob {
	if interval == 0 {
		return nil
	}
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
			return lakeSweepArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}
