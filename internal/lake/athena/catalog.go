package athena

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// Storage formats of the catalog's tables.
const (
	parquetInput  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
	parquetOutput = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
	parquetSerDe  = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
	textInput     = "org.apache.hadoop.mapred.TextInputFormat"
	textOutput    = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
	// The OpenX JSON SerDe reads a nested object into a string column as
	// its JSON text (properties, traits, context) and matches columns to
	// keys without regard to case.
	jsonSerDe = "org.openx.data.jsonserde.JsonSerDe"
)

// glueType names a column type in the Glue Data Catalog (Hive's names).
func glueType(t lake.ColumnType) string {
	switch t {
	case lake.Timestamp:
		return "timestamp"
	case lake.BigInt:
		return "bigint"
	case lake.Date:
		return "date"
	}
	return "string" // JSON columns hold JSON text
}

func glueColumns(cols []lake.Column) []gluetypes.Column {
	out := make([]gluetypes.Column, len(cols))
	for i, c := range cols {
		out[i] = gluetypes.Column{Name: aws.String(c.Name), Type: aws.String(glueType(c.Type))}
	}
	return out
}

var hourKeys = []gluetypes.Column{
	{Name: aws.String("dt"), Type: aws.String("string")},
	{Name: aws.String("hh"), Type: aws.String("string")},
}

// jsonStorage is a JSON table's storage at location.
func jsonStorage(cols []gluetypes.Column, location string) *gluetypes.StorageDescriptor {
	return &gluetypes.StorageDescriptor{
		Columns: cols, Location: aws.String(location),
		InputFormat: aws.String(textInput), OutputFormat: aws.String(textOutput),
		SerdeInfo: &gluetypes.SerDeInfo{SerializationLibrary: aws.String(jsonSerDe), Parameters: map[string]string{
			"ignore.malformed.json": "true", // a line that is not JSON is skipped, as the embedded engine does
			"case.insensitive":      "true",
		}},
	}
}

// parquetStorage is a Parquet table's storage at location.
func parquetStorage(cols []gluetypes.Column, location string) *gluetypes.StorageDescriptor {
	return &gluetypes.StorageDescriptor{
		Columns: cols, Location: aws.String(location),
		InputFormat: aws.String(parquetInput), OutputFormat: aws.String(parquetOutput),
		SerdeInfo: &gluetypes.SerDeInfo{SerializationLibrary: aws.String(parquetSerDe)},
	}
}

// rawTableInput is the raw zone's JSON table over <prefix>events/,
// partitioned as the raw zone is.
func rawTableInput(loc lake.Location) *gluetypes.TableInput {
	cols := make([]gluetypes.Column, len(lake.RawFields))
	for i, f := range lake.RawFields {
		cols[i] = gluetypes.Column{Name: aws.String(rawColumn(f)), Type: aws.String("string")}
	}
	return &gluetypes.TableInput{
		Name: aws.String(rawTable), TableType: aws.String("EXTERNAL_TABLE"),
		Description:       aws.String("Cairn raw zone: the events as received (docs/raw-zone.md)"),
		PartitionKeys:     hourKeys,
		Parameters:        map[string]string{"classification": "json", "compressionType": "gzip", "cairn:zone": lake.ZoneRaw},
		StorageDescriptor: jsonStorage(cols, s3URL(loc.RawBucket, loc.Prefix+"events/")),
	}
}

// stageTableInput is a staged relation's JSON table, partitioned by run.
func stageTableInput(loc lake.Location, rel lake.Relation) *gluetypes.TableInput {
	cols := make([]gluetypes.Column, len(rel.Columns))
	for i, c := range rel.Columns {
		cols[i] = gluetypes.Column{Name: aws.String(c.Name), Type: aws.String("string")}
	}
	return &gluetypes.TableInput{
		Name: aws.String(stageTable(rel)), TableType: aws.String("EXTERNAL_TABLE"),
		Description:       aws.String("Cairn staging: a relation the refinery stages for one run, then removes"),
		PartitionKeys:     []gluetypes.Column{{Name: aws.String("run"), Type: aws.String("string")}},
		Parameters:        map[string]string{"classification": "json"},
		StorageDescriptor: jsonStorage(cols, s3URL(loc.CuratedBucket, stageRoot(loc, rel))),
	}
}

