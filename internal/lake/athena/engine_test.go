package athena_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsathena "github.com/aws/aws-sdk-go-v2/service/athena"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/awsfault"
	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/athena"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// region is this package's own: moto's queue of canned Athena results is
// per account and Region, and no other test uses this one.
const region = "ap-northeast-3"

// scriptedAthena stands in for what Athena does that moto does not: moto
// records query executions but runs no SQL, so an UNLOAD writes nothing.
// It sits under the engine's SDK clients, records every query started
// (its SQL, workgroup and database), and on an UNLOAD puts the files the
// script says Athena would have written under its TO prefix, before the
// call reaches moto.
type scriptedAthena struct {
	t      *testing.T
	s3     *s3.Client
	next   http.Client
	mu     sync.Mutex
	starts []startedQuery
	// files returns the files (relative keys, contents) an UNLOAD writes.
	files func(sql string) map[string]string
	// onUnload, if set, sees each UNLOAD as it starts.
	onUnload func(sql string)
	// around, if set, sends each request on (next) in place of Do, to
	// read it and its answer.
	around func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error)
}

type startedQuery struct {
	SQL, WorkGroup, Database string
}

var unloadTo = regexp.MustCompile(`\) TO 's3://([^/']+)/([^']*)' WITH \(`)

func (s *scriptedAthena) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") == "AmazonAthena.StartQueryExecution" {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var in struct {
			QueryString           string
			WorkGroup             string
			QueryExecutionContext struct{ Database string }
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.starts = append(s.starts, startedQuery{in.QueryString, in.WorkGroup, in.QueryExecutionContext.Database})
		s.mu.Unlock()
		if strings.HasPrefix(in.QueryString, "UNLOAD") {
			if s.onUnload != nil {
				s.onUnload(in.QueryString)
			}
			m := unloadTo.FindStringSubmatch(in.QueryString)
			if m == nil {
				s.t.Errorf("UNLOAD without a TO location:\n%s", in.QueryString)
			} else if s.files != nil {
				for name, content := range s.files(in.QueryString) {
					if _, err := s.s3.PutObject(req.Context(), &s3.PutObjectInput{Bucket: aws.String(m[1]), Key: aws.String(m[2] + name),
						Body: strings.NewReader(content)}); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if s.around != nil {
		return s.around(req, s.next.Do)
	}
	return s.next.Do(req)
}

func (s *scriptedAthena) queries() []startedQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.starts)
}

type fixture struct {
	endpoint string
	loc      lake.Location
	engine   *athena.Engine
	script   *scriptedAthena
	s3       *s3.Client
	glue     *glue.Client
	athena   *awsathena.Client
	proxy    *awsfault.Proxy
}

func newFixture(t *testing.T, pooled bool) *fixture {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	ctx := context.Background()
	cfg := awstest.Config(region)
	f := &fixture{endpoint: endpoint}
	f.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true })
	f.glue = glue.NewFromConfig(cfg, func(o *glue.Options) { o.BaseEndpoint = aws.String(endpoint) })
	f.athena = awsathena.NewFromConfig(cfg, func(o *awsathena.Options) { o.BaseEndpoint = aws.String(endpoint) })

	id := "ten_" + strings.ToLower(ids.Random(5))
	suffix := strings.ToLower(ids.Random(5))
	f.loc = lake.Location{Region: region, Tenant: id, RawBucket: "cairn-raw-" + suffix, CleanBucket: "cairn-clean-" + suffix,
		CuratedBucket: "cairn-curated-" + suffix, Database: "cairn_" + id, WorkGroup: "cairn-" + id}
	if pooled {
		f.loc.Prefix, f.loc.Pooled, f.loc.Database, f.loc.WorkGroup = "tenants/"+id+"/", true, "cairn_pool_"+id, "cairn-pool-"+suffix
		// The engine makes the pool's database at the first run.
		f.loc.SharedDatabase = "cairn_pool" + suffix + "_shared"
	}
	for _, b := range []string{f.loc.RawBucket, f.loc.CleanBucket, f.loc.CuratedBucket} {
		if _, err := f.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b),
			CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}}); err != nil {
			awstest.Made(t, err)
		}
	}
	if _, err := f.glue.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String(f.loc.Database)}}); err != nil {
		awstest.Made(t, err)
	}
	if _, err := f.athena.CreateWorkGroup(ctx, &awsathena.CreateWorkGroupInput{Name: aws.String(f.loc.WorkGroup)}); err != nil {
		t.Fatal(err)
	}
	proxy, err := awsfault.New(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	f.proxy = proxy
	f.script = &scriptedAthena{t: t, s3: f.s3}
	f.engine, err = athena.New(ctx, athena.Config{
		AWS:  awsclient.Settings{AWS: &cfg, EndpointURL: proxy.URL, HTTPClient: f.script, MaxBackoff: time.Millisecond},
		Poll: time.Millisecond, MaxPoll: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// results queues moto's answers to the next query executions started, in
// order: one per query, each a header row then rows.
func (f *fixture) results(t *testing.T, answers ...[][]string) {
	t.Helper()
	type datum struct {
		VarCharValue *string `json:",omitempty"`
	}
	type row struct{ Data []datum }
	var results []any
	for _, a := range answers {
		var rows []row
		for _, r := range a {
			var d []datum
			for _, v := range r {
				if v == "" {
					d = append(d, datum{})
				} else {
					d = append(d, datum{aws.String(v)})
				}
			}
			rows = append(rows, row{d})
		}
		results = append(results, map[string]any{"rows": rows, "column_info": []any{}})
	}
	f.postResults(t, results)
}

// postResults queues moto's answers to the next query executions'
// GetQueryResults, in order.
func (f *fixture) postResults(t *testing.T, results []any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"region": region, "results": results})
	resp, err := http.Post(f.endpoint+"/moto-api/static/athena/query-results", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("moto query results: %s", resp.Status)
	}
}

var countHeader = []string{"table_name", "dt", "hh", "n"}

func (f *fixture) put(t *testing.T, bucket, key, body string) {
	t.Helper()
	if _, err := f.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) keys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	var out []string
	pages := s3.NewListObjectsV2Paginator(f.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out = append(out, aws.ToString(o.Key))
		}
	}
	return out
}

