package athena_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/grants/lakeformation"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/athena"
)

// assumedCredentials are a tenant's credentials as moto's STS issues them
// on AssumeRole; it records the tenants asked for.
type assumedCredentials struct {
	sts     *lakeformation.STS
	mu      sync.Mutex
	tenants []string
	issued  []string // access key IDs
}

func (c *assumedCredentials) TenantCredentials(ctx context.Context, tenant string) (aws.Credentials, error) {
	got, err := c.sts.AssumeRole(ctx, grants.AssumeRoleInput{Region: region, RoleARN: "arn:aws:iam::123456789012:role/cairn/" + tenant,
		SessionName: "cairn-" + tenant, ExternalID: tenant})
	if err != nil {
		return aws.Credentials{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tenants = append(c.tenants, tenant)
	c.issued = append(c.issued, got.AccessKeyID)
	return aws.Credentials{AccessKeyID: got.AccessKeyID, SecretAccessKey: got.SecretAccessKey, SessionToken: got.SessionToken}, nil
}

// athenaCall is an Athena call as the querier signed it.
type athenaCall struct {
	op, key string
	body    map[string]any
}

// athenaCalls records every Athena call and its access key ID, and pages
// GetQueryResults as Athena does (moto answers every row at once):
// MaxResults rows from the NextToken's, a NextToken while rows remain.
type athenaCalls struct {
	mu    sync.Mutex
	calls []athenaCall
}

func (a *athenaCalls) around(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	op, ok := strings.CutPrefix(req.Header.Get("X-Amz-Target"), "AmazonAthena.")
	if !ok {
		return next(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	_, cred, _ := strings.Cut(req.Header.Get("Authorization"), "Credential=")
	key, _, _ := strings.Cut(cred, "/")
	a.mu.Lock()
	a.calls = append(a.calls, athenaCall{op, key, in})
	a.mu.Unlock()
	resp, err := next(req)
	if err != nil || op != "GetQueryResults" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	var out struct {
		ResultSet struct {
			Rows              []any
			ResultSetMetadata any
		}
		NextToken string `json:",omitempty"`
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	from, _ := strconv.Atoi(str(in["NextToken"]))
	n := len(out.ResultSet.Rows)
	if m, ok := in["MaxResults"].(float64); ok {
		n = int(m)
	}
	rows := out.ResultSet.Rows[min(from, len(out.ResultSet.Rows)):min(from+n, len(out.ResultSet.Rows))]
	if from+n < len(out.ResultSet.Rows) {
		out.NextToken = strconv.Itoa(from + n)
	}
	out.ResultSet.Rows = rows
	raw, _ = json.Marshal(out)
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	resp.ContentLength = int64(len(raw))
	resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
	return resp, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func (a *athenaCalls) of(op string) []athenaCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []athenaCall
	for _, c := range a.calls {
		if c.op == op {
			out = append(out, c)
		}
	}
	return out
}

// collected is a result as a lake.ResultWriter receives it.
type collected struct {
	cols []lake.ResultColumn
	rows [][]any
}

func (c *collected) Columns(cols []lake.ResultColumn) error { c.cols = cols; return nil }
func (c *collected) Row(vals []any) error                   { c.rows = append(c.rows, vals); return nil }

// queueResult queues moto's answer to the next query execution's
// GetQueryResults: its columns, a header row, then rows (nil a NULL).
func (f *fixture) queueResult(t *testing.T, cols [][2]string, rows [][]*string) {
	t.Helper()
	type datum struct {
		VarCharValue *string `json:",omitempty"`
	}
	var info []map[string]string
	header := []datum{}
	for _, c := range cols {
		info = append(info, map[string]string{"Name": c[0], "Type": c[1]})
		header = append(header, datum{aws.String(c[0])})
	}
	all := []map[string][]datum{{"Data": header}}
	for _, r := range rows {
		var d []datum
		for _, v := range r {
			d = append(d, datum{v})
		}
		all = append(all, map[string][]datum{"Data": d})
	}
	f.postResults(t, []any{map[string]any{"rows": all, "column_info": info}})
}

// TestQuerierOnEmulator runs tenants' queries on moto's Athena: in the
// tenant's workgroup and database, every call signed with the credentials
// STS issued for the tenant, the result read a page at a time and typed,
// Athena's bytes scanned reported; refusals reach no Athena call; a
// query Athena fails or cuts off is a refusal with its reason; a query
// cancelled (even as it starts) or over its time limit is stopped in
// Athena.
func TestQuerierOnEmulator(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	loc := f.loc
	cfg := awstest.Config(region)
	sts, err := lakeformation.NewSTS(ctx, lakeformation.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: f.endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	creds := &assumedCredentials{sts: sts}
	calls := &athenaCalls{}
	f.script.around = calls.around
	q, err := athena.NewQuerier(f.engine, athena.QuerierConfig{Credentials: creds, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	in := lake.QueryInput{Tenant: loc.Tenant, Location: loc, SQL: "SELECT event, n, ok, at, score FROM " + loc.Database + ".tracks"}

	t.Run("round trip", func(t *testing.T) {
		f.queueResult(t, [][2]string{{"event", "varchar"}, {"n", "bigint"}, {"ok", "boolean"}, {"at", "timestamp"}, {"score", "decimal"}}, [][]*string{
			{aws.String("a"), aws.String("1"), aws.String("true"), aws.String("2026-11-26 10:00:00.123"), aws.String("1.50")},
			{aws.String(""), aws.String("2"), aws.String("false"), nil, nil},
			{aws.String("c"), nil, nil, aws.String("2026-11-26 11:00:00.000"), aws.String("2.00")},
			{aws.String("d"), aws.String("4"), aws.String("true"), nil, nil},
			{aws.String("e"), aws.String("5"), aws.String("true"), nil, nil},
		})
		rule := f.proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
			return bytes.ReplaceAll(body, []byte(`"DataScannedInBytes": 0`), []byte(`"DataScannedInBytes": 12345`))
		})
		defer rule.Remove()
		var w collected
		st, err := q.RunQuery(ctx, in, &w)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows != 5 || st.BytesScanned != 12345 || st.Elapsed <= 0 {
			t.Errorf("stats %+v, want 5 rows and 12345 bytes scanned", st)
		}
		wantCols := []lake.ResultColumn{{Name: "event", Type: "VARCHAR"}, {Name: "n", Type: "BIGINT"}, {Name: "ok", Type: "BOOLEAN"}, {Name: "at", Type: "TIMESTAMP"}, {Name: "score", Type: "DECIMAL"}}
		if !slices.Equal(w.cols, wantCols) {
			t.Errorf("columns %v, want %v", w.cols, wantCols)
		}
		want := [][]any{
			{"a", int64(1), true, "2026-11-26T10:00:00.123Z", "1.50"},
			{"", int64(2), false, nil, nil},
			{"c", nil, nil, "2026-11-26T11:00:00Z", "2.00"},
			{"d", int64(4), true, nil, nil},
			{"e", int64(5), true, nil, nil},
		}
		if !slices.EqualFunc(w.rows, want, slices.Equal) {
			t.Errorf("rows %v, want %v", w.rows, want)
		}
		starts := calls.of("StartQueryExecution")
		if len(starts) != 1 {
			t.Fatalf("%d executions started", len(starts))
		}
		s := starts[0].body
		qec, _ := s["QueryExecutionContext"].(map[string]any)
		if s["QueryString"] != in.SQL || s["WorkGroup"] != loc.WorkGroup || qec["Database"] != loc.Database {
			t.Errorf("started %v, want %q in workgroup %s, database %s", s, in.SQL, loc.WorkGroup, loc.Database)
		}
		// 6 rows (the header, 5 rows), 2 a page.
		if pages := calls.of("GetQueryResults"); len(pages) != 3 || pages[1].body["NextToken"] != "2" || pages[2].body["NextToken"] != "4" {
			t.Errorf("GetQueryResults calls %v, want 3 pages of 2", pages)
		}
		if len(creds.issued) != 1 || creds.tenants[0] != loc.Tenant || !strings.HasPrefix(creds.issued[0], "ASIA") {
			t.Fatalf("credentials issued %v for %v, want one set for %s", creds.issued, creds.tenants, loc.Tenant)
		}
		calls.mu.Lock()
		for _, c := range calls.calls {
			if c.key != creds.issued[0] {
				t.Errorf("%s signed with %q, want the tenant's %q", c.op, c.key, creds.issued[0])
			}
		}
		calls.calls = nil
		calls.mu.Unlock()
	})

	t.Run("refused before Athena", func(t *testing.T) {
		for sql, reason := range map[string]string{
			"SELECT * FROM cairn_other.tracks": lake.RefusedOtherTenant,
			"DROP TABLE tracks":                lake.RefusedWrite,
			"SELECT 1; SELECT 2":               lake.RefusedNotSelect,
		} {
			err := q.CheckQuery(ctx, loc, sql)
			_, runErr := q.RunQuery(ctx, lake.QueryInput{Tenant: loc.Tenant, Location: loc, SQL: sql}, &collected{})
			var r1, r2 *lake.QueryRefusal
			if !errors.As(err, &r1) || !errors.As(runErr, &r2) || r1.Reason != reason || r2.Reason != reason {
				t.Errorf("%q: check %v, run %v, want %s refusals", sql, err, runErr, reason)
			}
		}
		if n := len(calls.of("StartQueryExecution")); n != 0 {
			t.Errorf("%d executions started for refused statements", n)
		}
	})

	t.Run("failed in Athena", func(t *testing.T) {
		for _, c := range []struct{ status, reason, says string }{
			{`"FAILED","AthenaError":{"ErrorCategory":2,"ErrorType":1301,"ErrorMessage":"TABLE_NOT_FOUND: line 1:15: Table 'x' does not exist"}`,
				lake.RefusedInvalid, "TABLE_NOT_FOUND"},
			{`"CANCELLED","StateChangeReason":"Query cancelled! : Bytes scanned limit was exceeded"`, lake.RefusedScanLimit, "Bytes scanned limit"},
		} {
			rule := f.proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
				body = bytes.ReplaceAll(body, []byte(`"DataScannedInBytes": 0`), []byte(`"DataScannedInBytes": 777`))
				return bytes.ReplaceAll(body, []byte(`"SUCCEEDED"`), []byte(c.status))
			})
			st, err := q.RunQuery(ctx, in, &collected{})
			rule.Remove()
			var r *lake.QueryRefusal
			if !errors.As(err, &r) || r.Reason != c.reason || !strings.Contains(r.Message, c.says) {
				t.Errorf("%s: got %v, want a %s refusal saying %q", c.status, err, c.reason, c.says)
			}
			if st.BytesScanned != 777 {
				t.Errorf("%s: %d bytes scanned, want 777 (Athena bills them)", c.status, st.BytesScanned)
			}
		}
		// A system error is no refusal: the service says the query failed
		// on the server.
		rule := f.proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
			return bytes.ReplaceAll(body, []byte(`"SUCCEEDED"`), []byte(`"FAILED","AthenaError":{"ErrorCategory":1,"ErrorMessage":"INTERNAL_ERROR"}`))
		})
		_, err := q.RunQuery(ctx, in, &collected{})
		rule.Remove()
		if !errors.Is(err, athena.ErrQueryFailed) || errors.Is(err, lake.ErrQueryRefused) {
			t.Errorf("system error: %v", err)
		}
	})

	t.Run("stopped", func(t *testing.T) {
		calls.mu.Lock()
		calls.calls = nil
		calls.mu.Unlock()
		// Cancelled while Athena runs it, or over its time limit: the
		// execution is stopped.
		cctx, cancel := context.WithCancel(ctx)
		rule := f.proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
			cancel()
			return bytes.ReplaceAll(body, []byte(`"SUCCEEDED"`), []byte(`"RUNNING"`))
		})
		_, err := q.RunQuery(cctx, in, &collected{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled: %v", err)
		}
		dctx, stop := context.WithCancel(ctx)
		deadline := &deadlineCtx{Context: dctx}
		rule.Remove()
		rule = f.proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
			deadline.expire(stop)
			return bytes.ReplaceAll(body, []byte(`"SUCCEEDED"`), []byte(`"RUNNING"`))
		})
		_, err = q.RunQuery(deadline, in, &collected{})
		rule.Remove()
		var r *lake.QueryRefusal
		if !errors.As(err, &r) || r.Reason != lake.RefusedTimeLimit {
			t.Errorf("over its time limit: %v", err)
		}
		// Cancelled while its start is in flight: the execution Athena
		// started is stopped all the same.
		sctx, cancelStart := context.WithCancel(ctx)
		rule = f.proxy.Rewrite("athena:StartQueryExecution", func(body []byte) []byte {
			cancelStart()
			return body
		})
		_, err = q.RunQuery(sctx, in, &collected{})
		rule.Remove()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled as it started: %v", err)
		}
		starts, stops := calls.of("StartQueryExecution"), calls.of("StopQueryExecution")
		if len(starts) != 3 || len(stops) != 3 {
			t.Fatalf("%d started, %d stopped, want 3 and 3", len(starts), len(stops))
		}
		for i := range stops {
			if stops[i].key != starts[i].key || !slices.Contains(creds.issued, stops[i].key) {
				t.Errorf("stop %d signed with %q, want the tenant's", i, stops[i].key)
			}
		}
	})
}

