package lake

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/ids"
)

// QueriesConfig configures a QueryService. Store, Locate and Dir are
// required; Querier is nil where no engine runs queries: Submit then
// returns ErrQueriesUnavailable, and the tenant's list of queries stays
// empty.
type QueriesConfig struct {
	Store   QueryStore
	Querier Querier
	// Locate returns where the tenant's zones are (placement.ErrNotReady
	// before its home stack is provisioned).
	Locate func(ctx context.Context, tenant string) (Location, error)
	// Dir is where results are stored, a file per query under a
	// directory per tenant.
	Dir string
	// Timeout is each query's time limit (DefaultQueryTimeout).
	Timeout time.Duration
	// MaxResultRows and MaxResultBytes bound a result
	// (DefaultMaxResultRows, DefaultMaxResultBytes): a query whose result
	// is larger fails, saying so.
	MaxResultRows  int64
	MaxResultBytes int64
	// Meter, if set, is given the bytes each finished query scanned.
	Meter  func(ctx context.Context, tenant string, bytesScanned int64)
	Now    func() time.Time
	Logger *slog.Logger
}

// Defaults of QueriesConfig.
const (
	DefaultQueryTimeout   = 60 * time.Second
	DefaultMaxResultRows  = 1_000_000
	DefaultMaxResultBytes = 256 << 20
)

// QueryService runs tenants' SQL over their own clean and curated tables,
// asynchronously as Athena does: Submit checks the statement and stores
// the query, queued, with the durable job (QueryArgs) that runs it; the
// result is stored as a file, read back a page at a time or whole as CSV.
// It is safe for concurrent use. A query is cancelled in the database; the
// process running it stops it at once, another replica's run stops at its
// next look at the query's state (every second).
type QueryService struct {
	cfg     QueriesConfig
	mu      sync.Mutex
	running map[string]context.CancelFunc
}

// NewQueries validates cfg and returns a QueryService.
func NewQueries(cfg QueriesConfig) (*QueryService, error) {
	if cfg.Store == nil || cfg.Locate == nil || cfg.Dir == "" {
		return nil, errors.New("lake queries: Store, Locate and Dir are required")
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultQueryTimeout)
	cfg.MaxResultRows = cmp.Or(cfg.MaxResultRows, DefaultMaxResultRows)
	cfg.MaxResultBytes = cmp.Or(cfg.MaxResultBytes, DefaultMaxResultBytes)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &QueryService{cfg: cfg, running: map[string]context.CancelFunc{}}, nil
}

// Timeout is each query's time limit.
func (s *QueryService) Timeout() time.Duration { return s.cfg.Timeout }

// Submit checks sql and, if the sandbox would run it, stores the query,
// queued, and its job. It returns a *QueryRefusal for a statement
// refused, ErrQueriesUnavailable without an engine, and
// placement.ErrNotReady while the tenant has no zones.
func (s *QueryService) Submit(ctx context.Context, tenant, sql string) (Query, error) {
	if s.cfg.Querier == nil {
		return Query{}, ErrQueriesUnavailable
	}
	loc, err := s.cfg.Locate(ctx, tenant)
	if err != nil {
		return Query{}, err
	}
	if err := s.cfg.Querier.CheckQuery(ctx, loc, sql); err != nil {
		return Query{}, err
	}
	q := Query{ID: ids.New("qry_"), Tenant: tenant, SQL: sql, State: QueryQueued, CreatedAt: s.cfg.Now().UTC()}
	return s.cfg.Store.LakeQueryInsert(ctx, q, QueryArgs{TenantID: tenant, QueryID: q.ID})
}

// Get returns the tenant's query (ErrQueryNotFound).
func (s *QueryService) Get(ctx context.Context, tenant, id string) (Query, error) {
	return s.cfg.Store.LakeQueryGet(ctx, tenant, id)
}