// tableInput is a clean or curated table at location.
func tableInput(t lake.Table, location string) *gluetypes.TableInput {
	in := &gluetypes.TableInput{
		Name: aws.String(t.Name), TableType: aws.String("EXTERNAL_TABLE"),
		Description: aws.String("Cairn " + t.Zone + " zone"),
		Parameters: map[string]string{
			"classification": "parquet", "parquet.compression": "ZSTD", "cairn:zone": t.Zone,
		},
		StorageDescriptor: parquetStorage(glueColumns(t.Columns), location),
	}
	if t.Partitioned {
		in.PartitionKeys = hourKeys
	}
	return in
}

// sharedParameter marks a table shared by a pool's tenants (Glue table
// parameter; grants/lakeformation.SharedParameter reads it): the grants
// broker grants it only through each tenant's data cells filter.
const sharedParameter = "cairn:shared"

// sharedTableInput is a clean or curated table shared by a pool's tenants,
// at location (the pool's prefix): partitioned by tenant_id, then as the
// table is.
func sharedTableInput(t lake.Table, location string) *gluetypes.TableInput {
	in := tableInput(t, location)
	in.PartitionKeys = append([]gluetypes.Column{{Name: aws.String(tenantColumn), Type: aws.String("string")}}, in.PartitionKeys...)
	in.Parameters[sharedParameter] = "true"
	// Athena prunes by the partition index (below) when planning.
	in.Parameters["partition_filtering.enabled"] = "true"
	in.Description = aws.String("Cairn " + t.Zone + " zone, shared by a pool's tenants (a partition per tenant_id)")
	return in
}

// tenantIndex is a shared table's partition index on tenant_id: Glue and
// Athena find one tenant's partitions of a table that holds every pooled
// tenant's without listing them all.
var tenantIndex = gluetypes.PartitionIndex{IndexName: aws.String("cairn_by_tenant"), Keys: []string{tenantColumn}}

// ensureDatabase creates the database unless it exists.
func ensureDatabase(ctx context.Context, g *glue.Client, name string) error {
	_, err := g.GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String(name)})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("glue get database %s: %w", name, err)
	}
	_, err = g.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String(name),
		Description: aws.String("Cairn: the tables a pool's tenants share, a partition per tenant_id")}})
	if err != nil && !isExists(err) {
		return fmt.Errorf("glue create database %s: %w", name, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf *gluetypes.EntityNotFoundException
	return errors.As(err, &nf)
}

func isExists(err error) bool {
	var ae *gluetypes.AlreadyExistsException
	return errors.As(err, &ae)
}

// ensureTable creates the table if missing, and brings its columns,
// partition keys and storage format back to in's if they differ. It keeps
// an existing table's location unless keepLocation is false. It returns
// the table's location.
func ensureTable(ctx context.Context, g *glue.Client, db string, in *gluetypes.TableInput, keepLocation bool) (string, error) {
	out, err := g.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(db), Name: in.Name})
	switch {
	case isNotFound(err):
		create := &glue.CreateTableInput{DatabaseName: aws.String(db), TableInput: in}
		if in.Parameters[sharedParameter] == "true" {
			create.PartitionIndexes = []gluetypes.PartitionIndex{tenantIndex}
		}
		_, err = g.CreateTable(ctx, create)
		if err == nil {
			return aws.ToString(in.StorageDescriptor.Location), nil
		}
		if !isExists(err) {
			return "", fmt.Errorf("glue create table %s.%s: %w", db, aws.ToString(in.Name), err)
		}
		// Made meanwhile by another run: check it as found.
		if out, err = g.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String(db), Name: in.Name}); err != nil {
			return "", fmt.Errorf("glue get table %s.%s: %w", db, aws.ToString(in.Name), err)
		}
	case err != nil:
		return "", fmt.Errorf("glue get table %s.%s: %w", db, aws.ToString(in.Name), err)
	}
	cur := out.Table
	sd := cur.StorageDescriptor
	if keepLocation && sd != nil && aws.ToString(sd.Location) != "" {
		in.StorageDescriptor.Location = sd.Location
	}
	if sd != nil && sameColumns(sd.Columns, in.StorageDescriptor.Columns) && sameColumns(cur.PartitionKeys, in.PartitionKeys) &&
		aws.ToString(sd.Location) == aws.ToString(in.StorageDescriptor.Location) && sd.SerdeInfo != nil &&
		aws.ToString(sd.SerdeInfo.SerializationLibrary) == aws.ToString(in.StorageDescriptor.SerdeInfo.SerializationLibrary) {
		return aws.ToString(sd.Location), nil
	}
	if _, err := g.UpdateTable(ctx, &glue.UpdateTableInput{DatabaseName: aws.String(db), TableInput: in}); err != nil {
		return "", fmt.Errorf("glue update table %s.%s: %w", db, aws.ToString(in.Name), err)
	}
	return aws.ToString(in.StorageDescriptor.Location), nil
}

