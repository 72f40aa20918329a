package dynamostore

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

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
// On a large pool table that takes longer than one job run, so the scan
// keeps its progress: after each page it stores where its segment stands
// (see purgeProgressSuffix), and a call cut short, by its context or an error,
// is resumed by the next call from there rather than from the start of the
// table. Only the page in flight is read again. Once every segment is
// through, the progress is deleted, and a later call scans from the start.
//
// It returns how many items it deleted before an error, with the error
// (also profiles.ErrPurgeUnfinished if ctx ended after some progress).
func (s *Store) DeleteTenant(ctx context.Context, tenant string) (int, error) {
	if _, err := profiles.TenantKeyPrefix(tenant); err != nil {
		return 0, err
	}
	t, err := s.table(ctx, tenant)
	if err != nil {
		return 0, err
	}
	return s.deleteTenant(ctx, tenant, t)
}

// DeleteTenantIn is DeleteTenant in the table in rather than the one
// Config.Tables names: a tier migration's purge of the pool table a
// tenant left, or of the one it did not move to.
func (s *Store) DeleteTenantIn(ctx context.Context, tenant string, in TableRef) (int, error) {
	t, err := s.tableIn(in)
	if err != nil {
		return 0, err
	}
	return s.deleteTenant(ctx, tenant, t)
}

func (s *Store) deleteTenant(ctx context.Context, tenant string, t table) (int, error) {
	prefix, err := profiles.TenantKeyPrefix(tenant)
	if err != nil {
		return 0, err
	}
	segments := int32(s.parallelism)
	progressPK := prefix + purgeProgressSuffix
	progress, stale, err := s.purgeProgress(ctx, t, progressPK, segments)
	if err != nil {
		return 0, fmt.Errorf("dynamostore: delete tenant %s: %w", tenant, err)
	}
	var (
		deleted atomic.Int64
		moved   atomic.Bool // a page's deletes or position kept
	)
	fail := func(err error) (int, error) {
		if moved.Load() && ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", profiles.ErrPurgeUnfinished, err)
		}
		return int(deleted.Load()), err
	}
	eg, gctx := errgroup.WithContext(ctx)
	for segment := range segments {
		start, resumed := progress[segment]
		if resumed && start == nil {
			continue // through in an earlier call
		}
		eg.Go(func() error {
			// (An item written behind a position an earlier call saved
			// is left, as one written behind the scan is: see
			// profiles.Store.)
			input := tenantScan(t, prefix, true)
			input.Segment, input.TotalSegments, input.ExclusiveStartKey = aws.Int32(segment), aws.Int32(segments), start
			if s.purgePageSize > 0 {
				input.Limit = aws.Int32(s.purgePageSize)
			}
			for {
				page, err := t.client.Scan(gctx, input)
				if err != nil {
					return fmt.Errorf("dynamostore: delete tenant %s: scan %s: %w", tenant, t.name, err)
				}
				for start := 0; start < len(page.Items); start += batchWriteMax {
					chunk := page.Items[start:min(start+batchWriteMax, len(page.Items))]
					if err := s.deleteBatch(gctx, t, chunk); err != nil {
						return fmt.Errorf("dynamostore: delete tenant %s: %w", tenant, err)
					}
					deleted.Add(int64(len(chunk)))
					moved.Store(true)
				}
				if err := s.savePurgeProgress(gctx, t, progressPK, segment, segments, page.LastEvaluatedKey); err != nil {
					return fmt.Errorf("dynamostore: delete tenant %s: %w", tenant, err)
				}
				moved.Store(true)
				if len(page.LastEvaluatedKey) == 0 {
					return nil
				}
				input.ExclusiveStartKey = page.LastEvaluatedKey
			}
		})
	}
	if err := eg.Wait(); err != nil {
		return fail(err)
	}
	if err := s.forgetPurgeProgress(ctx, t, progressPK, segments, stale); err != nil {
		moved.Store(true) // every segment is through, as the next call will read
		return fail(fmt.Errorf("dynamostore: delete tenant %s: %w", tenant, err))
	}
	return int(deleted.Load()), nil
}

// tenantScan is a Scan of t for the items under the tenant's key prefix,
// its DeleteTenant progress left out; keysOnly projects it to the keys.
// It is consistent, so that no item written before the scan passes its
// place is missed.
func tenantScan(t table, prefix string, keysOnly bool) *dynamodb.ScanInput {
	in := &dynamodb.ScanInput{
		TableName:                aws.String(t.name),
		FilterExpression:         aws.String("begins_with(#pk, :prefix) AND #pk <> :progress"),
		ExpressionAttributeNames: map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":prefix": attrS(prefix), ":progress": attrS(prefix + purgeProgressSuffix),
		},
		ConsistentRead: aws.Bool(true),
	}
	if keysOnly {
		in.ProjectionExpression = aws.String("#pk, #sk")
		in.ExpressionAttributeNames["#sk"] = attrSK
	}
	return in
}

