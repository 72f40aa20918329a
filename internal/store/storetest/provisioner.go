package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// allStatuses are every placement and pool status, in lifecycle order.
var allStatuses = []provisioner.Status{
	provisioner.StatusPending,
	provisioner.StatusCreating,
	provisioner.StatusReady,
	provisioner.StatusFailed,
	provisioner.StatusReplacing,
	provisioner.StatusDeleting,
	provisioner.StatusDeleted,
}

// newPlacement returns a placement with every field set, as PlacementEnsure
// stores it (Version 1).
func newPlacement(tenantID, region string, kind provisioner.Kind, status provisioner.Status) provisioner.Placement {
	return provisioner.Placement{
		TenantID: tenantID,
		Kind:     kind,
		StackRecord: provisioner.StackRecord{
			Region:          region,
			StackName:       "cairn-" + tenantID + "-" + region,
			Status:          status,
			StackStatus:     "CREATE_IN_PROGRESS",
			TemplateVersion: "v1",
			Outputs:         map[string]string{"events_bucket": "cairn-events-" + tenantID},
			LastError:       "",
			Attempt:         1,
			Version:         1,
			CreatedAt:       base,
			UpdatedAt:       base.Add(time.Second),
		},
	}
}

// newPool returns a pool with every field set, as PoolEnsure stores it.
func newPool(region string, status provisioner.Status) provisioner.Pool {
	return provisioner.Pool{StackRecord: provisioner.StackRecord{
		Region:          region,
		StackName:       "cairn-pool-" + region,
		Status:          status,
		StackStatus:     "CREATE_COMPLETE",
		TemplateVersion: "v1",
		Outputs:         map[string]string{"EventsBucket": "cairn-pool-events-" + region},
		Attempt:         1,
		Version:         1,
		CreatedAt:       base,
		UpdatedAt:       base.Add(time.Second),
	}}
}

// tenantIDs inserts n tenants and returns their IDs: placements refer to
// tenants.
func tenantIDs(t *testing.T, b store.Backend, n int) []string {
	t.Helper()
	ts := make([]tenants.Tenant, n)
	for i := range ts {
		ts[i] = newTenant(i)
	}
	ids := make([]string, n)
	for i, tn := range insert(t, b, ts...) {
		ids[i] = tn.ID
	}
	return ids
}

func ensurePlacement(t *testing.T, b store.Backend, p provisioner.Placement) provisioner.Placement {
	t.Helper()
	got, err := b.PlacementEnsure(t.Context(), p)
	if err != nil {
		t.Fatalf("ensure placement %s/%s: %v", p.TenantID, p.Region, err)
	}
	return got
}

func ensurePool(t *testing.T, b store.Backend, p provisioner.Pool) provisioner.Pool {
	t.Helper()
	got, err := b.PoolEnsure(t.Context(), p)
	if err != nil {
		t.Fatalf("ensure pool %s: %v", p.Region, err)
	}
	return got
}

// checkUpdatedAt checks that an update that ran between before and after
// set UpdatedAt to its time, at the microseconds stores keep.
func checkUpdatedAt(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Before(before.Truncate(time.Microsecond)) || got.After(after) {
		t.Errorf("%s: UpdatedAt = %s, want between %s and %s", what, got, before, after)
	}
}

func testPlacementEnsure(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)

	first := newPlacement(ids[0], "eu-west-1", provisioner.KindDedicated, provisioner.StatusPending)
	if diff := cmp.Diff(first, ensurePlacement(t, b, first)); diff != "" {
		t.Errorf("first ensure returned (-want +got):\n%s", diff)
	}
	second := newPlacement(ids[0], "eu-west-1", provisioner.KindPooled, provisioner.StatusReady)
	second.StackName, second.Outputs, second.Attempt = "other", nil, 7
	second.CreatedAt = base.Add(time.Hour)
	if diff := cmp.Diff(first, ensurePlacement(t, b, second)); diff != "" {
		t.Errorf("second ensure returned (-first +got):\n%s", diff)
	}
	got, err := b.PlacementGet(t.Context(), ids[0], "eu-west-1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("stored after two ensures (-first +got):\n%s", diff)
	}

	// A new placement starts at Version 1, whatever it was given.
	v := newPlacement(ids[0], "us-east-1", provisioner.KindDedicated, provisioner.StatusPending)
	v.Version = 9
	if got := ensurePlacement(t, b, v); got.Version != 1 {
		t.Errorf("ensure of Version 9 stored Version %d, want 1", got.Version)
	}

	// A placement belongs to a tenant that exists.
	orphan := newPlacement(tenants.NewID(), "eu-west-1", provisioner.KindDedicated, provisioner.StatusPending)
	if _, err := b.PlacementEnsure(t.Context(), orphan); err == nil {
		t.Error("ensure of a placement of a missing tenant succeeded")
	}
}

