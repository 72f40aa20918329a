package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/awsfault"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// signedCalls sits in front of the emulator and records, for every Athena
// call, its operation, request and the access key ID that signed it, and
// the credentials STS issued on AssumeRole (the role's session ARN and
// key ID).
type signedCalls struct {
	next http.Handler
	mu   sync.Mutex
	// athena holds each Athena call: op, key and request body.
	athena []signedCall
	// issued maps each access key ID STS issued to its assumed-role ARN.
	issued map[string]string
}

type signedCall struct {
	op, key string
	body    map[string]any
}

var (
	issuedKey  = regexp.MustCompile(`<AccessKeyId>([^<]+)</AccessKeyId>`)
	issuedRole = regexp.MustCompile(`<Arn>([^<]+)</Arn>`)
)

func (s *signedCalls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	key, _, _ := strings.Cut(cred, "/")
	if op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonAthena."); ok {
		var in map[string]any
		_ = json.Unmarshal(body, &in)
		s.mu.Lock()
		s.athena = append(s.athena, signedCall{op, key, in})
		s.mu.Unlock()
	}
	if form, err := url.ParseQuery(string(body)); err != nil || form.Get("Action") != "AssumeRole" {
		s.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	k, role := issuedKey.FindSubmatch(rec.Body.Bytes()), issuedRole.FindSubmatch(rec.Body.Bytes())
	if k != nil && role != nil {
		s.mu.Lock()
		s.issued[string(k[1])] = string(role[1])
		s.mu.Unlock()
	}
	for h, v := range rec.Header() {
		w.Header()[h] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// startSignedAWSServer starts a server in AWS mode whose AWS calls go
// through a signedCalls recorder to upstream, with no refinery runs (whose
// queries would take the canned results), and returns its URL, an admin
// token and the recorder.
func startSignedAWSServer(t *testing.T, upstream, name string) (base, admin string, rec *signedCalls) {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rec = &signedCalls{next: httputil.NewSingleHostReverseProxy(target), issued: map[string]string{}}
	front := httptest.NewServer(rec)
	t.Cleanup(front.Close)
	keyFile := t.TempDir() + "/signing-key.pem"
	admin = adminToken(t, keyFile)
	vars := awsVars(t, front.URL, testdb.Postgres(t), keyFile)
	vars["CAIRN_LAKE_INTERVAL"] = "0"
	return startAWSServer(t, name, vars), admin, rec
}

func (s *signedCalls) calls(op string) []signedCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(s.athena), func(c signedCall) bool { return c.op != op })
}

