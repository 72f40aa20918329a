package awszones

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"

	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// Glue's limits on batch calls.
const (
	batchCreatePartitionsMax = 100
	batchDeletePartitionsMax = 25
)

// What package lake/athena marks its tables with: the zone of a lake
// table (cairn:zone), a table shared by a pool's tenants (cairn:shared,
// partitioned by tenant_id first).
const (
	zoneParameter   = "cairn:zone"
	sharedParameter = "cairn:shared"
	tenantKey       = "tenant_id"
)

// pooledZone reports whether a table of these parameters is, in a pool,
// one of the pool's shared tables: the lake's clean and curated tables.
func pooledZone(params map[string]string) bool {
	z := params[zoneParameter]
	return z == "clean" || z == "curated"
}

// tenantTable is one of a tenant's tables as a dedicated tenant's database
// holds it: a table of a pooled tenant's own database as it is; one of
// the pool's shared tables without its tenant_id partition key, its
// partitions those of the tenant without their tenant_id value, and a
// shared table whose only key is tenant_id (a curated table) at its
// tenant partition's location, with no partition.
type tenantTable struct {
	in    *gluetypes.TableInput
	parts map[string]gluetypes.PartitionInput // by their values, joined
}

func valuesKey(values []string) string { return strings.Join(values, "\x00") }

// readCatalog reads the tenant's tables at h (tenantTable).
func readCatalog(ctx context.Context, g *glue.Client, tenant string, h migration.Home) (map[string]tenantTable, error) {
	own, err := tables(ctx, g, h.GlueDatabase())
	if err != nil {
		return nil, err
	}
	out := map[string]tenantTable{}
	for name, t := range own {
		tt := tenantTable{in: tableInput(t), parts: map[string]gluetypes.PartitionInput{}}
		if len(t.PartitionKeys) > 0 {
			ps, err := partitions(ctx, g, h.GlueDatabase(), name, "")
			if err != nil {
				return nil, err
			}
			for k, p := range ps {
				tt.parts[k] = partitionInput(p, p.Values)
			}
		}
		out[name] = tt
	}
	if h.Kind != placement.Pooled {
		return out, nil
	}
	pool := provisioner.PoolGlueDatabase()
	shared, err := sharedTables(ctx, g, pool)
	if err != nil {
		return nil, err
	}
	for name, t := range shared {
		ps, err := tenantPartitions(ctx, g, pool, name, tenant)
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			continue
		}
		in := tableInput(t)
		in.PartitionKeys = t.PartitionKeys[1:]
		in.Parameters = maps.Clone(t.Parameters)
		delete(in.Parameters, sharedParameter)
		sd := *t.StorageDescriptor
		in.StorageDescriptor = &sd
		tt := tenantTable{in: in, parts: map[string]gluetypes.PartitionInput{}}
		if len(in.PartitionKeys) == 0 {
			for _, p := range ps {
				sd.Location = p.StorageDescriptor.Location
			}
		} else {
			// Where the engine puts a dedicated tenant's table: <prefix><table>/.
			bucket, _, _ := strings.Cut(strings.TrimPrefix(aws.ToString(sd.Location), "s3://"), "/")
			sd.Location = aws.String("s3://" + bucket + "/" + h.Prefix() + name + "/")
			for _, p := range ps {
				tt.parts[valuesKey(p.Values[1:])] = partitionInput(p, p.Values[1:])
			}
		}
		out[name] = tt
	}
	return out, nil
}

// writeCatalog makes the tenant's tables at h those of want (read from
// its other home, re-pointed): all of them in a dedicated tenant's
// database; in a pooled tenant's, the lake's clean and curated tables as
// its partitions of the pool's shared tables (which are made if missing,
// and otherwise left as the pool has them) and the others in its own
// database. What the tenant has at h that want lacks is removed: tables
// of its database, its partitions of shared tables.
func writeCatalog(ctx context.Context, g *glue.Client, tenant string, h migration.Home, want map[string]tenantTable, c *migration.SyncCounts) error {
	own, shared := want, map[string]tenantTable{}
	if h.Kind == placement.Pooled {
		own = map[string]tenantTable{}
		for name, t := range want {
			if pooledZone(t.in.Parameters) {
				shared[name] = t
			} else {
				own[name] = t
			}
		}
	}
	if err := writeOwn(ctx, g, h.GlueDatabase(), own, c); err != nil {
		return err
	}
	if h.Kind != placement.Pooled {
		return nil
	}
	root := strings.TrimSuffix(h.Prefix(), tenant+"/")
	return writeShared(ctx, g, provisioner.PoolGlueDatabase(), tenant, root, shared, c)
}

