package awszones

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"

	"github.com/cairn-cdp/cairn/internal/migration"
)

// Glue's limits on batch calls.
const (
	batchCreatePartitionsMax = 100
	batchDeletePartitionsMax = 25
)

// syncCatalog makes the tables of database to, and their partitions, what
// those of from are, their locations re-pointed through pairs; and drops
// the tables of to that from lacks.
func syncCatalog(ctx context.Context, g *glue.Client, from, to string, pairs []pair, c *migration.SyncCounts) error {
	repoint := func(sd *gluetypes.StorageDescriptor) *gluetypes.StorageDescriptor {
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
	have, err := tables(ctx, g, to)
	if err != nil {
		return err
	}
	src, err := tables(ctx, g, from)
	if err != nil {
		return err
	}
	for name, t := range src {
		c.Objects++
		want := tableInput(t)
		want.StorageDescriptor = repoint(want.StorageDescriptor)
		if cur, ok := have[name]; !ok {
			if _, err := g.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String(to), TableInput: want}); err != nil {
				return fmt.Errorf("create table %s: %w", name, err)
			}
			c.Written++
		} else if !reflect.DeepEqual(tableInput(cur), want) {
			if _, err := g.UpdateTable(ctx, &glue.UpdateTableInput{DatabaseName: aws.String(to), TableInput: want}); err != nil {
				return fmt.Errorf("update table %s: %w", name, err)
			}
			c.Written++
		}
		if len(t.PartitionKeys) > 0 {
			if err := syncPartitions(ctx, g, from, to, name, repoint, c); err != nil {
				return fmt.Errorf("table %s: %w", name, err)
			}
		}
	}
	for name := range have {
		if _, ok := src[name]; ok {
			continue
		}
		_, err := g.DeleteTable(ctx, &glue.DeleteTableInput{DatabaseName: aws.String(to), Name: aws.String(name)})
		var nf *gluetypes.EntityNotFoundException
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("delete table %s: %w", name, err)
		}
		c.Removed++
	}
	return nil
}

// syncPartitions makes the partitions of table in database to those of
// the table in from, re-pointed.
func syncPartitions(ctx context.Context, g *glue.Client, from, to, table string, repoint func(*gluetypes.StorageDescriptor) *gluetypes.StorageDescriptor, c *migration.SyncCounts) error {
	have, err := partitions(ctx, g, to, table)
	if err != nil {
		return err
	}
	src, err := partitions(ctx, g, from, table)
	if err != nil {
		return err
	}
	var create []gluetypes.PartitionInput
	for key, p := range src {
		c.Objects++
		want := gluetypes.PartitionInput{Values: p.Values, Parameters: p.Parameters, StorageDescriptor: repoint(p.StorageDescriptor)}
		cur, ok := have[key]
		switch {
		case !ok:
			create = append(create, want)
		case !reflect.DeepEqual(cur.StorageDescriptor, want.StorageDescriptor) || !reflect.DeepEqual(cur.Parameters, want.Parameters):
			if _, err := g.UpdatePartition(ctx, &glue.UpdatePartitionInput{DatabaseName: aws.String(to), TableName: aws.String(table),
				PartitionValueList: p.Values, PartitionInput: &want}); err != nil {
				return fmt.Errorf("update partition %v: %w", p.Values, err)
			}
			c.Written++
		}
	}
	for start := 0; start < len(create); start += batchCreatePartitionsMax {
		chunk := create[start:min(start+batchCreatePartitionsMax, len(create))]
		out, err := g.BatchCreatePartition(ctx, &glue.BatchCreatePartitionInput{DatabaseName: aws.String(to), TableName: aws.String(table),
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
		if _, ok := src[key]; !ok {
			stale = append(stale, gluetypes.PartitionValueList{Values: p.Values})
		}
	}
	for start := 0; start < len(stale); start += batchDeletePartitionsMax {
		chunk := stale[start:min(start+batchDeletePartitionsMax, len(stale))]
		out, err := g.BatchDeletePartition(ctx, &glue.BatchDeletePartitionInput{DatabaseName: aws.String(to), TableName: aws.String(table),
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

// partitions returns the table's partitions by their values.
func partitions(ctx context.Context, g *glue.Client, db, table string) (map[string]gluetypes.Partition, error) {
	out := map[string]gluetypes.Partition{}
	pages := glue.NewGetPartitionsPaginator(g, &glue.GetPartitionsInput{DatabaseName: aws.String(db), TableName: aws.String(table)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s.%s: %w", db, table, err)
		}
		for _, p := range page.Partitions {
			out[strings.Join(p.Values, "\x00")] = p
		}
	}
	return out, nil
}

// tableInput is what makes a table like t.
func tableInput(t gluetypes.Table) *gluetypes.TableInput {
	return &gluetypes.TableInput{
		Name: t.Name, Description: t.Description, Owner: t.Owner, Parameters: t.Parameters, PartitionKeys: t.PartitionKeys,
		Retention: t.Retention, StorageDescriptor: t.StorageDescriptor, TableType: t.TableType,
		ViewOriginalText: t.ViewOriginalText, ViewExpandedText: t.ViewExpandedText,
	}
}
