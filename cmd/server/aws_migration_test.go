package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// migrationRegion is where TestAWSTierMigration provisions (see the
// Regions in awsenv_test.go).
const migrationRegion = "ca-west-1"

// s3MessageIDs reads every raw-zone object below prefix in bucket on moto
// and counts the messageIds.
func s3MessageIDs(t *testing.T, s3c *s3.Client, bucket, prefix string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, key := range listRawKeys(t.Context(), t, s3c, bucket, prefix+"events/") {
		for _, line := range readRawObject(t.Context(), t, s3c, bucket, key, "") {
			var ev struct {
				MessageID string `json:"messageId"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("%s/%s: %v", bucket, key, err)
			}
			ids[ev.MessageID]++
		}
	}
	return ids
}

// refinedFixture stands for what the refinery made of a tenant (moto's
// Athena runs no SQL): a clean-zone object, and a partitioned Glue table
// over the clean zone with one partition.
type refinedFixture struct {
	key, table string
	values     []string
}

var refined = refinedFixture{key: "clean/events/dt=2026-01-01/hh=00/v1/part-0.parquet", table: "tracks", values: []string{"2026-01-01", "00"}}

func (f refinedFixture) make(t *testing.T, s3c *s3.Client, g *glue.Client, out map[string]string) {
	t.Helper()
	ctx := t.Context()
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(out["clean_bucket"]), Key: aws.String(out["s3_prefix"] + f.key),
		Body: strings.NewReader("PAR1 not really")}); err != nil {
		t.Fatal(err)
	}
	loc := "s3://" + out["clean_bucket"] + "/" + out["s3_prefix"] + "clean/events/"
	sd := func(at string) *gluetypes.StorageDescriptor {
		return &gluetypes.StorageDescriptor{Location: aws.String(at), Columns: []gluetypes.Column{{Name: aws.String("event"), Type: aws.String("string")}}}
	}
	if _, err := g.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String(out["glue_database"]), TableInput: &gluetypes.TableInput{
		Name: aws.String(f.table), TableType: aws.String("EXTERNAL_TABLE"), StorageDescriptor: sd(loc),
		PartitionKeys: []gluetypes.Column{{Name: aws.String("dt"), Type: aws.String("string")}, {Name: aws.String("hh"), Type: aws.String("string")}},
	}}); err != nil {
		awstest.Made(t, err)
	}
	if _, err := g.CreatePartition(ctx, &glue.CreatePartitionInput{DatabaseName: aws.String(out["glue_database"]), TableName: aws.String(f.table),
		PartitionInput: &gluetypes.PartitionInput{Values: f.values, StorageDescriptor: sd(loc + "dt=2026-01-01/hh=00/v1/")}}); err != nil {
		awstest.Made(t, err)
	}
}

// check fails unless the placement's clean bucket holds the object and
// its Glue database the table and partition, at the placement's own
// locations.
func (f refinedFixture) check(t *testing.T, s3c *s3.Client, g *glue.Client, out map[string]string) {
	t.Helper()
	ctx := t.Context()
	if _, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(out["clean_bucket"]), Key: aws.String(out["s3_prefix"] + f.key)}); err != nil {
		t.Errorf("clean object in %s: %v", out["clean_bucket"], err)
	}
	loc := "s3://" + out["clean_bucket"] + "/" + out["s3_prefix"] + "clean/events/"
	tbl, err := g.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(out["glue_database"]), Name: aws.String(f.table)})
	if err != nil {
		t.Errorf("table %s in %s: %v", f.table, out["glue_database"], err)
		return
	}
	if got := aws.ToString(tbl.Table.StorageDescriptor.Location); got != loc || len(tbl.Table.PartitionKeys) != 2 {
		t.Errorf("table %s in %s at %s with %d partition keys, want at %s with 2", f.table, out["glue_database"], got, len(tbl.Table.PartitionKeys), loc)
	}
	p, err := g.GetPartition(ctx, &glue.GetPartitionInput{DatabaseName: aws.String(out["glue_database"]), TableName: aws.String(f.table), PartitionValues: f.values})
	if err != nil {
		t.Errorf("partition of %s in %s: %v", f.table, out["glue_database"], err)
		return
	}
	if got := aws.ToString(p.Partition.StorageDescriptor.Location); got != loc+"dt=2026-01-01/hh=00/v1/" {
		t.Errorf("partition of %s in %s at %s", f.table, out["glue_database"], got)
	}
}

// checkLeft fails if anything of the tenant is left where out placed it:
// items under its key prefix in the table (or the table itself, when
// gone is set for a dedicated stack's), objects below its prefix, its
// Glue database.
func checkLeft(t *testing.T, ddb *dynamodb.Client, s3c *s3.Client, g *glue.Client, id string, out map[string]string, gone bool) {
	t.Helper()
	ctx := t.Context()
	if gone {
		if _, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(out["profile_table"])}); awsErrorCode(err) != "ResourceNotFoundException" {
			t.Errorf("the dedicated table %s is left (%v)", out["profile_table"], err)
		}
	} else if n := len(motoScan(ctx, t, ddb, out["profile_table"], "TENANT#"+id+"#")); n != 0 {
		t.Errorf("%d items of the tenant are left in %s", n, out["profile_table"])
	}
	for _, b := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
		page, err := s3c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(out[b]), Prefix: aws.String(out["s3_prefix"])})
		switch {
		case gone && awsErrorCode(err) == "NoSuchBucket":
		case err != nil:
			t.Errorf("list %s: %v", out[b], err)
		case gone:
			t.Errorf("the dedicated bucket %s is left", out[b])
		case len(page.Versions)+len(page.DeleteMarkers) != 0:
			t.Errorf("%d object versions of the tenant are left in %s/%s", len(page.Versions)+len(page.DeleteMarkers), out[b], out["s3_prefix"])
		}
	}
	var nf *gluetypes.EntityNotFoundException
	if _, err := g.GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String(out["glue_database"])}); !errors.As(err, &nf) {
		t.Errorf("the Glue database %s is left (%v)", out["glue_database"], err)
	}
}

// TestAWSTierMigration moves a pooled tenant to a dedicated stack and
// back to the pool in AWS mode on moto, while a goroutine sends it a
// steady stream of events: a copy refused by S3 leaves the tenant where
// it is, unfenced, with the reason in its migration, and the job's retry
// goes on; every acknowledged event is readable afterwards exactly once,
// in the raw zone on S3 and through the profile API; its profile items
// are in its current table only; what the refinery made (a clean object,
// a Glue table and partition) moves, re-pointed; its grant is in Lake
// Formation on the target's database; nothing of it is left where it
// moved from; a pooled neighbour is untouched.
func TestAWSTierMigration(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	faults := newFaultEndpoint(t, moto)
	vars := awsVars(t, faults.URL, testdb.Postgres(t), keyFile)
	vars["CAIRN_MIGRATION_DRAIN"], vars["CAIRN_LAKE_INTERVAL"], vars["CAIRN_RATE_LIMITS"] = "1s", "0", "false"
	base := startAWSServer(t, "migration", vars)
	const region = migrationRegion
	id := awsOnboard(t, base, admin, "pooled", region)
	neighbour := awsOnboard(t, base, admin, "pooled", region)
	awaitTenants(t, base, admin, []string{id, neighbour}, "active", 180*time.Second)
	ddb, s3c, g, lf := motoDynamo(moto, region), motoS3(moto, region), motoGlue(moto, region), motoLakeFormation(moto, region)
	key := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/sources", admin, `{"name":"web"}`, http.StatusCreated), "write_key")
	nkey := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+neighbour+"/sources", admin, `{"name":"web"}`, http.StatusCreated), "write_key")
	_, pooled := homeOutputs(t, base, admin, id)
	_, nout := homeOutputs(t, base, admin, neighbour)

	role := "arn:aws:iam::123456789012:role/mover-" + awsRandom(8)
	mustAPI(t, "POST", base+"/v1/tenants/"+id+"/principals", admin, `{"principal":"`+role+`"}`, http.StatusCreated)
	grant := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/grants", admin,
		`{"principal":"`+role+`","resource":{"region":"`+region+`","database":"`+pooled["glue_database"]+`"},"permissions":["DESCRIBE"]}`, http.StatusAccepted), "id")
	awaitGrant(t, base, admin, id, grant, pooled["glue_database"])
	refined.make(t, s3c, g, pooled)

	nstream := startEventStream(base, nkey)
	stream := startEventStream(base, key)
	waitFor(t, "events before the migration", func() bool { return stream.count() >= 10 && nstream.count() >= 5 })
	nacked, _ := nstream.Stop(t)
	nitems := len(motoScan(t.Context(), t, ddb, nout["profile_table"], "TENANT#"+neighbour+"#"))

	// The first copy of an object is refused (not retried by the SDK):
	// the step fails, and River runs it again a second later.
	refusal := faults.Fail("s3:CopyObject", 1, http.StatusForbidden, "AccessDenied", "Access Denied")
	startMove(t, base, admin, id, "dedicated")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(time.Minute); ; <-tick.C {
		m := mustAPI(t, "GET", base+"/v1/tenants/"+id+"/migration", admin, "", http.StatusOK)
		if strings.Contains(jstr(m, "error"), "AccessDenied") {
			tn := mustAPI(t, "GET", base+"/v1/tenants/"+id, admin, "", http.StatusOK)
			if jstr(m, "state") != "running" || jstr(m, "step") != "copy" || m["fenced"] != false || jstr(tn, "tier") != "pooled" {
				t.Fatalf("after a refused copy: migration %v, tenant %v", m, tn)
			}
			break
		}
		if time.Now().After(deadline) || jstr(m, "state") != "running" {
			t.Fatalf("the refused copy never showed in the migration: %v (CopyObject refusals left: %d)", m, refusal.Remaining())
		}
	}
	first := awaitMoved(t, base, admin, id, "dedicated")
	kind, dedicated := homeOutputs(t, base, admin, id)
	if kind != "dedicated" || dedicated["profile_table"] == pooled["profile_table"] || dedicated["raw_bucket"] == pooled["raw_bucket"] || dedicated["s3_prefix"] != "" {
		t.Fatalf("placement after the move to dedicated: %s %v", kind, dedicated)
	}
	if counts, _ := first["counts"].(map[string]any); jnum(counts, "objects_copied") == 0 || jnum(counts, "grants_rehomed") != 1 || jnum(counts, "objects_purged") == 0 {
		t.Errorf("counts of the move to dedicated: %v", counts)
	}
	if n := len(motoScan(t.Context(), t, ddb, dedicated["profile_table"], "")); n == 0 {
		t.Error("the dedicated table holds no items")
	}
	refined.check(t, s3c, g, dedicated)
	awaitGrant(t, base, admin, id, grant, dedicated["glue_database"])
	if perms := dbPermissions(t, lf, dedicated["glue_database"]); !slices.Contains(perms[role], "DESCRIBE") {
		t.Errorf("Lake Formation's permissions on %s after the move to dedicated: %v", dedicated["glue_database"], perms)
	}
	checkLeft(t, ddb, s3c, g, id, pooled, false)

	before := stream.count()
	waitFor(t, "events on the dedicated stack", func() bool { return stream.count() >= before+10 })
	second := moveTier(t, base, admin, id, "pooled")
	acked, fenced := stream.Stop(t)
	t.Logf("%d events acknowledged, %d sends fenced (503); moves: %v / %v", len(acked), fenced, first["counts"], second["counts"])
	kind, back := homeOutputs(t, base, admin, id)
	if kind != "pooled" || back["profile_table"] != pooled["profile_table"] || back["s3_prefix"] != pooled["s3_prefix"] {
		t.Fatalf("placement after the move back: %s %v", kind, back)
	}
	refined.check(t, s3c, g, back)
	awaitGrant(t, base, admin, id, grant, back["glue_database"])
	if perms := dbPermissions(t, lf, back["glue_database"]); !slices.Contains(perms[role], "DESCRIBE") {
		t.Errorf("Lake Formation's permissions on %s after the move back: %v", back["glue_database"], perms)
	}
	checkLeft(t, ddb, s3c, g, id, dedicated, true)

	checkExactlyOnce(t, "raw zone", acked, s3MessageIDs(t, s3c, back["raw_bucket"], back["s3_prefix"]))
	checkExactlyOnce(t, "profiles", acked, profileMessageIDs(t, base, admin, id))
	checkExactlyOnce(t, "the neighbour's raw zone", nacked, s3MessageIDs(t, s3c, nout["raw_bucket"], nout["s3_prefix"]))
	if n := len(motoScan(t.Context(), t, ddb, nout["profile_table"], "TENANT#"+neighbour+"#")); n != nitems {
		t.Errorf("the neighbour has %d items, had %d", n, nitems)
	}
}