// writeOwn makes database db's tables, and their partitions, those of
// want; and drops the tables of db that want lacks.
func writeOwn(ctx context.Context, g *glue.Client, db string, want map[string]tenantTable, c *migration.SyncCounts) error {
	have, err := tables(ctx, g, db)
	if err != nil {
		return err
	}
	for name, t := range want {
		c.Objects++
		if cur, ok := have[name]; !ok {
			if _, err := g.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String(db), TableInput: t.in}); err != nil {
				return fmt.Errorf("create table %s: %w", name, err)
			}
			c.Written++
		} else if !reflect.DeepEqual(tableInput(cur), t.in) {
			if _, err := g.UpdateTable(ctx, &glue.UpdateTableInput{DatabaseName: aws.String(db), TableInput: t.in}); err != nil {
				return fmt.Errorf("update table %s: %w", name, err)
			}
			c.Written++
		}
		if len(t.in.PartitionKeys) > 0 {
			cur, err := partitions(ctx, g, db, name, "")
			if err != nil {
				return err
			}
			if err := syncPartitions(ctx, g, db, name, cur, t.parts, c); err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
		}
	}
	for name := range have {
		if _, ok := want[name]; ok {
			continue
		}
		_, err := g.DeleteTable(ctx, &glue.DeleteTableInput{DatabaseName: aws.String(db), Name: aws.String(name)})
		var nf *gluetypes.EntityNotFoundException
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("delete table %s: %w", name, err)
		}
		c.Removed++
	}
	return nil
}

// writeShared makes the tenant's partitions of the pool's shared tables
// (in database pool) those of want, a tenant_id value first; a shared
// table missing is made from want's, at the pool's prefix root of its
// bucket. The tenant's partitions of shared tables want lacks are
// dropped; other tenants' partitions are not read.
func writeShared(ctx context.Context, g *glue.Client, pool, tenant, root string, want map[string]tenantTable, c *migration.SyncCounts) error {
	if len(want) > 0 {
		if err := ensureDatabase(ctx, g, pool); err != nil {
			return err
		}
	}
	have, err := sharedTables(ctx, g, pool)
	if err != nil {
		return err
	}
	for name, t := range want {
		c.Objects++
		if _, ok := have[name]; !ok {
			in := *t.in
			in.PartitionKeys = slices.Concat([]gluetypes.Column{{Name: aws.String(tenantKey), Type: aws.String("string")}}, t.in.PartitionKeys)
			in.Parameters = maps.Clone(t.in.Parameters)
			in.Parameters[sharedParameter] = "true"
			sd := *t.in.StorageDescriptor
			bucket, _, _ := strings.Cut(strings.TrimPrefix(aws.ToString(sd.Location), "s3://"), "/")
			sd.Location = aws.String("s3://" + bucket + "/" + root)
			in.StorageDescriptor = &sd
			_, err := g.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String(pool), TableInput: &in,
				PartitionIndexes: []gluetypes.PartitionIndex{{IndexName: aws.String("cairn_by_tenant"), Keys: []string{tenantKey}}}})
			var exists *gluetypes.AlreadyExistsException
			if err != nil && !errors.As(err, &exists) {
				return fmt.Errorf("create table %s.%s: %w", pool, name, err)
			}
			c.Written++
		}
		parts := map[string]gluetypes.PartitionInput{}
		if len(t.in.PartitionKeys) == 0 {
			values := []string{tenant}
			parts[valuesKey(values)] = gluetypes.PartitionInput{Values: values, StorageDescriptor: t.in.StorageDescriptor}
		}
		for _, p := range t.parts {
			p.Values = slices.Concat([]string{tenant}, p.Values)
			parts[valuesKey(p.Values)] = p
		}
		cur, err := tenantPartitions(ctx, g, pool, name, tenant)
		if err != nil {
			return err
		}
		if err := syncPartitions(ctx, g, pool, name, cur, parts, c); err != nil {
			return fmt.Errorf("table %s.%s: %w", pool, name, err)
		}
	}
	for name := range have {
		if _, ok := want[name]; ok {
			continue
		}
		if err := dropTenantPartitions(ctx, g, pool, name, tenant, c); err != nil {
			return err
		}
	}
	return nil
}