func testPlacementGetList(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)

	if _, err := b.PlacementGet(t.Context(), ids[0], "eu-west-1"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("get of a missing placement = %v, want ErrNotFound", err)
	}
	for _, region := range []string{"us-east-1", "ap-south-1", "eu-west-1"} {
		ensurePlacement(t, b, newPlacement(ids[0], region, provisioner.KindDedicated, provisioner.StatusReady))
	}
	want := []provisioner.Placement{
		newPlacement(ids[0], "ap-south-1", provisioner.KindDedicated, provisioner.StatusReady),
		newPlacement(ids[0], "eu-west-1", provisioner.KindDedicated, provisioner.StatusReady),
		newPlacement(ids[0], "us-east-1", provisioner.KindDedicated, provisioner.StatusReady),
	}
	ensurePlacement(t, b, newPlacement(ids[1], "eu-central-1", provisioner.KindPooled, provisioner.StatusReady))

	got, err := b.PlacementList(t.Context(), ids[0])
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list is not the tenant's placements by Region (-want +got):\n%s", diff)
	}
	for _, p := range want {
		got, err := b.PlacementGet(t.Context(), p.TenantID, p.Region)
		if err != nil {
			t.Fatalf("get %s: %v", p.Region, err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("get %s (-want +got):\n%s", p.Region, diff)
		}
	}
	got, err = b.PlacementList(t.Context(), "ten_missing")
	if err != nil || len(got) != 0 {
		t.Errorf("list of a tenant without placements = %v, %v; want none", got, err)
	}
}

func testPlacementUpdate(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	stored := ensurePlacement(t, b, newPlacement(ids[0], "eu-west-1", provisioner.KindDedicated, provisioner.StatusPending))

	sent := stored
	sent.Kind = provisioner.KindPooled
	sent.StackName = "cairn-pool-eu-west-1"
	sent.Status = provisioner.StatusFailed
	sent.StackStatus = "ROLLBACK_COMPLETE"
	sent.StackID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/cairn-pool-eu-west-1/1"
	sent.TemplateVersion = "v2"
	sent.Outputs = map[string]string{"a": "1", "b": "2"}
	sent.LastError = "quota exceeded"
	sent.Attempt = 2
	sent.CreatedAt = base.Add(time.Hour) // not stored
	before := time.Now()
	got, err := b.PlacementUpdate(t.Context(), sent)
	after := time.Now()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	// Update stores every field but CreatedAt, increases Version and sets
	// UpdatedAt.
	checkUpdatedAt(t, "update", got.UpdatedAt, before, after)
	want := sent
	want.Version, want.CreatedAt, want.UpdatedAt = 2, stored.CreatedAt, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("update returned (-want +got):\n%s", diff)
	}
	if read, err := b.PlacementGet(t.Context(), ids[0], "eu-west-1"); err != nil {
		t.Fatalf("get: %v", err)
	} else if diff := cmp.Diff(got, read); diff != "" {
		t.Errorf("stored differs from what update returned (-returned +stored):\n%s", diff)
	}

	// A second update from the returned placement succeeds; one from the
	// placement as it was before the first update is stale.
	got.Status = provisioner.StatusReplacing
	if got, err = b.PlacementUpdate(t.Context(), got); err != nil || got.Version != 3 {
		t.Fatalf("second update = version %d, %v; want version 3", got.Version, err)
	}
	stale := stored
	stale.LastError = "stale"
	if _, err := b.PlacementUpdate(t.Context(), stale); !errors.Is(err, provisioner.ErrConflict) {
		t.Errorf("stale update = %v, want ErrConflict", err)
	}
	if read, err := b.PlacementGet(t.Context(), ids[0], "eu-west-1"); err != nil || read.Version != 3 || read.LastError == "stale" {
		t.Errorf("after a stale update: %+v, %v", read, err)
	}

	missing := newPlacement(ids[0], "us-east-1", provisioner.KindDedicated, provisioner.StatusPending)
	if _, err := b.PlacementUpdate(t.Context(), missing); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("update of a missing placement = %v, want ErrNotFound", err)
	}
}

