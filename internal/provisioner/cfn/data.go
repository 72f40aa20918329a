package cfn

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// EnsureDatabase creates the Glue database name in region with locationURI
// as its location and tags as its tags. A database that already exists
// under that name (AlreadyExistsException) is not an error: it returns nil
// and leaves that database as it is.
func (e *Engine) EnsureDatabase(ctx context.Context, region, name, locationURI string, tags map[string]string) error {
	client, err := e.glue.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: create glue database %s: %w", name, err)
	}
	input := &glue.CreateDatabaseInput{
		DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String(name)},
	}
	if locationURI != "" {
		input.DatabaseInput.LocationUri = aws.String(locationURI)
	}
	if len(tags) > 0 {
		input.Tags = tags
	}
	if _, err := client.CreateDatabase(ctx, input); err != nil {
		if errorCode(err) == "AlreadyExistsException" {
			return nil
		}
		return fmt.Errorf("cfn: create glue database %s in %s: %w", name, region, err)
	}
	return nil
}

// DeleteDatabase deletes the Glue database name (and, as Glue does, its
// tables). An absent database (EntityNotFoundException) is not an error.
func (e *Engine) DeleteDatabase(ctx context.Context, region, name string) error {
	client, err := e.glue.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: delete glue database %s: %w", name, err)
	}
	if _, err := client.DeleteDatabase(ctx, &glue.DeleteDatabaseInput{Name: aws.String(name)}); err != nil {
		if errorCode(err) == "EntityNotFoundException" {
			return nil
		}
		return fmt.Errorf("cfn: delete glue database %s in %s: %w", name, region, err)
	}
	return nil
}

// DropTenantPartitions implements provisioner.Engine with GetTables, then
// per shared table GetPartitions (the tenant's, by expression, checked)
// and BatchDeletePartition.
func (e *Engine) DropTenantPartitions(ctx context.Context, region, database, tenantID string) error {
	client, err := e.glue.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: drop tenant partitions in %s: %w", database, err)
	}
	tables := glue.NewGetTablesPaginator(client, &glue.GetTablesInput{DatabaseName: aws.String(database)})
	for tables.HasMorePages() {
		page, err := tables.NextPage(ctx)
		if errorCode(err) == "EntityNotFoundException" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cfn: tables of %s in %s: %w", database, region, err)
		}
		for _, t := range page.TableList {
			if t.Parameters["cairn:shared"] != "true" || len(t.PartitionKeys) == 0 || aws.ToString(t.PartitionKeys[0].Name) != "tenant_id" {
				continue
			}
			if err := dropTenantPartitions(ctx, client, database, aws.ToString(t.Name), tenantID); err != nil {
				return fmt.Errorf("cfn: partitions of %s.%s in %s: %w", database, aws.ToString(t.Name), region, err)
			}
		}
	}
	return nil
}

// batchDeletePartitionsMax is the most partitions one BatchDeletePartition
// call deletes.
const batchDeletePartitionsMax = 25