// purgeProgressSuffix makes, after a tenant's key prefix, the partition
// of its DeleteTenant progress: one item a scan segment, sort key
// "<segment>/<segments>", holding the key the segment's next page starts
// after (next_pk, next_sk), or done once the segment is through. The scan
// skips the partition, and deletes it last. No profile key starts with
// '~'. The items expire purgeProgressTTL after their last save, so that a
// purge abandoned half-way does not keep them for ever.
const purgeProgressSuffix = "~purge"

// purgeProgressTTL is how long the progress of a purge is kept after its
// last page: a purge resumed later starts over.
const purgeProgressTTL = 7 * 24 * time.Hour

const (
	attrNextPK = "next_pk"
	attrNextSK = "next_sk"
	attrDone   = "done"
)

// purgeProgress reads the progress of an earlier DeleteTenant of the
// partition: for each segment it recorded, the key to start after, or nil
// if the segment is through. Progress recorded with another number of
// segments (Config.Parallelism changed since) cannot be resumed, and is
// left out: the scan starts over.
func (s *Store) purgeProgress(ctx context.Context, t table, progressPK string, segments int32) (progress map[int32]map[string]types.AttributeValue, stale []string, err error) {
	out, err := t.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(t.name),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": attrS(progressPK)},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read purge progress: %w", err)
	}
	progress = map[int32]map[string]types.AttributeValue{}
	for _, it := range out.Items {
		var segment, total int32
		sk, _ := it[attrSK].(*types.AttributeValueMemberS)
		if sk == nil {
			continue
		}
		if _, err := fmt.Sscanf(sk.Value, "%d/%d", &segment, &total); err != nil || total != segments || segment < 0 || segment >= total {
			stale = append(stale, sk.Value)
			continue
		}
		if exp, ok := it[attrExpiresAt].(*types.AttributeValueMemberN); ok {
			if at, err := strconv.ParseInt(exp.Value, 10, 64); err == nil && at < s.now().Unix() {
				continue // expired, not yet removed by TTL: start the segment over
			}
		}
		if done, ok := it[attrDone].(*types.AttributeValueMemberBOOL); ok && done.Value {
			progress[segment] = nil
			continue
		}
		nextPK, ok1 := it[attrNextPK].(*types.AttributeValueMemberS)
		nextSK, ok2 := it[attrNextSK].(*types.AttributeValueMemberS)
		if ok1 && ok2 {
			progress[segment] = map[string]types.AttributeValue{attrPK: attrS(nextPK.Value), attrSK: attrS(nextSK.Value)}
		}
	}
	return progress, stale, nil
}

// savePurgeProgress records that segment's next page starts after next, or
// that the segment is through if next is empty.
func (s *Store) savePurgeProgress(ctx context.Context, t table, progressPK string, segment, segments int32, next map[string]types.AttributeValue) error {
	item := map[string]types.AttributeValue{
		attrPK:        attrS(progressPK),
		attrSK:        attrS(progressSK(segment, segments)),
		attrExpiresAt: attrN(s.now().Add(purgeProgressTTL).Unix()),
	}
	if len(next) == 0 {
		item[attrDone] = &types.AttributeValueMemberBOOL{Value: true}
	} else {
		item[attrNextPK], item[attrNextSK] = next[attrPK], next[attrSK]
	}
	if _, err := t.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(t.name), Item: item}); err != nil {
		return fmt.Errorf("save purge progress: %w", err)
	}
	return nil
}

// forgetPurgeProgress deletes the progress items: one a segment, and
// stale, those of a run with another number of segments.
func (s *Store) forgetPurgeProgress(ctx context.Context, t table, progressPK string, segments int32, stale []string) error {
	var keys []map[string]types.AttributeValue
	for segment := range segments {
		keys = append(keys, keyAttrs(profiles.Key{PK: progressPK, SK: progressSK(segment, segments)}))
	}
	for _, sk := range stale {
		keys = append(keys, keyAttrs(profiles.Key{PK: progressPK, SK: sk}))
	}
	for start := 0; start < len(keys); start += batchWriteMax {
		if err := s.deleteBatch(ctx, t, keys[start:min(start+batchWriteMax, len(keys))]); err != nil {
			return fmt.Errorf("delete purge progress: %w", err)
		}
	}
	return nil
}

func progressSK(segment, segments int32) string { return fmt.Sprintf("%d/%d", segment, segments) }

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