func testPlacementOutputs(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	tests := []struct {
		region  string
		outputs map[string]string
	}{
		{"r-nil", nil},
		{"r-empty", map[string]string{}},
		{"r-full", map[string]string{"events_bucket": "b", "quote\"d": "ü\n", "empty": ""}},
	}
	check := func(what string, want, got map[string]string) {
		t.Helper()
		if got == nil {
			t.Errorf("%s: Outputs is nil, want a non-nil map", what)
		}
		if len(want) == 0 && len(got) == 0 {
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: Outputs (-want +got):\n%s", what, diff)
		}
	}
	for _, tt := range tests {
		p := newPlacement(ids[0], tt.region, provisioner.KindDedicated, provisioner.StatusReady)
		p.Outputs = tt.outputs
		check(tt.region+": ensure", tt.outputs, ensurePlacement(t, b, p).Outputs)
		got, err := b.PlacementGet(t.Context(), ids[0], tt.region)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		check(tt.region+": get", tt.outputs, got.Outputs)

		got.Outputs = tt.outputs
		if got, err = b.PlacementUpdate(t.Context(), got); err != nil {
			t.Fatalf("update: %v", err)
		}
		check(tt.region+": update", tt.outputs, got.Outputs)

		pool := newPool(tt.region, provisioner.StatusReady)
		pool.Outputs = tt.outputs
		check(tt.region+": pool ensure", tt.outputs, ensurePool(t, b, pool).Outputs)
		gotPool, err := b.PoolGet(t.Context(), tt.region)
		if err != nil {
			t.Fatalf("get pool: %v", err)
		}
		check(tt.region+": pool get", tt.outputs, gotPool.Outputs)
	}
}

func testPlacementListInFlight(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)
	if got, err := b.PlacementListInFlight(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("in flight with no placements = %v, %v; want none", got, err)
	}

	// One placement per status and tenant, each in a Region of its own,
	// inserted in reverse Region order.
	var want []provisioner.Placement
	for i := len(allStatuses) - 1; i >= 0; i-- {
		status := allStatuses[i]
		for j, id := range ids {
			region := fmt.Sprintf("r%d-%d", i, j)
			p := ensurePlacement(t, b, newPlacement(id, region, provisioner.KindDedicated, provisioner.StatusPending))
			if status != p.Status {
				p.Status = status
				var err error
				if p, err = b.PlacementUpdate(t.Context(), p); err != nil {
					t.Fatalf("update to %s: %v", status, err)
				}
			}
			if status.InFlight() {
				want = append(want, p)
			}
		}
	}
	slices.SortFunc(want, func(a, b provisioner.Placement) int { return strings.Compare(a.Region, b.Region) })
	got, err := b.PlacementListInFlight(t.Context())
	if err != nil {
		t.Fatalf("list in flight: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("in flight is not the creating, replacing and deleting placements by Region (-want +got):\n%s", diff)
	}
}