// sibling is another pooled tenant of f's pool (f pooled): the pool's
// buckets, workgroup and shared database, its own prefix and database.
func (f *fixture) sibling(t *testing.T) lake.Location {
	t.Helper()
	id := "ten_" + strings.ToLower(ids.Random(5))
	loc := f.loc
	loc.Tenant, loc.Prefix, loc.Database = id, "tenants/"+id+"/", "cairn_pool_"+id
	if _, err := f.glue.CreateDatabase(context.Background(), &glue.CreateDatabaseInput{DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String(loc.Database)}}); err != nil {
		awstest.Made(t, err)
	}
	return loc
}

// tables is the database of loc's clean and curated tables.
func tables(loc lake.Location) string {
	if loc.SharedDatabase != "" {
		return loc.SharedDatabase
	}
	return loc.Database
}

// of is the database a table of loc is in, and the values of its
// partition that has values (a shared table's start with the tenant).
func of(loc lake.Location, table string, values []string) (string, []string) {
	if table == "raw_events" || strings.HasPrefix(table, "cairn_stage_") {
		return loc.Database, values
	}
	if loc.SharedDatabase != "" {
		return loc.SharedDatabase, append([]string{loc.Tenant}, values...)
	}
	return loc.Database, values
}

func (f *fixture) table(t *testing.T, name string) *gluetypes.Table {
	t.Helper()
	db, _ := of(f.loc, name, nil)
	out, err := f.glue.GetTable(context.Background(), &glue.GetTableInput{DatabaseName: aws.String(db), Name: aws.String(name)})
	if err != nil {
		t.Fatalf("table %s: %v", name, err)
	}
	return out.Table
}

// partition returns a partition's location, "" when there is none.
func (f *fixture) partition(t *testing.T, table string, values ...string) string {
	t.Helper()
	return partitionOf(t, f.glue, f.loc, table, values...)
}

// partitionOf returns the location of loc's partition of a table, ""
// when there is none.
func partitionOf(t *testing.T, g *glue.Client, loc lake.Location, table string, values ...string) string {
	t.Helper()
	db, values := of(loc, table, values)
	out, err := g.GetPartition(context.Background(), &glue.GetPartitionInput{DatabaseName: aws.String(db),
		TableName: aws.String(table), PartitionValues: values})
	var nf *gluetypes.EntityNotFoundException
	if errors.As(err, &nf) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Partition.StorageDescriptor.Location)
}

func columnsOf(cols []gluetypes.Column) string {
	var out []string
	for _, c := range cols {
		out = append(out, aws.ToString(c.Name)+" "+aws.ToString(c.Type))
	}
	return strings.Join(out, ", ")
}

func wantColumns(t lake.Table) string {
	types := map[lake.ColumnType]string{lake.String: "string", lake.JSON: "string", lake.Timestamp: "timestamp", lake.BigInt: "bigint", lake.Date: "date"}
	var out []string
	for _, c := range t.Columns {
		out = append(out, c.Name+" "+types[c.Type])
	}
	return strings.Join(out, ", ")
}

var at = time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)

var snapshot = profiles.Snapshot{
	Members: []profiles.SnapshotMember{
		{ID: "prof_a", Root: "prof_a", CreatedAt: at, UpdatedAt: at, Event: "m1",
			Traits: map[string]profiles.SnapshotTrait{"email": {Value: "a@example.com", At: at}}},
		{ID: "prof_b", Root: "prof_a", CreatedAt: at, UpdatedAt: at, Event: "m2"},
	},
	Identifiers: []profiles.SnapshotIdentifier{{Member: "prof_a", Type: "user_id", Value: "u1", FirstSeen: at, Event: "m1"}},
	Merges:      []profiles.SnapshotMerge{{Root: "prof_a", MergedProfileID: "prof_b", Members: []string{"prof_b"}, At: at, Event: "m2"}},
}

// TestEngineOnEmulator runs the engine's calls against moto: the catalog
// (Glue tables with the lake's schemas and partitions at versioned
// locations, swapped on a re-refine), the staged relations, the query
// executions in the tenant's workgroup and database, and the SQL each
// sends, which must parse as Trino's.
func TestEngineOnEmulator(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		name := "dedicated"
		if pooled {
			name = "pooled"
		}
		t.Run(name, func(t *testing.T) { testEngine(t, pooled) })
	}
}

