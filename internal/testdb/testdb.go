// Package testdb gives each test a database of its own: a fresh
// PostgreSQL database on the throwaway cluster named by
// CAIRN_TEST_DATABASE_URL, or an SQLite file in the test's temporary
// directory.
//
// CAIRN_TEST_DATABASE_URL is an admin URL (postgres://...) of a cluster
// that tests may create and drop databases on. When it is unset,
// PostgreSQL tests are skipped, unless CAIRN_TEST_REQUIRE_POSTGRES=1 (make
// test sets it), which makes them fail instead.
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/store/postgres"
	"github.com/cairn-cdp/cairn/migrations"
)

// Environment variables read by the PostgreSQL helpers.
const (
	EnvDatabaseURL     = "CAIRN_TEST_DATABASE_URL"
	EnvRequirePostgres = "CAIRN_TEST_REQUIRE_POSTGRES"
)

// SQLitePath returns the path of a not yet existing SQLite database file
// in t.TempDir().
func SQLitePath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "cairn.db")
}

// Postgres returns the URL of a new, empty database that is dropped when t
// ends.
func Postgres(t *testing.T) string {
	t.Helper()
	return createDatabase(t, adminURL(t), "")
}

// PostgresMigrated returns the URL of a new database with every migration
// applied, dropped when t ends. It is a copy of a template database that
// the first caller on the cluster migrates once per schema version, which
// is much faster than migrating each database.
func PostgresMigrated(t *testing.T) string {
	t.Helper()
	admin := adminURL(t)
	tmpl, err := template(admin)
	if err != nil {
		t.Fatalf("testdb: migrated template: %v", err)
	}
	return createDatabase(t, admin, tmpl)
}

// adminURL returns CAIRN_TEST_DATABASE_URL or skips (or fails) t.
func adminURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvDatabaseURL)
	if admin == "" {
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatalf("testdb: %s=1 but %s is not set", EnvRequirePostgres, EnvDatabaseURL)
		}
		t.Skipf("testdb: %s is not set; skipping PostgreSQL test", EnvDatabaseURL)
	}
	if _, err := databaseURL(admin, "x"); err != nil {
		t.Fatalf("testdb: %s: %v", EnvDatabaseURL, err)
	}
	return admin
}

// databaseURL is admin with its database replaced by name.
func databaseURL(admin, name string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("want a postgres:// URL")
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// createDatabase creates a randomly named database, a copy of tmpl unless
// tmpl is empty, and drops it (disconnecting whoever is left) when t ends.
func createDatabase(t testing.TB, admin, tmpl string) string {
	t.Helper()
	name := "cairn_test_" + strings.ToLower(rand.Text()[:16])
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if tmpl != "" {
		stmt += " TEMPLATE " + pgx.Identifier{tmpl}.Sanitize()
	}
	if err := adminExec(context.Background(), admin, stmt); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		stmt := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
		if err := adminExec(context.Background(), admin, stmt); err != nil {
			t.Errorf("testdb: %v", err)
		}
	})
	dbURL, _ := databaseURL(admin, name) // adminURL checked it parses
	return dbURL
}

// adminExec runs statements on a connection of its own to the admin
// database.
func adminExec(ctx context.Context, admin string, stmts ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to admin database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// templateLock is the advisory lock key (on the admin database) that test
// processes take while one of them builds the template: go test runs
// packages in parallel processes.
const templateLock = 0x636169726e // "cairn"

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// template returns the name of the migrated template database, building
// it if no process has yet.
func template(admin string) (string, error) {
	templateOnce.Do(func() { templateName, templateErr = buildTemplate(admin) })
	return templateName, templateErr
}

func buildTemplate(admin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	hash, err := schemaHash()
	if err != nil {
		return "", err
	}
	// The name carries the schema's hash, so a template left on a reused
	// cluster by an older schema is never used.
	name := "cairn_template_" + hash

	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect to admin database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) // also releases the lock
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}

	// datistemplate marks a finished template; a database without it was
	// left half-built by a process that died.
	var done bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&done)
	switch {
	case err == nil && done:
		return name, nil
	case err != nil && !errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("look up template: %w", err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	for _, stmt := range []string{
		"DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)",
		"CREATE DATABASE " + ident,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("%s: %w", stmt, err)
		}
	}
	dbURL, err := databaseURL(admin, name)
	if err != nil {
		return "", err
	}
	if err := migrate(ctx, dbURL); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" IS_TEMPLATE true"); err != nil {
		return "", fmt.Errorf("mark template: %w", err)
	}
	return name, nil
}

func migrate(ctx context.Context, dbURL string) error {
	db, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Migrate(ctx)
}

// schemaHash identifies the schema a migrated database has: the migration
// files and River's schema version.
func schemaHash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "river %d\n", migrations.RiverVersion)
	err := fs.WalkDir(migrations.Postgres, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.Postgres, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
