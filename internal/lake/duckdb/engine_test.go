package duckdb_test

import (
	"bytes"
	"compress/gzip"
	"context"
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

// writeRaw writes lines as one raw object appended at at.
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
}

func query(t *testing.T, e *duckdb.Engine, q string) [][]any {
	t.Helper()
	ctx := context.Background()
	conn, err := e.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := e.Catalog(ctx, conn, loc); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
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
}