func dropTenantPartitions(ctx context.Context, client *glue.Client, database, table, tenantID string) error {
	var stale []gluetypes.PartitionValueList
	pages := glue.NewGetPartitionsPaginator(client, &glue.GetPartitionsInput{DatabaseName: aws.String(database), TableName: aws.String(table),
		Expression: aws.String("tenant_id = '" + strings.ReplaceAll(tenantID, "'", "''") + "'")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, p := range page.Partitions {
			if len(p.Values) > 0 && p.Values[0] == tenantID {
				stale = append(stale, gluetypes.PartitionValueList{Values: p.Values})
			}
		}
	}
	for chunk := range slices.Chunk(stale, batchDeletePartitionsMax) {
		out, err := client.BatchDeletePartition(ctx, &glue.BatchDeletePartitionInput{DatabaseName: aws.String(database), TableName: aws.String(table),
			PartitionsToDelete: chunk})
		if err != nil {
			return err
		}
		for _, e := range out.Errors {
			if e.ErrorDetail != nil && aws.ToString(e.ErrorDetail.ErrorCode) != "EntityNotFoundException" {
				return fmt.Errorf("delete partition %v: %s", e.PartitionValues, aws.ToString(e.ErrorDetail.ErrorMessage))
			}
		}
	}
	return nil
}

// DeleteBuckets empties each bucket (every object version and delete
// marker, bypassing Object Lock governance retention) and deletes it. An
// absent bucket (NoSuchBucket) is not an error. It stops at the first
// bucket it cannot purge; what it deleted stays deleted, so repeating the
// call resumes the work.
func (e *Engine) DeleteBuckets(ctx context.Context, region string, buckets []string) error {
	client, err := e.s3.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: delete buckets: %w", err)
	}
	for _, bucket := range buckets {
		if err := purge(ctx, client, bucket, ""); err != nil {
			if errorCode(err) == "NoSuchBucket" {
				continue
			}
			return fmt.Errorf("cfn: empty bucket %s in %s: %w", bucket, region, err)
		}
		if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			if errorCode(err) == "NoSuchBucket" {
				continue
			}
			return fmt.Errorf("cfn: delete bucket %s in %s: %w", bucket, region, err)
		}
	}
	return nil
}

// DeletePrefix deletes every object version and delete marker under prefix
// in bucket, bypassing Object Lock governance retention. An absent bucket is
// not an error: there is nothing under the prefix. An empty prefix is
// refused: emptying a whole bucket is DeleteBuckets' job, and a pooled
// tenant's prefix is never empty.
func (e *Engine) DeletePrefix(ctx context.Context, region, bucket, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("cfn: delete prefix in bucket %s: empty prefix refused", bucket)
	}
	client, err := e.s3.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: delete prefix %s in bucket %s: %w", prefix, bucket, err)
	}
	if err := purge(ctx, client, bucket, prefix); err != nil {
		if errorCode(err) == "NoSuchBucket" {
			return nil
		}
		return fmt.Errorf("cfn: delete prefix %s in bucket %s in %s: %w", prefix, bucket, region, err)
	}
	return nil
}

// maxDeleteObjects is the most keys one DeleteObjects request may carry.
const maxDeleteObjects = 1000

// purge deletes every object version and delete marker under prefix ("" for
// the whole bucket), one ListObjectVersions page and one DeleteObjects batch
// of at most 1000 at a time.
//
// It lists from the start again after each batch instead of following the
// page markers: the batch just deleted is gone, so the next listing starts
// with what is left, and no marker can point at a version deleted under it.
// A version that cannot be deleted makes DeleteObjects report an error, so
// the loop cannot spin on it.
func purge(ctx context.Context, client *s3.Client, bucket, prefix string) error {
	for {
		input := &s3.ListObjectVersionsInput{
			Bucket:  aws.String(bucket),
			MaxKeys: aws.Int32(maxDeleteObjects),
		}
		if prefix != "" {
			input.Prefix = aws.String(prefix)
		}
		page, err := client.ListObjectVersions(ctx, input)
		if err != nil {
			return fmt.Errorf("list object versions: %w", err)
		}
		objects := make([]s3types.ObjectIdentifier, 0, len(page.Versions)+len(page.DeleteMarkers))
		for _, v := range page.Versions {
			objects = append(objects, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			objects = append(objects, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(objects) == 0 {
			return nil
		}
		for batch := range slices.Chunk(objects, maxDeleteObjects) {
			out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket:                    aws.String(bucket),
				Delete:                    &s3types.Delete{Objects: batch, Quiet: aws.Bool(true)},
				BypassGovernanceRetention: aws.Bool(true),
			})
			if err != nil {
				return fmt.Errorf("delete objects: %w", err)
			}
			if len(out.Errors) > 0 {
				first := out.Errors[0]
				return fmt.Errorf("delete objects: %d of %d not deleted, first %s (version %s): %s: %s",
					len(out.Errors), len(batch), aws.ToString(first.Key), aws.ToString(first.VersionId),
					aws.ToString(first.Code), aws.ToString(first.Message))
			}
		}
	}
}
