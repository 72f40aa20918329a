package dynamostore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
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
// days), the other tenant's stay, unprocessed deletes are retried, the
// scan is one paged Scan per segment, and its progress is gone at the end.
func TestPurgeFromPoolTable(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	table := createTable(t, endpoint, regionA)
	faults := &unprocessedOnce{}
	s, calls := newStore(t, endpoint, oneTable(regionA, table), func(c *dynamostore.Config) {
		c.AWS.HTTPClient = faults
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
	// The progress: read once, saved once a page, deleted at the end.
	if q, p := calls.Total("DynamoDB.Query"), calls.Total("DynamoDB.PutItem"); q != 1 || p != 3 {
		t.Errorf("%d Query and %d PutItem calls, want 1 and 3", q, p)
	}
	// 41 keys in 3 segments are 2 to 4 calls of at most 25 keys, plus
	// the 2 answered unprocessed, retried, plus one for the progress.
	if got := calls.Total("DynamoDB.BatchWriteItem"); got < 2+2+1 || got > 4+2+1 {
		t.Errorf("%d BatchWriteItem calls, want 5 to 7", got)
	}
	for segment := range 3 {
		if raw := rawGet(t, endpoint, regionA, table, pk(gone, "~purge"), fmt.Sprintf("%d/3", segment)); raw != nil {
			t.Errorf("the progress of segment %d is still stored: %v", segment, raw)
		}
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

// cutScans fails the Scan call number cutAt (from 1) of a DeleteTenant,
// as a job timeout does, after cancelling its context; it adds up the
// ScannedCount of the pages it lets through.
type cutScans struct {
	cutAt   atomic.Int64
	cancel  context.CancelFunc
	calls   atomic.Int64
	scanned atomic.Int64
}

func (c *cutScans) Do(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".Scan") {
		return http.DefaultClient.Do(r)
	}
	if c.calls.Add(1) == c.cutAt.Load() {
		c.cancel()
		return nil, context.Canceled
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var page struct{ ScannedCount int64 }
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, err
	}
	c.scanned.Add(page.ScannedCount)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// TestPurgeResumes cuts a DeleteTenant short in the middle of its scan,
// as the offboarding job's timeout does on a large pool table, and checks
// that the next call goes on from the last page it finished rather than
// from the start of the table: together they read each item once, but
// for the page that was in flight.
func TestPurgeResumes(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	table := createTable(t, endpoint, regionA)
	cut := &cutScans{}
	cut.cutAt.Store(7)
	const page = 5
	s, _ := newStore(t, endpoint, oneTable(regionA, table), func(c *dynamostore.Config) {
		c.AWS.HTTPClient = cut
		c.Parallelism = 1 // one segment: pages in key order on the emulator
		c.PurgePageSize = page
	})
	// Three tenants of 20 items each, the one to delete second in key
	// order: pages 1 to 4 read the first tenant's items, 5 to 8 its own,
	// so the cut (page 7) comes after two of its pages were deleted.
	ids := []string{tenants.NewID(), tenants.NewID(), tenants.NewID()}
	slices.Sort(ids)
	gone := ids[1]
	var items []profiles.Item
	for _, tenant := range ids {
		for i := range 20 {
			items = append(items, profiles.Item{PK: pk(tenant, "M#m"), SK: fmt.Sprintf("E#%02d", i), Data: []byte(`{}`)})
		}
	}
	if err := s.PutBatch(t.Context(), items); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cut.cancel = cancel
	first, err := s.DeleteTenant(ctx, gone)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, profiles.ErrPurgeUnfinished) {
		t.Fatalf("DeleteTenant cut at its 7th page: %d, %v; want context.Canceled and ErrPurgeUnfinished", first, err)
	}
	if first != 2*page {
		t.Errorf("the cut DeleteTenant deleted %d items, want %d: those of its 5th and 6th pages", first, 2*page)
	}
	if raw := rawGet(t, endpoint, regionA, table, pk(gone, "~purge"), "0/1"); raw == nil {
		t.Fatal("no progress stored after the cut")
	}
	readBefore := cut.scanned.Load()
	if readBefore != 6*page {
		t.Fatalf("the cut DeleteTenant read %d items, want %d", readBefore, 6*page)
	}

	second, err := s.DeleteTenant(t.Context(), gone)
	if err != nil || first+second != 20 {
		t.Fatalf("second DeleteTenant: %d, %v; want %d", second, err, 20-first)
	}
	// Scans read the progress item too (and skip it). From the start of
	// the table it would read 51 items: all but the 10 deleted.
	if read := cut.scanned.Load() - readBefore; read != 60-6*page+1 {
		t.Errorf("the second DeleteTenant read %d items, want %d: only those after the last finished page", read, 60-6*page+1)
	}
	for _, it := range items {
		raw := rawGet(t, endpoint, regionA, table, it.PK, it.SK)
		if deleted := strings.Contains(it.PK, gone); deleted != (raw == nil) {
			t.Errorf("%s/%s: stored %v after the purge", it.PK, it.SK, raw != nil)
		}
	}
	if raw := rawGet(t, endpoint, regionA, table, pk(gone, "~purge"), "0/1"); raw != nil {
		t.Errorf("the progress is still stored after the purge finished: %v", raw)
	}
	// A call cut at its first page made no progress, and does not say it
	// did.
	cut.calls.Store(0)
	cut.cutAt.Store(1)
	ctx, cancel = context.WithCancel(t.Context())
	cut.cancel = cancel
	if n, err := s.DeleteTenant(ctx, ids[2]); !errors.Is(err, context.Canceled) || errors.Is(err, profiles.ErrPurgeUnfinished) || n != 0 {
		t.Errorf("DeleteTenant cut at its first page: %d, %v; want 0, context.Canceled and not ErrPurgeUnfinished", n, err)
	}
	cut.cutAt.Store(0)

	// Finished, a new call starts over (and finds nothing).
	before := cut.scanned.Load()
	if n, err := s.DeleteTenant(t.Context(), gone); err != nil || n != 0 {
		t.Errorf("third DeleteTenant: %d, %v; want 0", n, err)
	}
	if read := cut.scanned.Load() - before; read != 40+1 {
		t.Errorf("a DeleteTenant after a finished one read %d items, want the table's 40 and its own progress", read)
	}
}
