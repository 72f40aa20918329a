package lake_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/cairn-cdp/cairn/internal/lake"
)

// memQueries is a QueryStore in memory.
type memQueries struct {
	mu   sync.Mutex
	seq  int64
	rows map[string]lake.Query
	jobs []lake.QueryArgs
}

func (m *memQueries) LakeQueryInsert(_ context.Context, q lake.Query, job lake.QueryArgs) (lake.Query, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	q.Seq = m.seq
	m.rows[q.ID] = q
	m.jobs = append(m.jobs, job)
	return q, nil
}

func (m *memQueries) LakeQueryGet(_ context.Context, tenant, id string) (lake.Query, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, ok := m.rows[id]
	if !ok || q.Tenant != tenant {
		return lake.Query{}, lake.ErrQueryNotFound
	}
	return q, nil
}

func (m *memQueries) LakeQueryList(context.Context, string, int64, int) ([]lake.Query, error) {
	return nil, errors.New("not used")
}

func (m *memQueries) LakeQueryUpdate(_ context.Context, q lake.Query, from ...lake.QueryState) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.rows[q.ID]
	if !ok || !slices.Contains(from, old.State) {
		return false, nil
	}
	m.rows[q.ID] = q
	return true, nil
}

func (m *memQueries) LakeQueryDeleteTenant(_ context.Context, tenant string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id, q := range m.rows {
		if q.Tenant == tenant {
			out = append(out, q.Result)
			delete(m.rows, id)
		}
	}
	return out, nil
}

// rowsQuerier answers every query with n rows of (i, "row i").
type rowsQuerier struct{ n int }

func (r rowsQuerier) CheckQuery(_ context.Context, _ lake.Location, sql string) error {
	if sql == "DELETE FROM tracks" {
		return lake.Refuse(lake.RefusedWrite, "a write")
	}
	return nil
}

func (r rowsQuerier) RunQuery(_ context.Context, _ lake.QueryInput, w lake.ResultWriter) (lake.QueryStats, error) {
	if err := w.Columns([]lake.ResultColumn{{Name: "i", Type: "BIGINT"}, {Name: "s", Type: "VARCHAR"}}); err != nil {
		return lake.QueryStats{}, err
	}
	for i := range r.n {
		if err := w.Row([]any{i, fmt.Sprintf("row %d", i)}); err != nil {
			return lake.QueryStats{}, err
		}
	}
	return lake.QueryStats{Rows: int64(r.n), BytesScanned: 42}, nil
}

// TestQueryService: a query is checked, stored with its job, run to its
// result file, paged through, bounded by the result limit, and forgotten
// with its tenant, files included.
func TestQueryService(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	store := &memQueries{rows: map[string]lake.Query{}}
	var metered int64
	newSvc := func(n int, maxRows int64) *lake.QueryService {
		svc, err := lake.NewQueries(lake.QueriesConfig{Store: store, Querier: rowsQuerier{n: n}, Dir: dir, MaxResultRows: maxRows,
			Locate: func(context.Context, string) (lake.Location, error) { return lake.Location{}, nil },
			Meter:  func(_ context.Context, _ string, n int64) { metered += n }})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := newSvc(5, 0)
	if _, err := svc.Submit(ctx, "ten_a", "DELETE FROM tracks"); !errors.Is(err, lake.ErrQueryRefused) || len(store.jobs) != 0 {
		t.Fatalf("a refused statement: %v, %d jobs", err, len(store.jobs))
	}
	q, err := svc.Submit(ctx, "ten_a", "SELECT *")
	if err != nil || q.State != lake.QueryQueued || len(store.jobs) != 1 || store.jobs[0].QueryID != q.ID {
		t.Fatalf("submit: %+v %v %v", q, err, store.jobs)
	}
	if _, _, err := svc.Results(ctx, "ten_a", q.ID, 0, 10); !errors.Is(err, lake.ErrQueryNotDone) {
		t.Fatalf("results of a queued query: %v", err)
	}
	if err := svc.Run(ctx, "ten_a", q.ID); err != nil {
		t.Fatal(err)
	}
	if q, _ = svc.Get(ctx, "ten_a", q.ID); q.State != lake.QuerySucceeded || q.Rows != 5 || q.BytesScanned != 42 || q.ResultBytes == 0 || metered != 42 {
		t.Fatalf("run: %+v, metered %d", q, metered)
	}
	if _, err := svc.Get(ctx, "ten_b", q.ID); !errors.Is(err, lake.ErrQueryNotFound) {
		t.Errorf("another tenant's: %v", err)
	}
	// Pages of two.
	var got []any
	var from int64
	for {
		_, pg, err := svc.Results(ctx, "ten_a", q.ID, from, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Columns) != 2 || pg.Columns[1].Name != "s" {
			t.Fatalf("columns %v", pg.Columns)
		}
		for _, r := range pg.Rows {
			got = append(got, r[1])
		}
		if pg.Next == 0 {
			break
		}
		from = pg.Next
	}
	if fmt.Sprint(got) != "[row 0 row 1 row 2 row 3 row 4]" {
		t.Errorf("paged %v", got)
	}
	if _, _, err := svc.Results(ctx, "ten_a", q.ID, from+1, 2); !errors.Is(err, lake.ErrBadPageToken) {
		t.Errorf("a position inside a row: %v", err)
	}
	_, res, err := svc.OpenResult(ctx, "ten_a", q.ID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		if _, err := res.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	res.Close()
	if n != 5 {
		t.Errorf("%d rows read whole", n)
	}
	// A second run of a done query changes nothing; a cancel of it is
	// refused.
	if err := svc.Run(ctx, "ten_a", q.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Cancel(ctx, "ten_a", q.ID); !errors.Is(err, lake.ErrQueryNotDone) {
		t.Errorf("cancel a succeeded query: %v", err)
	}
	// Over the result limit: failed, saying so, no file left.
	big := newSvc(11, 10)
	q2, _ := big.Submit(ctx, "ten_a", "SELECT big")
	if err := big.Run(ctx, "ten_a", q2.ID); err != nil {
		t.Fatal(err)
	}
	if q2, _ = big.Get(ctx, "ten_a", q2.ID); q2.State != lake.QueryFailed || q2.Error == "" || q2.Result != "" {
		t.Errorf("over the result limit: %+v", q2)
	}
	if _, err := os.Stat(filepath.Join(dir, "ten_a", q2.ID+".jsonl")); err == nil {
		t.Error("the failed query's file is left")
	}
	// Cancelled before its job ran: the job leaves it.
	q3, _ := svc.Submit(ctx, "ten_a", "SELECT 3")
	if c, err := svc.Cancel(ctx, "ten_a", q3.ID); err != nil || c.State != lake.QueryCancelled {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if err := svc.Run(ctx, "ten_a", q3.ID); err != nil {
		t.Fatal(err)
	}
	if q3, _ = svc.Get(ctx, "ten_a", q3.ID); q3.State != lake.QueryCancelled {
		t.Errorf("ran a cancelled query: %+v", q3)
	}

	if err := svc.ForgetTenant(ctx, "ten_a"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, "ten_a", q.ID); !errors.Is(err, lake.ErrQueryNotFound) {
		t.Errorf("forgotten: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ten_a")); err == nil {
		t.Error("the tenant's results are left")
	}
	if err := svc.ForgetTenant(ctx, "ten_a"); err != nil {
		t.Errorf("again: %v", err)
	}
}
