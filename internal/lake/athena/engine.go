// Package athena is AWS mode's lake engine: the transformations run as
// Athena SQL (lake.Athena, Athena engine version 3) in the tenant's
// workgroup (the pool's for a pooled tenant), never in Cairn's process,
// over tables of the Glue Data Catalog. Tenants' own SQL runs there too,
// through Querier, signed with the tenant's credentials.
//
// # Layout
//
// A dedicated tenant has all its tables in its own Glue database
// (Location.Database, cairn_<tenant>). A pooled tenant has its raw and
// staging tables in its own database (cairn_<pool>_<tenant>, which the
// provisioner makes), and its clean and curated tables are the pool's:
// one table per name in the pool's database (Location.SharedDatabase,
// cairn_<pool>_shared), shared by every tenant of the pool, partitioned
// by tenant_id first and marked shared (table parameter cairn:shared =
// true), so that the grants broker grants them only through each
// tenant's data cells filter (tenant_id = '<tenant id>'). The engine
// creates the pool's database when it is missing, at a pooled tenant's
// first run: it needs no stack change, exists only once a pool has a
// lake, and its name follows from the pool's ID alone. A pooled tenant's
// runs read only the rows of its tenant_id partitions (every statement
// over a shared table carries tenant_id = '<tenant id>') and swap only
// those partitions; its data stays under its prefix of the pool's
// buckets. Clean and curated tables a pooled tenant still has in its own
// database (from before the pool shared them) become its partitions of
// the shared tables at its next run (adoptOwnTables). Under
// Location.Prefix of the zone buckets:
//
//   - raw_events, a JSON table over the raw bucket's events/ (partitions
//     dt, hh registered as they are refined);
//   - the clean tables (tracks, identifies, ...), partitioned by dt and hh
//     (tenant_id, dt, hh when shared), each partition at
//     clean/events/dt=D/hh=H/<version>/event_type=<type>/: a refine is
//     one UNLOAD of CleanEvents partitioned by event type, one scan of
//     the raw partition for the six tables;
//   - the curated tables at curated/<table>/<version>/ (a shared table's
//     tenant_id partition there);
//   - cairn_stage_<relation>, JSON tables over curated/_stage/<relation>/,
//     partitioned by run: the relations Cairn holds (the profile store's
//     snapshot, the erased-ID filter, the raw objects' arrival times),
//     written as NDJSON for one run and removed after it (or, when the
//     run was cut short, by the first run an hour on).
//
// # Atomicity
//
// UNLOAD writes into a new versioned prefix (it refuses a non-empty one);
// then one Glue call points the partition (UpdatePartition) or the curated
// table (UpdateTable; UpdatePartition of the tenant's partition when
// shared) at it, and the versions older than it are deleted.
// A query sees a partition's old rows or its new ones, never a mix; a
// query planned before the swap and still reading when the old version is
// deleted fails, and is retried by its caller. A run cut short leaves a
// version no partition names, which the next swap of that partition
// deletes (so an erased row never outlives the next purge of its
// partition).
//
// # Concurrency
//
// An Engine is safe for concurrent use. Runs for one tenant should not
// overlap (lake.Service runs them one at a time); if they do, the later
// swap wins and both versions stay readable until the next one.
package athena

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/athena"
	athenatypes "github.com/aws/aws-sdk-go-v2/service/athena/types"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Config configures an Engine.
type Config struct {
	AWS awsclient.Settings
	// Poll is the first wait between two reads of a running query's state
	// (DefaultPoll); each wait doubles it, up to MaxPoll (DefaultMaxPoll).
	Poll, MaxPoll time.Duration
	// Now stamps versions (time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Adopted, if set, is called when a pooled tenant's own clean and
	// curated tables are in the pool's shared tables, before they leave
	// its own database (named): the grants on them must follow (the
	// grants broker's Rehome onto the shared tables), or they would go
	// with the tables. An error keeps the tables for the next run.
	Adopted func(ctx context.Context, tenant, region, database string) error
}

// Defaults of Config.
const (
	DefaultPoll    = 200 * time.Millisecond
	DefaultMaxPoll = 5 * time.Second
)

// ErrQueryFailed is returned (wrapped, with Athena's reason) when a query
// execution ends FAILED or CANCELLED.
var ErrQueryFailed = errors.New("athena query failed")

// Engine is the Athena lake engine.
type Engine struct {
	cfg    Config
	s3     *awsclient.Regional[s3.Client]
	glue   *awsclient.Regional[glue.Client]
	athena *awsclient.Regional[athena.Client]
}

var _ lake.Engine = (*Engine)(nil)