// clearShared drops the tenant's partitions of every table the pool
// shares: a tenant that left the pool leaves nothing in its catalog.
func clearShared(ctx context.Context, g *glue.Client, tenant string) (int64, error) {
	pool := provisioner.PoolGlueDatabase()
	have, err := sharedTables(ctx, g, pool)
	if err != nil {
		return 0, err
	}
	var c migration.SyncCounts
	for name := range have {
		if err := dropTenantPartitions(ctx, g, pool, name, tenant, &c); err != nil {
			return c.Removed, err
		}
	}
	return c.Removed, nil
}

func dropTenantPartitions(ctx context.Context, g *glue.Client, pool, table, tenant string, c *migration.SyncCounts) error {
	cur, err := tenantPartitions(ctx, g, pool, table, tenant)
	if err != nil {
		return err
	}
	if err := syncPartitions(ctx, g, pool, table, cur, nil, c); err != nil {
		return fmt.Errorf("table %s.%s: %w", pool, table, err)
	}
	return nil
}

// syncPartitions makes the partitions have of the table in db those of
// want (both keyed by their values, joined): it creates, updates and
// deletes what differs.
func syncPartitions(ctx context.Context, g *glue.Client, db, table string, have map[string]gluetypes.Partition, want map[string]gluetypes.PartitionInput, c *migration.SyncCounts) error {
	var create []gluetypes.PartitionInput
	for key, p := range want {
		c.Objects++
		cur, ok := have[key]
		switch {
		case !ok:
			create = append(create, p)
		case !reflect.DeepEqual(cur.StorageDescriptor, p.StorageDescriptor) || !reflect.DeepEqual(cur.Parameters, p.Parameters):
			if _, err := g.UpdatePartition(ctx, &glue.UpdatePartitionInput{DatabaseName: aws.String(db), TableName: aws.String(table),
				PartitionValueList: p.Values, PartitionInput: &p}); err != nil {
				return fmt.Errorf("update partition %v: %w", p.Values, err)
			}
			c.Written++
		}
	}
	for start := 0; start < len(create); start += batchCreatePartitionsMax {
		chunk := create[start:min(start+batchCreatePartitionsMax, len(create))]
		out, err := g.BatchCreatePartition(ctx, &glue.BatchCreatePartitionInput{DatabaseName: aws.String(db), TableName: aws.String(table),
			PartitionInputList: chunk})
		if err != nil {
			return fmt.Errorf("create partitions: %w", err)
		}
		for _, e := range out.Errors {
			if e.ErrorDetail != nil && aws.ToString(e.ErrorDetail.ErrorCode) != "AlreadyExistsException" {
				return fmt.Errorf("create partition %v: %s: %s", e.PartitionValues, aws.ToString(e.ErrorDetail.ErrorCode), aws.ToString(e.ErrorDetail.ErrorMessage))
			}
		}
		c.Written += int64(len(chunk))
	}
	var stale []gluetypes.PartitionValueList
	for key, p := range have {
		if _, ok := want[key]; !ok {
			stale = append(stale, gluetypes.PartitionValueList{Values: p.Values})
		}
	}
	for start := 0; start < len(stale); start += batchDeletePartitionsMax {
		chunk := stale[start:min(start+batchDeletePartitionsMax, len(stale))]
		out, err := g.BatchDeletePartition(ctx, &glue.BatchDeletePartitionInput{DatabaseName: aws.String(db), TableName: aws.String(table),
			PartitionsToDelete: chunk})
		if err != nil {
			return fmt.Errorf("delete partitions: %w", err)
		}
		for _, e := range out.Errors {
			if e.ErrorDetail != nil && aws.ToString(e.ErrorDetail.ErrorCode) != "EntityNotFoundException" {
				return fmt.Errorf("delete partition %v: %s: %s", e.PartitionValues, aws.ToString(e.ErrorDetail.ErrorCode), aws.ToString(e.ErrorDetail.ErrorMessage))
			}
		}
		c.Removed += int64(len(chunk))
	}
	return nil
}

func partitionInput(p gluetypes.Partition, values []string) gluetypes.PartitionInput {
	return gluetypes.PartitionInput{Values: values, Parameters: p.Parameters, StorageDescriptor: p.StorageDescriptor}
}

