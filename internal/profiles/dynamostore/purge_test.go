package dynamostore_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// unprocessedOnce answers the first n BatchWriteItem calls, without
// sending them, with every request item unprocessed, as DynamoDB does
// when a partition is throttled; the rest go through.
type unprocessedOnce struct{ n atomic.Int64 }

func (u *unprocessedOnce) Do(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".BatchWriteItem") && u.n.Add(-1) >= 0 {
		var in struct{ RequestItems json.RawMessage }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			return nil, err
		}
		body := `{"UnprocessedItems":` + string(in.RequestItems) + `}`
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
			Body:       io.NopCloser(bytes.NewReader([]byte(body))),
			Request:    r,
		}, nil
	}
	return http.DefaultClient.Do(r)
}

// TestPurgeFromPoolTable deletes one pooled tenant's items from a
// table it shares with another: the expired items go too (TTL may take
// days), the other tenant's stay, unprocessed deletes are retried, and the
// scan is one paged Scan per segment.
func TestPurgeFromPoolTable(t *testing.T) {
	endpoint := awsEndpoint(t)
	t.Parallel()
	table := createTable(t, endpoint, regionA)
	faults := &unprocessedOnce{}
	s, calls := newStore(t, endpoint, oneTable(regionA, table), func(c *dynamostore.Config) {
		c.HTTPClient = faults
		c.Parallelism = 3
	})
	ctx := t.Context()
	gone, kept := tenants.NewID(), tenants.NewID()
	var items []profiles.Item
	for _, tenant := range []string{gone, kept} {
		for i := range 40 {
			items = append(items, profiles.Item{PK: pk(tenant, "M#m"), SK: fmt.Sprintf("E#%02d", i), Data: []byte(`{}`)})
		}
		items = append(items, profiles.Item{PK: pk(tenant, "D#1"), SK: "D", ExpiresAt: time.Now().Unix() - 60})
	}
	if err := s.PutBatch(ctx, items); err != nil {
		t.Fatal(err)
	}

	calls.Reset()
	faults.n.Store(2)
	if n, err := s.DeleteTenant(ctx, gone); err != nil || n != 41 {
		t.Fatalf("DeleteTenant: %d, %v; want 41, the expired item included", n, err)
	}
	if got := calls.Total("DynamoDB.Scan"); got != 3 {
		t.Errorf("%d Scan calls, want 3: one page per segment", got)
	}
	// 41 keys in 3 segments are 2 to 4 calls of at most 25 keys, plus
	// the 2 answered unprocessed, retried.
	if got := calls.Total("DynamoDB.BatchWriteItem"); got < 2+2 || got > 4+2 {
		t.Errorf("%d BatchWriteItem calls, want 4 to 6", got)
	}
	if faults.n.Load() > 0 {
		t.Error("no BatchWriteItem call was answered unprocessed")
	}
	for _, it := range items {
		raw := rawGet(t, endpoint, regionA, table, it.PK, it.SK)
		if strings.Contains(it.PK, gone) && raw != nil {
			t.Errorf("%s/%s of the deleted tenant is still stored", it.PK, it.SK)
		}
		if strings.Contains(it.PK, kept) && raw == nil {
			t.Errorf("%s/%s of the other tenant is gone", it.PK, it.SK)
		}
	}
}
