package httpapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/page"
)

// LakeQueries runs tenants' SQL queries over their lake
// (lake.QueryService).
type LakeQueries interface {
	Submit(ctx context.Context, tenant, sql string) (lake.Query, error)
	Get(ctx context.Context, tenant, id string) (lake.Query, error)
	List(ctx context.Context, tenant string, beforeSeq int64, limit int) ([]lake.Query, error)
	Cancel(ctx context.Context, tenant, id string) (lake.Query, error)
	Results(ctx context.Context, tenant, id string, from int64, limit int) (lake.Query, lake.ResultPage, error)
	OpenResult(ctx context.Context, tenant, id string) (lake.Query, *lake.Result, error)
}

var _ LakeQueries = (*lake.QueryService)(nil)

// defaultResultRows is a result page's rows when the request names none.
const defaultResultRows = 100

func queryLocation(tenant, id string) string { return "/v1/tenants/" + tenant + "/queries/" + id }

// queries returns the query service, or the problem of a deployment with
// none.
func (s *Server) lakeQueries(ctx context.Context, tenant string) (LakeQueries, error) {
	if _, err := s.tenants.Get(ctx, tenant); err != nil {
		return nil, err
	}
	if s.queries == nil {
		return nil, lake.ErrQueriesUnavailable
	}
	return s.queries, nil
}

