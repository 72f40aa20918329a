package duckdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/duckdb"
)

// rowsOf collects a result.
type rowsOf struct {
	cols []lake.ResultColumn
	rows [][]any
}

func (r *rowsOf) Columns(cols []lake.ResultColumn) error { r.cols = cols; return nil }
func (r *rowsOf) Row(vals []any) error                   { r.rows = append(r.rows, vals); return nil }

// TestQuerySandbox: a tenant's query reads its own tables and nothing
// else; every way out is refused with its reason, before or while it runs.
func TestQuerySandbox(t *testing.T) {
	e, root := newEngine(t)
	ctx := t.Context()
	at := time.Date(2026, 11, 26, 10, 15, 0, 0, time.UTC)
	writeRaw(t, root, at,
		`{"type":"track","messageId":"m1","userId":"u1","event":"Signed Up","timestamp":"2026-11-26T10:14:00Z"}`,
		`{"type":"track","messageId":"m2","userId":"u1","event":"Signed Up","timestamp":"2026-11-26T10:14:30Z"}`,
		`{"type":"track","messageId":"m3","userId":"u2","event":"Paid","timestamp":"2026-11-26T10:14:40Z"}`)
	parts, err := e.RawPartitions(ctx, loc)
	if err != nil || len(parts) != 1 {
		t.Fatal(parts, err)
	}
	if _, err := e.Refine(ctx, lake.RefineInput{Tenant: "ten_a", Location: loc, Partition: parts[0]}); err != nil {
		t.Fatal(err)
	}
	// Another tenant of the same pool, with its own clean zone.
	other := loc
	other.Prefix = "tenants/ten_b/"
	otherFile := filepath.Join(root, other.Region, "buckets", other.CleanBucket, "tenants", "ten_b", "tracks", "dt=2026-11-26", "hh=10", "data.parquet")
	if err := os.MkdirAll(filepath.Dir(otherFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DB().ExecContext(ctx, fmt.Sprintf("COPY (SELECT 'secret' AS message_id) TO '%s' (FORMAT parquet)", otherFile)); err != nil {
		t.Fatal(err)
	}
	ownFile := filepath.Join(e.TableDir(loc, lake.Tables[0]), "dt=2026-11-26", "hh=10", "data.parquet")
	q := duckdb.NewQuerier(e, duckdb.QuerierConfig{MemoryLimit: "64MB", Threads: 1})

	t.Run("own tables", func(t *testing.T) {
		var res rowsOf
		st, err := q.RunQuery(ctx, lake.QueryInput{Tenant: "ten_a", Location: loc, SQL: `WITH c AS (SELECT event, count(*) AS n FROM tracks GROUP BY event)
SELECT event, n, DATE '2026-11-26' AS day FROM c ORDER BY n DESC`}, &res)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(res.rows); got != "[[Signed Up 2 2026-11-26T00:00:00Z] [Paid 1 2026-11-26T00:00:00Z]]" {
			t.Errorf("rows %s", got)
		}
		if got := fmt.Sprint(res.cols); got != "[{event VARCHAR} {n BIGINT} {day DATE}]" {
			t.Errorf("columns %s", got)
		}
		info, _ := os.Stat(ownFile)
		if st.Rows != 2 || st.BytesScanned != info.Size() || st.Elapsed <= 0 {
			t.Errorf("stats %+v, file %d bytes", st, info.Size())
		}
		// Every table of the catalog is there, empty or not.
		for _, tb := range lake.Tables {
			if err := q.CheckQuery(ctx, loc, "SELECT * FROM "+tb.Name); err != nil {
				t.Errorf("%s: %v", tb.Name, err)
			}
		}
	})

	refused := []struct{ name, sql, reason string }{
		{"read_csv", "SELECT * FROM read_csv('/etc/passwd')", lake.RefusedFileAccess},
		{"read_text", "SELECT * FROM read_text('/etc/passwd')", lake.RefusedFileAccess},
		{"file as table", "SELECT * FROM '/etc/passwd'", lake.RefusedFileAccess},
		{"read_parquet other tenant", "SELECT * FROM read_parquet('" + otherFile + "')", lake.RefusedFileAccess},
		{"read_parquet own file", "SELECT * FROM read_parquet('" + ownFile + "')", lake.RefusedFileAccess},
		{"file in a subquery", "SELECT * FROM tracks WHERE message_id IN (SELECT * FROM read_csv('/etc/passwd'))", lake.RefusedFileAccess},
		{"glob", "SELECT * FROM glob('/*')", lake.RefusedFileAccess},
		{"network", "SELECT * FROM read_parquet('https://example.com/x.parquet')", lake.RefusedFileAccess},
		{"attach", "ATTACH '/tmp/cairn-sandbox.db' AS x", lake.RefusedAttach},
		{"detach", "DETACH memory", lake.RefusedAttach},
		{"copy out", "COPY tracks TO '/tmp/cairn-sandbox.csv'", lake.RefusedFileAccess},
		{"copy query out", "COPY (SELECT 1) TO '/tmp/cairn-sandbox.csv'", lake.RefusedFileAccess},
		{"export", "EXPORT DATABASE '/tmp/cairn-sandbox'", lake.RefusedFileAccess},
		{"create", "CREATE TABLE x AS SELECT 1", lake.RefusedWrite},
		{"create view", "CREATE OR REPLACE VIEW tracks AS SELECT 1", lake.RefusedWrite},
		{"insert", "INSERT INTO tracks (message_id) VALUES ('x')", lake.RefusedWrite},
		{"delete", "DELETE FROM tracks", lake.RefusedWrite},
		{"drop", "DROP VIEW tracks", lake.RefusedWrite},
		{"set", "SET threads = 8", lake.RefusedSettings},
		{"set external access", "SET enable_external_access = true", lake.RefusedSettings},
		{"reset", "RESET memory_limit", lake.RefusedSettings},
		{"pragma", "PRAGMA enable_profiling", lake.RefusedSettings},
		{"install", "INSTALL httpfs", lake.RefusedExtension},
		{"load", "LOAD httpfs", lake.RefusedExtension},
		{"two statements", "SELECT 1; SELECT 2", lake.RefusedNotSelect},
		{"select then write", "SELECT 1; DROP VIEW tracks", lake.RefusedNotSelect},
		{"other tenant's table", "SELECT * FROM ten_b.tracks", lake.RefusedOtherTenant},
		{"qualified own table", "SELECT * FROM memory.main.tracks", lake.RefusedOtherTenant},
		{"catalog", "SELECT * FROM information_schema.tables", lake.RefusedOtherTenant},
		{"unknown table", "SELECT * FROM customers", lake.RefusedUnknownTable},
		{"syntax", "SELEC 1", lake.RefusedSyntax},
		{"empty", "  ", lake.RefusedSyntax},
		{"too long", "SELECT '" + strings.Repeat("x", duckdb.DefaultMaxSQL) + "'", lake.RefusedTooLong},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			err := q.CheckQuery(ctx, loc, c.sql)
			var r *lake.QueryRefusal
			if !errors.As(err, &r) || !errors.Is(err, lake.ErrQueryRefused) {
				t.Fatalf("%s: %v, want a refusal", c.sql, err)
			}
			if r.Reason != c.reason || r.Message == "" {
				t.Errorf("%s: refused %s (%s), want %s", c.sql, r.Reason, r.Message, c.reason)
			}
			// Run, it is refused the same way and writes nothing.
			var res rowsOf
			if _, err := q.RunQuery(ctx, lake.QueryInput{Location: loc, SQL: c.sql}, &res); !errors.As(err, &r) || r.Reason != c.reason || res.cols != nil {
				t.Errorf("run %s: %v, %v", c.sql, err, res.cols)
			}
		})
	}
	for _, f := range []string{"/tmp/cairn-sandbox.db", "/tmp/cairn-sandbox.csv", "/tmp/cairn-sandbox"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s was written", f)
		}
	}

	t.Run("time limit", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := q.RunQuery(ctx, lake.QueryInput{Location: loc, SQL: "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"}, &rowsOf{})
		var r *lake.QueryRefusal
		if !errors.As(err, &r) || r.Reason != lake.RefusedTimeLimit {
			t.Fatalf("%v, want the time limit", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("stopped after %s", d)
		}
	})
	t.Run("memory limit", func(t *testing.T) {
		_, err := q.RunQuery(ctx, lake.QueryInput{Location: loc, SQL: "SELECT count(DISTINCT range::VARCHAR || 'padding padding padding') FROM range(20000000)"}, &rowsOf{})
		var r *lake.QueryRefusal
		if !errors.As(err, &r) || r.Reason != lake.RefusedMemoryLimit {
			t.Fatalf("%v, want the memory limit", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := q.RunQuery(ctx, lake.QueryInput{Location: loc, SQL: "SELECT 1"}, &rowsOf{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("%v, want cancelled", err)
		}
	})
}
