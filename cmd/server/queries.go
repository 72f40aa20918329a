package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/athena"
	"github.com/cairn-cdp/cairn/internal/lake/duckdb"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/usage"
)

// newQueries makes the service that runs tenants' SQL over their lake, on
// the refinery's engine: in the DuckDB sandbox over its zones (the
// embedded default), or on Athena in the tenant's workgroup with the
// tenant's own credentials, which grantSvc issues (AWS mode). Results are
// stored under <data-dir>/query-results; the bytes each query scanned
// are metered as usage.QueryBytes.
func newQueries(cfg *config, db lake.QueryStore, engine lake.Engine, grantSvc *grants.Service, placements *placement.Locator, fences *migration.Fences, tenantOf func(context.Context, string) (tenants.Tenant, error), meter *usage.Meter) (*lake.QueryService, error) {
	qc := lake.QueriesConfig{Store: db, Locate: lakeLocator(placements, fences, tenantOf), Dir: filepath.Join(cfg.DataDir, "query-results"), Timeout: cfg.QueryTimeout,
		Meter: func(_ context.Context, tenant string, n int64) { meter.Add(tenant, usage.QueryBytes, "", n) }}
	switch e := engine.(type) {
	case *duckdb.Engine:
		qc.Querier = duckdb.NewQuerier(e, duckdb.QuerierConfig{})
	case *athena.Engine:
		q, err := athena.NewQuerier(e, athena.QuerierConfig{Credentials: tenantCredentials{grantSvc}})
		if err != nil {
			return nil, err
		}
		qc.Querier = q
	default:
		return nil, fmt.Errorf("queries: no querier on a %T", engine)
	}
	return lake.NewQueries(qc)
}

// tenantCredentials gives the Athena querier each tenant's scoped
// credentials.
type tenantCredentials struct{ grants *grants.Service }

func (c tenantCredentials) TenantCredentials(ctx context.Context, tenant string) (aws.Credentials, error) {
	ic, err := c.grants.ScopedCredentials(ctx, tenant)
	if err != nil {
		return aws.Credentials{}, err
	}
	return aws.Credentials{AccessKeyID: ic.AccessKeyID, SecretAccessKey: ic.SecretAccessKey, SessionToken: ic.SessionToken,
		Source: "cairn tenant " + tenant, CanExpire: true, Expires: ic.Expiration}, nil
}
