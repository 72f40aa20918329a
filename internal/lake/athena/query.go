package athena

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/athena"
	athenatypes "github.com/aws/aws-sdk-go-v2/service/athena/types"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// Credentials vends credentials scoped to one tenant: its data-access
// role's (dedicated), or the pool role's confined by the tenant's session
// policy (pooled).
type Credentials interface {
	TenantCredentials(ctx context.Context, tenant string) (aws.Credentials, error)
}

// QuerierConfig configures a Querier.
type QuerierConfig struct {
	// Credentials is where each query's credentials come from (required).
	Credentials Credentials
	// MaxSQL bounds a statement's length in bytes (lake.DefaultMaxSQL).
	MaxSQL int
	// PageSize is the rows each GetQueryResults call asks for
	// (DefaultPageSize, Athena's most).
	PageSize int32
}

// DefaultPageSize is QuerierConfig.PageSize's default.
const DefaultPageSize = 1000

// Querier runs tenants' queries on Athena, in the tenant's workgroup and
// database, with the tenant's own credentials: Lake Formation and the
// tenant's session policy, not Cairn, keep a query to the tenant's
// tables, and the workgroup's per-query cutoff bounds what it scans. The
// statement is checked first (Check), to refuse with a reason what is no
// single read-only query of the tenant's tables. A query's time limit is
// its context's deadline: the execution is stopped (StopQueryExecution)
// when the context ends, whether by its deadline or a cancel. It is safe
// for concurrent use.
type Querier struct {
	e   *Engine
	cfg QuerierConfig
}

var _ lake.Querier = (*Querier)(nil)

// NewQuerier returns a Querier on e's Athena clients (their Regions,
// endpoints and retries), each query's calls signed with its tenant's
// credentials. It fails without cfg.Credentials.
func NewQuerier(e *Engine, cfg QuerierConfig) (*Querier, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("athena querier: Credentials is required")
	}
	cfg.MaxSQL = cmp.Or(cfg.MaxSQL, lake.DefaultMaxSQL)
	cfg.PageSize = cmp.Or(cfg.PageSize, DefaultPageSize)
	return &Querier{e: e, cfg: cfg}, nil
}

// CheckQuery implements lake.Querier.
func (q *Querier) CheckQuery(_ context.Context, loc lake.Location, sql string) error {
	return Check(queryDatabases(loc), sql, q.cfg.MaxSQL)
}

// queryDatabases are the databases a tenant's query may name, its context
// first: a pooled tenant's queries run in the pool's database (its clean
// and curated tables are the pool's shared ones, of which Lake Formation
// lets its credentials read only its rows, through its data cells
// filters) and may name its own (its raw zone).
func queryDatabases(loc lake.Location) []string {
	if loc.Pooled && loc.SharedDatabase != "" {
		return []string{loc.SharedDatabase, loc.Database}
	}
	return []string{loc.Database}
}

// tenant returns the query's client, signed with the tenant's
// credentials.
func (q *Querier) tenant(ctx context.Context, loc lake.Location) (*tenant, error) {
	if loc.Database == "" || loc.WorkGroup == "" || loc.Tenant == "" {
		return nil, fmt.Errorf("athena querier: tenant %s: location lacks its database or workgroup", loc.Tenant)
	}
	base, err := q.e.athena.Client(loc.Region)
	if err != nil {
		return nil, fmt.Errorf("athena querier: %w", err)
	}
	creds, err := q.cfg.Credentials.TenantCredentials(ctx, loc.Tenant)
	if err != nil {
		return nil, fmt.Errorf("athena querier: tenant %s credentials: %w", loc.Tenant, err)
	}
	client := athena.New(base.Options(), func(o *athena.Options) {
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	})
	return &tenant{e: q.e, loc: loc, athena: client, context: queryDatabases(loc)[0]}, nil
}