// List returns up to limit of the tenant's queries, newest first, those
// before the cursor beforeSeq (0: from the newest).
func (s *QueryService) List(ctx context.Context, tenant string, beforeSeq int64, limit int) ([]Query, error) {
	return s.cfg.Store.LakeQueryList(ctx, tenant, beforeSeq, limit)
}

// Cancel cancels a queued or running query and returns it; a cancelled
// one is returned as it is, a query otherwise done is ErrQueryNotDone.
func (s *QueryService) Cancel(ctx context.Context, tenant, id string) (Query, error) {
	q, err := s.Get(ctx, tenant, id)
	if err != nil {
		return q, err
	}
	for !q.State.Done() {
		from := q.State
		q.State, q.FinishedAt = QueryCancelled, s.cfg.Now().UTC()
		ok, err := s.cfg.Store.LakeQueryUpdate(ctx, q, from)
		if err != nil {
			return q, err
		}
		if ok {
			s.mu.Lock()
			if cancel := s.running[id]; cancel != nil {
				cancel()
			}
			s.mu.Unlock()
			return q, nil
		}
		if q, err = s.Get(ctx, tenant, id); err != nil {
			return q, err
		}
	}
	if q.State == QueryCancelled {
		return q, nil
	}
	return q, fmt.Errorf("query %s is %s: %w", id, q.State, ErrQueryNotDone)
}

// ResultPage is a page of a query's result.
type ResultPage struct {
	Columns []ResultColumn
	Rows    [][]any
	// Next is where the next page starts (0: this page is the last).
	Next int64
}

// ErrBadPageToken is returned by Results for a position that is not the
// start of a result row.
var ErrBadPageToken = errors.New("not a page token of this result")

// Results returns up to limit rows of a succeeded query's result, from
// position from (0, or a page's Next). It returns ErrQueryNotDone unless
// the query succeeded, ErrBadPageToken for a position it did not give.
func (s *QueryService) Results(ctx context.Context, tenant, id string, from int64, limit int) (Query, ResultPage, error) {
	var pg ResultPage
	q, f, err := s.openResult(ctx, tenant, id)
	if err != nil {
		return q, pg, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	header, err := r.ReadBytes('\n')
	if err != nil {
		return q, pg, fmt.Errorf("result %s: %w", id, err)
	}
	if err := json.Unmarshal(header, &pg.Columns); err != nil {
		return q, pg, fmt.Errorf("result %s: %w", id, err)
	}
	pos := int64(len(header))
	if from != 0 {
		if from < pos || !lineStart(f, from) {
			return q, pg, ErrBadPageToken
		}
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return q, pg, err
		}
		r.Reset(f)
		pos = from
	}
	for len(pg.Rows) < limit {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return q, pg, nil
		}
		if err != nil {
			return q, pg, fmt.Errorf("result %s: %w", id, err)
		}
		var row []any
		if err := json.Unmarshal(line, &row); err != nil {
			return q, pg, fmt.Errorf("result %s: %w", id, err)
		}
		pg.Rows = append(pg.Rows, row)
		pos += int64(len(line))
	}
	if _, err := r.Peek(1); err == nil {
		pg.Next = pos
	}
	return q, pg, nil
}

// lineStart reports whether pos starts a line of f.
func lineStart(f *os.File, pos int64) bool {
	b := make([]byte, 1)
	n, err := f.ReadAt(b, pos-1)
	return n == 1 && err == nil && b[0] == '\n'
}

// Result is a succeeded query's whole result, read a row at a time.
type Result struct {
	Columns []ResultColumn
	f       *os.File
	r       *bufio.Reader
}

