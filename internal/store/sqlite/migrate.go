package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/migrations"
)

// Migrate implements store.Backend: it applies Cairn's migrations and
// River's schema (goose version 2) with goose. It needs no session lock:
// SQLite is one file used by one process, and the single connection already
// runs goose's statements one at a time.
func (d *DB) Migrate(ctx context.Context) error {
	provider, err := d.provider()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// CheckSchema implements store.Backend.
func (d *DB) CheckSchema(ctx context.Context) error {
	var n int
	if err := d.sqlDB.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version'").Scan(&n); err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	provider, err := d.provider()
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	sources := provider.ListSources()
	return store.CheckSchema(ctx, provider, n > 0, sources[len(sources)-1].Version)
}

// provider returns goose's provider of Cairn's migrations.
func (d *DB) provider() (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations.SQLite, "sqlite")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectSQLite3, d.sqlDB, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(d.riverMigration()),
		goose.WithSlog(d.logger),
	)
}

// riverMigration is goose version 2: River's own schema, applied in goose's
// transaction. It must be: goose holds the only connection for the whole
// run, so a migration using the *sql.DB would wait for it forever. Down
// removes River's schema entirely.
func (d *DB) riverMigration() *goose.Migration {
	migrate := func(direction rivermigrate.Direction, target int) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			migrator, err := rivermigrate.New(riversqlite.New(nil), &rivermigrate.Config{Logger: d.logger})
			if err != nil {
				return fmt.Errorf("river migrator: %w", err)
			}
			// MigrateTx is deprecated because River's Postgres migrations
			// cannot share one transaction (see the postgres adapter); its
			// SQLite migrations can, as the contract suite shows by
			// migrating every test database from empty.
			if _, err := migrator.MigrateTx(ctx, tx, direction, &rivermigrate.MigrateOpts{TargetVersion: target}); err != nil {
				return fmt.Errorf("river migrate %s: %w", direction, err)
			}
			return nil
		}
	}
	return goose.NewGoMigration(2,
		&goose.GoFunc{RunTx: migrate(rivermigrate.DirectionUp, migrations.RiverVersion)},
		&goose.GoFunc{RunTx: migrate(rivermigrate.DirectionDown, -1)},
	)
}
