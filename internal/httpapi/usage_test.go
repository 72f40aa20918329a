package httpapi_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// usageQuery is the query of a usage report around now.
func usageQuery(granularity string) string {
	now := time.Now().UTC()
	q := url.Values{"from": {now.Add(-time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}}
	if granularity != "" {
		q.Set("granularity", granularity)
	}
	return q.Encode()
}

// sum adds one value of every bucket of a TenantUsage answer.
func sumUsage(t *testing.T, r resp, value string) int64 {
	t.Helper()
	var n int64
	for _, b := range r.body["buckets"].([]any) {
		n += int64(b.(map[string]any)["values"].(map[string]any)[value].(float64))
	}
	return n
}

func bySource(r resp) map[string]int64 {
	out := map[string]int64{}
	for _, b := range r.body["buckets"].([]any) {
		for k, v := range b.(map[string]any)["events_by_source"].(map[string]any) {
			out[k] += int64(v.(float64))
		}
	}
	return out
}

// TestTenantUsage: the events a tenant's write key and token send are
// metered by source, its requests and raw zone bytes counted, read back
// per hour or per day by the admin and by the tenant with usage:read, and
// nothing of another tenant's.
func TestTenantUsage(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("meter-co")
		other := e.activeTenant("other-co")
		src := e.do("POST", "/v1/tenants/"+id+"/sources", e.admin, map[string]any{"name": "web"}).want(t, 201)
		srcID, key := src.str("id"), src.str("write_key")

		batch := func(prefix string, n int) map[string]any {
			var evs []any
			for i := range n {
				evs = append(evs, segEvent("track", fmt.Sprintf("%s-%d", prefix, i), map[string]any{"userId": "u1", "event": "Viewed"}))
			}
			return map[string]any{"batch": evs}
		}
		e.segment("/v1/batch", key, batch("wk", 7)).want(t, 200)
		e.segment("/v1/batch", key, batch("wk", 7)).want(t, 200) // duplicates: stored once, metered once
		tok := e.tenantToken(id, "events:write", "usage:read")
		e.do("POST", "/v1/tenants/"+id+"/events", tok, batch("tok", 3)).want(t, 200)
		e.segment("/v1/batch", e.source(other, "web"), batch("o", 2)).want(t, 200)
		if err := e.meter.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}

		hourly := e.do("GET", "/v1/tenants/"+id+"/usage?"+usageQuery("hour"), e.admin, nil).want(t, 200)
		if n := len(hourly.body["buckets"].([]any)); n != 2 && n != 3 {
			t.Errorf("%d hourly buckets over two hours (aligned): %s", n, hourly.raw)
		}
		if got := sumUsage(t, hourly, "events_accepted"); got != 10 {
			t.Errorf("events_accepted %d, want 10 (7 by the key, its 7 duplicates not, 3 by a token)", got)
		}
		if got, want := bySource(hourly), map[string]int64{srcID: 7, "api": 3}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("events by source %v, want %v", got, want)
		}
		// The tenant's requests so far: the onboarding's status reads count
		// too, so only a lower bound is exact here; the batches are 3.
		if got := sumUsage(t, hourly, "api_requests"); got < 3 {
			t.Errorf("api_requests %d, want at least the 3 ingestion requests", got)
		}
		if got := sumUsage(t, hourly, "raw_bytes"); got != 0 {
			t.Errorf("raw_bytes %d: the test's API has no metered raw zone", got)
		}

		daily := e.do("GET", "/v1/tenants/"+id+"/usage?"+usageQuery(""), tok, nil).want(t, 200)
		if daily.str("granularity") != "day" || sumUsage(t, daily, "events_accepted") != 10 {
			t.Errorf("the tenant's own daily report: %s", daily.raw)
		}
		e.do("GET", "/v1/tenants/"+other+"/usage?"+usageQuery(""), tok, nil).want(t, 404)
		e.do("GET", "/v1/tenants/"+id+"/usage?"+usageQuery(""), e.tenantToken(id, "profiles:read"), nil).want(t, 403)
		e.do("GET", "/v1/usage?"+usageQuery(""), tok, nil).want(t, 403)

		// Refused ranges name `to` and change nothing.
		now := time.Now().UTC()
		for _, q := range []url.Values{
			{"from": {now.Format(time.RFC3339)}, "to": {now.Add(-time.Hour).Format(time.RFC3339)}},
			{"from": {now.Add(-32 * 24 * time.Hour).Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}, "granularity": {"hour"}},
		} {
			r := e.do("GET", "/v1/tenants/"+id+"/usage?"+q.Encode(), e.admin, nil).want(t, 400)
			if fields := r.body["errors"].([]any); len(fields) != 1 || fields[0].(map[string]any)["field"] != "to" {
				t.Errorf("%s: %s", q.Encode(), r.raw)
			}
		}
		e.do("GET", "/v1/tenants/"+id+"/usage?from=yesterday&to=today", e.admin, nil).want(t, 400)
	})
}

// TestFleetUsage: the admin pages every tenant's totals in tenant order;
// a forged cursor is a 400.
func TestFleetUsage(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		want := map[string]int64{}
		for i, slug := range []string{"fleet-a", "fleet-b", "fleet-c"} {
			id := e.activeTenant(slug)
			var evs []any
			for j := range i + 1 {
				evs = append(evs, segEvent("track", fmt.Sprintf("m-%d", j), map[string]any{"userId": "u", "event": "E"}))
			}
			e.segment("/v1/batch", e.source(id, "web"), map[string]any{"batch": evs}).want(t, 200)
			want[id] = int64(i + 1)
		}
		if err := e.meter.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		var order []string
		cursor := ""
		for range 10 {
			path := "/v1/usage?limit=2&" + usageQuery("")
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			r := e.do("GET", path, e.admin, nil).want(t, 200)
			for _, it := range r.body["items"].([]any) {
				item := it.(map[string]any)
				tenant := item["tenant_id"].(string)
				order = append(order, tenant)
				got[tenant] = int64(item["values"].(map[string]any)["events_accepted"].(float64))
			}
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("fleet totals %v, want %v", got, want)
		}
		for i := 1; i < len(order); i++ {
			if order[i-1] >= order[i] {
				t.Errorf("tenants out of order or repeated: %v", order)
			}
		}
		e.do("GET", "/v1/usage?cursor=bm90LWEtY3Vyc29y&"+usageQuery(""), e.admin, nil).want(t, 400)
	})
}

// TestUsageOfUnknownTenants: requests naming a tenant that does not exist
// are metered for no one: no fleet report lists them.
func TestUsageOfUnknownTenants(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		known := e.activeTenant("known-co")
		ghost := "ten_" + strings.Repeat("a", 26)
		for _, path := range []string{"/v1/tenants/" + ghost, "/v1/tenants/" + ghost + "/sources", "/v1/tenants/null/usage?" + usageQuery("")} {
			if r := e.do("GET", path, e.admin, nil); r.status < 400 {
				t.Fatalf("GET %s: %d", path, r.status)
			}
		}
		e.do("GET", "/v1/tenants/"+known, e.admin, nil).want(t, 200)
		if err := e.meter.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		r := e.do("GET", "/v1/usage?"+usageQuery(""), e.admin, nil).want(t, 200)
		var tenants []string
		for _, it := range r.body["items"].([]any) {
			tenants = append(tenants, it.(map[string]any)["tenant_id"].(string))
		}
		if fmt.Sprint(tenants) != fmt.Sprint([]string{known}) {
			t.Errorf("metered tenants %v, want only %s", tenants, known)
		}
	})
}
