package lake

import (
	"context"
	"errors"
	"time"
)

// QueryState is where a tenant's query is in its life.
type QueryState string

// Query states. A query is queued when accepted, running while its job
// runs it, and ends succeeded (its result stored), failed (Error says why)
// or cancelled.
const (
	QueryQueued    QueryState = "queued"
	QueryRunning   QueryState = "running"
	QuerySucceeded QueryState = "succeeded"
	QueryFailed    QueryState = "failed"
	QueryCancelled QueryState = "cancelled"
)

// Done reports whether the state is final.
func (s QueryState) Done() bool {
	return s == QuerySucceeded || s == QueryFailed || s == QueryCancelled
}

// Query is a tenant's SQL query over its clean and curated tables, as
// stored.
type Query struct {
	ID     string
	Tenant string
	SQL    string
	State  QueryState
	// Error says why a failed query failed, in words for its author.
	Error string
	// Rows is how many rows the result holds.
	Rows int64
	// BytesScanned is what the query scanned: Athena's count
	// (DataScannedInBytes), or the bytes of the Parquet files of the
	// tables the query read (the DuckDB sandbox).
	BytesScanned int64
	// Elapsed is how long the query ran.
	Elapsed time.Duration
	// Result is the result file's name in the service's result directory
	// ("" until the query succeeded).
	Result      string
	ResultBytes int64
	// Seq orders the tenant's queries (list cursors).
	Seq        int64
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// Query errors, returned (wrapped) by QueryService.
var (
	// ErrQueryNotFound: no query of this ID for this tenant.
	ErrQueryNotFound = errors.New("query not found")
	// ErrQueryRefused is what every *QueryRefusal matches: the statement
	// is not one the sandbox runs.
	ErrQueryRefused = errors.New("query refused")
	// ErrQueryNotDone: the query has no result (yet, or ever: it failed or
	// was cancelled); or it cannot be cancelled, being done.
	ErrQueryNotDone = errors.New("query not done")
	// ErrQueriesUnavailable: this deployment has no query engine.
	ErrQueriesUnavailable = errors.New("this deployment runs no queries")
)

// DefaultMaxSQL bounds a statement's length in bytes, in every engine
// (Athena's own limit is 256 KiB).
const DefaultMaxSQL = 64 << 10

// Reasons of a QueryRefusal.
const (
	RefusedSyntax       = "syntax"
	RefusedNotSelect    = "not-select"
	RefusedWrite        = "write"
	RefusedSettings     = "settings"
	RefusedAttach       = "attach"
	RefusedFileAccess   = "file-access"
	RefusedExtension    = "extension"
	RefusedUnknownTable = "unknown-table"
	RefusedOtherTenant  = "other-tenant"
	RefusedTooLong      = "too-long"
	RefusedTimeLimit    = "time-limit"
	RefusedMemoryLimit  = "memory-limit"
	RefusedResultLimit  = "result-limit"
	RefusedScanLimit    = "scan-limit"
	RefusedInvalid      = "invalid"
)

// QueryRefusal is a statement the sandbox refuses, or a query that ran
// over a limit: Reason is one of the Refused constants, Message says why
// in words for the query's author. It matches ErrQueryRefused.
type QueryRefusal struct {
	Reason  string
	Message string
}

func (r *QueryRefusal) Error() string        { return r.Message }
func (r *QueryRefusal) Is(target error) bool { return target == ErrQueryRefused }

// Refuse returns a *QueryRefusal.
func Refuse(reason, message string) error { return &QueryRefusal{Reason: reason, Message: message} }

// ResultColumn is a column of a query's result.
type ResultColumn struct {
	Name string `json:"name"`
	// Type is the engine's name of the column's type (VARCHAR, BIGINT,
	// TIMESTAMP WITH TIME ZONE, ...).
	Type string `json:"type"`
}

// ResultWriter receives a query's result: its columns once, then its rows,
// each value a JSON-ready Go value (string, number, bool, nil, or a list
// or map of those). An error stops the query and is returned by RunQuery.
type ResultWriter interface {
	Columns(cols []ResultColumn) error
	Row(vals []any) error
}

// QueryInput is one query to run.
type QueryInput struct {
	Tenant   string
	Location Location
	SQL      string
}

// QueryStats is what running a query took.
type QueryStats struct {
	Rows         int64
	BytesScanned int64
	Elapsed      time.Duration
}

// Querier runs tenants' read-only SQL over their own clean and curated
// tables (engine side): DuckDB in a sandbox in the embedded default,
// Athena with the tenant's own credentials in AWS mode.
// Implementations are safe for concurrent use.
type Querier interface {
	// CheckQuery validates sql without running it: a single read-only
	// statement over the tenant's tables, or a *QueryRefusal saying why
	// not.
	CheckQuery(ctx context.Context, loc Location, sql string) error
	// RunQuery runs in.SQL and writes its result to w. A statement
	// refused, or a query over a limit (its time limit: ctx's deadline;
	// its memory limit) is a *QueryRefusal; ctx cancelled otherwise is
	// ctx's error.
	RunQuery(ctx context.Context, in QueryInput, w ResultWriter) (QueryStats, error)
}

// QueryStore keeps tenants' queries in the control-plane database.
type QueryStore interface {
	// LakeQueryInsert stores q and queues job, which runs it, in one
	// transaction; it sets q's Seq.
	LakeQueryInsert(ctx context.Context, q Query, job QueryArgs) (Query, error)
	// LakeQueryGet returns the tenant's query (ErrQueryNotFound).
	LakeQueryGet(ctx context.Context, tenant, id string) (Query, error)
	// LakeQueryList returns up to limit of the tenant's queries, newest
	// first, those with Seq below beforeSeq (every one when 0).
	LakeQueryList(ctx context.Context, tenant string, beforeSeq int64, limit int) ([]Query, error)
	// LakeQueryUpdate stores q if its stored state is one of from, and
	// reports whether it did (false: the query is gone or moved on, a
	// cancel most likely).
	LakeQueryUpdate(ctx context.Context, q Query, from ...QueryState) (bool, error)
	// LakeQueryDeleteTenant deletes every query of the tenant and returns
	// their result files' names.
	LakeQueryDeleteTenant(ctx context.Context, tenant string) ([]string, error)
}
