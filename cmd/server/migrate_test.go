package main

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for goose
	"github.com/pressly/goose/v3"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/testdb"
	"github.com/cairn-cdp/cairn/migrations"
)

// TestServeMigrateOff runs the server as the control plane's template does,
// with CAIRN_MIGRATE=false after a separate "server migrate": it refuses a
// database that was never migrated, and one whose schema an older version
// left (the latest migration rolled back), saying to run migrate, and
// changes nothing; once "server migrate" has run, it serves.
func TestServeMigrateOff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dbURL   func(t *testing.T) string
		dialect goose.Dialect
		driver  string
		fsys    fs.FS
		dir     string
	}{
		{"sqlite", func(*testing.T) string { return "" }, goose.DialectSQLite3, "sqlite", migrations.SQLite, "sqlite"},
		{"postgres", testdb.Postgres, goose.DialectPostgres, "pgx", migrations.Postgres, "postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			vars := map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_DATABASE_URL": tc.dbURL(t), "CAIRN_MIGRATE": "false"}
			serveErr := func() error {
				t.Helper()
				cfg, err := parseConfig("server", cmdServe, []string{"--addr", "127.0.0.1:0"}, env(vars), io.Discard, io.Discard, nil)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				return serve(ctx, cfg, io.Discard, io.Discard, hooks{})
			}

			err := serveErr()
			if !errors.Is(err, store.ErrSchemaBehind) || !regexp.MustCompile(`no schema.*server migrate`).MatchString(err.Error()) {
				t.Fatalf("serve on a database never migrated: %v, want ErrSchemaBehind saying to run server migrate", err)
			}
			// It left the database as it was: still no schema.
			if err := serveErr(); err == nil || !regexp.MustCompile(`no schema`).MatchString(err.Error()) {
				t.Fatalf("serve a second time: %v, want the same refusal", err)
			}

			if err := run(t.Context(), []string{"migrate"}, env(vars), nil, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			// The schema an older version left: the latest migration
			// rolled back.
			sqlDB := openSQL(t, tc.driver, vars)
			sub, err := fs.Sub(tc.fsys, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			// Version 2 (River's schema) is a Go migration of the store
			// adapters; goose needs to know it, not to run it.
			provider, err := goose.NewProvider(tc.dialect, sqlDB, sub, goose.WithDisableGlobalRegistry(true),
				goose.WithGoMigrations(goose.NewGoMigration(2, nil, nil)))
			if err != nil {
				t.Fatal(err)
			}
			down, err := provider.Down(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			sqlDB.Close()
			latest := strconv.FormatInt(down.Source.Version, 10)
			err = serveErr()
			want := regexp.MustCompile(`database is at version (\d+), this version needs version (\d+).*server migrate`)
			m := want.FindStringSubmatch(errString(err))
			if !errors.Is(err, store.ErrSchemaBehind) || m == nil || m[2] != latest || m[1] == m[2] {
				t.Fatalf("serve on an older schema: %v, want ErrSchemaBehind naming version %s and server migrate", err, latest)
			}

			if err := run(t.Context(), []string{"migrate"}, env(vars), nil, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			url, _ := startServer(t, t.Context(), vars)
			res, err := http.Get(url + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("readyz after migrate: %d", res.StatusCode)
			}
		})
	}
}

// openSQL opens the database vars name with database/sql, for goose.
func openSQL(t *testing.T, driver string, vars map[string]string) *sql.DB {
	t.Helper()
	dsn := vars["CAIRN_DATABASE_URL"]
	if driver == "sqlite" {
		dsn = filepath.Join(vars["CAIRN_DATA_DIR"], "cairn.db")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
