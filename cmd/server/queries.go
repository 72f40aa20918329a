package main

import (
	"context"
	"github.com/cairn-cdp/cairn/internal/migration"
	"path/filepath"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/duckdb"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/usage"
)

// newQueries makes the service that runs tenants' SQL over their lake:
// on engine's zones in the DuckDB sandbox, results under
// <data-dir>/query-results. Without an engine (AWS mode, until queries run
// on Athena) it has no querier, and answers ErrQueriesUnavailable. The
// bytes each query scanned are metered as usage.QueryBytes.
func newQueries(cfg *config, db lake.QueryStore, engine *duckdb.Engine, placements *placement.Locator, fences *migration.Fences, meter *usage.Meter) (*lake.QueryService, error) {
	qc := lake.QueriesConfig{Store: db, Locate: lakeLocator(placements, fences), Dir: filepath.Join(cfg.DataDir, "query-results"), Timeout: cfg.QueryTimeout,
		Meter: func(_ context.Context, tenant string, n int64) { meter.Add(tenant, usage.QueryBytes, "", n) }}
	if engine != nil {
		qc.Querier = duckdb.NewQuerier(engine, duckdb.QuerierConfig{})
	}
	return lake.NewQueries(qc)
}