// TestAWSQueries runs a tenant's SQL end to end in AWS mode: the query
// runs on (moto's) Athena in the tenant's workgroup and database, every
// Athena call signed with credentials STS issued on the tenant's own
// data-access role; the result is read back paged and as CSV, Athena's
// bytes scanned reported; refusals are 400 problems and reach no Athena
// call; a cancel stops the execution in Athena.
func TestAWSQueries(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	const region = "me-south-1" // no other test provisions here
	proxy, err := awsfault.New(moto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	base, admin, rec := startSignedAWSServer(t, proxy.URL, "queries")
	id := awsOnboard(t, base, admin, "dedicated", region)
	awaitTenants(t, base, admin, []string{id}, "active", 90*time.Second)
	out := outputsOf(tenantStacks(t, base, admin, id)[region])
	queries := base + "/v1/tenants/" + id + "/queries"

	// moto runs no SQL: its answer is canned, its bytes scanned rewritten.
	canned, _ := json.Marshal(map[string]any{"region": region, "results": []any{map[string]any{
		"column_info": []map[string]string{{"Name": "event", "Type": "varchar"}, {"Name": "events", "Type": "bigint"}},
		"rows": []map[string]any{
			{"Data": []map[string]string{{"VarCharValue": "event"}, {"VarCharValue": "events"}}},
			{"Data": []map[string]string{{"VarCharValue": "Signed Up"}, {"VarCharValue": "3"}}},
			{"Data": []map[string]any{{"VarCharValue": "Paid"}, {}}},
		},
	}}})
	resp, err := http.Post(moto+"/moto-api/static/athena/query-results", "application/json", bytes.NewReader(canned))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("moto query results: %v %v", resp, err)
	}
	resp.Body.Close()
	scanned := proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
		return bytes.ReplaceAll(body, []byte(`"DataScannedInBytes": 0`), []byte(`"DataScannedInBytes": 4096`))
	})
	sql := "SELECT event, count(*) AS events FROM tracks GROUP BY event ORDER BY events DESC"
	q := mustAPI(t, "POST", queries, admin, mustJSON(map[string]string{"sql": sql}), http.StatusAccepted)
	q = awaitQuery(t, base, admin, id, jstr(q, "id"), "succeeded", "failed")
	scanned.Remove()
	stats, _ := q["statistics"].(map[string]any)
	res, _ := q["result"].(map[string]any)
	if q["state"] != "succeeded" || stats["rows"] != float64(2) || stats["bytes_scanned"] != float64(4096) ||
		fmt.Sprint(res["columns"]) != "[map[name:event type:VARCHAR] map[name:events type:BIGINT]]" || fmt.Sprint(res["rows"]) != "[[Signed Up 3] [Paid <nil>]]" {
		t.Fatalf("query: %v", q)
	}
	req, _ := http.NewRequest("GET", queries+"/"+jstr(q, "id")+"/results.csv", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || fmt.Sprint(records) != "[[event events] [Signed Up 3] [Paid ]]" {
		t.Fatalf("csv: %v %v", records, err)
	}

	starts := rec.calls("StartQueryExecution")
	if len(starts) != 1 {
		t.Fatalf("%d executions started, want 1", len(starts))
	}
	s := starts[0].body
	qec, _ := s["QueryExecutionContext"].(map[string]any)
	if s["QueryString"] != sql || s["WorkGroup"] != out["athena_workgroup"] || qec["Database"] != out["glue_database"] || out["athena_workgroup"] == "" {
		t.Fatalf("started %v, want the tenant's workgroup %s and database %s", s, out["athena_workgroup"], out["glue_database"])
	}
	// The tenant's role, as arn:aws:iam::ACCOUNT:role/PATH/NAME; the
	// session's ARN is arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION.
	roleName := out["data_access_role_arn"][strings.LastIndex(out["data_access_role_arn"], "/")+1:]
	rec.mu.Lock()
	for _, c := range rec.athena {
		if session := rec.issued[c.key]; !strings.Contains(session, ":assumed-role/"+roleName+"/cairn-"+id) {
			t.Errorf("%s signed with %q (session %q), want credentials of the tenant's role %s", c.op, c.key, session, out["data_access_role_arn"])
		}
	}
	rec.mu.Unlock()

	// Refusals reach no Athena call.
	for sql, kind := range map[string]string{
		"SELECT * FROM cairn_ten_someoneelse.tracks":                          "query-other-tenant",
		"UNLOAD (SELECT * FROM tracks) TO 's3://x/y' WITH (format='PARQUET')": "query-write",
	} {
		status, p, err := apiDo("POST", queries, admin, mustJSON(map[string]string{"sql": sql}))
		if err != nil || status != http.StatusBadRequest || p["type"] != "urn:cairn:problem:"+kind {
			t.Errorf("%s: %d %v %v, want 400 %s", sql, status, p, err, kind)
		}
	}
	if n := len(rec.calls("StartQueryExecution")); n != 1 {
		t.Errorf("%d executions started after the refusals, want 1", n)
	}

	// A query cancelled while Athena runs it is stopped there.
	running := proxy.Rewrite("athena:GetQueryExecution", func(body []byte) []byte {
		return bytes.ReplaceAll(body, []byte(`"SUCCEEDED"`), []byte(`"RUNNING"`))
	})
	defer running.Remove()
	polled := len(rec.calls("GetQueryExecution"))
	c := mustAPI(t, "POST", queries, admin, mustJSON(map[string]string{"sql": "SELECT count(*) FROM tracks"}), http.StatusAccepted)
	// Once Athena is polled for it, the execution has started.
	for deadline := time.Now().Add(time.Minute); len(rec.calls("GetQueryExecution")) == polled; {
		if time.Now().After(deadline) {
			t.Fatal("the query never ran in Athena")
		}
		time.Sleep(20 * time.Millisecond) // polling what the proxy saw, not waiting blind
	}
	if c = mustAPI(t, "POST", queries+"/"+jstr(c, "id")+"/cancel", admin, "", http.StatusOK); jstr(c, "state") != "cancelled" {
		t.Fatalf("cancel: %v", c)
	}
	for deadline := time.Now().Add(time.Minute); len(rec.calls("StopQueryExecution")) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the cancelled query was not stopped in Athena")
		}
		time.Sleep(20 * time.Millisecond) // polling what the proxy saw, not waiting blind
	}
	if stop := rec.calls("StopQueryExecution")[0]; !strings.Contains(rec.issued[stop.key], ":assumed-role/"+roleName+"/") {
		t.Errorf("StopQueryExecution signed with %q", stop.key)
	}
}