// deadlineCtx is a context whose deadline passes when expire is called:
// the time limit without waiting for it.
type deadlineCtx struct {
	context.Context
	mu      sync.Mutex
	expired bool
}

func (d *deadlineCtx) expire(cancel context.CancelFunc) {
	d.mu.Lock()
	d.expired = true
	d.mu.Unlock()
	cancel()
}

func (d *deadlineCtx) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.expired {
		return context.DeadlineExceeded
	}
	return d.Context.Err()
}

// TestQuerierPooledOnEmulator: a pooled tenant's query runs in the pool's
// workgroup with the pool's database as its context (its clean and
// curated tables are the pool's shared ones, which Lake Formation lets its
// credentials read only through its data cells filters), every call signed
// with the credentials issued for it; a name in another tenant's database
// or another pool's is refused before any Athena call.
func TestQuerierPooledOnEmulator(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	loc := f.loc
	other := f.sibling(t)
	cfg := awstest.Config(region)
	sts, err := lakeformation.NewSTS(ctx, lakeformation.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: f.endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	creds := &assumedCredentials{sts: sts}
	calls := &athenaCalls{}
	f.script.around = calls.around
	q, err := athena.NewQuerier(f.engine, athena.QuerierConfig{Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"SELECT * FROM " + other.Database + ".raw_events",
		"SELECT * FROM tracks t JOIN " + other.Database + ".tracks o ON t.message_id = o.message_id",
		"SELECT * FROM cairn_pool_elsewhere_shared.tracks",
		"SELECT * FROM cairn_" + loc.Tenant + ".tracks",
	} {
		_, err := q.RunQuery(ctx, lake.QueryInput{Tenant: loc.Tenant, Location: loc, SQL: sql}, &collected{})
		var r *lake.QueryRefusal
		if !errors.As(err, &r) || r.Reason != lake.RefusedOtherTenant {
			t.Errorf("%q: got %v, want a %s refusal", sql, err, lake.RefusedOtherTenant)
		}
	}
	if n := len(calls.of("StartQueryExecution")); n != 0 || len(creds.issued) != 0 {
		t.Fatalf("%d executions started, %d credentials issued for refused statements", n, len(creds.issued))
	}

	f.queueResult(t, [][2]string{{"event", "varchar"}}, [][]*string{{aws.String("a")}})
	in := lake.QueryInput{Tenant: loc.Tenant, Location: loc,
		SQL: "SELECT event FROM tracks UNION ALL SELECT event FROM " + loc.SharedDatabase + ".pages UNION ALL SELECT event FROM " + loc.Database + ".raw_events"}
	var w collected
	if _, err := q.RunQuery(ctx, in, &w); err != nil {
		t.Fatal(err)
	}
	starts := calls.of("StartQueryExecution")
	if len(starts) != 1 {
		t.Fatalf("%d executions started", len(starts))
	}
	qec, _ := starts[0].body["QueryExecutionContext"].(map[string]any)
	if starts[0].body["WorkGroup"] != loc.WorkGroup || qec["Database"] != loc.SharedDatabase {
		t.Errorf("started %v, want workgroup %s, database %s", starts[0].body, loc.WorkGroup, loc.SharedDatabase)
	}
	if len(creds.issued) != 1 || creds.tenants[0] != loc.Tenant {
		t.Fatalf("credentials issued %v for %v, want one set for %s", creds.issued, creds.tenants, loc.Tenant)
	}
	calls.mu.Lock()
	defer calls.mu.Unlock()
	for _, c := range calls.calls {
		if c.key != creds.issued[0] {
			t.Errorf("%s signed with %q, want the tenant's %q", c.op, c.key, creds.issued[0])
		}
	}
}