// RunQuery implements lake.Querier. The bytes scanned are Athena's
// (DataScannedInBytes), a failed query's too (Athena bills them). A query
// Athena fails for its author's mistake (a USER error: an unknown table,
// a type, a permission Lake Formation refuses) or stops at the
// workgroup's scan cutoff is a *lake.QueryRefusal with Athena's reason.
func (q *Querier) RunQuery(ctx context.Context, in lake.QueryInput, w lake.ResultWriter) (st lake.QueryStats, _ error) {
	start := time.Now()
	defer func() { st.Elapsed = time.Since(start) }()
	if err := q.CheckQuery(ctx, in.Location, in.SQL); err != nil {
		return st, err
	}
	t, err := q.tenant(ctx, in.Location)
	if err != nil {
		return st, err
	}
	id, err := t.start(ctx, in.SQL)
	if err != nil {
		return st, q.ended(ctx, err)
	}
	qe, err := t.wait(ctx, id)
	if qe != nil && qe.Statistics != nil {
		st.BytesScanned = aws.ToInt64(qe.Statistics.DataScannedInBytes)
	}
	if err != nil {
		if qe != nil {
			if refusal := refusalOf(qe.Status); refusal != nil {
				return st, refusal
			}
		}
		return st, q.ended(ctx, err)
	}
	var cols []athenatypes.ColumnInfo
	err = t.eachRow(ctx, id, q.cfg.PageSize, func(c []athenatypes.ColumnInfo) error {
		cols = c
		out := make([]lake.ResultColumn, len(c))
		for i, ci := range c {
			out[i] = lake.ResultColumn{Name: aws.ToString(ci.Name), Type: strings.ToUpper(aws.ToString(ci.Type))}
		}
		return w.Columns(out)
	}, func(data []athenatypes.Datum) error {
		if len(data) != len(cols) {
			return fmt.Errorf("athena query %s: a row of %d values for %d columns", id, len(data), len(cols))
		}
		vals := make([]any, len(data))
		for i, d := range data {
			vals[i] = jsonValue(aws.ToString(cols[i].Type), d.VarCharValue)
		}
		st.Rows++
		return w.Row(vals)
	})
	if err != nil {
		return st, q.ended(ctx, err)
	}
	return st, nil
}

// ended maps an error of a query cut short: its time limit (ctx's
// deadline) is a refusal, a cancel is ctx's error.
func (q *Querier) ended(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return lake.Refuse(lake.RefusedTimeLimit, "The query ran over its time limit and was stopped; aggregate more, or read fewer rows.")
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}

// refusalOf says why Athena failed or cancelled a query, if it was the
// query's author's doing; nil otherwise.
func refusalOf(st *athenatypes.QueryExecutionStatus) error {
	reason := failure(st)
	switch {
	case strings.Contains(strings.ToLower(reason), "bytes scanned limit"):
		return lake.Refuse(lake.RefusedScanLimit, "The query would scan more than its workgroup's limit per query and was stopped; read fewer partitions or columns ("+reason+").")
	case st.State == athenatypes.QueryExecutionStateFailed && st.AthenaError != nil && aws.ToInt32(st.AthenaError.ErrorCategory) == userError:
		return lake.Refuse(lake.RefusedInvalid, "The query is invalid: "+reason)
	}
	return nil
}

// userError is Athena's ErrorCategory of an error in the query itself
// (1 is a system error, 3 any other).
const userError = 2

// jsonValue converts a value of an Athena column type, as GetQueryResults
// gives it (text, nil for NULL), to what the embedded sandbox gives for
// its type: numbers and booleans as such, timestamps in RFC 3339, the
// rest (decimals, dates, arrays, maps, rows) as Athena writes them.
func jsonValue(typ string, v *string) any {
	if v == nil {
		return nil
	}
	s := *v
	switch strings.ToLower(typ) {
	case "tinyint", "smallint", "integer", "int", "bigint":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case "real", "float", "double":
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	case "boolean":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	case "timestamp":
		if at, err := time.Parse("2006-01-02 15:04:05.999999999", s); err == nil {
			return at.UTC().Format(time.RFC3339Nano)
		}
	}
	return s
}