// tables returns the database's tables by name.
func tables(ctx context.Context, g *glue.Client, db string) (map[string]gluetypes.Table, error) {
	out := map[string]gluetypes.Table{}
	pages := glue.NewGetTablesPaginator(g, &glue.GetTablesInput{DatabaseName: aws.String(db)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("tables of %s: %w", db, err)
		}
		for _, t := range page.TableList {
			out[aws.ToString(t.Name)] = t
		}
	}
	return out, nil
}

// sharedTables returns the pool database's shared tables (none when the
// pool has no such database yet: no tenant of it has refined).
func sharedTables(ctx context.Context, g *glue.Client, pool string) (map[string]gluetypes.Table, error) {
	all, err := tables(ctx, g, pool)
	var nf *gluetypes.EntityNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for name, t := range all {
		if t.Parameters[sharedParameter] != "true" || len(t.PartitionKeys) == 0 || aws.ToString(t.PartitionKeys[0].Name) != tenantKey {
			delete(all, name)
		}
	}
	return all, nil
}

// partitions returns the table's partitions (those expression selects,
// if set) by their values, joined.
func partitions(ctx context.Context, g *glue.Client, db, table, expression string) (map[string]gluetypes.Partition, error) {
	out := map[string]gluetypes.Partition{}
	in := &glue.GetPartitionsInput{DatabaseName: aws.String(db), TableName: aws.String(table)}
	if expression != "" {
		in.Expression = aws.String(expression)
	}
	pages := glue.NewGetPartitionsPaginator(g, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s.%s: %w", db, table, err)
		}
		for _, p := range page.Partitions {
			out[valuesKey(p.Values)] = p
		}
	}
	return out, nil
}

// tenantPartitions returns the tenant's partitions of a shared table: those
// whose first value is its ID (Glue's expression selects them; what comes
// back is checked all the same).
func tenantPartitions(ctx context.Context, g *glue.Client, db, table, tenant string) (map[string]gluetypes.Partition, error) {
	all, err := partitions(ctx, g, db, table, tenantKey+" = '"+strings.ReplaceAll(tenant, "'", "''")+"'")
	if err != nil {
		return nil, err
	}
	for k, p := range all {
		if len(p.Values) == 0 || p.Values[0] != tenant {
			delete(all, k)
		}
	}
	return all, nil
}

// ensureDatabase creates the database unless it exists.
func ensureDatabase(ctx context.Context, g *glue.Client, name string) error {
	_, err := g.GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String(name)})
	var nf *gluetypes.EntityNotFoundException
	if err == nil || !errors.As(err, &nf) {
		return err
	}
	_, err = g.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String(name),
		Description: aws.String("Cairn: the tables a pool's tenants share, a partition per tenant_id")}})
	var exists *gluetypes.AlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// repoint re-points every location of the tables through pairs: from the
// source's buckets and prefix to the target's.
func repoint(in map[string]tenantTable, pairs []pair) map[string]tenantTable {
	move := func(sd *gluetypes.StorageDescriptor) *gluetypes.StorageDescriptor {
		if sd == nil || sd.Location == nil {
			return sd
		}
		out := *sd
		for _, p := range pairs {
			if rest, ok := strings.CutPrefix(*sd.Location, p.from.url()); ok {
				out.Location = aws.String(p.to.url() + rest)
				break
			}
		}
		return &out
	}
	out := make(map[string]tenantTable, len(in))
	for name, t := range in {
		tin := *t.in
		tin.StorageDescriptor = move(t.in.StorageDescriptor)
		parts := make(map[string]gluetypes.PartitionInput, len(t.parts))
		for k, p := range t.parts {
			p.StorageDescriptor = move(p.StorageDescriptor)
			parts[k] = p
		}
		out[name] = tenantTable{in: &tin, parts: parts}
	}
	return out
}

// tableInput is what makes a table like t.
func tableInput(t gluetypes.Table) *gluetypes.TableInput {
	return &gluetypes.TableInput{
		Name: t.Name, Description: t.Description, Owner: t.Owner, Parameters: t.Parameters, PartitionKeys: t.PartitionKeys,
		Retention: t.Retention, StorageDescriptor: t.StorageDescriptor, TableType: t.TableType,
		ViewOriginalText: t.ViewOriginalText, ViewExpandedText: t.ViewExpandedText,
	}
}