func testPool(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()

	if _, err := b.PoolGet(ctx, "eu-west-1"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("get of a missing pool = %v, want ErrNotFound", err)
	}
	if got, err := b.PoolList(ctx); err != nil || len(got) != 0 {
		t.Errorf("list with no pools = %v, %v; want none", got, err)
	}

	first := newPool("eu-west-1", provisioner.StatusPending)
	if diff := cmp.Diff(first, ensurePool(t, b, first)); diff != "" {
		t.Errorf("first ensure returned (-want +got):\n%s", diff)
	}
	second := newPool("eu-west-1", provisioner.StatusReady)
	second.StackName, second.Version = "other", 5
	if diff := cmp.Diff(first, ensurePool(t, b, second)); diff != "" {
		t.Errorf("second ensure returned (-first +got):\n%s", diff)
	}

	sent := first
	sent.Status = provisioner.StatusCreating
	sent.StackName = "cairn-pool-eu-west-1-b"
	sent.StackStatus = "CREATE_IN_PROGRESS"
	sent.StackID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/cairn-pool-eu-west-1-b/2"
	sent.TemplateVersion = "v2"
	sent.Outputs = map[string]string{"Table": "t"}
	sent.LastError = "x"
	sent.Attempt = 3
	before := time.Now()
	updated, err := b.PoolUpdate(ctx, sent)
	after := time.Now()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	checkUpdatedAt(t, "pool update", updated.UpdatedAt, before, after)
	wantUpdated := sent
	wantUpdated.Version, wantUpdated.UpdatedAt = 2, updated.UpdatedAt
	if diff := cmp.Diff(wantUpdated, updated); diff != "" {
		t.Errorf("pool update returned (-want +got):\n%s", diff)
	}
	if read, err := b.PoolGet(ctx, "eu-west-1"); err != nil {
		t.Fatalf("get: %v", err)
	} else if diff := cmp.Diff(updated, read); diff != "" {
		t.Errorf("stored differs from what update returned (-returned +stored):\n%s", diff)
	}
	if _, err := b.PoolUpdate(ctx, sent); !errors.Is(err, provisioner.ErrConflict) {
		t.Errorf("stale pool update = %v, want ErrConflict", err)
	}
	if _, err := b.PoolUpdate(ctx, newPool("sa-east-1", provisioner.StatusReady)); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("update of a missing pool = %v, want ErrNotFound", err)
	}

	// TenantCount counts the Region's pooled placements that are not
	// deleted: not dedicated ones, not other Regions'.
	ids := tenantIDs(t, b, 6)
	type placed struct {
		id     string
		region string
		kind   provisioner.Kind
		status provisioner.Status
	}
	for _, p := range []placed{
		{ids[0], "eu-west-1", provisioner.KindPooled, provisioner.StatusReady},
		{ids[1], "eu-west-1", provisioner.KindPooled, provisioner.StatusCreating},
		{ids[2], "eu-west-1", provisioner.KindPooled, provisioner.StatusDeleting},
		{ids[3], "eu-west-1", provisioner.KindPooled, provisioner.StatusDeleted},
		{ids[4], "eu-west-1", provisioner.KindDedicated, provisioner.StatusReady},
		{ids[0], "us-east-1", provisioner.KindPooled, provisioner.StatusReady},
		{ids[5], "ap-south-1", provisioner.KindPooled, provisioner.StatusReady},
	} {
		pl := ensurePlacement(t, b, newPlacement(p.id, p.region, p.kind, provisioner.StatusPending))
		pl.Status = p.status
		if _, err := b.PlacementUpdate(ctx, pl); err != nil {
			t.Fatalf("update placement: %v", err)
		}
	}
	usEast := ensurePool(t, b, newPool("us-east-1", provisioner.StatusReady))
	apNorth := ensurePool(t, b, newPool("ap-northeast-1", provisioner.StatusReady))
	euWest := updated
	euWest.TenantCount = 3
	usEast.TenantCount = 1
	want := []provisioner.Pool{apNorth, euWest, usEast}
	got, err := b.PoolList(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
}

// newEvents returns n events of one stack, oldest first, numbered from
// first.
func newEvents(first, n int) []provisioner.StackEvent {
	events := make([]provisioner.StackEvent, n)
	for i := range events {
		k := first + i
		events[i] = provisioner.StackEvent{
			ID:           fmt.Sprintf("event-%03d", k),
			Time:         base.Add(time.Duration(k) * time.Second),
			LogicalID:    fmt.Sprintf("Resource%d", k),
			ResourceType: "AWS::S3::Bucket",
			Status:       "CREATE_IN_PROGRESS",
			Reason:       fmt.Sprintf("reason %d", k),
		}
	}
	return events
}

func appendEvents(t *testing.T, b store.Backend, tenantID, region string, events []provisioner.StackEvent, want int) {
	t.Helper()
	n, err := b.StackEventsAppend(t.Context(), tenantID, region, events)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if n != want {
		t.Errorf("append of %d events added %d, want %d", len(events), n, want)
	}
}

