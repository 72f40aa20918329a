package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// testLakeWatermarks: a watermark and its tables' stats are recorded
// together, replaced by the next run of the partition, kept per tenant;
// a table partition with no row loses its entry.
func testLakeWatermarks(t *testing.T, h Harness) {
	ctx := t.Context()
	b := newBackend(t, h)
	at := base.Truncate(time.Second)
	w := lake.Watermark{Partition: "2026-11-26T10", Fingerprint: "f1", RawObjects: 2, RawBytes: 300, ErasedSeq: 0, RefinedAt: at}
	stats := []lake.TableStats{
		{Table: "tracks", Partition: "2026-11-26T10", Rows: 5, Bytes: 900},
		{Table: "pages", Partition: "2026-11-26T10", Rows: 1, Bytes: 400},
	}
	if err := b.LakeRecord(ctx, "ten_a", &w, stats); err != nil {
		t.Fatal(err)
	}
	w2 := w
	w2.Fingerprint, w2.RawObjects, w2.ErasedSeq, w2.RefinedAt = "f2", 3, 4, at.Add(time.Minute)
	if err := b.LakeRecord(ctx, "ten_a", &w2, []lake.TableStats{
		{Table: "tracks", Partition: "2026-11-26T10", Rows: 6, Bytes: 950},
		{Table: "pages", Partition: "2026-11-26T10"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.LakeRecord(ctx, "ten_a", nil, []lake.TableStats{{Table: "id_graph", Rows: 2, Bytes: 100}}); err != nil {
		t.Fatal(err)
	}
	if err := b.LakeRecord(ctx, "ten_b", &lake.Watermark{Partition: "2026-11-26T09", Fingerprint: "x", RefinedAt: at}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := b.LakeWatermarks(ctx, "ten_a")
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].RefinedAt = got[i].RefinedAt.UTC()
	}
	if diff := cmp.Diff([]lake.Watermark{w2}, got); diff != "" {
		t.Errorf("watermarks (-want +got):\n%s", diff)
	}
	tables, err := b.LakeTables(ctx, "ten_a")
	if err != nil {
		t.Fatal(err)
	}
	want := []lake.TableStats{{Table: "id_graph", Rows: 2, Bytes: 100}, {Table: "tracks", Partition: "2026-11-26T10", Rows: 6, Bytes: 950}}
	if diff := cmp.Diff(want, tables); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
}

// testLakeErased: the filter grows per tenant, an ID added twice keeps its
// place, and the sequence only grows.
func testLakeErased(t *testing.T, h Harness) {
	ctx := t.Context()
	b := newBackend(t, h)
	if ids, seq, err := b.LakeErased(ctx, "ten_a"); err != nil || len(ids) != 0 || seq != 0 {
		t.Fatalf("empty filter: %v %d %v", ids, seq, err)
	}
	if err := b.LakeEraseAdd(ctx, "ten_a", "era_1", []string{"prof_1", "m1", "m2"}); err != nil {
		t.Fatal(err)
	}
	_, seq1, err := b.LakeErased(ctx, "ten_a")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.LakeEraseAdd(ctx, "ten_a", "era_2", []string{"m2", "m3"}); err != nil {
		t.Fatal(err)
	}
	if err := b.LakeEraseAdd(ctx, "ten_b", "era_3", []string{"other"}); err != nil {
		t.Fatal(err)
	}
	ids, seq2, err := b.LakeErased(ctx, "ten_a")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"prof_1", "m1", "m2", "m3"}; !slices.Equal(ids, want) || seq2 <= seq1 {
		t.Fatalf("filter %v (seq %d after %d), want %v", ids, seq2, seq1, want)
	}
}
