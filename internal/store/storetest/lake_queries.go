package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// testLakeQueries: a query is stored with its job, read back only by its
// tenant, listed newest first, moved on only from the states given, and
// forgotten with its tenant.
func testLakeQueries(t *testing.T, h Harness) {
	ctx := t.Context()
	b := newBackend(t, h)
	at := base.Truncate(time.Second)
	var made []lake.Query
	for i, tenant := range []string{"ten_a", "ten_a", "ten_b", "ten_a"} {
		q := lake.Query{ID: "qry_" + string(rune('a'+i)), Tenant: tenant, SQL: "SELECT 1", State: lake.QueryQueued, CreatedAt: at.Add(time.Duration(i) * time.Second)}
		got, err := b.LakeQueryInsert(ctx, q, lake.QueryArgs{TenantID: tenant, QueryID: q.ID})
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq == 0 {
			t.Fatalf("no seq: %+v", got)
		}
		made = append(made, got)
	}
	counts, err := b.JobCounts(ctx)
	if err != nil || counts["available"] != 4 {
		t.Errorf("jobs %v, %v: want 4 available", counts, err)
	}
	got, err := b.LakeQueryGet(ctx, "ten_a", "qry_a")
	if err != nil || !cmp.Equal(got, made[0]) {
		t.Errorf("get: %v\n%s", err, cmp.Diff(made[0], got))
	}
	if _, err := b.LakeQueryGet(ctx, "ten_b", "qry_a"); !errors.Is(err, lake.ErrQueryNotFound) {
		t.Errorf("another tenant's query: %v", err)
	}
	list, err := b.LakeQueryList(ctx, "ten_a", 0, 2)
	if err != nil || len(list) != 2 || list[0].ID != "qry_d" || list[1].ID != "qry_b" {
		t.Fatalf("first page %+v, %v", list, err)
	}
	list, err = b.LakeQueryList(ctx, "ten_a", list[1].Seq, 2)
	if err != nil || len(list) != 1 || list[0].ID != "qry_a" {
		t.Fatalf("second page %+v, %v", list, err)
	}

	run := made[0]
	run.State, run.StartedAt = lake.QueryRunning, at.Add(time.Minute)
	if ok, err := b.LakeQueryUpdate(ctx, run, lake.QueryQueued); err != nil || !ok {
		t.Fatalf("start: %t %v", ok, err)
	}
	done := run
	done.State, done.Rows, done.BytesScanned, done.Elapsed, done.Result, done.ResultBytes, done.FinishedAt =
		lake.QuerySucceeded, 3, 1234, 1500*time.Millisecond, "ten_a/qry_a.jsonl", 99, at.Add(2*time.Minute)
	// A cancel won the race: the run's update from queued changes nothing.
	if ok, err := b.LakeQueryUpdate(ctx, done, lake.QueryQueued); err != nil || ok {
		t.Fatalf("update from a state it is not in: %t %v", ok, err)
	}
	if ok, err := b.LakeQueryUpdate(ctx, done, lake.QueryQueued, lake.QueryRunning); err != nil || !ok {
		t.Fatalf("finish: %t %v", ok, err)
	}
	got, err = b.LakeQueryGet(ctx, "ten_a", "qry_a")
	if err != nil || !cmp.Equal(got, done) {
		t.Errorf("finished: %v\n%s", err, cmp.Diff(done, got))
	}
	results, err := b.LakeQueryDeleteTenant(ctx, "ten_a")
	if err != nil || len(results) != 3 {
		t.Fatalf("forget: %v %v", results, err)
	}
	if list, err := b.LakeQueryList(ctx, "ten_a", 0, 10); err != nil || len(list) != 0 {
		t.Errorf("after forgetting: %v %v", list, err)
	}
	if _, err := b.LakeQueryGet(ctx, "ten_b", "qry_c"); err != nil {
		t.Errorf("the other tenant's query: %v", err)
	}
}