// Next returns the next row, or io.EOF after the last.
func (r *Result) Next() ([]any, error) {
	line, err := r.r.ReadBytes('\n')
	if errors.Is(err, io.EOF) && len(line) == 0 {
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	var row []any
	if err := json.Unmarshal(line, &row); err != nil {
		return nil, err
	}
	return row, nil
}

// Close releases the result.
func (r *Result) Close() error { return r.f.Close() }

// OpenResult opens a succeeded query's result (ErrQueryNotDone unless it
// succeeded). Close it when done.
func (s *QueryService) OpenResult(ctx context.Context, tenant, id string) (Query, *Result, error) {
	q, f, err := s.openResult(ctx, tenant, id)
	if err != nil {
		return q, nil, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	header, err := r.ReadBytes('\n')
	res := &Result{f: f, r: r}
	if err == nil {
		err = json.Unmarshal(header, &res.Columns)
	}
	if err != nil {
		f.Close()
		return q, nil, fmt.Errorf("result %s: %w", id, err)
	}
	return q, res, nil
}

func (s *QueryService) openResult(ctx context.Context, tenant, id string) (Query, *os.File, error) {
	q, err := s.Get(ctx, tenant, id)
	if err != nil {
		return q, nil, err
	}
	if q.State != QuerySucceeded {
		return q, nil, fmt.Errorf("%w: it is %s", ErrQueryNotDone, q.State)
	}
	f, err := os.Open(filepath.Join(s.cfg.Dir, q.Result))
	if err != nil {
		return q, nil, fmt.Errorf("result %s: %w", id, err)
	}
	return q, f, nil
}

// ForgetTenant deletes the tenant's queries and their results (the
// tenant's offboarding). It is safe to call again.
func (s *QueryService) ForgetTenant(ctx context.Context, tenant string) error {
	if _, err := s.cfg.Store.LakeQueryDeleteTenant(ctx, tenant); err != nil {
		return err
	}
	if err := os.RemoveAll(s.tenantDir(tenant)); err != nil {
		return fmt.Errorf("forget queries: %w", err)
	}
	return nil
}

func (s *QueryService) tenantDir(tenant string) string {
	return filepath.Join(s.cfg.Dir, filepath.Base(tenant))
}

// Run runs a queued query: it marks it running, runs it under its time
// limit and stores its result and statistics, or why it failed. A query no
// longer queued (cancelled, or run already) is left as it is.
func (s *QueryService) Run(ctx context.Context, tenant, id string) error {
	if s.cfg.Querier == nil {
		return ErrQueriesUnavailable
	}
	q, err := s.cfg.Store.LakeQueryGet(ctx, tenant, id)
	if errors.Is(err, ErrQueryNotFound) {
		return nil // forgotten
	}
	if err != nil {
		return err
	}
	if q.State != QueryQueued && q.State != QueryRunning {
		return nil
	}
	// A run cut short (a crash, a replica lost) is run again from the
	// start.
	from := q.State
	q.State, q.StartedAt = QueryRunning, s.cfg.Now().UTC()
	if ok, err := s.cfg.Store.LakeQueryUpdate(ctx, q, from); err != nil || !ok {
		return err
	}
	runCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	s.mu.Lock()
	s.running[id] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
	}()
	stopWatch := s.watch(runCtx, cancel, tenant, id)
	stats, name, size, runErr := s.run(runCtx, q)
	stopWatch()
	q.Rows, q.BytesScanned, q.Elapsed, q.FinishedAt = stats.Rows, stats.BytesScanned, stats.Elapsed, s.cfg.Now().UTC()
	var refusal *QueryRefusal
	switch {
	case runErr == nil:
		q.State, q.Result, q.ResultBytes = QuerySucceeded, name, size
	case errors.As(runErr, &refusal):
		q.State, q.Error = QueryFailed, refusal.Message
		if refusal.Reason == RefusedTimeLimit {
			q.Error = fmt.Sprintf("The query ran over its time limit of %s and was stopped; aggregate more, or read fewer rows.", s.cfg.Timeout)
		}
	case ctx.Err() == nil && runCtx.Err() != nil:
		// Cancelled (the state says so already, unless it was cancelled
		// just as it finished).
		os.Remove(filepath.Join(s.cfg.Dir, name))
		return nil
	default:
		if ctx.Err() != nil {
			return runErr // the worker stops: the next attempt runs it again
		}
		s.cfg.Logger.ErrorContext(ctx, "lake query failed", "tenant_id", tenant, "query_id", id, "err", runErr)
		q.State, q.Error = QueryFailed, "The query failed on the server; quote its ID to the operator."
	}
	if q.State != QuerySucceeded && name != "" {
		os.Remove(filepath.Join(s.cfg.Dir, name))
		q.Result = ""
	}
	ok, err := s.cfg.Store.LakeQueryUpdate(ctx, q, QueryRunning)
	if err != nil {
		return err
	}
	if !ok && q.Result != "" {
		os.Remove(filepath.Join(s.cfg.Dir, q.Result)) // cancelled as it finished
	}
	if s.cfg.Meter != nil && stats.BytesScanned > 0 {
		s.cfg.Meter(ctx, tenant, stats.BytesScanned)
	}
	return nil
}

// watch cancels a run when its query is cancelled elsewhere (another
// replica's API call), looking every second.
func (s *QueryService) watch(ctx context.Context, cancel context.CancelFunc, tenant, id string) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				q, err := s.cfg.Store.LakeQueryGet(ctx, tenant, id)
				if errors.Is(err, ErrQueryNotFound) || err == nil && q.State != QueryRunning {
					cancel()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// run runs q into its result file; it returns the file's name in Dir and
// its size.
func (s *QueryService) run(ctx context.Context, q Query) (QueryStats, string, int64, error) {
	loc, err := s.cfg.Locate(ctx, q.Tenant)
	if err != nil {
		return QueryStats{}, "", 0, err
	}
	if err := os.MkdirAll(s.tenantDir(q.Tenant), 0o700); err != nil {
		return QueryStats{}, "", 0, err
	}
	name := filepath.Join(filepath.Base(q.Tenant), filepath.Base(q.ID)+".jsonl")
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return QueryStats{}, "", 0, err
	}
	w := &resultFile{w: bufio.NewWriterSize(f, 64<<10), maxRows: s.cfg.MaxResultRows, maxBytes: s.cfg.MaxResultBytes}
	stats, err := s.cfg.Querier.RunQuery(ctx, QueryInput{Tenant: q.Tenant, Location: loc, SQL: q.SQL}, w)
	if err == nil {
		err = w.w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return stats, name, w.bytes, err
}

// resultFile writes a result as JSON lines: the columns, then a row a
// line.
type resultFile struct {
	w                 *bufio.Writer
	rows, bytes       int64
	maxRows, maxBytes int64
}

func (r *resultFile) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.bytes += int64(len(b)) + 1
	if r.bytes > r.maxBytes {
		return Refuse(RefusedResultLimit, fmt.Sprintf("The result is over its limit of %d MiB; aggregate more, or add a LIMIT.", r.maxBytes>>20))
	}
	r.w.Write(b)
	return r.w.WriteByte('\n')
}

func (r *resultFile) Columns(cols []ResultColumn) error { return r.line(cols) }

func (r *resultFile) Row(vals []any) error {
	r.rows++
	if r.rows > r.maxRows {
		return Refuse(RefusedResultLimit, fmt.Sprintf("The result is over its limit of %d rows; aggregate more, or add a LIMIT.", r.maxRows))
	}
	return r.line(vals)
}

// QueryArgs is the durable job that runs one query.
type QueryArgs struct {
	TenantID string `json:"tenant_id"`
	QueryID  string `json:"query_id"`
}

// Kind implements river.JobArgs.
func (QueryArgs) Kind() string { return "lake_query" }

type queryWorker struct {
	river.WorkerDefaults[QueryArgs]
	s *QueryService
}

// Timeout lets a query run its time limit, and store its result.
func (w *queryWorker) Timeout(*river.Job[QueryArgs]) time.Duration {
	return w.s.cfg.Timeout + time.Minute
}

func (w *queryWorker) Work(ctx context.Context, job *river.Job[QueryArgs]) error {
	return w.s.Run(ctx, job.Args.TenantID, job.Args.QueryID)
}

// Register adds the query worker.
func (s *QueryService) Register(w *river.Workers) {
	river.AddWorker(w, &queryWorker{s: s})
}
