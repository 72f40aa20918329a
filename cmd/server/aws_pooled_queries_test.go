package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// TestAWSPooledQueries runs a pooled tenant's SQL end to end in AWS mode:
// the query runs in the pool's workgroup with the pool's database of
// shared lake tables as its context, every Athena call signed with
// credentials STS issued for the tenant's session on its own role (not the
// pool's data-access role); a name in a neighbour's database or a
// dedicated tenant's is a 400 that reaches no Athena call. (Which rows of
// the shared tables that role reads is Lake Formation's to enforce.)
func TestAWSPooledQueries(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	const region = "ap-south-2" // no other test provisions here
	base, admin, rec := startSignedAWSServer(t, moto, "pooledqueries")
	id := awsOnboard(t, base, admin, "pooled", region)
	neighbour := awsOnboard(t, base, admin, "pooled", region)
	awaitTenants(t, base, admin, []string{id, neighbour}, "active", 180*time.Second)
	out := outputsOf(tenantStacks(t, base, admin, id)[region])
	nout := outputsOf(tenantStacks(t, base, admin, neighbour)[region])
	queries := base + "/v1/tenants/" + id + "/queries"

	for _, sql := range []string{
		"SELECT * FROM " + nout["glue_database"] + ".raw_events",
		"SELECT * FROM tracks t JOIN cairn_" + neighbour + ".tracks o ON t.message_id = o.message_id",
		"SELECT * FROM cairn_" + id + ".tracks",
	} {
		status, p, err := apiDo("POST", queries, admin, mustJSON(map[string]string{"sql": sql}))
		if err != nil || status != http.StatusBadRequest || p["type"] != "urn:cairn:problem:query-other-tenant" {
			t.Errorf("%s: %d %v %v, want 400 query-other-tenant", sql, status, p, err)
		}
	}
	if n := len(rec.calls("StartQueryExecution")); n != 0 {
		t.Fatalf("%d executions started for refused statements", n)
	}

	canned, _ := json.Marshal(map[string]any{"region": region, "results": []any{map[string]any{
		"column_info": []map[string]string{{"Name": "events", "Type": "bigint"}},
		"rows": []map[string]any{
			{"Data": []map[string]string{{"VarCharValue": "events"}}},
			{"Data": []map[string]string{{"VarCharValue": "3"}}},
		},
	}}})
	resp, err := http.Post(moto+"/moto-api/static/athena/query-results", "application/json", bytes.NewReader(canned))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("moto query results: %v %v", resp, err)
	}
	resp.Body.Close()
	sql := "SELECT count(*) AS events FROM tracks UNION ALL SELECT count(*) FROM " + out["glue_database"] + ".raw_events"
	q := mustAPI(t, "POST", queries, admin, mustJSON(map[string]string{"sql": sql}), http.StatusAccepted)
	if q = awaitQuery(t, base, admin, id, jstr(q, "id"), "succeeded", "failed"); q["state"] != "succeeded" {
		t.Fatalf("query: %v", q)
	}
	starts := rec.calls("StartQueryExecution")
	if len(starts) != 1 {
		t.Fatalf("%d executions started, want 1", len(starts))
	}
	s := starts[0].body
	qec, _ := s["QueryExecutionContext"].(map[string]any)
	if s["WorkGroup"] != out["athena_workgroup"] || qec["Database"] != "cairn_pool_shared" {
		t.Fatalf("started %v, want the pool's workgroup %s and its shared database cairn_pool_shared", s, out["athena_workgroup"])
	}
	// Signed on the tenant's own role (made in IAM when its slice was
	// cut), never the pool's, whose session Lake Formation could not tell
	// from another tenant's.
	roleName := out["data_access_role_arn"][strings.LastIndex(out["data_access_role_arn"], "/")+1:]
	if out["pool_role_arn"] == "" || out["pool_role_arn"] == out["data_access_role_arn"] || roleName != provisioner.TenantRoleName(id, region) {
		t.Fatalf("pooled tenant's roles: %s (own), %s (pool's)", out["data_access_role_arn"], out["pool_role_arn"])
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, c := range rec.athena {
		if session := rec.issued[c.key]; !strings.Contains(session, ":assumed-role/"+roleName+"/cairn-"+id) {
			t.Errorf("%s signed with %q (session %q), want the tenant's session on %s", c.op, c.key, session, out["data_access_role_arn"])
		}
	}
}
