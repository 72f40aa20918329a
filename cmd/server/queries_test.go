package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// awaitQuery polls the query until its state is one of states.
func awaitQuery(t *testing.T, base, token, tenant, id string, states ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		status, q := call(t, "GET", base+"/v1/tenants/"+tenant+"/queries/"+id, token, "")
		if status != http.StatusOK {
			t.Fatalf("query %s: %d %v", id, status, q)
		}
		for _, s := range states {
			if q["state"] == s {
				return q
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s not %v after a minute: %v", id, states, q)
		}
		<-tick.C
	}
}

// TestLakeQueries: a tenant's SQL over its lake, end to end on the
// embedded default: events in, refined, a query posted (202, queued),
// polled to succeeded with its statistics, its result paged and downloaded
// as CSV, the bytes it scanned metered; refusals as 400 problems saying
// why; a running query cancelled and another stopped at the time limit;
// the lake:query scope enforced, another tenant's queries not found; the
// queries listed newest first, paged; and forgotten with the tenant.
func TestLakeQueries(t *testing.T) {
	vars := map[string]string{"CAIRN_QUERY_TIMEOUT": "3s"}
	lt := startLakeVars(t, "0", vars)
	now := time.Now().UTC()
	ts := now.Add(-time.Minute).Format(time.RFC3339Nano)
	var events []string
	for i := range 7 {
		name := []string{"Signed Up", "Paid", "Viewed"}[i%3]
		events = append(events, fmt.Sprintf(`{"type":"track","messageId":"q%d","userId":"u%d","event":%q,"timestamp":%q}`, i, i%2, name, ts))
	}
	lt.batch(t, events...)
	if res := lt.refine(t); len(res.Partitions) == 0 {
		t.Fatalf("refine: %+v", res)
	}
	queries := lt.base + "/v1/tenants/" + lt.id + "/queries"
	status, tok := call(t, "POST", lt.base+"/v1/tenants/"+lt.id+"/tokens", lt.admin, `{"scopes":["lake:query"]}`)
	if status != http.StatusCreated {
		t.Fatalf("token: %d %v", status, tok)
	}
	token := tok["token"].(string)

	// Count by event name per day.
	sql := `SELECT event, CAST("timestamp" AS DATE) AS day, count(*) AS events FROM tracks GROUP BY ALL ORDER BY events DESC, event`
	status, hdr, q := callHeader(t, "POST", queries, token, mustJSON(map[string]string{"sql": sql}), nil)
	if status != http.StatusAccepted || q["state"] != "queued" || q["sql"] != sql || hdr.Get("Location") != "/v1/tenants/"+lt.id+"/queries/"+q["id"].(string) {
		t.Fatalf("post: %d %v %v", status, hdr, q)
	}
	id := q["id"].(string)
	q = awaitQuery(t, lt.base, token, lt.id, id, "succeeded", "failed")
	stats := q["statistics"].(map[string]any)
	if q["state"] != "succeeded" || q["error"] != nil || stats["rows"] != float64(3) || stats["bytes_scanned"].(float64) <= 0 || q["started_at"] == nil || q["finished_at"] == nil {
		t.Fatalf("query: %v", q)
	}
	day := now.Add(-time.Minute).Format("2006-01-02")
	res := q["result"].(map[string]any)
	if fmt.Sprint(res["columns"]) != "[map[name:event type:VARCHAR] map[name:day type:DATE] map[name:events type:BIGINT]]" {
		t.Fatalf("columns: %v", res)
	}
	if fmt.Sprint(res["rows"]) != fmt.Sprintf("[[Signed Up %[1]sT00:00:00Z 3] [Paid %[1]sT00:00:00Z 2] [Viewed %[1]sT00:00:00Z 2]]", day) || res["next_page_token"] != nil {
		t.Fatalf("rows: %v", res)
	}
	// Paged a row at a time.
	var paged []string
	for token2 := ""; ; {
		url := queries + "/" + id + "?limit=1"
		if token2 != "" {
			url += "&page_token=" + token2
		}
		status, p := call(t, "GET", url, token, "")
		if status != http.StatusOK {
			t.Fatalf("page: %d %v", status, p)
		}
		r := p["result"].(map[string]any)
		for _, row := range r["rows"].([]any) {
			paged = append(paged, fmt.Sprint(row.([]any)[0]))
		}
		next, _ := r["next_page_token"].(string)
		if next == "" {
			break
		}
		token2 = next
	}
	if strings.Join(paged, ",") != "Signed Up,Paid,Viewed" {
		t.Errorf("pages: %v", paged)
	}
	if status, p := call(t, "GET", queries+"/"+id+"?page_token=AgQ", token, ""); status != http.StatusBadRequest {
		t.Errorf("a page token this result did not give: %d %v", status, p)
	}
	// The CSV download.
	req, _ := http.NewRequest("GET", queries+"/"+id+"/results.csv", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || err != nil ||
		fmt.Sprint(records) != fmt.Sprintf("[[event day events] [Signed Up %[1]sT00:00:00Z 3] [Paid %[1]sT00:00:00Z 2] [Viewed %[1]sT00:00:00Z 2]]", day) {
		t.Fatalf("csv: %d %s %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), body, err)
	}

	// The bytes it scanned are the tenant's query_bytes, once the meter
	// flushed.
	uq := url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}, "granularity": {"hour"}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(time.Minute); ; <-tick.C {
		var metered float64
		_, u := call(t, "GET", lt.base+"/v1/tenants/"+lt.id+"/usage?"+uq.Encode(), lt.admin, "")
		for _, b := range u["buckets"].([]any) {
			metered += b.(map[string]any)["values"].(map[string]any)["query_bytes"].(float64)
		}
		if metered == stats["bytes_scanned"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query_bytes %v, want %v", metered, stats["bytes_scanned"])
		}
	}

	// Refusals: 400 problems saying why; nothing stored.
	for _, c := range []struct{ sql, kind string }{
		{"DELETE FROM tracks", "query-write"},
		{"SELECT * FROM read_csv('/etc/passwd')", "query-file-access"},
		{"ATTACH '/tmp/x.db' AS x", "query-attach"},
		{"COPY tracks TO '/tmp/x.csv'", "query-file-access"},
		{"SET threads = 64", "query-settings"},
		{"INSTALL httpfs", "query-extension"},
		{"SELECT * FROM other_tenant.tracks", "query-other-tenant"},
		{"SELECT * FROM customers", "query-unknown-table"},
	} {
		status, p := call(t, "POST", queries, token, mustJSON(map[string]string{"sql": c.sql}))
		if status != http.StatusBadRequest || p["type"] != "urn:cairn:problem:"+c.kind || p["detail"] == "" {
			t.Errorf("%s: %d %v, want 400 %s", c.sql, status, p, c.kind)
		}
	}

	// A running query cancelled; another stopped at the time limit (3 s).
	slow := "SELECT sum(a.range * b.range) FROM range(10000000) a, range(10000000) b"
	_, c1 := call(t, "POST", queries, token, mustJSON(map[string]string{"sql": slow}))
	awaitQuery(t, lt.base, token, lt.id, c1["id"].(string), "running")
	status, c := call(t, "POST", queries+"/"+c1["id"].(string)+"/cancel", token, "")
	if status != http.StatusOK || c["state"] != "cancelled" {
		t.Fatalf("cancel: %d %v", status, c)
	}
	if status, p := call(t, "GET", queries+"/"+c1["id"].(string)+"/results.csv", token, ""); status != http.StatusConflict || p["type"] != "urn:cairn:problem:query-not-done" {
		t.Errorf("a cancelled query's CSV: %d %v", status, p)
	}
	if status, p := call(t, "POST", queries+"/"+id+"/cancel", token, ""); status != http.StatusConflict || p["type"] != "urn:cairn:problem:query-done" {
		t.Errorf("cancel a succeeded query: %d %v", status, p)
	}
	_, t1 := call(t, "POST", queries, token, mustJSON(map[string]string{"sql": slow}))
	failed := awaitQuery(t, lt.base, token, lt.id, t1["id"].(string), "failed", "succeeded")
	if e, _ := failed["error"].(string); failed["state"] != "failed" || !strings.Contains(e, "time limit of 3s") {
		t.Fatalf("over the time limit: %v", failed)
	}
	// The cancelled query stays cancelled, its run stopped: the next
	// query runs.
	if q := awaitQuery(t, lt.base, token, lt.id, c1["id"].(string), "cancelled"); q["finished_at"] == nil {
		t.Errorf("cancelled: %v", q)
	}

	// The list, newest first, paged.
	status, l := call(t, "GET", queries+"?limit=2", token, "")
	items, _ := l["items"].([]any)
	if status != http.StatusOK || len(items) != 2 || items[0].(map[string]any)["id"] != t1["id"] || l["next_cursor"] == nil {
		t.Fatalf("list: %d %v", status, l)
	}
	_, l = call(t, "GET", queries+"?limit=2&cursor="+l["next_cursor"].(string), token, "")
	if items, _ := l["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id || l["next_cursor"] != nil {
		t.Fatalf("second page: %v", l)
	}

	// The scope: a token without lake:query is refused.
	_, other := call(t, "POST", lt.base+"/v1/tenants/"+lt.id+"/tokens", lt.admin, `{"scopes":["usage:read"]}`)
	for _, r := range [][2]string{{"POST", queries}, {"GET", queries}, {"GET", queries + "/" + id}, {"GET", queries + "/" + id + "/results.csv"}, {"POST", queries + "/" + id + "/cancel"}} {
		if status, p := call(t, r[0], r[1], other["token"].(string), mustJSON(map[string]string{"sql": "SELECT 1"})); status != http.StatusForbidden {
			t.Errorf("%s %s without lake:query: %d %v", r[0], r[1], status, p)
		}
	}
	// Another tenant sees none of them.
	status, tn := call(t, "POST", lt.base+"/v1/tenants", lt.admin, `{"name":"Other","slug":"other","tier":"pooled","home_region":"eu-west-1"}`)
	if status != http.StatusAccepted {
		t.Fatalf("onboard: %d %v", status, tn)
	}
	otherID := tn["id"].(string)
	awaitActive(t, lt.base, lt.admin, otherID)
	_, ot := call(t, "POST", lt.base+"/v1/tenants/"+otherID+"/tokens", lt.admin, `{"scopes":["lake:query"]}`)
	otherQueries := lt.base + "/v1/tenants/" + otherID + "/queries"
	for _, r := range [][2]string{{"GET", otherQueries + "/" + id}, {"GET", otherQueries + "/" + id + "/results.csv"}, {"POST", otherQueries + "/" + id + "/cancel"}} {
		if status, p := call(t, r[0], r[1], ot["token"].(string), ""); status != http.StatusNotFound {
			t.Errorf("%s %s: %d %v, want 404", r[0], r[1], status, p)
		}
	}
	// Its token cannot reach the first tenant's.
	if status, p := call(t, "GET", queries+"/"+id, ot["token"].(string), ""); status != http.StatusForbidden && status != http.StatusNotFound {
		t.Errorf("another tenant's token: %d %v", status, p)
	}
	// Its own tables are empty: the first tenant's events are not there.
	_, oq := call(t, "POST", otherQueries, ot["token"].(string), mustJSON(map[string]string{"sql": "SELECT count(*) AS n FROM tracks"}))
	oq = awaitQuery(t, lt.base, ot["token"].(string), otherID, oq["id"].(string), "succeeded", "failed")
	if fmt.Sprint(oq["result"].(map[string]any)["rows"]) != "[[0]]" {
		t.Errorf("the other tenant's tracks: %v", oq)
	}
	if status, l := call(t, "GET", otherQueries, ot["token"].(string), ""); status != http.StatusOK || len(l["items"].([]any)) != 1 {
		t.Errorf("the other tenant's list: %d %v", status, l)
	}

	// The results are files under the data directory, a directory per
	// tenant.
	files, _ := filepath.Glob(filepath.Join(lt.dir, "query-results", lt.id, "*.jsonl"))
	if len(files) != 1 {
		t.Errorf("result files %v", files)
	}
	if _, err := os.Stat(filepath.Join(lt.dir, "query-results", lt.id, id+".jsonl")); err != nil {
		t.Error(err)
	}
}
