package testdb_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/testdb"
)

func TestSQLitePath(t *testing.T) {
	a, b := testdb.SQLitePath(t), testdb.SQLitePath(t)
	if a == b || !filepath.IsAbs(a) {
		t.Errorf("SQLitePath gave %q and %q, want two distinct absolute paths", a, b)
	}
}

func TestPostgres(t *testing.T) {
	var url string
	t.Run("fresh", func(t *testing.T) {
		url = testdb.Postgres(t)
		if n := tableCount(t, url); n != 0 {
			t.Errorf("new database has %d tables, want 0", n)
		}
		if other := testdb.Postgres(t); other == url {
			t.Errorf("two calls gave the same database %s", url)
		}
	})
	if url == "" { // skipped
		return
	}
	// The subtest's cleanup dropped the database.
	if _, err := connect(context.Background(), url); err == nil {
		t.Errorf("database %s still exists after its test ended", url)
	}
}

func TestPostgresMigrated(t *testing.T) {
	url := testdb.PostgresMigrated(t)
	conn, err := connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, table := range []string{"tenants", "idempotency_keys", "river_job", "goose_db_version"} {
		var exists bool
		if err := conn.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("migrated database has no table %s", table)
		}
	}
}

func tableCount(t *testing.T, url string) int {
	t.Helper()
	conn, err := connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}
