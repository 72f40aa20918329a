package cfn_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
)

// TestDropTenantPartitions: a tenant's partitions of a database's shared
// tables go, another tenant's and those of a table not shared stay; an
// absent database is no error.
func TestDropTenantPartitions(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	e, _ := newEngine(t, endpoint)
	ctx := t.Context()
	client := glueClient(endpoint, regionB)
	db := "cairn_test_shared_" + randomLower(6)
	if _, err := client.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String(db)}}); err != nil {
		awstest.Made(t, err)
	}
	keys := []gluetypes.Column{{Name: aws.String("tenant_id"), Type: aws.String("string")}, {Name: aws.String("dt"), Type: aws.String("string")}}
	sd := func(at string) *gluetypes.StorageDescriptor {
		return &gluetypes.StorageDescriptor{Location: aws.String(at), Columns: []gluetypes.Column{{Name: aws.String("x"), Type: aws.String("string")}}}
	}
	for _, tbl := range []struct {
		name   string
		shared string
	}{{"tracks", "true"}, {"other", "false"}} {
		if _, err := client.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String(db), TableInput: &gluetypes.TableInput{
			Name: aws.String(tbl.name), PartitionKeys: keys, Parameters: map[string]string{"cairn:shared": tbl.shared}, StorageDescriptor: sd("s3://b/tenants/")}}); err != nil {
			awstest.Made(t, err)
		}
		for _, v := range [][]string{{"ten_a", "2026-11-26"}, {"ten_a", "2026-11-27"}, {"ten_ab", "2026-11-26"}, {"ten_b", "2026-11-26"}} {
			if _, err := client.CreatePartition(ctx, &glue.CreatePartitionInput{DatabaseName: aws.String(db), TableName: aws.String(tbl.name),
				PartitionInput: &gluetypes.PartitionInput{Values: v, StorageDescriptor: sd("s3://b/tenants/" + v[0] + "/" + v[1] + "/")}}); err != nil {
				awstest.Made(t, err)
			}
		}
	}
	for range 2 {
		if err := e.DropTenantPartitions(ctx, regionB, db, "ten_a"); err != nil {
			t.Fatal(err)
		}
	}
	left := func(table string) []string {
		out, err := client.GetPartitions(ctx, &glue.GetPartitionsInput{DatabaseName: aws.String(db), TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, p := range out.Partitions {
			vs = append(vs, p.Values[0]+"/"+p.Values[1])
		}
		return vs
	}
	if got := left("tracks"); len(got) != 2 || !slices.Contains(got, "ten_ab/2026-11-26") || !slices.Contains(got, "ten_b/2026-11-26") {
		t.Errorf("tracks partitions left: %v, want ten_ab's and ten_b's", got)
	}
	if got := left("other"); len(got) != 4 {
		t.Errorf("a table not shared lost partitions: %v", got)
	}
	if err := e.DropTenantPartitions(ctx, regionB, "cairn_test_absent_"+randomLower(6), "ten_a"); err != nil {
		t.Errorf("absent database: %v", err)
	}
}