func (s *Server) CreateLakeQuery(ctx context.Context, req CreateLakeQueryRequestObject) (CreateLakeQueryResponseObject, error) {
	qs, err := s.lakeQueries(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	q, err := qs.Submit(ctx, req.TenantId, req.Body.Sql)
	if err != nil {
		return nil, err
	}
	return CreateLakeQuery202JSONResponse{Body: toAPIQuery(q), Headers: CreateLakeQuery202ResponseHeaders{Location: queryLocation(req.TenantId, q.ID)}}, nil
}

func (s *Server) ListLakeQueries(ctx context.Context, req ListLakeQueriesRequestObject) (ListLakeQueriesResponseObject, error) {
	limit := page.Limit(req.Params.Limit)
	before, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	qs, err := s.lakeQueries(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	list, err := qs.List(ctx, req.TenantId, before, limit+1)
	if err != nil {
		return nil, err
	}
	list, next := page.Trim(list, limit, func(q lake.Query) int64 { return q.Seq })
	items := make([]LakeQuery, len(list))
	for i, q := range list {
		items[i] = toAPIQuery(q)
	}
	return ListLakeQueries200JSONResponse{Items: items, NextCursor: next}, nil
}

func (s *Server) GetLakeQuery(ctx context.Context, req GetLakeQueryRequestObject) (GetLakeQueryResponseObject, error) {
	qs, err := s.lakeQueries(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	q, err := qs.Get(ctx, req.TenantId, req.QueryId)
	if err != nil {
		return nil, err
	}
	if q.State != lake.QuerySucceeded {
		if req.Params.PageToken != nil {
			return nil, badRequest("page_token", "the query has no result to page through")
		}
		return GetLakeQuery200JSONResponse(toAPIQuery(q)), nil
	}
	var from int64
	if req.Params.PageToken != nil {
		if from, err = page.Decode(*req.Params.PageToken); err != nil || from == 0 {
			return nil, badRequest("page_token", "not a page token of this query's result")
		}
	}
	limit := defaultResultRows
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	q, pg, err := qs.Results(ctx, req.TenantId, req.QueryId, from, limit)
	if errors.Is(err, lake.ErrBadPageToken) {
		return nil, badRequest("page_token", "not a page token of this query's result")
	}
	if err != nil {
		return nil, err
	}
	out := toAPIQuery(q)
	res := LakeQueryResult{Columns: make([]LakeQueryColumn, len(pg.Columns)), Rows: make([][]any, len(pg.Rows))}
	for i, c := range pg.Columns {
		res.Columns[i] = LakeQueryColumn{Name: c.Name, Type: c.Type}
	}
	for i, r := range pg.Rows {
		res.Rows[i] = r
	}
	if pg.Next != 0 {
		next := page.Encode(pg.Next)
		res.NextPageToken = &next
	}
	out.Result = &res
	return GetLakeQuery200JSONResponse(out), nil
}

func (s *Server) CancelLakeQuery(ctx context.Context, req CancelLakeQueryRequestObject) (CancelLakeQueryResponseObject, error) {
	qs, err := s.lakeQueries(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	q, err := qs.Cancel(ctx, req.TenantId, req.QueryId)
	if errors.Is(err, lake.ErrQueryNotDone) {
		return nil, newProblem(http.StatusConflict, "query-done", "Query done",
			fmt.Sprintf("The query has %s: only a queued or running query can be cancelled.", q.State))
	}
	if err != nil {
		return nil, err
	}
	return CancelLakeQuery200JSONResponse(toAPIQuery(q)), nil
}

func (s *Server) DownloadLakeQueryResults(ctx context.Context, req DownloadLakeQueryResultsRequestObject) (DownloadLakeQueryResultsResponseObject, error) {
	qs, err := s.lakeQueries(ctx, req.TenantId)
	if err != nil {
		return nil, err
	}
	_, res, err := qs.OpenResult(ctx, req.TenantId, req.QueryId)
	if err != nil {
		return nil, err
	}
	return queryCSV{s: s, ctx: ctx, res: res}, nil
}

// queryCSV streams a result as CSV.
type queryCSV struct {
	s   *Server
	ctx context.Context
	res *lake.Result
}

func (x queryCSV) VisitDownloadLakeQueryResultsResponse(w http.ResponseWriter) error {
	defer x.res.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	header := make([]string, len(x.res.Columns))
	for i, c := range x.res.Columns {
		header[i] = c.Name
	}
	if err := cw.Write(header); err != nil {
		return nil // the client went away
	}
	record := make([]string, len(header))
	for {
		row, err := x.res.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The status is sent: the answer ends early.
			x.s.log.ErrorContext(x.ctx, "query result", "request_id", requestID(x.ctx), "err", err)
			break
		}
		for i, v := range row {
			record[i] = csvField(v)
		}
		if err := cw.Write(record); err != nil {
			return nil
		}
	}
	cw.Flush()
	return nil
}

// csvField is a value as CSV text: null is empty, text as it is, lists and
// maps as JSON.
func csvField(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number, float64, bool:
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func toAPIQuery(q lake.Query) LakeQuery {
	out := LakeQuery{Id: q.ID, TenantId: q.Tenant, Sql: q.SQL, State: LakeQueryState(q.State), CreatedAt: q.CreatedAt.UTC(),
		Statistics: LakeQueryStatistics{Rows: q.Rows, BytesScanned: q.BytesScanned, ElapsedMs: q.Elapsed.Milliseconds(), ResultBytes: q.ResultBytes}}
	if q.Error != "" {
		out.Error = &q.Error
	}
	if !q.StartedAt.IsZero() {
		at := q.StartedAt.UTC()
		out.StartedAt = &at
	}
	if !q.FinishedAt.IsZero() {
		at := q.FinishedAt.UTC()
		out.FinishedAt = &at
	}
	return out
}

// queryProblem maps the lake queries' errors.
func queryProblem(err error) *problem {
	var refusal *lake.QueryRefusal
	switch {
	case errors.As(err, &refusal):
		p := newProblem(http.StatusBadRequest, "query-"+refusal.Reason, "Query refused", refusal.Message)
		p.fields = []FieldError{{Field: "/sql", Message: refusal.Message}}
		return p
	case errors.Is(err, lake.ErrQueryNotFound):
		return newProblem(http.StatusNotFound, "not-found", "Not found", "The tenant has no query with this ID.")
	case errors.Is(err, lake.ErrQueryNotDone):
		return newProblem(http.StatusConflict, "query-not-done", "Query not done", "The query has no result: "+strings.TrimPrefix(err.Error(), lake.ErrQueryNotDone.Error()+": ")+".")
	case errors.Is(err, lake.ErrQueriesUnavailable):
		return newProblem(http.StatusNotImplemented, "queries-unavailable", "Queries unavailable",
			"This deployment has no query engine.")
	}
	return nil
}