func testStackEvents(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	const tenant, region = "ten_a", "eu-west-1"

	if got, err := b.StackEventsList(ctx, tenant, region, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("list with no events = %v, %v; want none", got, err)
	}
	appendEvents(t, b, tenant, region, nil, 0)
	appendEvents(t, b, tenant, region, newEvents(0, 5), 5)
	// A repeat is ignored, new events among repeats are added, and the
	// same event IDs are new in another Region or tenant.
	appendEvents(t, b, tenant, region, newEvents(0, 5), 0)
	appendEvents(t, b, tenant, region, newEvents(3, 4), 2) // 3..6, 5 and 6 new
	appendEvents(t, b, tenant, "us-east-1", newEvents(0, 2), 2)
	appendEvents(t, b, "ten_b", region, newEvents(0, 3), 3)
	appendEvents(t, b, tenant, region, newEvents(7, 6), 6) // 7..12

	all, err := b.StackEventsList(ctx, tenant, region, 0, 100)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	events := newEvents(0, 13)
	if len(all) != len(events) {
		t.Fatalf("list returned %d events, want %d", len(all), len(events))
	}
	for i, got := range all {
		want := provisioner.RecordedEvent{
			StackEvent: events[len(events)-1-i],
			TenantID:   tenant,
			Region:     region,
			Seq:        got.Seq,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("event %d, newest first (-want +got):\n%s", i, diff)
		}
		if i > 0 && got.Seq >= all[i-1].Seq {
			t.Errorf("event %d: Seq %d after Seq %d, want descending", i, got.Seq, all[i-1].Seq)
		}
	}

	// Paging by beforeSeq sees every event once, newest first.
	for _, limit := range []int{1, 4, 13, 20} {
		var (
			paged  []int64
			before int64
		)
		for page := 0; ; page++ {
			got, err := b.StackEventsList(ctx, tenant, region, before, limit)
			if err != nil {
				t.Fatalf("list before %d: %v", before, err)
			}
			if len(got) > limit {
				t.Fatalf("list with limit %d returned %d", limit, len(got))
			}
			for _, e := range got {
				paged = append(paged, e.Seq)
				before = e.Seq
			}
			if len(got) < limit {
				break
			}
			if page > len(all) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
		}
		want := make([]int64, len(all))
		for i, e := range all {
			want[i] = e.Seq
		}
		if diff := cmp.Diff(want, paged); diff != "" {
			t.Errorf("limit %d: paged Seqs (-want +got):\n%s", limit, diff)
		}
	}
}

// testPlacementConcurrentEnsure races ensures of one placement: one row is
// stored and every caller gets it back.
func testPlacementConcurrentEnsure(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	const n = 10
	type result struct {
		p   provisioner.Placement
		err error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			p := newPlacement(ids[0], "eu-west-1", provisioner.KindDedicated, provisioner.StatusPending)
			p.StackName = fmt.Sprintf("stack-%d", i)
			p, err := b.PlacementEnsure(t.Context(), p)
			results <- result{p, err}
		}()
	}
	close(start)
	var first provisioner.Placement
	for i := range n {
		r := receive(t, results, "an ensure")
		if r.err != nil {
			t.Fatalf("ensure: %v", r.err)
		}
		if i == 0 {
			first = r.p
		} else if diff := cmp.Diff(first, r.p); diff != "" {
			t.Errorf("ensures returned different placements (-first +got):\n%s", diff)
		}
	}
	list, err := b.PlacementList(t.Context(), ids[0])
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 1 {
		t.Fatalf("%d placements stored, want 1", len(list))
	}
	if diff := cmp.Diff(first, list[0]); diff != "" {
		t.Errorf("stored differs from what ensure returned (-returned +stored):\n%s", diff)
	}
}

// testPlacementConcurrentUpdate races updates from one Version: exactly
// one wins, the others get ErrConflict.
func testPlacementConcurrentUpdate(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	stored := ensurePlacement(t, b, newPlacement(ids[0], "eu-west-1", provisioner.KindDedicated, provisioner.StatusPending))
	const n = 10
	type result struct {
		p   provisioner.Placement
		err error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			p := stored
			p.LastError = fmt.Sprintf("writer %d", i)
			p, err := b.PlacementUpdate(t.Context(), p)
			results <- result{p, err}
		}()
	}
	close(start)
	var winner provisioner.Placement
	wins := 0
	for range n {
		r := receive(t, results, "an update")
		switch {
		case r.err == nil:
			wins++
			winner = r.p
		case !errors.Is(r.err, provisioner.ErrConflict):
			t.Errorf("losing update = %v, want ErrConflict", r.err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d updates won, want exactly 1", wins)
	}
	got, err := b.PlacementGet(t.Context(), ids[0], "eu-west-1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Version != stored.Version+1 || got.LastError != winner.LastError {
		t.Errorf("stored Version %d by %q, want Version %d by the winner %q", got.Version, got.LastError, stored.Version+1, winner.LastError)
	}
}