func testEngine(t *testing.T, pooled bool) {
	ctx := context.Background()
	f := newFixture(t, pooled)
	loc := f.loc
	raw := loc.Prefix + "events/dt=2026-11-26/hh=10/"
	f.put(t, loc.RawBucket, raw+"a.ndjson.gz", "x")
	f.put(t, loc.RawBucket, raw+"b.ndjson.gz", "xy")
	f.put(t, loc.RawBucket, raw+"b.ndjson.gz.tmp", "ignored")
	f.put(t, loc.RawBucket, loc.Prefix+"events/dt=2026-11-26/hh=11/c.ndjson.gz", "xyz")
	f.put(t, loc.RawBucket, loc.Prefix+"firehose-errors/dt=2026-11-26/hh=10/d.ndjson.gz", "no")

	parts, err := f.engine.RawPartitions(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Partition.String() != "2026-11-26T10" || len(parts[0].Objects) != 2 ||
		parts[0].Objects[0].Key != "events/dt=2026-11-26/hh=10/a.ndjson.gz" || parts[0].Objects[1].Size != 2 || parts[1].Partition.String() != "2026-11-26T11" {
		t.Fatalf("raw partitions: %+v", parts)
	}

	// Refine: one UNLOAD, cut by event type, then a count.
	var staged map[string]string
	f.script.onUnload = func(sql string) {
		// The staged relations are in S3 while the query runs.
		staged = map[string]string{}
		for _, k := range f.keys(t, loc.CuratedBucket, loc.Prefix+"_stage/") {
			out, err := f.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(loc.CuratedBucket), Key: aws.String(k)})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			staged[strings.Split(strings.TrimPrefix(k, loc.Prefix+"_stage/"), "/")[0]] = string(b)
		}
	}
	f.script.files = func(string) map[string]string {
		return map[string]string{"event_type=track/part-0.parquet": "tracks!", "event_type=identify/part-0.parquet": "id"}
	}
	f.results(t, nil, [][]string{countHeader, {"tracks", "2026-11-26", "10", "3"}, {"identifies", "2026-11-26", "10", "1"}})
	stats, err := f.engine.Refine(ctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0], Snapshot: snapshot, Erased: []string{"prof_gone"}})
	if err != nil {
		t.Fatal(err)
	}
	f.script.onUnload = nil
	if !strings.Contains(staged["objects"], `"raw_object":"s3://`+loc.RawBucket+"/"+raw+`a.ndjson.gz"`) ||
		!strings.Contains(staged["members"], `"created_at":"2026-11-26T10:30:00.000Z","event":"m2","member_id":"prof_b","root":"prof_a"`) ||
		!strings.Contains(staged["erased"], `"id":"prof_gone"`) || !strings.Contains(staged["identifiers"], `"value":"u1"`) {
		t.Errorf("staged while the UNLOAD ran: %v", staged)
	}
	if left := f.keys(t, loc.CuratedBucket, loc.Prefix+"_stage/"); len(left) > 0 {
		t.Errorf("staged objects left after the refine: %v", left)
	}
	byTable := map[string]lake.TableStats{}
	for _, s := range stats {
		byTable[s.Table] = s
	}
	if len(stats) != 6 || byTable["tracks"].Rows != 3 || byTable["tracks"].Bytes != int64(len("tracks!")) || byTable["identifies"].Rows != 1 ||
		byTable["pages"].Rows != 0 || byTable["tracks"].Partition != "2026-11-26T10" {
		t.Errorf("refine stats: %+v", stats)
	}

	// The catalog: the raw JSON table and its partition, the clean tables
	// with the lake's schemas, partitions only where rows were written.
	rawT := f.table(t, "raw_events")
	if got := aws.ToString(rawT.StorageDescriptor.Location); got != "s3://"+loc.RawBucket+"/"+loc.Prefix+"events/" {
		t.Errorf("raw_events location %s", got)
	}
	if got := aws.ToString(rawT.StorageDescriptor.SerdeInfo.SerializationLibrary); got != "org.openx.data.jsonserde.JsonSerDe" {
		t.Errorf("raw_events SerDe %s", got)
	}
	if got := columnsOf(rawT.StorageDescriptor.Columns); !strings.HasPrefix(got, "messageid string, type string") || !strings.Contains(got, "originaltimestamp string") {
		t.Errorf("raw_events columns %s", got)
	}
	if got := f.partition(t, "raw_events", "2026-11-26", "10"); got != "s3://"+loc.RawBucket+"/"+raw {
		t.Errorf("raw_events partition at %q", got)
	}
	for _, tbl := range lake.TablesIn(lake.ZoneClean) {
		gt := f.table(t, tbl.Name)
		if got := columnsOf(gt.StorageDescriptor.Columns); got != wantColumns(tbl) {
			t.Errorf("%s columns\n got %s\nwant %s", tbl.Name, got, wantColumns(tbl))
		}
		wantKeys, wantShared := "dt string, hh string", ""
		if pooled {
			wantKeys, wantShared = "tenant_id string, dt string, hh string", "true"
		}
		if got := columnsOf(gt.PartitionKeys); got != wantKeys {
			t.Errorf("%s partition keys %s", tbl.Name, got)
		}
		if got := gt.Parameters[athena.SharedParameter]; got != wantShared {
			t.Errorf("%s %s = %q", tbl.Name, athena.SharedParameter, got)
		}
		if got := aws.ToString(gt.StorageDescriptor.SerdeInfo.SerializationLibrary); !strings.Contains(got, "ParquetHiveSerDe") {
			t.Errorf("%s SerDe %s", tbl.Name, got)
		}
	}
	base := "s3://" + loc.CleanBucket + "/" + loc.Prefix + "events/dt=2026-11-26/hh=10/"
	first := f.partition(t, "tracks", "2026-11-26", "10")
	version, ok := strings.CutPrefix(first, base)
	if !ok || !strings.HasSuffix(version, "/event_type=track/") {
		t.Fatalf("tracks partition at %q, want under %s", first, base)
	}
	version = strings.TrimSuffix(version, "/event_type=track/")
	if got := f.partition(t, "identifies", "2026-11-26", "10"); got != base+version+"/event_type=identify/" {
		t.Errorf("identifies partition at %q", got)
	}
	if got := f.partition(t, "pages", "2026-11-26", "10"); got != "" {
		t.Errorf("pages has a partition with no row: %q", got)
	}

	// Late data: a re-refine writes a new version, swaps the partitions
	// to it and deletes the old version; a table that lost its rows loses
	// its partition.
	f.script.files = func(string) map[string]string {
		return map[string]string{"event_type=track/part-0.parquet": "tracks again"}
	}
	f.results(t, nil, [][]string{countHeader, {"tracks", "2026-11-26", "10", "4"}})
	if _, err := f.engine.Refine(ctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0], Snapshot: snapshot}); err != nil {
		t.Fatal(err)
	}
	second := f.partition(t, "tracks", "2026-11-26", "10")
	if second == first || !strings.HasPrefix(second, base) {
		t.Errorf("re-refine left tracks at %q (was %q)", second, first)
	}
	if got := f.partition(t, "identifies", "2026-11-26", "10"); got != "" {
		t.Errorf("identifies kept a partition with no row: %q", got)
	}
	if got := f.keys(t, loc.CleanBucket, loc.Prefix+"events/"); len(got) != 1 || !strings.HasSuffix("s3://"+loc.CleanBucket+"/"+got[0], strings.TrimPrefix(second, "s3://"+loc.CleanBucket+"/")+"part-0.parquet") {
		t.Errorf("clean zone objects after the re-refine: %v (partition at %s)", got, second)
	}

	// Curate: every curated table UNLOADed into a new version, then the
	// table made or pointed at it.
	f.script.files = func(sql string) map[string]string { return map[string]string{"part-0.parquet": "curated"} }
	curated := lake.TablesIn(lake.ZoneCurated)
	answers := make([][][]string, len(curated))
	count := [][]string{countHeader}
	for _, tbl := range curated {
		count = append(count, []string{tbl.Name, "", "", "2"})
	}
	f.results(t, append(answers, count)...)
	cstats, err := f.engine.Curate(ctx, lake.CurateInput{Tenant: loc.Tenant, Location: loc, Snapshot: snapshot})
	if err != nil {
		t.Fatal(err)
	}
	if len(cstats) != len(curated) || cstats[0].Rows != 2 || cstats[0].Bytes != int64(len("curated")) {
		t.Errorf("curate stats: %+v", cstats)
	}
	for _, tbl := range curated {
		gt := f.table(t, tbl.Name)
		if got := columnsOf(gt.StorageDescriptor.Columns); got != wantColumns(tbl) {
			t.Errorf("%s columns\n got %s\nwant %s", tbl.Name, got, wantColumns(tbl))
		}
		got := aws.ToString(gt.StorageDescriptor.Location)
		if pooled {
			if keys := columnsOf(gt.PartitionKeys); keys != "tenant_id string" || gt.Parameters[athena.SharedParameter] != "true" {
				t.Errorf("%s partition keys %s, parameters %v", tbl.Name, keys, gt.Parameters)
			}
			got = f.partition(t, tbl.Name)
		}
		if !strings.HasPrefix(got, "s3://"+loc.CuratedBucket+"/"+loc.Prefix+tbl.Name+"/v") {
			t.Errorf("%s at %s", tbl.Name, got)
		}
	}
	curatedAt := func(name string) string {
		if pooled {
			return f.partition(t, name)
		}
		return aws.ToString(f.table(t, name).StorageDescriptor.Location)
	}
	before := curatedAt("id_graph")
	f.results(t, append(answers, count)...)
	if _, err := f.engine.Curate(ctx, lake.CurateInput{Tenant: loc.Tenant, Location: loc, Snapshot: snapshot}); err != nil {
		t.Fatal(err)
	}
	after := curatedAt("id_graph")
	if after == before {
		t.Error("a second curate left id_graph at its version")
	}
	if got := f.keys(t, loc.CuratedBucket, loc.Prefix+"id_graph/"); len(got) != 1 || !strings.HasPrefix("s3://"+loc.CuratedBucket+"/"+got[0], after) {
		t.Errorf("id_graph objects after the second curate: %v (table at %s)", got, after)
	}

	// Purge: the partitions holding erased IDs are rewritten without them
	// and swapped; curated rows naming them are counted.
	f.script.files = func(string) map[string]string { return map[string]string{"part-0.parquet": "purged"} }
	f.results(t,
		[][]string{{"table_name", "dt", "hh", "n"}, {"tracks", "2026-11-26", "10", "2"}}, // hits
		nil, // the rewrite
		[][]string{countHeader, {"tracks", "2026-11-26", "10", "2"}},
		[][]string{{"table_name", "n"}, {"id_graph", "1"}, {"external_id_mapping", "0"}},
	)
	results, rewritten, err := f.engine.Purge(ctx, lake.PurgeInput{Tenant: loc.Tenant, Location: loc, IDs: []string{"prof_a", "m9"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0] != (lake.PurgeResult{Zone: lake.ZoneClean, Partitions: 1, Rows: 2}) ||
		results[1] != (lake.PurgeResult{Zone: lake.ZoneCurated, Partitions: 1, Rows: 1}) {
		t.Errorf("purge results %+v", results)
	}
	if len(rewritten) != 1 || rewritten[0] != (lake.TableStats{Table: "tracks", Partition: "2026-11-26T10", Rows: 2, Bytes: int64(len("purged"))}) {
		t.Errorf("purge rewrote %+v", rewritten)
	}
	third := f.partition(t, "tracks", "2026-11-26", "10")
	if third == second || !strings.HasPrefix(third, base) {
		t.Errorf("purge left tracks at %q", third)
	}
	if got := f.keys(t, loc.CleanBucket, loc.Prefix+"events/"); len(got) != 1 {
		t.Errorf("clean zone objects after the purge (the erased rows' version must go): %v", got)
	}

	// Stats: partitions and tables from Glue, bytes from S3, rows from a
	// count.
	count = [][]string{countHeader, {"tracks", "2026-11-26", "10", "2"}}
	for _, tbl := range curated {
		count = append(count, []string{tbl.Name, "", "", "5"})
	}
	f.results(t, count)
	all, err := f.engine.Stats(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1+len(curated) || all[0] != (lake.TableStats{Table: "tracks", Partition: "2026-11-26T10", Rows: 2, Bytes: int64(len("purged"))}) ||
		all[1].Rows != 5 || all[1].Bytes != int64(len("curated")) {
		t.Errorf("stats %+v", all)
	}

	// Every query ran in the tenant's workgroup and database, as moto
	// recorded them; pooled tenants' results go under their own prefix.
	queries := f.script.queries()
	if len(queries) == 0 {
		t.Fatal("no query started")
	}
	listed, err := f.athena.ListQueryExecutions(ctx, &awsathena.ListQueryExecutionsInput{WorkGroup: aws.String(loc.WorkGroup)})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed.QueryExecutionIds) != len(queries) {
		t.Errorf("moto lists %d query executions in %s, the engine started %d", len(listed.QueryExecutionIds), loc.WorkGroup, len(queries))
	}
	for _, id := range listed.QueryExecutionIds {
		qe, err := f.athena.GetQueryExecution(ctx, &awsathena.GetQueryExecutionInput{QueryExecutionId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		e := qe.QueryExecution
		if aws.ToString(e.WorkGroup) != loc.WorkGroup || aws.ToString(e.QueryExecutionContext.Database) != loc.Database {
			t.Errorf("query %s ran in %s/%s", id, aws.ToString(e.WorkGroup), aws.ToString(e.QueryExecutionContext.Database))
		}
		out := ""
		if e.ResultConfiguration != nil {
			out = aws.ToString(e.ResultConfiguration.OutputLocation)
		}
		if pooled && !strings.HasPrefix(out, "s3://"+loc.CuratedBucket+"/athena-results/"+loc.Tenant+"/") {
			t.Errorf("pooled query %s writes its results to %q", id, out)
		}
	}
	var sqls []string
	for _, q := range queries {
		sqls = append(sqls, q.SQL)
	}
	checkTrino(t, sqls)
}

// TestEngineQueryFailure: a query that Athena fails (moto never does; the
// proxy rewrites its state) fails the refine, which swaps nothing; a
// running query is polled until it ends.
func TestEngineQueryFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	loc := f.loc
	f.put(t, loc.RawBucket, "events/dt=2026-11-26/hh=10/a.ndjson.gz", "x")
	parts, err := f.engine.RawPartitions(ctx, loc)
	if err != nil || len(parts) != 1 {
		t.Fatal(parts, err)
	}
	// Two polls see RUNNING, then the query succeeds.
	var mu sync.Mutex
	polls := 0
	rule := f.proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		polls++
		if polls <= 2 {
			return bytes.ReplaceAll(body, []byte(`"SUCCEEDED"`), []byte(`"RUNNING"`))
		}
		return body
	})
	f.script.files = func(string) map[string]string { return map[string]string{"event_type=track/part-0.parquet": "t"} }
	f.results(t, nil, [][]string{countHeader, {"tracks", "2026-11-26", "10", "1"}})
	if _, err := f.engine.Refine(ctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0]}); err != nil {
		t.Fatal(err)
	}
	rule.Remove()
	if polls < 4 {
		t.Errorf("%d polls: the RUNNING answers were not polled again", polls)
	}
	good := f.partition(t, "tracks", "2026-11-26", "10")
	if good == "" {
		t.Fatal("no tracks partition")
	}

	f.proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
		return bytes.ReplaceAll(body, []byte(`"SUCCEEDED"`), []byte(`"FAILED","StateChangeReason":"HIVE_BAD_DATA: scripted"`))
	})
	f.script.files = func(string) map[string]string { return map[string]string{"event_type=track/part-0.parquet": "partial"} }
	_, err = f.engine.Refine(ctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0]})
	if !errors.Is(err, athena.ErrQueryFailed) || !strings.Contains(err.Error(), "HIVE_BAD_DATA") {
		t.Fatalf("refine with a failed query: %v", err)
	}
	if got := f.partition(t, "tracks", "2026-11-26", "10"); got != good {
		t.Errorf("a failed refine moved tracks from %s to %s", good, got)
	}
	if left := f.keys(t, loc.CuratedBucket, "_stage/"); len(left) > 0 {
		t.Errorf("a failed refine left its staged relations: %v", left)
	}

	// A refine given up on (its context cancelled while Athena runs its
	// query) stops the query execution, so that it writes nothing more.
	f.proxy.Reset()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f.proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
		cancel()
		return bytes.ReplaceAll(body, []byte(`"SUCCEEDED"`), []byte(`"RUNNING"`))
	})
	_, err = f.engine.Refine(cctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0]})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("refine cancelled: %v", err)
	}
	if n := f.proxy.Calls("athena:StopQueryExecution"); n != 1 {
		t.Errorf("%d StopQueryExecution calls for the abandoned query, want 1", n)
	}
	if got := f.partition(t, "tracks", "2026-11-26", "10"); got != good {
		t.Errorf("a cancelled refine moved tracks from %s to %s", good, got)
	}

	// What a run cut short left staged (its snapshot) is removed by a run
	// an hour later or more, objects and partitions; a recent run's stays.
	f.proxy.Reset()
	stale := "v20261126T090000.000000000Z-aaaaa"
	recent := "v" + time.Now().UTC().Format("20060102T150405.000000000Z") + "-bbbbb"
	for _, run := range []string{stale, recent} {
		f.put(t, loc.CuratedBucket, "_stage/members/run="+run+"/data.ndjson", `{"member_id":"prof_a"}`)
		if _, err := f.glue.CreatePartition(ctx, &glue.CreatePartitionInput{DatabaseName: aws.String(loc.Database), TableName: aws.String("cairn_stage_members"),
			PartitionInput: &gluetypes.PartitionInput{Values: []string{run}, StorageDescriptor: &gluetypes.StorageDescriptor{
				Location: aws.String("s3://" + loc.CuratedBucket + "/_stage/members/run=" + run + "/")}}}); err != nil {
			awstest.Made(t, err)
		}
	}
	f.results(t, nil, [][]string{countHeader})
	if _, err := f.engine.Refine(ctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0]}); err != nil {
		t.Fatal(err)
	}
	if got := f.keys(t, loc.CuratedBucket, "_stage/"); len(got) != 1 || !strings.Contains(got[0], recent) {
		t.Errorf("staged objects after the sweep: %v", got)
	}
	if f.partition(t, "cairn_stage_members", stale) != "" || f.partition(t, "cairn_stage_members", recent) == "" {
		t.Error("the sweep dropped the wrong stage partitions")
	}

	// A location without its workgroup is refused before any call.
	bad := loc
	bad.WorkGroup = ""
	if _, err := f.engine.Stats(ctx, bad); err == nil {
		t.Error("a location without a workgroup was accepted")
	}
}