// New returns an Engine. It loads the SDK's default configuration when
// cfg.AWS.AWS is nil and fails if that fails. It makes no call.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	b, err := cfg.AWS.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("athena engine: %w", err)
	}
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.MaxPoll = cmp.Or(cfg.MaxPoll, DefaultMaxPoll)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg: cfg,
		s3:  b.RegionalS3(),
		glue: awsclient.NewRegional(func(region string) *glue.Client {
			return glue.NewFromConfig(b.AWS, func(o *glue.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
		athena: awsclient.NewRegional(func(region string) *athena.Client {
			return athena.NewFromConfig(b.AWS, func(o *athena.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
	}, nil
}

// Dialect implements lake.Engine.
func (e *Engine) Dialect() lake.Dialect { return lake.Athena }

// tenant is one call's clients and location.
type tenant struct {
	e   *Engine
	loc lake.Location
	sc  scope
	// context is the database of the tenant's query executions (Athena's
	// QueryExecutionContext): the engine's statements name every table
	// with its database.
	context string
	s3      *s3.Client
	glue    *glue.Client
	athena  *athena.Client
}

func (e *Engine) tenant(loc lake.Location) (*tenant, error) {
	if loc.Database == "" || loc.WorkGroup == "" || loc.RawBucket == "" || loc.CleanBucket == "" || loc.CuratedBucket == "" {
		return nil, fmt.Errorf("athena engine: tenant %s: location lacks its database, workgroup or buckets", loc.Tenant)
	}
	t := &tenant{e: e, loc: loc, sc: scope{db: loc.Database, tables: loc.Database}, context: loc.Database}
	if loc.Pooled {
		if loc.SharedDatabase == "" || loc.SharedDatabase == loc.Database || poolRoot(loc) == "" {
			return nil, fmt.Errorf("athena engine: pooled tenant %s: location lacks the pool's database or its prefix", loc.Tenant)
		}
		t.sc.tables, t.sc.tenant = loc.SharedDatabase, loc.Tenant
	}
	var err error
	if t.s3, err = e.s3.Client(loc.Region); err != nil {
		return nil, fmt.Errorf("athena engine: %w", err)
	}
	if t.glue, err = e.glue.Client(loc.Region); err != nil {
		return nil, fmt.Errorf("athena engine: %w", err)
	}
	if t.athena, err = e.athena.Client(loc.Region); err != nil {
		return nil, fmt.Errorf("athena engine: %w", err)
	}
	return t, nil
}

// version names a new version prefix: time-ordered, so that the versions
// older than a partition's current one are those that sort before it.
func (e *Engine) version() string {
	return "v" + e.cfg.Now().UTC().Format("20060102T150405.000000000Z") + "-" + ids.Random(5)
}

// RawPartitions implements lake.Engine: it lists <prefix>events/.
func (e *Engine) RawPartitions(ctx context.Context, loc lake.Location) ([]lake.RawPartition, error) {
	t, err := e.tenant(loc)
	if err != nil {
		return nil, err
	}
	objects, err := t.list(ctx, loc.RawBucket, loc.Prefix+"events/")
	if err != nil {
		return nil, fmt.Errorf("raw partitions: %w", err)
	}
	byPartition := map[string]*lake.RawPartition{}
	for _, o := range objects {
		rel := strings.TrimPrefix(aws.ToString(o.Key), loc.Prefix)
		parts := strings.Split(rel, "/") // events, dt=, hh=, name
		if len(parts) != 4 || !strings.HasSuffix(parts[3], ".ndjson.gz") {
			continue
		}
		date, ok1 := strings.CutPrefix(parts[1], "dt=")
		hour, ok2 := strings.CutPrefix(parts[2], "hh=")
		if !ok1 || !ok2 {
			continue
		}
		p, err := lake.ParsePartition(date + "T" + hour)
		if err != nil {
			continue
		}
		rp := byPartition[p.String()]
		if rp == nil {
			rp = &lake.RawPartition{Partition: p}
			byPartition[p.String()] = rp
		}
		rp.Objects = append(rp.Objects, lake.RawObject{Key: rel, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified).UTC()})
	}
	out := make([]lake.RawPartition, 0, len(byPartition))
	for _, rp := range byPartition {
		out = append(out, *rp)
	}
	slices.SortFunc(out, func(a, b lake.RawPartition) int { return cmp.Compare(a.Partition.String(), b.Partition.String()) })
	return out, nil
}

// Refine implements lake.Engine: it stages the snapshot, the erased-ID
// filter and the objects' arrival times, registers the raw partition,
// UNLOADs CleanEvents into a new version cut by event type, and points
// each clean table's partition at its type's directory (dropping the
// partition of a table that got no row).
func (e *Engine) Refine(ctx context.Context, in lake.RefineInput) ([]lake.TableStats, error) {
	t, err := e.tenant(in.Location)
	if err != nil {
		return nil, err
	}
	p := in.Partition.Partition
	if err := t.ensureCatalog(ctx); err != nil {
		return nil, err
	}
	raw := rawTableInput(t.loc)
	if _, err := setPartition(ctx, t.glue, t.loc.Database, raw, []string{p.Date, p.Hour},
		s3URL(t.loc.RawBucket, fmt.Sprintf("%sevents/dt=%s/hh=%s/", t.loc.Prefix, p.Date, p.Hour))); err != nil {
		return nil, fmt.Errorf("refine %s: %w", p, err)
	}
	run := e.version()
	rels := []staged{objectsRelation(t.loc, in.Partition), erasedRelation(in.Erased)}
	rels = append(rels, identityRelations(in.Snapshot)...)
	if err := t.stage(ctx, run, rels); err != nil {
		return nil, fmt.Errorf("refine %s: %w", p, err)
	}
	defer t.unstage(run, rels)

	version := e.version()
	base := cleanPartitionPrefix(t.loc, p) + version + "/"
	q, err := refineSQL(t.loc.Database, p, run, s3URL(t.loc.CleanBucket, base))
	if err != nil {
		return nil, err
	}
	if _, err := t.query(ctx, q); err != nil {
		return nil, fmt.Errorf("refine %s: %w", p, err)
	}
	written, err := t.list(ctx, t.loc.CleanBucket, base)
	if err != nil {
		return nil, fmt.Errorf("refine %s: %w", p, err)
	}
	var out []lake.TableStats
	var filled []lake.Table
	for _, tbl := range lake.TablesIn(lake.ZoneClean) {
		dir := base + eventTypeColumn + "=" + tbl.EventType + "/"
		st := lake.TableStats{Table: tbl.Name, Partition: p.String(), Bytes: sizeUnder(written, dir)}
		if err := t.swapClean(ctx, tbl, p, dir, st.Bytes > 0); err != nil {
			return nil, fmt.Errorf("refine %s: %w", p, err)
		}
		if st.Bytes > 0 {
			filled = append(filled, tbl)
		}
		out = append(out, st)
	}
	if err := t.countInto(ctx, out, filled, &p, nil); err != nil {
		return nil, fmt.Errorf("refine %s: %w", p, err)
	}
	return out, nil
}

// cleanPartitionPrefix is where the versions of a clean partition are.
func cleanPartitionPrefix(loc lake.Location, p lake.Partition) string {
	return fmt.Sprintf("%sevents/dt=%s/hh=%s/", loc.Prefix, p.Date, p.Hour)
}

// swapClean points a clean table's partition at dir (or drops it when
// the new version has no file for it), then deletes the table's older
// versions of the partition.
func (t *tenant) swapClean(ctx context.Context, tbl lake.Table, p lake.Partition, dir string, filled bool) error {
	values := t.values(p.Date, p.Hour)
	in := t.tableInput(tbl, t.loc.CleanBucket, t.loc.Prefix+tbl.Name+"/")
	if filled {
		if _, err := setPartition(ctx, t.glue, t.sc.tables, in, values, s3URL(t.loc.CleanBucket, dir)); err != nil {
			return err
		}
	} else if _, err := dropPartition(ctx, t.glue, t.sc.tables, tbl.Name, values); err != nil {
		return err
	}
	// dir is <partition>/<version>/event_type=<type>/: delete this type's
	// directories of the versions before it.
	base := cleanPartitionPrefix(t.loc, p)
	current := strings.SplitN(strings.TrimPrefix(dir, base), "/", 2)[0]
	objects, err := t.list(ctx, t.loc.CleanBucket, base)
	if err != nil {
		return err
	}
	var stale []string
	for _, o := range objects {
		parts := strings.SplitN(strings.TrimPrefix(aws.ToString(o.Key), base), "/", 3)
		if len(parts) == 3 && parts[0] < current && parts[1] == eventTypeColumn+"="+tbl.EventType {
			stale = append(stale, aws.ToString(o.Key))
		}
	}
	return t.delete(ctx, t.loc.CleanBucket, stale)
}

// ensureCatalog creates the raw, clean and staging tables when missing
// (and, for a pooled tenant, the pool's database). Curated tables are
// made by Curate, at their first version.
func (t *tenant) ensureCatalog(ctx context.Context) error {
	db := t.loc.Database
	if t.sc.tenant != "" {
		if err := ensureDatabase(ctx, t.glue, t.sc.tables); err != nil {
			return err
		}
	}
	if _, err := ensureTable(ctx, t.glue, db, rawTableInput(t.loc), false); err != nil {
		return err
	}
	for _, tbl := range lake.TablesIn(lake.ZoneClean) {
		if _, err := ensureTable(ctx, t.glue, t.sc.tables, t.tableInput(tbl, t.loc.CleanBucket, t.loc.Prefix+tbl.Name+"/"), false); err != nil {
			return err
		}
	}
	for _, rel := range stagedRelations {
		if _, err := ensureTable(ctx, t.glue, db, stageTableInput(t.loc, rel), false); err != nil {
			return err
		}
	}
	if t.sc.tenant != "" {
		return t.adoptOwnTables(ctx)
	}
	return nil
}

// adoptOwnTables moves a pooled tenant's clean and curated tables that
// are still in its own database (where its lake tables were before the
// pool shared them) into the pool's shared tables: each of their
// partitions (a curated table's location) becomes the tenant's partition
// of the shared table, unless the tenant has that one already, and the
// table is then dropped, once Config.Adopted has moved the grants on it.
// The data stays where it is, under the tenant's prefix. It costs one
// GetTables call once there is nothing left to move.
func (t *tenant) adoptOwnTables(ctx context.Context) error {
	own := t.loc.Database
	var found []gluetypes.Table
	pages := glue.NewGetTablesPaginator(t.glue, &glue.GetTablesInput{DatabaseName: aws.String(own)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("glue get tables %s: %w", own, err)
		}
		for _, gt := range page.TableList {
			if tbl, ok := lake.TableNamed(aws.ToString(gt.Name)); ok && (tbl.Zone == lake.ZoneClean || tbl.Zone == lake.ZoneCurated) {
				found = append(found, gt)
			}
		}
	}
	for _, gt := range found {
		tbl, _ := lake.TableNamed(aws.ToString(gt.Name))
		bucket := t.loc.CleanBucket
		if tbl.Zone == lake.ZoneCurated {
			bucket = t.loc.CuratedBucket
		}
		in := t.tableInput(tbl, bucket, "")
		if _, err := ensureTable(ctx, t.glue, t.sc.tables, in, false); err != nil {
			return err
		}
		if len(gt.PartitionKeys) == 0 {
			if sd := gt.StorageDescriptor; sd != nil && aws.ToString(sd.Location) != "" {
				if err := addPartition(ctx, t.glue, t.sc.tables, in, t.values(), aws.ToString(sd.Location)); err != nil {
					return err
				}
			}
		} else {
			parts, err := partitions(ctx, t.glue, own, tbl.Name, "")
			if err != nil {
				return err
			}
			for _, p := range parts {
				if len(p.Values) != len(gt.PartitionKeys) || p.StorageDescriptor == nil {
					continue
				}
				if err := addPartition(ctx, t.glue, t.sc.tables, in, t.values(p.Values...), aws.ToString(p.StorageDescriptor.Location)); err != nil {
					return err
				}
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	if hook := t.e.cfg.Adopted; hook != nil {
		if err := hook(ctx, t.loc.Tenant, t.loc.Region, own); err != nil {
			return fmt.Errorf("move the grants on %s's tables: %w", own, err)
		}
	}
	for _, gt := range found {
		_, err := t.glue.DeleteTable(ctx, &glue.DeleteTableInput{DatabaseName: aws.String(own), Name: gt.Name})
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("glue delete table %s.%s: %w", own, aws.ToString(gt.Name), err)
		}
		t.e.cfg.Logger.InfoContext(ctx, "lake table moved into the pool's shared table", "tenant_id", t.loc.Tenant,
			"from", own+"."+aws.ToString(gt.Name), "to", t.sc.tables+"."+aws.ToString(gt.Name))
	}
	return nil
}

// Curate implements lake.Engine: it stages the snapshot and UNLOADs every
// curated table's transformation into a new version, all at once, then
// points each table at its version.
func (e *Engine) Curate(ctx context.Context, in lake.CurateInput) ([]lake.TableStats, error) {
	t, err := e.tenant(in.Location)
	if err != nil {
		return nil, err
	}
	if err := t.ensureCatalog(ctx); err != nil {
		return nil, err
	}
	run := e.version()
	rels := identityRelations(in.Snapshot)
	rels = append(rels, mergesRelation(in.Snapshot), membershipsRelation(in.Snapshot))
	traits, err := traitsRelation(in.Snapshot)
	if err != nil {
		return nil, err
	}
	rels = append(rels, traits)
	if err := t.stage(ctx, run, rels); err != nil {
		return nil, fmt.Errorf("curate: %w", err)
	}
	defer t.unstage(run, rels)

	version := e.version()
	tables := lake.TablesIn(lake.ZoneCurated)
	queries := make([]string, len(tables))
	for i, tbl := range tables {
		if queries[i], err = curateSQL(t.sc, tbl, run, s3URL(t.loc.CuratedBucket, t.loc.Prefix+tbl.Name+"/"+version+"/")); err != nil {
			return nil, err
		}
	}
	if err := t.queryAll(ctx, queries); err != nil {
		return nil, fmt.Errorf("curate: %w", err)
	}
	out := make([]lake.TableStats, len(tables))
	for i, tbl := range tables {
		st, err := t.swapCurated(ctx, tbl, version)
		if err != nil {
			return nil, fmt.Errorf("curate: %w", err)
		}
		out[i] = st
	}
	if err := t.countInto(ctx, out, nil, nil, tables); err != nil {
		return nil, fmt.Errorf("curate: %w", err)
	}
	return out, nil
}

// swapCurated points a curated table (a shared one's tenant partition) at
// its new version, creating the table at its first, and deletes the older
// versions.
func (t *tenant) swapCurated(ctx context.Context, tbl lake.Table, version string) (lake.TableStats, error) {
	root := t.loc.Prefix + tbl.Name + "/"
	in := t.tableInput(tbl, t.loc.CuratedBucket, root+version+"/")
	if _, err := ensureTable(ctx, t.glue, t.sc.tables, in, false); err != nil {
		return lake.TableStats{}, err
	}
	if t.sc.tenant != "" {
		if _, err := setPartition(ctx, t.glue, t.sc.tables, in, t.values(), s3URL(t.loc.CuratedBucket, root+version+"/")); err != nil {
			return lake.TableStats{}, err
		}
	}
	objects, err := t.list(ctx, t.loc.CuratedBucket, root)
	if err != nil {
		return lake.TableStats{}, err
	}
	var stale []string
	for _, o := range objects {
		if v, _, _ := strings.Cut(strings.TrimPrefix(aws.ToString(o.Key), root), "/"); v < version {
			stale = append(stale, aws.ToString(o.Key))
		}
	}
	if err := t.delete(ctx, t.loc.CuratedBucket, stale); err != nil {
		return lake.TableStats{}, err
	}
	return lake.TableStats{Table: tbl.Name, Bytes: sizeUnder(objects, root+version+"/")}, nil
}

// Purge implements lake.Engine: one query finds the clean partitions
// holding erased IDs, each is UNLOADed again without them into a new
// version and swapped, and one query counts the curated rows naming them.
func (e *Engine) Purge(ctx context.Context, in lake.PurgeInput) ([]lake.PurgeResult, []lake.TableStats, error) {
	t, err := e.tenant(in.Location)
	if err != nil {
		return nil, nil, err
	}
	if err := t.ensureCatalog(ctx); err != nil {
		return nil, nil, err
	}
	run := e.version()
	rels := []staged{erasedRelation(in.IDs)}
	if err := t.stage(ctx, run, rels); err != nil {
		return nil, nil, fmt.Errorf("purge: %w", err)
	}
	defer t.unstage(run, rels)
	id, err := t.query(ctx, purgeHitsSQL(t.sc, run))
	if err != nil {
		return nil, nil, fmt.Errorf("purge: %w", err)
	}
	rows, err := t.results(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("purge: %w", err)
	}
	type hit struct {
		table lake.Table
		p     lake.Partition
		n     int64
		dir   string
	}
	var hits []hit
	version := e.version()
	for _, r := range rows {
		tbl, ok := lake.TableNamed(r[0])
		p, err := lake.ParsePartition(r[1] + "T" + r[2])
		if !ok || err != nil || tbl.Zone != lake.ZoneClean {
			return nil, nil, fmt.Errorf("purge: unexpected row %q", r)
		}
		n, _ := strconv.ParseInt(r[3], 10, 64)
		hits = append(hits, hit{table: tbl, p: p, n: n,
			dir: cleanPartitionPrefix(t.loc, p) + version + "/" + eventTypeColumn + "=" + tbl.EventType + "/"})
	}
	queries := make([]string, len(hits))
	for i, h := range hits {
		queries[i] = purgeRewriteSQL(t.sc, h.table, h.p, run, s3URL(t.loc.CleanBucket, h.dir))
	}
	if err := t.queryAll(ctx, queries); err != nil {
		return nil, nil, fmt.Errorf("purge: %w", err)
	}
	clean := lake.PurgeResult{Zone: lake.ZoneClean}
	var rewritten []lake.TableStats
	for _, h := range hits {
		written, err := t.list(ctx, t.loc.CleanBucket, h.dir)
		if err != nil {
			return nil, nil, fmt.Errorf("purge: %w", err)
		}
		st := lake.TableStats{Table: h.table.Name, Partition: h.p.String(), Bytes: sizeUnder(written, h.dir)}
		if err := t.swapClean(ctx, h.table, h.p, h.dir, st.Bytes > 0); err != nil {
			return nil, nil, fmt.Errorf("purge: %w", err)
		}
		one := []lake.TableStats{st}
		if st.Bytes > 0 {
			if err := t.countInto(ctx, one, []lake.Table{h.table}, &h.p, nil); err != nil {
				return nil, nil, fmt.Errorf("purge: %w", err)
			}
		}
		rewritten = append(rewritten, one[0])
		clean.Partitions++
		clean.Rows += h.n
	}

	curated := lake.PurgeResult{Zone: lake.ZoneCurated}
	var existing []lake.Table
	for _, tbl := range lake.TablesIn(lake.ZoneCurated) {
		if len(tbl.ProfileColumns()) == 0 {
			continue
		}
		location, err := t.curatedLocation(ctx, tbl)
		if err != nil {
			return nil, nil, fmt.Errorf("purge: %w", err)
		}
		if location != "" {
			existing = append(existing, tbl)
		}
	}
	if len(existing) > 0 {
		id, err := t.query(ctx, purgeCuratedSQL(t.sc, run, existing))
		if err != nil {
			return nil, nil, fmt.Errorf("purge: %w", err)
		}
		rows, err := t.results(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("purge: %w", err)
		}
		for _, r := range rows {
			if n, _ := strconv.ParseInt(r[len(r)-1], 10, 64); n > 0 {
				curated.Partitions++
				curated.Rows += n
			}
		}
	}
	return []lake.PurgeResult{clean, curated}, rewritten, nil
}

// Stats implements lake.Engine: the partitions and tables from Glue,
// their bytes from S3 and their rows from one count query (which reads
// Parquet footers only).
func (e *Engine) Stats(ctx context.Context, loc lake.Location) ([]lake.TableStats, error) {
	t, err := e.tenant(loc)
	if err != nil {
		return nil, err
	}
	var out []lake.TableStats
	var clean, curated []lake.Table
	for _, tbl := range lake.Tables {
		if tbl.Partitioned {
			parts, err := t.partitions(ctx, tbl.Name)
			if err != nil {
				return nil, fmt.Errorf("stats: %w", err)
			}
			for _, p := range parts {
				if p.StorageDescriptor == nil {
					continue
				}
				bytes, err := t.sizeAt(ctx, aws.ToString(p.StorageDescriptor.Location))
				if err != nil {
					return nil, fmt.Errorf("stats: %w", err)
				}
				out = append(out, lake.TableStats{Table: tbl.Name, Partition: p.Values[0] + "T" + p.Values[1], Bytes: bytes})
			}
			if len(parts) > 0 {
				clean = append(clean, tbl)
			}
			continue
		}
		location, err := t.curatedLocation(ctx, tbl)
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		if location == "" {
			continue
		}
		bytes, err := t.sizeAt(ctx, location)
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		out = append(out, lake.TableStats{Table: tbl.Name, Bytes: bytes})
		curated = append(curated, tbl)
	}
	if err := t.countInto(ctx, out, clean, nil, curated); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return out, nil
}

// Sample implements lake.Engine with one Athena query in the tenant's
// workgroup (sampleSQL): the cheapest correct reader in AWS mode, as Cairn
// reads no Parquet itself and the query scans only the partitions named,
// up to the limit. Values come back as text; a NULL is nil.
func (e *Engine) Sample(ctx context.Context, loc lake.Location, tbl lake.Table, partitions []string, limit int) ([]map[string]any, error) {
	t, err := e.tenant(loc)
	if err != nil {
		return nil, err
	}
	id, err := t.query(ctx, sampleSQL(t.sc, tbl, partitions, limit))
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", tbl.Name, err)
	}
	rows, err := t.results(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("sample %s: %w", tbl.Name, err)
	}
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		row := make(map[string]any, len(tbl.Columns))
		for i, c := range tbl.Columns {
			if i < len(r) {
				row[c.Name] = orNull(r[i])
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// countInto counts the rows of the clean tables' partitions (p's only,
// when p is set) and of the curated tables, and sets them in stats.
func (t *tenant) countInto(ctx context.Context, stats []lake.TableStats, clean []lake.Table, p *lake.Partition, curated []lake.Table) error {
	if len(clean)+len(curated) == 0 {
		return nil
	}
	id, err := t.query(ctx, countSQL(t.sc, clean, p, curated))
	if err != nil {
		return err
	}
	rows, err := t.results(ctx, id)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if len(r) != 4 {
			return fmt.Errorf("count: unexpected row %q", r)
		}
		partition := ""
		if r[1] != "" {
			partition = r[1] + "T" + r[2]
		}
		n, err := strconv.ParseInt(r[3], 10, 64)
		if err != nil {
			return fmt.Errorf("count: unexpected row %q", r)
		}
		for i := range stats {
			if stats[i].Table == r[0] && stats[i].Partition == partition {
				stats[i].Rows = n
			}
		}
	}
	return nil
}

// values are a clean partition's values (date, hour) or a curated
// table's (none), behind the tenant's ID when the table is shared.
func (t *tenant) values(v ...string) []string {
	if t.sc.tenant == "" {
		return v
	}
	return append([]string{t.sc.tenant}, v...)
}

// tableInput is a clean or curated table, at bucket's key for a
// dedicated tenant's; a shared table is partitioned by tenant_id first,
// marked shared and located at the pool's prefix of bucket, the same for
// every tenant of the pool (its partitions say where each tenant's rows
// are).
func (t *tenant) tableInput(tbl lake.Table, bucket, key string) *gluetypes.TableInput {
	if t.sc.tenant == "" {
		return tableInput(tbl, s3URL(bucket, key))
	}
	return sharedTableInput(tbl, s3URL(bucket, poolRoot(t.loc)))
}

// poolRoot is the pool's prefix, under which each tenant's Prefix is:
// "tenants/" of "tenants/<id>/" ("" if the prefix is not so).
func poolRoot(loc lake.Location) string {
	root, ok := strings.CutSuffix(loc.Prefix, loc.Tenant+"/")
	if !ok || loc.Tenant == "" || root == "" {
		return ""
	}
	return root
}

// partitions lists a clean table's partitions of the tenant, their
// values the partition's date and hour: of a shared table, those with
// the tenant's ID (the Glue expression selects them, and what comes
// back is checked all the same).
func (t *tenant) partitions(ctx context.Context, table string) ([]gluetypes.Partition, error) {
	expr := ""
	if t.sc.tenant != "" {
		expr = t.sc.own()
	}
	all, err := partitions(ctx, t.glue, t.sc.tables, table, expr)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, p := range all {
		if t.sc.tenant != "" {
			if len(p.Values) != 3 || p.Values[0] != t.sc.tenant {
				continue
			}
			p.Values = p.Values[1:]
		}
		if len(p.Values) == 2 {
			out = append(out, p)
		}
	}
	return out, nil
}

// curatedLocation is where a curated table's rows (the tenant's
// partition's, for a shared table) are, "" when it has none.
func (t *tenant) curatedLocation(ctx context.Context, tbl lake.Table) (string, error) {
	if t.sc.tenant != "" {
		got, err := t.glue.GetPartition(ctx, &glue.GetPartitionInput{DatabaseName: aws.String(t.sc.tables), TableName: aws.String(tbl.Name),
			PartitionValues: t.values()})
		if isNotFound(err) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("glue get partition %s %v: %w", tbl.Name, t.values(), err)
		}
		if got.Partition.StorageDescriptor == nil {
			return "", nil
		}
		return aws.ToString(got.Partition.StorageDescriptor.Location), nil
	}
	got, err := t.glue.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(t.sc.tables), Name: aws.String(tbl.Name)})
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("glue get table %s: %w", tbl.Name, err)
	}
	return aws.ToString(got.Table.StorageDescriptor.Location), nil
}

// query starts a query execution in the tenant's workgroup and database
// and waits for it to succeed, returning its ID.
func (t *tenant) query(ctx context.Context, sql string) (string, error) {
	id, err := t.start(ctx, sql)
	if err != nil {
		return "", err
	}
	_, err = t.wait(ctx, id)
	return id, err
}

// queryAll runs the queries at once (Athena queues what exceeds the
// account's concurrency) and waits for every one.
func (t *tenant) queryAll(ctx context.Context, queries []string) error {
	started := make([]string, 0, len(queries))
	for _, q := range queries {
		id, err := t.start(ctx, q)
		if err != nil {
			t.stop(started)
			return err
		}
		started = append(started, id)
	}
	errs := make([]error, len(started))
	var wg sync.WaitGroup
	for i, id := range started {
		wg.Go(func() { _, errs[i] = t.wait(ctx, id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startTimeout bounds a StartQueryExecution call, retries included.
const startTimeout = 30 * time.Second

func (t *tenant) start(ctx context.Context, sql string) (string, error) {
	in := &athena.StartQueryExecutionInput{
		QueryString:           aws.String(sql),
		WorkGroup:             aws.String(t.loc.WorkGroup),
		QueryExecutionContext: &athenatypes.QueryExecutionContext{Catalog: aws.String("AwsDataCatalog"), Database: aws.String(t.context)},
		// The same token on the SDK's retries: a start whose answer was
		// lost is not run twice.
		ClientRequestToken: aws.String(ids.Random(20)),
	}
	if t.loc.Pooled {
		// The pool's workgroup does not enforce a result location: a
		// pooled tenant's results go under its own prefix of the pool's
		// athena-results/, which its credentials may read.
		in.ResultConfiguration = &athenatypes.ResultConfiguration{
			OutputLocation: aws.String(s3URL(t.loc.CuratedBucket, "athena-results/"+t.loc.Tenant+"/")),
		}
	}
	// The start is not cut short when ctx ends: an execution Athena started
	// whose ID was lost could not be stopped. The caller's wait stops it.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	out, err := t.athena.StartQueryExecution(sctx, in)
	if err != nil {
		return "", fmt.Errorf("athena start query: %w", err)
	}
	return aws.ToString(out.QueryExecutionId), nil
}

// wait polls the query execution until it ends, and returns it as it
// ended (with ErrQueryFailed unless it succeeded); a cancelled ctx stops
// it (StopQueryExecution) and returns ctx's error.
func (t *tenant) wait(ctx context.Context, id string) (*athenatypes.QueryExecution, error) {
	delay := t.e.cfg.Poll
	for {
		out, err := t.athena.GetQueryExecution(ctx, &athena.GetQueryExecutionInput{QueryExecutionId: aws.String(id)})
		if err != nil {
			if ctx.Err() != nil {
				t.stop([]string{id})
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("athena query %s: %w", id, err)
		}
		qe := out.QueryExecution
		switch qe.Status.State {
		case athenatypes.QueryExecutionStateSucceeded:
			return qe, nil
		case athenatypes.QueryExecutionStateFailed, athenatypes.QueryExecutionStateCancelled:
			return qe, fmt.Errorf("%w: %s %s: %s", ErrQueryFailed, id, qe.Status.State, failure(qe.Status))
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			t.stop([]string{id})
			return nil, ctx.Err()
		case <-timer.C:
		}
		delay = min(2*delay, t.e.cfg.MaxPoll)
	}
}

// stop cancels query executions, best effort: a run given up on must not
// go on writing.
func (t *tenant) stop(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range ids {
		if _, err := t.athena.StopQueryExecution(ctx, &athena.StopQueryExecutionInput{QueryExecutionId: aws.String(id)}); err != nil {
			t.e.cfg.Logger.WarnContext(ctx, "athena stop query", "query_execution_id", id, "error", err)
		}
	}
}

// failure is why a query execution failed or was cancelled.
func failure(st *athenatypes.QueryExecutionStatus) string {
	reason := aws.ToString(st.StateChangeReason)
	if st.AthenaError != nil && reason == "" {
		reason = aws.ToString(st.AthenaError.ErrorMessage)
	}
	return reason
}

// results reads a finished query's rows as text (NULL as ""), without the
// header row Athena puts first.
func (t *tenant) results(ctx context.Context, id string) ([][]string, error) {
	var out [][]string
	err := t.eachRow(ctx, id, 0, nil, func(data []athenatypes.Datum) error {
		row := make([]string, len(data))
		for i, d := range data {
			row[i] = aws.ToString(d.VarCharValue)
		}
		out = append(out, row)
		return nil
	})
	return out, err
}

// eachRow reads a finished SELECT's result with GetQueryResults, a page
// of pageSize rows at a time (Athena's default when 0): columns, if set,
// is given the result's columns once, then row each row, without the
// header row Athena puts first. An error of either stops the reading and
// is returned.
func (t *tenant) eachRow(ctx context.Context, id string, pageSize int32, columns func([]athenatypes.ColumnInfo) error, row func([]athenatypes.Datum) error) error {
	in := &athena.GetQueryResultsInput{QueryExecutionId: aws.String(id)}
	if pageSize > 0 {
		in.MaxResults = aws.Int32(pageSize)
	}
	pages := athena.NewGetQueryResultsPaginator(t.athena, in)
	header := true
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("athena query results %s: %w", id, err)
		}
		if page.ResultSet == nil {
			continue
		}
		if columns != nil {
			var cols []athenatypes.ColumnInfo
			if page.ResultSet.ResultSetMetadata != nil {
				cols = page.ResultSet.ResultSetMetadata.ColumnInfo
			}
			if err := columns(cols); err != nil {
				return err
			}
			columns = nil
		}
		for _, r := range page.ResultSet.Rows {
			if header {
				header = false
				continue // the column names
			}
			if err := row(r.Data); err != nil {
				return err
			}
		}
	}
	return nil
}

// staged is a relation to stage and its rows, each a JSON object.
type staged struct {
	rel  lake.Relation
	rows []map[string]any
}

// stagedRelations are the relations Cairn stages (each has a Glue table).
var stagedRelations = []lake.Relation{
	lake.RelObjects, lake.RelErased, lake.RelMembers, lake.RelIdentifiers,
	lake.RelMerges, lake.RelMemberships, lake.RelMemberTraits,
}

func stageRoot(loc lake.Location, rel lake.Relation) string {
	return loc.Prefix + "_stage/" + rel.Name + "/"
}

func stageDir(loc lake.Location, rel lake.Relation, run string) string {
	return stageRoot(loc, rel) + "run=" + run + "/"
}

// staleStage is how old a run's staged relations are when another run
// removes them: a run that left them was cut short (none lasts an hour).
const staleStage = time.Hour

// stage writes each relation's rows as one NDJSON object of the run and
// registers the run's partition of its table. It first removes what runs
// cut short left staged: the snapshot holds identifiers, which must not
// linger past an erasure.
func (t *tenant) stage(ctx context.Context, run string, rels []staged) error {
	if err := t.sweepStage(ctx); err != nil {
		return err
	}
	for _, s := range rels {
		if len(s.rows) == 0 {
			continue // no partition: the run reads no row
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, r := range s.rows {
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("stage %s: %w", s.rel.Name, err)
			}
		}
		dir := stageDir(t.loc, s.rel, run)
		if _, err := t.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(t.loc.CuratedBucket), Key: aws.String(dir + "data.ndjson"),
			Body: bytes.NewReader(buf.Bytes()), ContentType: aws.String("application/x-ndjson")}); err != nil {
			return fmt.Errorf("stage %s: %w", s.rel.Name, err)
		}
		if _, err := setPartition(ctx, t.glue, t.loc.Database, stageTableInput(t.loc, s.rel), []string{run},
			s3URL(t.loc.CuratedBucket, dir)); err != nil {
			return fmt.Errorf("stage %s: %w", s.rel.Name, err)
		}
	}
	return nil
}

// sweepStage removes the staged relations of runs older than staleStage:
// their objects and their Glue partitions.
func (t *tenant) sweepStage(ctx context.Context) error {
	cutoff := "v" + t.e.cfg.Now().Add(-staleStage).UTC().Format("20060102T150405.000000000Z")
	for _, rel := range stagedRelations {
		root := stageRoot(t.loc, rel)
		objects, err := t.list(ctx, t.loc.CuratedBucket, root)
		if err != nil {
			return err
		}
		var stale []string
		runs := map[string]bool{}
		for _, o := range objects {
			dir, _, _ := strings.Cut(strings.TrimPrefix(aws.ToString(o.Key), root), "/")
			if run, ok := strings.CutPrefix(dir, "run="); ok && run < cutoff {
				stale = append(stale, aws.ToString(o.Key))
				runs[run] = true
			}
		}
		for run := range runs {
			if _, err := dropPartition(ctx, t.glue, t.loc.Database, stageTable(rel), []string{run}); err != nil {
				return err
			}
		}
		if err := t.delete(ctx, t.loc.CuratedBucket, stale); err != nil {
			return err
		}
	}
	return nil
}

// unstage removes what stage wrote, best effort: a failure is logged, and
// the next run's sweepStage removes it an hour on.
func (t *tenant) unstage(run string, rels []staged) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range rels {
		if len(s.rows) == 0 {
			continue
		}
		var errs []error
		if _, err := dropPartition(ctx, t.glue, t.loc.Database, stageTable(s.rel), []string{run}); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, t.delete(ctx, t.loc.CuratedBucket, []string{stageDir(t.loc, s.rel, run) + "data.ndjson"}))
		if err := errors.Join(errs...); err != nil {
			t.e.cfg.Logger.WarnContext(ctx, "lake unstage", "tenant_id", t.loc.Tenant, "relation", s.rel.Name, "error", err)
		}
	}
}

// stageTime is how a timestamp is staged: ISO 8601 to the millisecond
// (Athena's timestamp precision), which the stage CTEs read back with the
// dialect's ParseTimestamp.
func stageTime(at time.Time) any {
	if at.IsZero() {
		return nil
	}
	return at.UTC().Format("2006-01-02T15:04:05.000Z")
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func objectsRelation(loc lake.Location, rp lake.RawPartition) staged {
	s := staged{rel: lake.RelObjects}
	for _, o := range rp.Objects {
		// As "$path" names the object.
		s.rows = append(s.rows, map[string]any{"raw_object": s3URL(loc.RawBucket, loc.Prefix+o.Key), "received_at": stageTime(o.Modified)})
	}
	return s
}

func erasedRelation(erased []string) staged {
	s := staged{rel: lake.RelErased}
	for _, id := range erased {
		s.rows = append(s.rows, map[string]any{"id": id})
	}
	return s
}

func identityRelations(snap profiles.Snapshot) []staged {
	members := staged{rel: lake.RelMembers}
	for _, m := range snap.Members {
		members.rows = append(members.rows, map[string]any{"member_id": m.ID, "root": m.Root,
			"created_at": stageTime(m.CreatedAt), "updated_at": stageTime(m.UpdatedAt), "event": orNull(m.Event)})
	}
	identifiers := staged{rel: lake.RelIdentifiers}
	for _, id := range snap.Identifiers {
		identifiers.rows = append(identifiers.rows, map[string]any{"member_id": id.Member, "type": id.Type, "value": id.Value,
			"first_seen": stageTime(id.FirstSeen), "event": orNull(id.Event)})
	}
	return []staged{members, identifiers}
}

func mergesRelation(snap profiles.Snapshot) staged {
	s := staged{rel: lake.RelMerges}
	for _, g := range snap.Merges {
		for _, m := range g.Members {
			s.rows = append(s.rows, map[string]any{"root": g.Root, "merged_profile_id": g.MergedProfileID, "member_id": m,
				"merged_at": stageTime(g.At), "event": orNull(g.Event)})
		}
	}
	return s
}

func membershipsRelation(snap profiles.Snapshot) staged {
	s := staged{rel: lake.RelMemberships}
	for _, m := range snap.Memberships {
		s.rows = append(s.rows, map[string]any{"profile_id": m.ProfileID, "segment_id": m.SegmentID, "entered_at": stageTime(m.EnteredAt)})
	}
	return s
}

// traitsRelation stages each trait's value as JSON text.
func traitsRelation(snap profiles.Snapshot) (staged, error) {
	s := staged{rel: lake.RelMemberTraits}
	for _, m := range snap.Members {
		for name, v := range m.Traits {
			j, err := json.Marshal(v.Value)
			if err != nil {
				return staged{}, fmt.Errorf("member %s trait %s: %w", m.ID, name, err)
			}
			s.rows = append(s.rows, map[string]any{"member_id": m.ID, "name": name, "value": string(j), "set_at": stageTime(v.At)})
		}
	}
	return s, nil
}

// list returns every object under prefix.
func (t *tenant) list(ctx context.Context, bucket, prefix string) ([]s3types.Object, error) {
	var out []s3types.Object
	pages := s3.NewListObjectsV2Paginator(t.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3 list %s/%s: %w", bucket, prefix, err)
		}
		out = append(out, page.Contents...)
	}
	return out, nil
}

// maxDeleteObjects is the most keys one DeleteObjects request may carry.
const maxDeleteObjects = 1000

func (t *tenant) delete(ctx context.Context, bucket string, keys []string) error {
	for chunk := range slices.Chunk(keys, maxDeleteObjects) {
		objs := make([]s3types.ObjectIdentifier, len(chunk))
		for i, k := range chunk {
			objs[i] = s3types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := t.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
		if err != nil {
			return fmt.Errorf("s3 delete %s: %w", bucket, err)
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("s3 delete %s/%s: %s", bucket, aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
	}
	return nil
}

// sizeAt sums the sizes of the objects under an s3:// location.
func (t *tenant) sizeAt(ctx context.Context, location string) (int64, error) {
	bucket, prefix, ok := parseS3URL(location)
	if !ok {
		return 0, fmt.Errorf("location %q is not s3://bucket/prefix", location)
	}
	objects, err := t.list(ctx, bucket, prefix)
	if err != nil {
		return 0, err
	}
	return sizeUnder(objects, prefix), nil
}

func sizeUnder(objects []s3types.Object, prefix string) int64 {
	var n int64
	for _, o := range objects {
		if strings.HasPrefix(aws.ToString(o.Key), prefix) {
			n += aws.ToInt64(o.Size)
		}
	}
	return n
}

func s3URL(bucket, key string) string { return "s3://" + bucket + "/" + key }

func parseS3URL(u string) (bucket, prefix string, ok bool) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	return bucket, prefix, bucket != ""
}
