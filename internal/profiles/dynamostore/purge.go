package dynamostore

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// DeleteTenant implements profiles.Store with a parallel Scan of the
// tenant's table (Config.Parallelism segments, each paged, consistent)
// filtered on begins_with(pk, "TENANT#<tenant>#") and projected to the
// keys, deleting each page's items with BatchWriteItem calls of up to 25
// keys, retrying unprocessed items as PutBatch does.
//
// DynamoDB has no query by a partition key prefix across partitions: a
// filtered Scan is the documented way to find a pooled tenant's items in
// the Region's shared pool table. It reads, and is billed for, the whole
// table, every other tenant's items included, so it runs only from the
// offboarding job, never on a request path. (A dedicated tenant's table is
// deleted with its stack, and need not be purged.)
//
// It returns how many items it deleted before an error, with the error.
func (s *Store) DeleteTenant(ctx context.Context, tenant string) (int, error) {
	prefix, err := profiles.TenantKeyPrefix(tenant)
	if err != nil {
		return 0, err
	}
	t, err := s.table(ctx, tenant)
	if err != nil {
		return 0, err
	}
	var deleted atomic.Int64
	eg, ctx := errgroup.WithContext(ctx)
	segments := int32(s.parallelism)
	for segment := range segments {
		eg.Go(func() error {
			input := &dynamodb.ScanInput{
				TableName:                 aws.String(t.name),
				FilterExpression:          aws.String("begins_with(#pk, :prefix)"),
				ProjectionExpression:      aws.String("#pk, #sk"),
				ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
				ExpressionAttributeValues: map[string]types.AttributeValue{":prefix": attrS(prefix)},
				// Consistent, so that no item written before the call is
				// missed.
				ConsistentRead: aws.Bool(true),
				Segment:        aws.Int32(segment),
				TotalSegments:  aws.Int32(segments),
			}
			for {
				page, err := t.client.Scan(ctx, input)
				if err != nil {
					return fmt.Errorf("dynamostore: delete tenant %s: scan %s: %w", tenant, t.name, err)
				}
				for start := 0; start < len(page.Items); start += batchWriteMax {
					chunk := page.Items[start:min(start+batchWriteMax, len(page.Items))]
					if err := s.deleteBatch(ctx, t, chunk); err != nil {
						return fmt.Errorf("dynamostore: delete tenant %s: %w", tenant, err)
					}
					deleted.Add(int64(len(chunk)))
				}
				if len(page.LastEvaluatedKey) == 0 {
					return nil
				}
				input.ExclusiveStartKey = page.LastEvaluatedKey
			}
		})
	}
	err = eg.Wait()
	return int(deleted.Load()), err
}

// deleteBatch deletes the items of keys (key attributes, at most 25,
// distinct) with BatchWriteItem, retrying unprocessed items.
func (s *Store) deleteBatch(ctx context.Context, t table, keys []map[string]types.AttributeValue) error {
	reqs := make([]types.WriteRequest, len(keys))
	for i, k := range keys {
		reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}}
	}
	if err := s.writeBatch(ctx, t.client, map[string][]types.WriteRequest{t.name: reqs}); err != nil {
		return fmt.Errorf("batch delete: %w", err)
	}
	return nil
}