// checkTrino parses every statement with sqlglot's Trino dialect (Athena
// engine version 3 is Trino); an UNLOAD, which sqlglot's Trino does not
// know, must wrap a query that parses, and name its location and options.
func checkTrino(t *testing.T, sqls []string) {
	t.Helper()
	python := os.Getenv("CAIRN_TEST_PYTHON")
	if python == "" {
		if os.Getenv("CAIRN_TEST_REQUIRE_AWS") == "1" {
			t.Fatal("CAIRN_TEST_PYTHON is not set (scripts/testenv.sh run sets it)")
		}
		t.Skip("CAIRN_TEST_PYTHON is not set: cannot parse the SQL")
	}
	in := filepath.Join(t.TempDir(), "sql.json")
	b, _ := json.Marshal(sqls)
	if err := os.WriteFile(in, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/check_trino.py", in).CombinedOutput()
	if err != nil {
		t.Fatalf("Athena SQL that Trino's grammar refuses: %v\n%s", err, out)
	}
	t.Logf("sqlglot: %s", bytes.TrimSpace(out))
}

// TestEngineSample: a sample is one query in the tenant's workgroup and
// database over the partitions asked for, its rows read back by column
// name, a NULL as nil.
func TestEngineSample(t *testing.T) {
	f := newFixture(t, true)
	tracks, _ := lake.TableNamed("tracks")
	header := make([]string, len(tracks.Columns))
	row := make([]string, len(tracks.Columns))
	for i, c := range tracks.Columns {
		header[i] = c.Name
	}
	row[0], row[11] = "m1", `{"phone":"+14155550123"}`
	f.results(t, [][]string{header, row})
	got, err := f.engine.Sample(context.Background(), f.loc, tracks, []string{"2026-11-26T10"}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["message_id"] != "m1" || got[0]["properties"] != `{"phone":"+14155550123"}` || got[0]["traits"] != nil || len(got[0]) != len(tracks.Columns) {
		t.Fatalf("sample: %v", got)
	}
	qs := f.script.queries()
	if len(qs) != 1 || qs[0].WorkGroup != f.loc.WorkGroup || qs[0].Database != f.loc.Database ||
		!strings.Contains(qs[0].SQL, `FROM "`+f.loc.SharedDatabase+`"."tracks" WHERE tenant_id = '`+f.loc.Tenant+`' AND ((dt = '2026-11-26' AND hh = '10')) LIMIT 5`) {
		t.Fatalf("queries: %+v", qs)
	}
}

// TestEnginePooledTenantsShareTables: two pooled tenants of one pool have
// one table per name in the pool's database, a partition each keyed by
// its tenant_id, its objects under its own prefix; one tenant's refine,
// curate and purge read only its rows and leave the other's partitions
// and objects as they were; its stats see only its partitions.
func TestEnginePooledTenantsShareTables(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	a, b := f.loc, f.sibling(t)
	// Glue's CreateTable requests, by database and table: their
	// partition indexes (moto keeps none).
	var mu sync.Mutex
	indexes := map[string]string{}
	f.script.around = func(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
		if req.Header.Get("X-Amz-Target") == "AWSGlue.CreateTable" {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, err
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			var in struct {
				DatabaseName     string
				TableInput       struct{ Name string }
				PartitionIndexes []struct {
					IndexName string
					Keys      []string
				}
			}
			if err := json.Unmarshal(body, &in); err != nil {
				return nil, err
			}
			var keys []string
			for _, i := range in.PartitionIndexes {
				keys = append(keys, i.IndexName+"("+strings.Join(i.Keys, ",")+")")
			}
			mu.Lock()
			indexes[in.DatabaseName+"."+in.TableInput.Name] += strings.Join(keys, ";") + "|"
			mu.Unlock()
		}
		return next(req)
	}
	refine := func(loc lake.Location, rows string) {
		t.Helper()
		f.put(t, loc.RawBucket, loc.Prefix+"events/dt=2026-11-26/hh=10/a.ndjson.gz", "x")
		parts, err := f.engine.RawPartitions(ctx, loc)
		if err != nil || len(parts) != 1 {
			t.Fatal(parts, err)
		}
		f.script.files = func(string) map[string]string { return map[string]string{"event_type=track/part-0.parquet": rows} }
		f.results(t, nil, [][]string{countHeader, {"tracks", "2026-11-26", "10", "1"}})
		if _, err := f.engine.Refine(ctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0], Snapshot: snapshot}); err != nil {
			t.Fatal(err)
		}
	}
	refine(a, "a's rows")
	refine(b, "b's rows")

	tables, err := f.glue.GetTables(ctx, &glue.GetTablesInput{DatabaseName: aws.String(a.SharedDatabase)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tbl := range tables.TableList {
		names = append(names, aws.ToString(tbl.Name))
	}
	if len(names) != len(lake.TablesIn(lake.ZoneClean)) || !slices.Contains(names, "tracks") {
		t.Errorf("tables of the pool's database: %v, want one per clean table", names)
	}
	parts, err := f.glue.GetPartitions(ctx, &glue.GetPartitionsInput{DatabaseName: aws.String(a.SharedDatabase), TableName: aws.String("tracks")})
	if err != nil {
		t.Fatal(err)
	}
	byTenant := map[string]string{}
	for _, p := range parts.Partitions {
		byTenant[p.Values[0]] = aws.ToString(p.StorageDescriptor.Location)
		if len(p.Values) != 3 || p.Values[1] != "2026-11-26" || p.Values[2] != "10" {
			t.Errorf("tracks partition %v", p.Values)
		}
	}
	for _, loc := range []lake.Location{a, b} {
		if !strings.HasPrefix(byTenant[loc.Tenant], "s3://"+loc.CleanBucket+"/"+loc.Prefix+"events/dt=2026-11-26/hh=10/v") {
			t.Errorf("%s's tracks partition at %q, want under its prefix", loc.Tenant, byTenant[loc.Tenant])
		}
	}
	if len(byTenant) != 2 {
		t.Errorf("tracks partitions by tenant: %v", byTenant)
	}
	for _, loc := range []lake.Location{a, b} {
		if _, err := f.glue.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(loc.Database), Name: aws.String("tracks")}); err == nil {
			t.Errorf("%s's own database has a tracks table", loc.Tenant)
		}
	}
	// Each shared table was made once, with its index on tenant_id.
	mu.Lock()
	for _, tbl := range lake.TablesIn(lake.ZoneClean) {
		if got := indexes[a.SharedDatabase+"."+tbl.Name]; got != "cairn_by_tenant(tenant_id)|" {
			t.Errorf("CreateTable %s.%s with partition indexes %q, want once with cairn_by_tenant(tenant_id)", a.SharedDatabase, tbl.Name, got)
		}
	}
	if got := indexes[a.Database+".raw_events"]; got != "|" {
		t.Errorf("CreateTable %s.raw_events with partition indexes %q, want once with none", a.Database, got)
	}
	mu.Unlock()
	bPartition := partitionOf(t, f.glue, b, "tracks", "2026-11-26", "10")
	bObjects := f.keys(t, b.CleanBucket, b.Prefix)

	// a's curate, purge and re-refine leave b's partition and objects.
	f.script.files = func(string) map[string]string { return map[string]string{"part-0.parquet": "curated"} }
	curated := lake.TablesIn(lake.ZoneCurated)
	count := [][]string{countHeader}
	for _, tbl := range curated {
		count = append(count, []string{tbl.Name, "", "", "1"})
	}
	f.results(t, append(make([][][]string, len(curated)), count)...)
	if _, err := f.engine.Curate(ctx, lake.CurateInput{Tenant: a.Tenant, Location: a, Snapshot: snapshot}); err != nil {
		t.Fatal(err)
	}
	if got := partitionOf(t, f.glue, a, "id_graph"); !strings.HasPrefix(got, "s3://"+a.CuratedBucket+"/"+a.Prefix+"id_graph/v") {
		t.Errorf("a's id_graph partition at %q", got)
	}
	if got := partitionOf(t, f.glue, b, "id_graph"); got != "" {
		t.Errorf("b has an id_graph partition it never curated: %q", got)
	}
	f.script.files = func(string) map[string]string { return map[string]string{"part-0.parquet": "purged"} }
	f.results(t,
		[][]string{{"table_name", "dt", "hh", "n"}, {"tracks", "2026-11-26", "10", "1"}},
		nil,
		[][]string{countHeader, {"tracks", "2026-11-26", "10", "1"}},
		[][]string{{"table_name", "n"}, {"id_graph", "0"}},
	)
	if _, _, err := f.engine.Purge(ctx, lake.PurgeInput{Tenant: a.Tenant, Location: a, IDs: []string{"prof_a"}}); err != nil {
		t.Fatal(err)
	}
	refine(a, "a's rows again")
	if got := partitionOf(t, f.glue, b, "tracks", "2026-11-26", "10"); got != bPartition {
		t.Errorf("b's tracks partition moved from %s to %s", bPartition, got)
	}
	if got := f.keys(t, b.CleanBucket, b.Prefix); !slices.Equal(got, bObjects) {
		t.Errorf("b's objects changed: %v, were %v", got, bObjects)
	}

	// a's stats are a's partitions only.
	count = [][]string{countHeader, {"tracks", "2026-11-26", "10", "1"}}
	for _, tbl := range curated {
		count = append(count, []string{tbl.Name, "", "", "1"})
	}
	f.results(t, count)
	stats, err := f.engine.Stats(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1+len(curated) || stats[0].Table != "tracks" || stats[0].Bytes != int64(len("a's rows again")) {
		t.Errorf("a's stats %+v", stats)
	}

	// Every statement a's runs sent reads the shared tables' rows of a
	// only; b's of b only.
	shared := regexp.MustCompile(`"` + a.SharedDatabase + `"\."[a-z_]+"( WHERE tenant_id = '([a-z0-9_]+)')?`)
	for _, q := range f.script.queries() {
		for _, m := range shared.FindAllStringSubmatch(q.SQL, -1) {
			if m[2] != a.Tenant && m[2] != b.Tenant {
				t.Errorf("a statement reads %s past its tenant's rows:\n%s", m[0], q.SQL)
			}
		}
		if strings.Contains(q.SQL, b.Prefix) && strings.Contains(q.SQL, "tenant_id = '"+a.Tenant+"'") {
			t.Errorf("a statement mixes a's rows and b's prefix:\n%s", q.SQL)
		}
	}
}

// TestEngineAdoptsPooledTenantsOwnTables: a pooled tenant's clean and
// curated tables still in its own database (from before the pool shared
// them) become its partitions of the pool's shared tables at its next
// run, where they are, and leave its database once Config.Adopted (the
// grants' move) has run, with both tables there; its raw table stays; a
// second run has nothing to move.
func TestEngineAdoptsPooledTenantsOwnTables(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	loc := f.loc
	var adopted []string
	cfg := awstest.Config(region)
	engine, err := athena.New(ctx, athena.Config{
		AWS:  awsclient.Settings{AWS: &cfg, EndpointURL: f.proxy.URL, HTTPClient: f.script, MaxBackoff: time.Millisecond},
		Poll: time.Millisecond, MaxPoll: time.Millisecond,
		Adopted: func(ctx context.Context, tenant, region, database string) error {
			adopted = append(adopted, tenant+" "+region+" "+database)
			for _, db := range []string{database, loc.SharedDatabase} {
				if _, err := f.glue.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(db), Name: aws.String("tracks")}); err != nil {
					t.Errorf("when the grants move, %s.tracks: %v", db, err)
				}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.engine = engine
	tracks, _ := lake.TableNamed("tracks")
	idGraph, _ := lake.TableNamed("id_graph")
	legacy := func(tbl lake.Table, keys []gluetypes.Column, at string) {
		t.Helper()
		if _, err := f.glue.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String(loc.Database), TableInput: &gluetypes.TableInput{
			Name: aws.String(tbl.Name), PartitionKeys: keys, Parameters: map[string]string{"cairn:zone": tbl.Zone},
			StorageDescriptor: &gluetypes.StorageDescriptor{Location: aws.String(at), Columns: []gluetypes.Column{{Name: aws.String("message_id"), Type: aws.String("string")}}}}}); err != nil {
			awstest.Made(t, err)
		}
	}
	hours := []gluetypes.Column{{Name: aws.String("dt"), Type: aws.String("string")}, {Name: aws.String("hh"), Type: aws.String("string")}}
	clean, curated := "s3://"+loc.CleanBucket+"/"+loc.Prefix, "s3://"+loc.CuratedBucket+"/"+loc.Prefix
	legacy(tracks, hours, clean+"tracks/")
	for _, h := range []string{"08", "09"} {
		if _, err := f.glue.CreatePartition(ctx, &glue.CreatePartitionInput{DatabaseName: aws.String(loc.Database), TableName: aws.String("tracks"),
			PartitionInput: &gluetypes.PartitionInput{Values: []string{"2026-11-25", h},
				StorageDescriptor: &gluetypes.StorageDescriptor{Location: aws.String(clean + "events/dt=2026-11-25/hh=" + h + "/v0/event_type=track/")}}}); err != nil {
			awstest.Made(t, err)
		}
	}
	legacy(idGraph, nil, curated+"id_graph/v0/")

	f.put(t, loc.RawBucket, loc.Prefix+"events/dt=2026-11-26/hh=10/a.ndjson.gz", "x")
	parts, err := f.engine.RawPartitions(ctx, loc)
	if err != nil || len(parts) != 1 {
		t.Fatal(parts, err)
	}
	f.script.files = func(string) map[string]string { return map[string]string{"event_type=track/part-0.parquet": "rows"} }
	f.results(t, nil, [][]string{countHeader, {"tracks", "2026-11-26", "10", "1"}})
	if _, err := f.engine.Refine(ctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0], Snapshot: snapshot}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"08", "09"} {
		if got := f.partition(t, "tracks", "2026-11-25", h); got != clean+"events/dt=2026-11-25/hh="+h+"/v0/event_type=track/" {
			t.Errorf("adopted tracks partition 2026-11-25T%s at %q", h, got)
		}
	}
	if got := f.partition(t, "tracks", "2026-11-26", "10"); !strings.HasPrefix(got, clean+"events/dt=2026-11-26/hh=10/v") {
		t.Errorf("refined tracks partition at %q", got)
	}
	if got := f.partition(t, "id_graph"); got != curated+"id_graph/v0/" {
		t.Errorf("adopted id_graph partition at %q", got)
	}
	for _, name := range []string{"tracks", "id_graph"} {
		if _, err := f.glue.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(loc.Database), Name: aws.String(name)}); err == nil {
			t.Errorf("%s is left in the tenant's own database", name)
		}
	}
	if _, err := f.glue.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(loc.Database), Name: aws.String("raw_events")}); err != nil {
		t.Errorf("raw_events: %v", err)
	}
	if want := []string{loc.Tenant + " " + region + " " + loc.Database}; !slices.Equal(adopted, want) {
		t.Errorf("grants moved for %q, want %q", adopted, want)
	}
	// Nothing left to adopt: a second run moves nothing and keeps what the
	// tenant has.
	f.results(t, nil, [][]string{countHeader, {"tracks", "2026-11-26", "10", "1"}})
	if _, err := f.engine.Refine(ctx, lake.RefineInput{Tenant: loc.Tenant, Location: loc, Partition: parts[0], Snapshot: snapshot}); err != nil {
		t.Fatal(err)
	}
	if got := f.partition(t, "id_graph"); got != curated+"id_graph/v0/" {
		t.Errorf("id_graph partition after a second run at %q", got)
	}
	if len(adopted) != 1 {
		t.Errorf("grants moved %d times, want once", len(adopted))
	}
}