func sameColumns(a, b []gluetypes.Column) bool {
	return slices.EqualFunc(a, b, func(x, y gluetypes.Column) bool {
		return aws.ToString(x.Name) == aws.ToString(y.Name) && aws.ToString(x.Type) == aws.ToString(y.Type)
	})
}

// setPartition points the table's partition at location, creating it if
// missing, and returns the location it pointed at before ("" for none).
// UpdatePartition swaps the location in one call: a query planned before
// it reads the old version, one planned after it the new one.
func setPartition(ctx context.Context, g *glue.Client, db string, t *gluetypes.TableInput, values []string, location string) (string, error) {
	in := &gluetypes.PartitionInput{Values: values, StorageDescriptor: copyStorage(t.StorageDescriptor, location)}
	got, err := g.GetPartition(ctx, &glue.GetPartitionInput{DatabaseName: aws.String(db), TableName: t.Name, PartitionValues: values})
	if isNotFound(err) {
		_, err = g.CreatePartition(ctx, &glue.CreatePartitionInput{DatabaseName: aws.String(db), TableName: t.Name, PartitionInput: in})
		if err == nil {
			return "", nil
		}
		if !isExists(err) {
			return "", fmt.Errorf("glue create partition %s %v: %w", aws.ToString(t.Name), values, err)
		}
		got, err = g.GetPartition(ctx, &glue.GetPartitionInput{DatabaseName: aws.String(db), TableName: t.Name, PartitionValues: values})
	}
	if err != nil {
		return "", fmt.Errorf("glue get partition %s %v: %w", aws.ToString(t.Name), values, err)
	}
	old := ""
	if sd := got.Partition.StorageDescriptor; sd != nil {
		old = aws.ToString(sd.Location)
	}
	if old == location {
		return "", nil
	}
	if _, err := g.UpdatePartition(ctx, &glue.UpdatePartitionInput{DatabaseName: aws.String(db), TableName: t.Name,
		PartitionValueList: values, PartitionInput: in}); err != nil {
		return "", fmt.Errorf("glue update partition %s %v: %w", aws.ToString(t.Name), values, err)
	}
	return old, nil
}

// addPartition creates the table's partition at location unless it
// exists (then it is left as it is).
func addPartition(ctx context.Context, g *glue.Client, db string, t *gluetypes.TableInput, values []string, location string) error {
	_, err := g.CreatePartition(ctx, &glue.CreatePartitionInput{DatabaseName: aws.String(db), TableName: t.Name,
		PartitionInput: &gluetypes.PartitionInput{Values: values, StorageDescriptor: copyStorage(t.StorageDescriptor, location)}})
	if err != nil && !isExists(err) {
		return fmt.Errorf("glue create partition %s %v: %w", aws.ToString(t.Name), values, err)
	}
	return nil
}

// dropPartition removes the table's partition, returning the location it
// pointed at ("" when there was none).
func dropPartition(ctx context.Context, g *glue.Client, db, table string, values []string) (string, error) {
	got, err := g.GetPartition(ctx, &glue.GetPartitionInput{DatabaseName: aws.String(db), TableName: aws.String(table), PartitionValues: values})
	if isNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("glue get partition %s %v: %w", table, values, err)
	}
	_, err = g.DeletePartition(ctx, &glue.DeletePartitionInput{DatabaseName: aws.String(db), TableName: aws.String(table), PartitionValues: values})
	if err != nil && !isNotFound(err) {
		return "", fmt.Errorf("glue delete partition %s %v: %w", table, values, err)
	}
	if sd := got.Partition.StorageDescriptor; sd != nil {
		return aws.ToString(sd.Location), nil
	}
	return "", nil
}

// partitions lists a table's partitions (those expression selects, if
// set): their values and locations.
func partitions(ctx context.Context, g *glue.Client, db, table, expression string) ([]gluetypes.Partition, error) {
	var out []gluetypes.Partition
	in := &glue.GetPartitionsInput{DatabaseName: aws.String(db), TableName: aws.String(table)}
	if expression != "" {
		in.Expression = aws.String(expression)
	}
	pages := glue.NewGetPartitionsPaginator(g, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("glue get partitions %s: %w", table, err)
		}
		out = append(out, page.Partitions...)
	}
	return out, nil
}

func copyStorage(sd *gluetypes.StorageDescriptor, location string) *gluetypes.StorageDescriptor {
	c := *sd
	c.Location = aws.String(location)
	return &c
}
