package awszones_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/migration/awszones"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// region is this test's own: the pool's shared database has one name per
// Region, and no other test uses this one.
const region = "il-central-1"

// noItems stands for the profile store: the homes below name no table.
type noItems struct{}

func (noItems) CopyTenant(context.Context, string, dynamostore.TableRef, dynamostore.TableRef) (dynamostore.CopyCounts, error) {
	return dynamostore.CopyCounts{}, errors.New("no profile table to copy")
}

func (noItems) DeleteTenantIn(context.Context, string, dynamostore.TableRef) (int, error) {
	return 0, errors.New("no profile table to clear")
}

var (
	hourKeys   = []gluetypes.Column{{Name: aws.String("dt"), Type: aws.String("string")}, {Name: aws.String("hh"), Type: aws.String("string")}}
	tenantKeys = []gluetypes.Column{{Name: aws.String("tenant_id"), Type: aws.String("string")}}
	columns    = []gluetypes.Column{{Name: aws.String("message_id"), Type: aws.String("string")}}
)

func storage(at string) *gluetypes.StorageDescriptor {
	return &gluetypes.StorageDescriptor{Location: aws.String(at), Columns: columns}
}

// TestCatalogBetweenPoolAndDedicated: a pooled tenant's partitions of the
// pool's shared lake tables become its dedicated database's tables
// (clean: partitioned by dt and hh; curated: unpartitioned, at its
// partition's location), re-pointed to the dedicated buckets; Clear drops
// its partitions from the pool and leaves its neighbour's; the move back
// makes them partitions of the shared tables again (a shared table the
// pool lacks is made), its own database keeping only its own tables.
func TestCatalogBetweenPoolAndDedicated(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	ctx := context.Background()
	cfg := awstest.Config(region)
	g := glue.NewFromConfig(cfg, func(o *glue.Options) { o.BaseEndpoint = aws.String(endpoint) })
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true })
	zones, err := awszones.New(ctx, awszones.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: endpoint}, Items: noItems{}})
	if err != nil {
		t.Fatal(err)
	}
	suffix := strings.ToLower(ids.Random(6))
	tenant, neighbour := "ten_a"+suffix, "ten_b"+suffix
	outputs := func(kind, prefix, db string) map[string]string {
		return map[string]string{"raw_bucket": kind + "-raw-" + suffix, "clean_bucket": kind + "-clean-" + suffix,
			"curated_bucket": kind + "-curated-" + suffix, "s3_prefix": prefix, "glue_database": db}
	}
	pooled := migration.Home{Region: region, Kind: placement.Pooled, Outputs: outputs("pool", "tenants/"+tenant+"/", "cairn_pool_"+tenant)}
	dedicated := migration.Home{Region: region, Kind: placement.Dedicated, Outputs: outputs("ded", "", "cairn_"+tenant)}
	for _, h := range []migration.Home{pooled, dedicated} {
		for _, b := range []string{h.RawBucket(), h.CleanBucket(), h.CuratedBucket()} {
			_, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b),
				CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}})
			awstest.Made(t, err)
		}
		_, err := g.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String(h.GlueDatabase())}})
		awstest.Made(t, err)
	}
	pool := provisioner.PoolGlueDatabase()
	_, err = g.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String(pool)}})
	awstest.Made(t, err)
	create := func(db, name string, keys []gluetypes.Column, params map[string]string, at string) {
		t.Helper()
		_, err := g.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String(db), TableInput: &gluetypes.TableInput{
			Name: aws.String(name), TableType: aws.String("EXTERNAL_TABLE"), PartitionKeys: keys, Parameters: params, StorageDescriptor: storage(at)}})
		awstest.Made(t, err)
	}
	partition := func(db, name, at string, values ...string) {
		t.Helper()
		_, err := g.CreatePartition(ctx, &glue.CreatePartitionInput{DatabaseName: aws.String(db), TableName: aws.String(name),
			PartitionInput: &gluetypes.PartitionInput{Values: values, StorageDescriptor: storage(at)}})
		awstest.Made(t, err)
	}
	pc, pu, pr := "s3://"+pooled.CleanBucket()+"/", "s3://"+pooled.CuratedBucket()+"/", "s3://"+pooled.RawBucket()+"/"
	create(pool, "tracks", append(tenantKeys, hourKeys...), map[string]string{"cairn:zone": "clean", "cairn:shared": "true"}, pc+"tenants/")
	create(pool, "id_graph", tenantKeys, map[string]string{"cairn:zone": "curated", "cairn:shared": "true"}, pu+"tenants/")
	for _, id := range []string{tenant, neighbour} {
		partition(pool, "tracks", pc+"tenants/"+id+"/events/dt=2026-11-26/hh=10/v1/event_type=track/", id, "2026-11-26", "10")
		partition(pool, "id_graph", pu+"tenants/"+id+"/id_graph/v1/", id)
	}
	create(pooled.GlueDatabase(), "raw_events", hourKeys, map[string]string{"cairn:zone": "raw"}, pr+"tenants/"+tenant+"/events/")
	partition(pooled.GlueDatabase(), "raw_events", pr+"tenants/"+tenant+"/events/dt=2026-11-26/hh=10/", "2026-11-26", "10")

	table := func(db, name string) *gluetypes.Table {
		t.Helper()
		out, err := g.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(db), Name: aws.String(name)})
		var nf *gluetypes.EntityNotFoundException
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.Table
	}
	at := func(db, name string, values ...string) string {
		t.Helper()
		out, err := g.GetPartition(ctx, &glue.GetPartitionInput{DatabaseName: aws.String(db), TableName: aws.String(name), PartitionValues: values})
		var nf *gluetypes.EntityNotFoundException
		if errors.As(err, &nf) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Partition.StorageDescriptor.Location)
	}
	neighbourAt := func() [2]string {
		return [2]string{at(pool, "tracks", neighbour, "2026-11-26", "10"), at(pool, "id_graph", neighbour)}
	}
	before := neighbourAt()

	// Out of the pool.
	if _, err := zones.Sync(ctx, tenant, pooled, dedicated); err != nil {
		t.Fatal(err)
	}
	db := dedicated.GlueDatabase()
	dc, du := "s3://"+dedicated.CleanBucket()+"/", "s3://"+dedicated.CuratedBucket()+"/"
	if tr := table(db, "tracks"); tr == nil || len(tr.PartitionKeys) != 2 || aws.ToString(tr.PartitionKeys[0].Name) != "dt" ||
		tr.Parameters["cairn:shared"] != "" || tr.Parameters["cairn:zone"] != "clean" || aws.ToString(tr.StorageDescriptor.Location) != dc+"tracks/" {
		t.Errorf("dedicated tracks: %+v", tr)
	}
	if got := at(db, "tracks", "2026-11-26", "10"); got != dc+"events/dt=2026-11-26/hh=10/v1/event_type=track/" {
		t.Errorf("dedicated tracks partition at %q", got)
	}
	if ig := table(db, "id_graph"); ig == nil || len(ig.PartitionKeys) != 0 || aws.ToString(ig.StorageDescriptor.Location) != du+"id_graph/v1/" ||
		ig.Parameters["cairn:shared"] != "" {
		t.Errorf("dedicated id_graph: %+v", ig)
	}
	if got := at(db, "raw_events", "2026-11-26", "10"); got != "s3://"+dedicated.RawBucket()+"/events/dt=2026-11-26/hh=10/" {
		t.Errorf("dedicated raw_events partition at %q", got)
	}
	// A second Sync (the delta) changes nothing.
	c, err := zones.Sync(ctx, tenant, pooled, dedicated)
	if err != nil {
		t.Fatal(err)
	}
	if c.Written != 0 || c.Removed != 0 {
		t.Errorf("the delta of an unchanged catalog wrote %d and removed %d", c.Written, c.Removed)
	}

	// The tenant leaves the pool: its partitions go, its neighbour's stay.
	if _, err := zones.Clear(ctx, tenant, pooled); err != nil {
		t.Fatal(err)
	}
	if got := at(pool, "tracks", tenant, "2026-11-26", "10") + at(pool, "id_graph", tenant); got != "" {
		t.Errorf("the tenant's partitions are left in the pool: %s", got)
	}
	if got := neighbourAt(); got != before {
		t.Errorf("the neighbour's partitions moved: %v, were %v", got, before)
	}

	// Back into the pool, where id_graph is gone meanwhile.
	if _, err := g.DeleteTable(ctx, &glue.DeleteTableInput{DatabaseName: aws.String(pool), Name: aws.String("id_graph")}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.DeleteTable(ctx, &glue.DeleteTableInput{DatabaseName: aws.String(pooled.GlueDatabase()), Name: aws.String("raw_events")}); err != nil {
		t.Fatal(err)
	}
	if _, err := zones.Sync(ctx, tenant, dedicated, pooled); err != nil {
		t.Fatal(err)
	}
	if got := at(pool, "tracks", tenant, "2026-11-26", "10"); got != pc+"tenants/"+tenant+"/events/dt=2026-11-26/hh=10/v1/event_type=track/" {
		t.Errorf("pooled tracks partition at %q", got)
	}
	if ig := table(pool, "id_graph"); ig == nil || len(ig.PartitionKeys) != 1 || aws.ToString(ig.PartitionKeys[0].Name) != "tenant_id" ||
		ig.Parameters["cairn:shared"] != "true" || aws.ToString(ig.StorageDescriptor.Location) != pu+"tenants/" {
		t.Errorf("the pool's id_graph made again: %+v", ig)
	}
	if got := at(pool, "id_graph", tenant); got != pu+"tenants/"+tenant+"/id_graph/v1/" {
		t.Errorf("pooled id_graph partition at %q", got)
	}
	if got := at(pool, "tracks", neighbour, "2026-11-26", "10"); got != before[0] {
		t.Errorf("the neighbour's tracks partition moved to %q", got)
	}
	for _, name := range []string{"tracks", "id_graph"} {
		if table(pooled.GlueDatabase(), name) != nil {
			t.Errorf("the pooled tenant's own database has %s", name)
		}
	}
	if got := at(pooled.GlueDatabase(), "raw_events", "2026-11-26", "10"); got != pr+"tenants/"+tenant+"/events/dt=2026-11-26/hh=10/" {
		t.Errorf("pooled raw_events partition at %q", got)
	}
}
