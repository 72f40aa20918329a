package duckdb_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/duckdb"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

var loc = lake.Location{Region: "eu-west-1", RawBucket: "raw", CleanBucket: "clean", CuratedBucket: "curated", Prefix: "tenants/ten_a/"}

func newEngine(t *testing.T) (*duckdb.Engine, string) {
	t.Helper()
	root := t.TempDir()
	e, err := duckdb.New(duckdb.Config{Root: root, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, root
}

// writeRaw writes lines as one raw object appended at at (its name and
// its modification time).
func writeRaw(t testing.TB, root string, at time.Time, lines ...string) {
	t.Helper()
	at = at.UTC()
	dir := filepath.Join(root, loc.Region, "buckets", loc.RawBucket, filepath.FromSlash(loc.Prefix), "events", "dt="+at.Format("2006-01-02"), "hh="+at.Format("15"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(strings.Join(lines, "\n") + "\n"))
	zw.Close()
	name := at.Format("20060102T150405.000000000") + fmt.Sprintf("Z-%d.ndjson.gz", time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// Written when its events arrived: at.
	if err := os.Chtimes(filepath.Join(dir, name), at, at); err != nil {
		t.Fatal(err)
	}
}

func query(t *testing.T, e *duckdb.Engine, q string) [][]any {
	t.Helper()
	rows, err := e.Query(t.Context(), loc, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}

func TestRefinePartition(t *testing.T) {
	e, root := newEngine(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	writeRaw(t, root, at,
		`{"type":"track","messageId":"m1","userId":"u1","event":"Signed Up","timestamp":"2026-11-26T10:14:00Z","properties":{"plan":"pro"},"context":{"library":{"name":"analytics-go"}}}`,
		`{"type":"identify","messageId":"m2","userId":42,"traits":{"email":"a@example.com"}}`,
		`{"type":"page","messageId":"m3","anonymousId":"a1","name":"Home","originalTimestamp":"2026-11-26T10:00:00Z","sentAt":"2026-11-26T10:00:10Z"}`,
		`{"type":"track","messageId":"m1","userId":"u1","event":"Signed Up again"}`,
		`{"type":"alias","messageId":"m4","userId":"u1","previousId":"a1"}`,
		`{"type":"group","messageId":"m5","userId":"u1","groupId":"g1","traits":{"name":"Acme"}}`,
		`{"type":"screen","messageId":"m6","userId":"u1","name":"Settings"}`,
		`{"type":"track","messageId":"m7","userId":"erased-user","event":"X"}`,
	)
	writeRaw(t, root, at.Add(time.Minute), `{"type":"track","messageId":"m1","userId":"u1","event":"Later copy"}`)
	// A refine a crash cut short left its working directory behind.
	stale := filepath.Join(root, loc.Region, "buckets", loc.CleanBucket, filepath.FromSlash(loc.Prefix), ".refine-crashed")
	if err := os.MkdirAll(filepath.Join(stale, "type=track"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(stale, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	parts, err := e.RawPartitions(ctx, loc)
	if err != nil || len(parts) != 1 || len(parts[0].Objects) != 2 || parts[0].Partition.String() != "2026-11-26T10" {
		t.Fatalf("raw partitions %+v, %v", parts, err)
	}
	snap := profiles.Snapshot{
		Members: []profiles.SnapshotMember{{ID: "p1", Root: "p1"}, {ID: "p2", Root: "p1"}, {ID: "p9", Root: "p9"}},
		Identifiers: []profiles.SnapshotIdentifier{
			{Member: "p1", Type: "user_id", Value: "u1"}, {Member: "p2", Type: "anonymous_id", Value: "a1"},
			{Member: "p9", Type: "user_id", Value: "erased-user"},
		},
	}
	stats, err := e.Refine(ctx, lake.RefineInput{Tenant: "ten_a", Location: loc, Partition: parts[0], Snapshot: snap, Erased: []string{"p9"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a crashed refine's working directory is still there")
	}
	// What the refine staged is dropped: a pooled connection keeps nothing.
	e.DB().SetMaxOpenConns(1)
	if _, err := e.Refine(ctx, lake.RefineInput{Tenant: "ten_a", Location: loc, Partition: parts[0], Snapshot: snap, Erased: []string{"p9"}}); err != nil {
		t.Fatal(err)
	}
	var temps int
	if err := e.DB().QueryRowContext(ctx, "SELECT (SELECT count(*) FROM duckdb_tables() WHERE temporary) + (SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal)").Scan(&temps); err != nil || temps != 0 {
		t.Fatalf("%d temporary relations left on the connection (%v)", temps, err)
	}
	rows := map[string]int64{}
	for _, s := range stats {
		rows[s.Table] = s.Rows
		if s.Partition != "2026-11-26T10" {
			t.Errorf("stats %+v", s)
		}
	}
	want := map[string]int64{"tracks": 1, "identifies": 1, "pages": 1, "screens": 1, "groups": 1, "aliases": 1}
	for k, v := range want {
		if rows[k] != v {
			t.Errorf("%s: %d rows, want %d (%v)", k, rows[k], v, rows)
		}
	}
	got := query(t, e, `SELECT message_id, event, profile_id, strftime("timestamp", '%Y-%m-%dT%H:%M:%S'), source, properties->>'plan' FROM tracks`)
	if fmt.Sprint(got) != "[[m1 Signed Up p1 2026-11-26T10:14:00 analytics-go pro]]" {
		t.Errorf("tracks %v", got)
	}
	// The page's time is its originalTimestamp corrected by the 10 s the
	// client's clock was behind: received at 10:15:00, sent at 10:00:10.
	got = query(t, e, `SELECT event, profile_id, strftime("timestamp", '%H:%M:%S') FROM pages`)
	if fmt.Sprint(got) != "[[Home p1 10:14:50]]" {
		t.Errorf("pages %v", got)
	}
	got = query(t, e, `SELECT user_id, traits->>'email' FROM identifies`)
	if fmt.Sprint(got) != "[[42 a@example.com]]" {
		t.Errorf("identifies %v", got)
	}
	got = query(t, e, `SELECT group_id, previous_id FROM groups UNION ALL SELECT group_id, previous_id FROM aliases`)
	if fmt.Sprint(got) != "[[g1 <nil>] [<nil> a1]]" {
		t.Errorf("groups and aliases %v", got)
	}
	// Each clean table's own transformation, executed as written, gives
	// the rows Refine's one pass wrote into the table.
	in := lake.RefineInput{Tenant: "ten_a", Location: loc, Partition: parts[0], Snapshot: snap, Erased: []string{"p9"}}
	for _, tb := range lake.TablesIn(lake.ZoneClean) {
		tr, _ := lake.TransformationFor(tb.Name)
		rows, err := e.Run(ctx, in, tr)
		if err != nil {
			t.Fatalf("%s: %v", tb.Name, err)
		}
		want := query(t, e, "SELECT * FROM "+tb.Name)
		if fmt.Sprint(rows) != fmt.Sprint(want) || len(rows) != 1 {
			t.Errorf("%s: its transformation gives %v, the table holds %v", tb.Name, rows, want)
		}
	}
}

// Every curated transformation, executed on DuckDB over a snapshot and a
// refined partition, gives the rows its definition says.
func TestCurate(t *testing.T) {
	e, root := newEngine(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	t0 := at.Add(-time.Hour)
	writeRaw(t, root, at,
		`{"type":"identify","messageId":"m1","userId":"u1","traits":{"plan":"pro"},"timestamp":"2026-11-26T09:00:00Z"}`,
		`{"type":"identify","messageId":"m2","anonymousId":"a1","traits":{},"timestamp":"2026-11-26T09:30:00Z"}`,
		`{"type":"track","messageId":"m3","anonymousId":"a1","event":"Viewed","timestamp":"2026-11-25T23:59:00Z"}`,
		`{"type":"track","messageId":"m4","userId":"u1","event":"Viewed","timestamp":"2026-11-26T09:59:00Z"}`,
		`{"type":"alias","messageId":"m5","userId":"u1","previousId":"a1","timestamp":"2026-11-26T10:00:00Z"}`,
	)
	snap := profiles.Snapshot{
		Members: []profiles.SnapshotMember{
			{ID: "p1", Root: "p1", CreatedAt: t0, UpdatedAt: at, Event: "m1", Traits: map[string]profiles.SnapshotTrait{
				"plan": {Value: "pro", At: t0}, "n": {Value: 1.5, At: t0}}},
			{ID: "p2", Root: "p1", CreatedAt: t0.Add(time.Minute), UpdatedAt: at, Event: "m2", Traits: map[string]profiles.SnapshotTrait{
				"plan": {Value: "free", At: t0.Add(-time.Minute)}, "tags": {Value: []any{"a", "b"}, At: t0}}},
		},
		Identifiers: []profiles.SnapshotIdentifier{
			{Member: "p1", Type: "user_id", Value: "u1", FirstSeen: t0, Event: "m1"},
			{Member: "p2", Type: "anonymous_id", Value: "a1", FirstSeen: t0.Add(time.Minute), Event: "m2"},
		},
		Merges:      []profiles.SnapshotMerge{{Root: "p1", MergedProfileID: "p2", Members: []string{"p2"}, At: at, Identifier: "user_id:u1", Event: "m5"}},
		Memberships: []profiles.SnapshotMembership{{ProfileID: "p1", SegmentID: "seg_1", EnteredAt: at}},
	}
	parts, err := e.RawPartitions(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Refine(ctx, lake.RefineInput{Location: loc, Partition: parts[0], Snapshot: snap}); err != nil {
		t.Fatal(err)
	}
	stats, err := e.Curate(ctx, lake.CurateInput{Location: loc, Snapshot: snap})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, s := range stats {
		rows[s.Table] = s.Rows
	}
	for table, want := range map[string]int64{"id_graph_updates": 3, "id_graph": 2, "external_id_mapping_updates": 2, "external_id_mapping": 2,
		"profile_traits_updates": 1, "profile_traits": 1, "segment_memberships": 1, "daily_event_counts": 4} {
		if rows[table] != want {
			t.Errorf("%s: %d rows, want %d", table, rows[table], want)
		}
	}
	for q, want := range map[string]string{
		`SELECT profile_id, canonical_profile_id, triggering_event_id, strftime("timestamp", '%H:%M') FROM id_graph_updates ORDER BY 4, 1`: "[[p1 p1 m1 09:15] [p2 p2 m2 09:16] [p2 p1 m5 10:15]]",
		`SELECT profile_id, canonical_profile_id FROM id_graph ORDER BY 1`:                                                                 "[[p1 p1] [p2 p1]]",
		`SELECT profile_id, external_id_type, external_id_value, triggering_event_id FROM external_id_mapping_updates ORDER BY 1`:          "[[p1 user_id u1 m1] [p2 anonymous_id a1 m2]]",
		`SELECT canonical_profile_id, profile_id, external_id_type FROM external_id_mapping ORDER BY 2`:                                    "[[p1 p1 user_id] [p1 p2 anonymous_id]]",
		// The identify with empty traits sets none.
		`SELECT profile_id, canonical_profile_id, triggering_event_id, traits->>'plan' FROM profile_traits_updates`: "[[p1 p1 m1 pro]]",
		// The latest value of each trait across the profile's members.
		`SELECT canonical_profile_id, traits->>'plan', traits->'n', CAST(traits->'tags' AS VARCHAR), strftime("timestamp", '%H:%M') FROM profile_traits`: `[[p1 pro 1.5 ["a","b"] 09:15]]`,
		`SELECT profile_id, segment_id FROM segment_memberships`:                                   "[[p1 seg_1]]",
		`SELECT strftime(day, '%d'), type, event, events FROM daily_event_counts ORDER BY 1, 2, 3`: "[[25 track Viewed 1] [26 alias <nil> 1] [26 identify <nil> 2] [26 track Viewed 1]]",
	} {
		if got := fmt.Sprint(query(t, e, q)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", q, got, want)
		}
	}
}

// A purge rewrites the partitions holding erased rows, counts what the
// curated tables hold of them, and touches nothing else.
func TestPurge(t *testing.T) {
	e, root := newEngine(t)
	ctx := t.Context()
	for i, at := range []time.Time{time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)} {
		writeRaw(t, root, at,
			fmt.Sprintf(`{"type":"track","messageId":"x%d","userId":"u1","event":"E"}`, i),
			fmt.Sprintf(`{"type":"track","messageId":"y%d","userId":"u2","event":"E"}`, i))
	}
	snap := profiles.Snapshot{
		Members:     []profiles.SnapshotMember{{ID: "p1", Root: "p1"}, {ID: "p2", Root: "p2"}},
		Identifiers: []profiles.SnapshotIdentifier{{Member: "p1", Type: "user_id", Value: "u1"}, {Member: "p2", Type: "user_id", Value: "u2"}},
	}
	parts, _ := e.RawPartitions(ctx, loc)
	for _, p := range parts {
		if _, err := e.Refine(ctx, lake.RefineInput{Location: loc, Partition: p, Snapshot: snap}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Curate(ctx, lake.CurateInput{Location: loc, Snapshot: snap}); err != nil {
		t.Fatal(err)
	}
	// y1 by message ID (an event whose profile was not resolved), p1 by profile.
	res, rewritten, err := e.Purge(ctx, lake.PurgeInput{Location: loc, IDs: []string{"p1", "y1"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res) != "[{clean 2 3} {curated 4 4}]" || len(rewritten) != 2 {
		t.Fatalf("purge: %v, rewrote %v", res, rewritten)
	}
	if got := fmt.Sprint(query(t, e, `SELECT message_id, profile_id FROM tracks`)); got != "[[y0 p2]]" {
		t.Errorf("tracks after the purge: %s", got)
	}
	stats, err := e.Stats(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	var tracks []string
	for _, s := range stats {
		if s.Table == "tracks" {
			tracks = append(tracks, fmt.Sprintf("%s:%d", s.Partition, s.Rows))
		}
	}
	if fmt.Sprint(tracks) != "[2026-11-26T10:1]" {
		t.Errorf("tracks partitions after the purge: %v", tracks)
	}
}
