// Package postgres is the PostgreSQL adapter of the control-plane store:
// *DB implements store.Backend with a pgx/v5 pool and River's riverpgxv5
// driver for jobs. Several replicas may share one database: row locks,
// unique indexes and goose's session lock coordinate them.
package postgres

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/tracing"
)

var _ store.Backend = (*DB)(nil)

// DB is the PostgreSQL control-plane store. It is safe for concurrent use.
type DB struct {
	pool    *pgxpool.Pool
	queries *db.Queries
	driver  *riverpgxv5.Driver
	// jobs is an insert-only River client: it inserts jobs inside Cairn's
	// transactions and never works them (StartWorkers makes the client that
	// does).
	jobs   *river.Client[pgx.Tx]
	logger *slog.Logger
}

// Open connects to the database at url (postgres://...) and checks that it
// answers. It does not migrate: call Migrate. A nil logger means
// slog.Default(). Errors never include the URL, which may hold a password.
func Open(ctx context.Context, url string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.Default()
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	driver := riverpgxv5.New(pool)
	// Jobs inserted in a traced request carry its trace (tracing.JobInsert).
	jobs, err := river.NewClient(driver, &river.Config{Logger: logger, Middleware: []rivertype.Middleware{&tracing.JobInsert{}}})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: job client: %w", err)
	}
	return &DB{pool: pool, queries: db.New(pool), driver: driver, jobs: jobs, logger: logger}, nil
}

// Ping implements store.Backend.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close implements store.Backend. Stop workers first; Close waits for
// connections in use to be returned.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

// InTx implements tenants.Store. It returns fn's error as is.
func (d *DB) InTx(ctx context.Context, fn func(tenants.Tx) error) error {
	return d.withTx(ctx, func(pgxTx pgx.Tx) error {
		return fn(&tx{pgxTx: pgxTx, queries: d.queries.WithTx(pgxTx), jobs: d.jobs})
	})
}

// withTx runs fn in a transaction, committing when it returns nil.
func (d *DB) withTx(ctx context.Context, fn func(pgx.Tx) error) error {
	pgxTx, err := d.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = pgxTx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit

	if err := fn(pgxTx); err != nil {
		return err
	}
	if err := pgxTx.Commit(ctx); err != nil {
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
// given to Open. River learns of new jobs by LISTEN/NOTIFY, so
// cfg.PollInterval is only a fallback here.
func (d *DB) StartWorkers(ctx context.Context, cfg store.WorkerConfig) (func(context.Context) error, error) {
	if cfg.Logger == nil {
		cfg.Logger = d.logger
	}
	return store.StartRiver(ctx, d.driver, cfg)
}

// tx is the tenants.Tx of one InTx call.
type tx struct {
	pgxTx   pgx.Tx
	queries *db.Queries
	jobs    *river.Client[pgx.Tx]
}

// TenantGet implements tenants.Tx: it locks the row (SELECT ... FOR UPDATE)
// until the transaction ends, so concurrent changes to one tenant queue up
// instead of failing their version check.
func (t *tx) TenantGet(ctx context.Context, id string) (tenants.Tenant, error) {
	row, err := t.queries.TenantGetForUpdate(ctx, id)
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("get tenant: %w", translate(err))
	}
	tn, err := tenantFromRow(row)
	if err != nil {
		return tenants.Tenant{}, fmt.Errorf("get tenant: %w", err)
	}
	return tn, nil
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
	if _, err := t.jobs.InsertTx(ctx, t.pgxTx, args, nil); err != nil {
		return fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return nil
}
