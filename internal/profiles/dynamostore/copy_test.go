package dynamostore_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// TestCopyTenant copies a pooled tenant's items from a pool table to a
// dedicated one, as a tier migration does, and back out: its neighbour's
// items stay where they are, unprocessed writes are retried, a second copy
// (the delta) writes only what changed and removes what the source lost,
// a third does nothing, and DeleteTenantIn purges the pool table it left.
func TestCopyTenant(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	pool, dedicated := createTable(t, endpoint, regionA), createTable(t, endpoint, regionA)
	faults := &unprocessedOnce{}
	s, _ := newStore(t, endpoint, oneTable(regionA, pool), func(c *dynamostore.Config) { c.AWS.HTTPClient = faults })
	ctx := t.Context()
	from, to := dynamostore.TableRef{Region: regionA, Name: pool}, dynamostore.TableRef{Region: regionA, Name: dedicated}
	mover, neighbour := tenants.NewID(), tenants.NewID()
	var items []profiles.Item
	for _, tenant := range []string{mover, neighbour} {
		for i := range 30 {
			items = append(items, profiles.Item{PK: pk(tenant, "P#p"), SK: fmt.Sprintf("E#%02d", i), GSI1PK: pk(tenant, "I#x"), GSI1SK: "E", Data: []byte(`{"n":1}`)})
		}
		items = append(items, profiles.Item{PK: pk(tenant, "D#1"), SK: "D", ExpiresAt: time.Now().Add(time.Hour).Unix()})
	}
	if err := s.PutBatch(ctx, items); err != nil {
		t.Fatal(err)
	}

	faults.n.Store(2)
	c, err := s.CopyTenant(ctx, mover, from, to)
	if err != nil || c != (dynamostore.CopyCounts{Items: 31, Written: 31}) {
		t.Fatalf("first copy: %+v, %v; want 31 items written", c, err)
	}
	if faults.n.Load() > 0 {
		t.Error("no BatchWriteItem call was answered unprocessed")
	}
	for _, it := range items {
		got, want := rawGet(t, endpoint, regionA, dedicated, it.PK, it.SK), rawGet(t, endpoint, regionA, pool, it.PK, it.SK)
		switch {
		case strings.Contains(it.PK, neighbour) && got != nil:
			t.Errorf("the neighbour's %s/%s was copied", it.PK, it.SK)
		case strings.Contains(it.PK, mover) && (got == nil || !reflect.DeepEqual(got, want)):
			t.Errorf("%s/%s in the target is %v, want %v", it.PK, it.SK, got, want)
		}
	}

	// The source changes behind the copy: one item rewritten, one
	// deleted, one added.
	changed := items[3]
	changed.Data = []byte(`{"n":2}`)
	added := profiles.Item{PK: pk(mover, "P#q"), SK: "E#00"}
	if err := s.PutBatch(ctx, []profiles.Item{changed, added}); err != nil {
		t.Fatal(err)
	}
	gone := items[5]
	if _, err := dynamoClient(endpoint, regionA).DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(pool), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: gone.PK}, "sk": &types.AttributeValueMemberS{Value: gone.SK},
	}}); err != nil {
		t.Fatal(err)
	}
	if c, err = s.CopyTenant(ctx, mover, from, to); err != nil || c != (dynamostore.CopyCounts{Items: 31, Written: 2, Removed: 1}) {
		t.Fatalf("delta: %+v, %v; want 31 items, 2 written, 1 removed", c, err)
	}
	if got := rawGet(t, endpoint, regionA, dedicated, gone.PK, gone.SK); got != nil {
		t.Errorf("the item deleted from the source is still in the target: %v", got)
	}
	if got := rawGet(t, endpoint, regionA, dedicated, changed.PK, changed.SK); !reflect.DeepEqual(got, rawGet(t, endpoint, regionA, pool, changed.PK, changed.SK)) {
		t.Errorf("the rewritten item in the target: %v", got)
	}
	if c, err = s.CopyTenant(ctx, mover, from, to); err != nil || c != (dynamostore.CopyCounts{Items: 31}) {
		t.Fatalf("a copy of nothing new: %+v, %v; want nothing written or removed", c, err)
	}
	if _, err := s.CopyTenant(ctx, mover, from, from); err == nil {
		t.Error("a copy of a table onto itself was not refused")
	}

	if n, err := s.DeleteTenantIn(ctx, mover, from); err != nil || n != 31 {
		t.Fatalf("DeleteTenantIn: %d, %v; want 31", n, err)
	}
	for _, it := range append(items, added) {
		inPool, inDedicated := rawGet(t, endpoint, regionA, pool, it.PK, it.SK) != nil, rawGet(t, endpoint, regionA, dedicated, it.PK, it.SK) != nil
		mine := strings.Contains(it.PK, mover)
		if mine && inPool || !mine && !inPool {
			t.Errorf("%s/%s in the pool table: %v", it.PK, it.SK, inPool)
		}
		if mine && (it.PK != gone.PK || it.SK != gone.SK) && !inDedicated {
			t.Errorf("%s/%s is gone from the dedicated table", it.PK, it.SK)
		}
	}
}
