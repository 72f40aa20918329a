// Package sqlite is the embedded SQLite adapter of the control-plane store:
// *DB implements store.Backend on one database file, with
// modernc.org/sqlite (pure Go) and River's riversqlite driver for jobs.
//
// It is meant for one process. The pool holds a single connection, as
// River's SQLite driver recommends (several connections end in
// SQLITE_BUSY under River's concurrent maintenance work), so statements and
// transactions run one at a time and a transaction sees no concurrent
// writer. Inside InTx use only the Tx: a call through the *DB would wait
// for the connection the transaction holds.
//
// Writes are durable once acknowledged: WAL with synchronous=FULL.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/tracing"
)

var _ store.Backend = (*DB)(nil)

// DB is the SQLite control-plane store. It is safe for concurrent use.
type DB struct {
	sqlDB   *sql.DB
	queries *db.Queries
	driver  *riversqlite.Driver
	// jobs is an insert-only River client: it inserts jobs inside Cairn's
	// transactions and never works them (StartWorkers makes the client that
	// does).
	jobs   *river.Client[*sql.Tx]
	logger *slog.Logger
}

// connParams are applied to every connection. busy_timeout only matters
// when another process (a backup, the sqlite3 shell) holds the file;
// _txlock=immediate takes the write lock at BEGIN so a transaction that
// reads then writes can never fail to upgrade its lock.
var connParams = url.Values{
	"_pragma": {
		"busy_timeout(10000)",
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"foreign_keys(1)",
	},
	"_txlock": {"immediate"},
}

// Open opens (creating if needed) the database file at path. It does not
// migrate: call Migrate. A nil logger means slog.Default().
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite: invalid database path %q", path)
	}
	sqlDB, err := sql.Open("sqlite", path+"?"+connParams.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	sqlDB.SetMaxOpenConns(1)
	if err := checkJournalMode(ctx, sqlDB); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}

	driver := riversqlite.New(sqlDB)
	// Jobs inserted in a traced request carry its trace (tracing.JobInsert).
	jobs, err := river.NewClient(driver, &river.Config{Logger: logger, Middleware: []rivertype.Middleware{&tracing.JobInsert{}}})
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open sqlite %s: job client: %w", path, err)
	}
	return &DB{sqlDB: sqlDB, queries: db.New(sqlDB), driver: driver, jobs: jobs, logger: logger}, nil
}

// checkJournalMode connects, which applies connParams, and makes sure WAL
// took: SQLite silently keeps its old journal mode where WAL is
// unsupported.
func checkJournalMode(ctx context.Context, sqlDB *sql.DB) error {
	var mode string
	if err := sqlDB.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	return nil
}

// Ping implements store.Backend.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close implements store.Backend. Stop workers first.
func (d *DB) Close() error {
	if err := d.sqlDB.Close(); err != nil {
		return fmt.Errorf("close sqlite: %w", err)
	}
	return nil
}

// InTx implements tenants.Store. It returns fn's error as is.
func (d *DB) InTx(ctx context.Context, fn func(tenants.Tx) error) error {
	return d.withTx(ctx, func(sqlTx *sql.Tx) error {
		return fn(&tx{sqlTx: sqlTx, queries: d.queries.WithTx(sqlTx), jobs: d.jobs})
	})
}

// withTx runs fn in a transaction, committing when it returns nil.
func (d *DB) withTx(ctx context.Context, fn func(*sql.Tx) error) error {
	sqlTx, err := d.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = sqlTx.Rollback() }() // a no-op after Commit

	if err := fn(sqlTx); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// JobCounts implements store.Backend.
func (d *DB) JobCounts(ctx context.Context) (map[string]int64, error) {
	counts, err := d.driver.GetExecutor().JobCountByAllStates(ctx, &riverdriver.JobCountByAllStatesParams{})
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	out := make(map[string]int64, len(counts))
	for state, n := range counts {
		out[string(state)] = int64(n)
	}
	return out, nil
}

// RunningJobArgs implements store.Backend.
func (d *DB) RunningJobArgs(ctx context.Context, kind string) ([][]byte, error) {
	return store.RunningJobArgs(ctx, d.jobs, kind)
}

// StartWorkers implements store.Backend. cfg.Logger defaults to the logger
// given to Open.
func (d *DB) StartWorkers(ctx context.Context, cfg store.WorkerConfig) (func(context.Context) error, error) {
	if cfg.Logger == nil {
		cfg.Logger = d.logger
	}
	return store.StartRiver(ctx, d.driver, cfg)
}

// tx is the tenants.Tx of one InTx call.
type tx struct {
	sqlTx   *sql.Tx
	queries *db.Queries
	jobs    *river.Client[*sql.Tx]
}

// TenantGet implements tenants.Tx. SQLite has no row locks; the immediate
// transaction already holds the database's write lock.
func (t *tx) TenantGet(ctx context.Context, id string) (tenants.Tenant, error) {
	return tenantGet(ctx, t.queries, id)
}

// TenantInsert implements tenants.Tx.
func (t *tx) TenantInsert(ctx context.Context, tn tenants.Tenant) (tenants.Tenant, error) {
	return tenantInsert(ctx, t.queries, tn)
}

// TenantUpdate implements tenants.Tx.
func (t *tx) TenantUpdate(ctx context.Context, tn tenants.Tenant) error {
	return tenantUpdate(ctx, t.queries, tn)
}

// JobInsert implements tenants.Tx.
func (t *tx) JobInsert(ctx context.Context, args tenants.JobArgs) error {
	if _, err := t.jobs.InsertTx(ctx, t.sqlTx, args, nil); err != nil {
		return fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return nil
}
