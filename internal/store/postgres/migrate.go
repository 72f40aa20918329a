package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/migrations"
)

// Migrate implements store.Backend: it applies Cairn's migrations and
// River's schema (goose version 2) with goose, holding a Postgres session
// advisory lock so replicas starting together migrate one at a time; the
// others wait (polling every second, up to five minutes) and then find
// nothing to do. It holds two of the pool's connections: goose's locked
// session and River's.
func (d *DB) Migrate(ctx context.Context) error {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// goose needs database/sql; this *sql.DB borrows connections from the
	// pool and closing it leaves the pool open.
	sqlDB := stdlib.OpenDBFromPool(d.pool)
	defer sqlDB.Close()
	provider, err := d.provider(sqlDB, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// CheckSchema implements store.Backend. goose reads its version table
// without the session lock, so a check never waits for a migration in
// progress: it sees the schema as that migration's last commit left it.
func (d *DB) CheckSchema(ctx context.Context) error {
	var exists bool
	if err := d.pool.QueryRow(ctx, "SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(d.pool)
	defer sqlDB.Close()
	provider, err := d.provider(sqlDB)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	sources := provider.ListSources()
	return store.CheckSchema(ctx, provider, exists, sources[len(sources)-1].Version)
}

// provider returns goose's provider of Cairn's migrations on sqlDB.
func (d *DB) provider(sqlDB *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations.Postgres, "postgres")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, append([]goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(d.riverMigration()),
		goose.WithSlog(d.logger),
	}, opts...)...)
}

// riverMigration is goose version 2: River's own schema, applied while
// goose holds its session lock. Unlike on SQLite it runs outside a goose
// transaction: River's Postgres migrations cannot share one transaction
// (004 adds an enum value that 006 uses, which needs a commit in between;
// MigrateTx from an empty database fails with SQLSTATE 55P04, which is why
// River deprecates it). River applies each of its migrations in a
// transaction of its own and records it in river_migration, so a run that
// dies halfway resumes where it stopped. Down removes River's schema
// entirely.
func (d *DB) riverMigration() *goose.Migration {
	migrate := func(direction rivermigrate.Direction, target int) func(context.Context, *sql.DB) error {
		return func(ctx context.Context, sqlDB *sql.DB) error {
			migrator, err := rivermigrate.New(riverdatabasesql.New(sqlDB), &rivermigrate.Config{Logger: d.logger})
			if err != nil {
				return fmt.Errorf("river migrator: %w", err)
			}
			if _, err := migrator.Migrate(ctx, direction, &rivermigrate.MigrateOpts{TargetVersion: target}); err != nil {
				return fmt.Errorf("river migrate %s: %w", direction, err)
			}
			return nil
		}
	}
	return goose.NewGoMigration(2,
		&goose.GoFunc{RunDB: migrate(rivermigrate.DirectionUp, migrations.RiverVersion)},
		&goose.GoFunc{RunDB: migrate(rivermigrate.DirectionDown, -1)},
	)
}
