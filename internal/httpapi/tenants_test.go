package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestOnboardAndLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		e.putPlan("gold", map[string]any{}) // a tenant names a plan that exists
		r := e.onboard("acme", map[string]any{
			"regions": []string{"us-east-1"}, "plan": "gold", "contact_email": "ops@acme.example",
			"labels": map[string]string{"team": "growth"},
		}).want(t, 202)
		id := r.str("id")
		if !strings.HasPrefix(id, "ten_") || r.header.Get("Location") != "/v1/tenants/"+id {
			t.Fatalf("id %q, Location %q", id, r.header.Get("Location"))
		}
		if r.str("status") != "provisioning" || r.str("plan") != "gold" || r.str("tier") != "pooled" {
			t.Fatalf("created tenant: %s", r.raw)
		}
		if regions := fmt.Sprint(r.body["regions"]); regions != "[eu-west-1 us-east-1]" {
			t.Fatalf("regions %s; want home and extra Region, sorted", regions)
		}
		if !strings.HasSuffix(r.str("created_at"), "Z") {
			t.Fatalf("created_at %q is not RFC 3339 UTC", r.str("created_at"))
		}

		e.waitStatus(id, "active")
		e.do("POST", "/v1/tenants/"+id+"/suspend", e.admin, nil).want(t, 200)
		if got := e.do("GET", "/v1/tenants/"+id, e.admin, nil).str("status"); got != "suspended" {
			t.Fatalf("status %s after suspend", got)
		}
		e.do("POST", "/v1/tenants/"+id+"/resume", e.admin, nil).want(t, 200)
		d := e.do("DELETE", "/v1/tenants/"+id, e.admin, nil).want(t, 202)
		if d.str("status") != "deprovisioning" {
			t.Fatalf("status %s after delete", d.str("status"))
		}
		if d.header.Get("Location") != "/v1/tenants/"+id {
			t.Fatalf("delete: Location %q", d.header.Get("Location"))
		}
		e.follow(t, d, e.admin)
		g := e.waitStatus(id, "deleted")
		if g.body["deleted_at"] == nil {
			t.Fatalf("deleted tombstone without deleted_at: %s", g.raw)
		}
		// The tombstone's slug is free again.
		e.onboard("acme").want(t, 202)
	})
}

func TestIllegalTransitionsAreConflicts(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		active := e.activeTenant("live-one")
		deleted := e.activeTenant("gone-one")
		e.do("DELETE", "/v1/tenants/"+deleted, e.admin, nil).want(t, 202)
		e.waitStatus(deleted, "deleted")
		suspended := e.activeTenant("paused-one")
		e.do("POST", "/v1/tenants/"+suspended+"/suspend", e.admin, nil).want(t, 200)

		tests := []struct {
			id, method, action, state string
		}{
			{active, "POST", "resume", "active"},
			{active, "POST", "retry", "active"},
			{suspended, "POST", "suspend", "suspended"},
			{suspended, "POST", "retry", "suspended"},
			{deleted, "POST", "suspend", "deleted"},
			{deleted, "POST", "resume", "deleted"},
			{deleted, "POST", "retry", "deleted"},
			{deleted, "DELETE", "", "deleted"},
		}
		for _, tt := range tests {
			path := "/v1/tenants/" + tt.id
			if tt.action != "" {
				path += "/" + tt.action
			}
			before := e.do("GET", "/v1/tenants/"+tt.id, e.admin, nil)
			r := e.do(tt.method, path, e.admin, nil).want(t, 409)
			if !strings.Contains(r.str("detail"), tt.state) {
				t.Errorf("%s %s: detail %q does not name the current state %s", tt.method, path, r.str("detail"), tt.state)
			}
			after := e.do("GET", "/v1/tenants/"+tt.id, e.admin, nil)
			if before.str("status") != after.str("status") || before.body["version"] != after.body["version"] {
				t.Errorf("%s %s changed the tenant", tt.method, path)
			}
		}
		name := "x"
		e.do("PATCH", "/v1/tenants/"+deleted, e.admin, map[string]any{"name": name}).want(t, 409)
	})
}

func TestValidationNamesTheField(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		tests := []struct {
			name  string
			body  any
			field string
		}{
			{"bad slug", map[string]any{"name": "A", "slug": "A!", "tier": "pooled", "home_region": "eu-west-1"}, "/slug"},
			{"unknown tier", map[string]any{"name": "A", "slug": "abc", "tier": "shared", "home_region": "eu-west-1"}, "/tier"},
			{"unknown region", map[string]any{"name": "A", "slug": "abc", "tier": "pooled", "home_region": "mars-1"}, "/home_region"},
			{"missing name", map[string]any{"slug": "abc", "tier": "pooled", "home_region": "eu-west-1"}, "name"},
			{"unknown field", map[string]any{"name": "A", "slug": "abc", "tier": "pooled", "home_region": "eu-west-1", "owner": "x"}, "owner"},
			{"bad email", map[string]any{"name": "A", "slug": "abc", "tier": "pooled", "home_region": "eu-west-1", "contact_email": "nope"}, "/contact_email"},
			// An address with a display name is one to mail, not a plain
			// address: the spec's email format, as Cairn defines it, says so.
			{"named email", map[string]any{"name": "A", "slug": "abc", "tier": "pooled", "home_region": "eu-west-1", "contact_email": "Jane <jane@example.com>"}, "(not a plain e-mail address)"},
			{"bad label key", map[string]any{"name": "A", "slug": "abc", "tier": "pooled", "home_region": "eu-west-1", "labels": map[string]string{"Bad Key": "v"}}, "labels"},
			{"malformed JSON", `{"name": `, "body"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.do("POST", "/v1/tenants", e.admin, tt.body).want(t, 400)
				errs, _ := r.body["errors"].([]any)
				if len(errs) == 0 || !strings.Contains(fmt.Sprint(errs[0].(map[string]any)["field"])+" "+r.str("detail"), tt.field) {
					t.Fatalf("problem does not name %s: %s", tt.field, r.raw)
				}
			})
		}
		e.do("GET", "/v1/tenants?limit=0", e.admin, nil).want(t, 400)
		e.do("GET", "/v1/tenants?limit=201", e.admin, nil).want(t, 400)
		e.do("GET", "/v1/tenants?cursor=bogus", e.admin, nil).want(t, 400)
		e.do("GET", "/v1/tenants?status=sleeping", e.admin, nil).want(t, 400)
		e.do("POST", "/v1/tenants", e.admin, "name=x", "Content-Type", "text/plain").want(t, 415)
		big := `{"name": "` + strings.Repeat("a", 2<<20) + `"}`
		e.do("POST", "/v1/tenants", e.admin, big).want(t, 413)
		// None of that created anything.
		if items := e.do("GET", "/v1/tenants", e.admin, nil).want(t, 200).body["items"].([]any); len(items) != 0 {
			t.Fatalf("bad requests created %d tenants", len(items))
		}
	})
}

func TestErrorsAreProblems(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		e.do("GET", "/v1/nothing-here", e.admin, nil).want(t, 404)
		e.do("GET", "/v1/tenants/ten_aaaaaaaaaaaaaaaaaaaaaaaaaa", e.admin, nil).want(t, 404)
		r := e.do("PUT", "/v1/tenants", e.admin, map[string]any{}).want(t, 405)
		if allow := r.header.Get("Allow"); allow != "GET, POST" {
			t.Fatalf("Allow %q", allow)
		}
		// A concrete path is its own resource for every method: GET on
		// .../grants/reconcile (POST only) is not a read of a grant called
		// "reconcile", nor is PATCH on .../segments/preview.
		const tenant = "/v1/tenants/ten_aaaaaaaaaaaaaaaaaaaaaaaaaa"
		for _, c := range []struct{ method, path, allow string }{
			{"GET", tenant + "/grants/reconcile", "POST"},
			{"OPTIONS", tenant + "/grants/reconcile", "POST"},
			{"PATCH", tenant + "/segments/preview", "POST"},
			{"POST", tenant + "/grants/grt_aaaaaaaaaaaaaaaaaaaaaaaaaa", "GET, DELETE"},
		} {
			r := e.do(c.method, c.path, e.admin, nil).want(t, 405)
			if allow := r.header.Get("Allow"); allow != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, allow, c.allow)
			}
		}
		r = e.do("GET", "/v1/tenants", "", nil).want(t, 401)
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 without WWW-Authenticate: %v", r.header)
		}
		e.do("GET", "/v1/tenants", "not-a-jwt", nil).want(t, 401)
		if r.header.Get("X-Request-Id") != r.str("request_id") {
			t.Fatalf("request ID header %q, body %q", r.header.Get("X-Request-Id"), r.str("request_id"))
		}
		e.do("GET", "/healthz", "", nil).want(t, 200)
		e.do("GET", "/readyz", "", nil).want(t, 200)
		jwks := e.do("GET", "/.well-known/jwks.json", "", nil).want(t, 200)
		if keys, _ := jwks.body["keys"].([]any); len(keys) != 1 {
			t.Fatalf("jwks: %s", jwks.raw)
		}
	})
}

func TestSlugConflict(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		e.onboard("taken").want(t, 202)
		e.onboard("taken").want(t, 409)
	})
}

func TestETagAndIfMatch(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		e.putPlan("silver", map[string]any{}) // a tenant names a plan that exists
		// Active first: its provisioning, ending, would change the tenant
		// (and its ETag) under the requests below.
		id := e.activeTenant("etag-co")
		g := e.do("GET", "/v1/tenants/"+id, e.admin, nil).want(t, 200)
		tag := g.header.Get("ETag")
		if tag == "" {
			t.Fatal("no ETag")
		}
		u := e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"name": "New name", "labels": map[string]string{"a": "b"}}, "If-Match", tag).want(t, 200)
		if u.header.Get("ETag") == tag || u.str("name") != "New name" {
			t.Fatalf("update kept ETag %s or lost the name: %s", tag, u.raw)
		}
		// The old ETag is stale now: 412, and nothing changes.
		e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"name": "Lost"}, "If-Match", tag).want(t, 412)
		e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"name": "Lost"}, "If-Match", `"garbage"`).want(t, 412)
		cur := u.header.Get("ETag")
		// If-Match compares strongly: a weak tag never matches.
		if r := e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"name": "Lost"}, "If-Match", "W/"+cur).want(t, 412); !strings.Contains(r.str("detail"), "weak") {
			t.Errorf("a weak tag's 412 does not say why: %s", r.raw)
		}
		// Malformed: unquoted (even naming the current version), half
		// quoted, or "*" in a list. A 400 naming If-Match, not a 412.
		for _, bad := range []string{strings.Trim(cur, `"`), cur[:len(cur)-1], `*, ` + cur, cur + ` ` + cur} {
			r := e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"name": "Lost"}, "If-Match", bad).want(t, 400)
			if f := soleField(t, r); f != "If-Match" || !strings.Contains(r.str("detail"), "entity tag") {
				t.Errorf("If-Match %q: %s", bad, r.raw)
			}
		}
		if got := e.do("GET", "/v1/tenants/"+id, e.admin, nil).str("name"); got != "New name" {
			t.Fatalf("stale update applied: name %q", got)
		}
		// A list matches when one of its tags does; "*" matches any version.
		u = e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"name": "Listed"}, "If-Match", `"v999", `+cur).want(t, 200)
		e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"name": "Any"}, "If-Match", `*`).want(t, 200)
		// Without If-Match the update applies.
		e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"plan": "silver"}).want(t, 200)
	})
}

// TestLifecycleIfMatch: a lifecycle action sent with a stale If-Match is a
// 412 that changes nothing; with the current ETag it applies.
func TestLifecycleIfMatch(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		e.putPlan("gold", map[string]any{}) // a tenant names a plan that exists
		id := e.activeTenant("life-co")
		tag := e.do("GET", "/v1/tenants/"+id, e.admin, nil).want(t, 200).header.Get("ETag")
		fresh := e.do("PATCH", "/v1/tenants/"+id, e.admin, map[string]any{"plan": "gold"}, "If-Match", tag).want(t, 200).header.Get("ETag")
		for _, action := range []string{"suspend", "resume", "retry"} {
			e.do("POST", "/v1/tenants/"+id+"/"+action, e.admin, nil, "If-Match", tag).want(t, 412)
		}
		fresh = e.do("POST", "/v1/tenants/"+id+"/suspend", e.admin, nil, "If-Match", fresh).want(t, 200).header.Get("ETag")
		fresh = e.do("POST", "/v1/tenants/"+id+"/resume", e.admin, nil, "If-Match", fresh).want(t, 200).header.Get("ETag")
		e.do("DELETE", "/v1/tenants/"+id, e.admin, nil, "If-Match", tag).want(t, 412)
		if got := e.do("GET", "/v1/tenants/"+id, e.admin, nil).str("status"); got == "deprovisioning" {
			t.Fatal("a stale offboard applied")
		}
		if got := e.do("DELETE", "/v1/tenants/"+id, e.admin, nil, "If-Match", fresh).want(t, 202).str("status"); got != "deprovisioning" {
			t.Fatalf("offboard with the current ETag: status %s", got)
		}
	})
}

func TestPaginationUnderConcurrentInserts(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		existing := map[string]bool{}
		for i := range 23 {
			existing[e.onboard(fmt.Sprintf("page-%02d", i)).want(t, 202).str("id")] = true
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				e.onboard(fmt.Sprintf("late-%02d", i))
			}
		}()
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			path := "/v1/tenants?limit=4"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r := e.do("GET", path, e.admin, nil).want(t, 200)
			for _, it := range r.body["items"].([]any) {
				id := it.(map[string]any)["id"].(string)
				if seen[id] {
					t.Fatalf("tenant %s repeated", id)
				}
				seen[id] = true
			}
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		wg.Wait()
		for id := range existing {
			if !seen[id] {
				t.Fatalf("tenant %s skipped", id)
			}
		}
		// Filters.
		r := e.do("GET", "/v1/tenants?tier=dedicated", e.admin, nil).want(t, 200)
		if n := len(r.body["items"].([]any)); n != 0 {
			t.Fatalf("tier filter returned %d", n)
		}
		e.onboard("ded-one", map[string]any{"tier": "dedicated", "home_region": "ap-south-1"}).want(t, 202)
		for _, q := range []string{"tier=dedicated", "region=ap-south-1", "tier=dedicated&region=ap-south-1"} {
			r := e.do("GET", "/v1/tenants?"+q, e.admin, nil).want(t, 200)
			if items := r.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["slug"] != "ded-one" {
				t.Fatalf("%s: %s", q, r.raw)
			}
		}
		if r.body["next_cursor"] != nil {
			t.Fatalf("last page has a cursor: %s", r.raw)
		}
	})
}

func TestTenantTokens(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.onboard("tok-co").want(t, 202).str("id")
		body := map[string]any{"scopes": []string{"profiles:read"}, "ttl_seconds": 600}
		e.waitStatus(id, "active")
		r := e.do("POST", "/v1/tenants/"+id+"/tokens", e.admin, body).want(t, 201)
		tok := r.str("token")
		me := e.do("GET", "/v1/tenants/"+id, tok, nil).want(t, 200)
		if me.str("id") != id {
			t.Fatalf("tenant token read %s", me.raw)
		}
		// A tenant token is not an admin token.
		e.do("GET", "/v1/tenants", tok, nil).want(t, 403)
		e.do("POST", "/v1/tenants/"+id+"/suspend", tok, nil).want(t, 403)
		// Suspended: its own tokens are refused until it resumes.
		e.do("POST", "/v1/tenants/"+id+"/suspend", e.admin, nil).want(t, 200)
		e.do("GET", "/v1/tenants/"+id, tok, nil).want(t, 403)
		e.do("POST", "/v1/tenants/"+id+"/tokens", e.admin, body).want(t, 409)
		e.do("POST", "/v1/tenants/"+id+"/resume", e.admin, nil).want(t, 200)
		e.do("GET", "/v1/tenants/"+id, tok, nil).want(t, 200)
		// Offboarded: refused.
		e.do("DELETE", "/v1/tenants/"+id, e.admin, nil).want(t, 202)
		e.do("GET", "/v1/tenants/"+id, tok, nil).want(t, http.StatusUnauthorized)
	})
}

func TestFailedProvisioningRetry(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.onboard("fail-once", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		f := e.waitStatus(id, "failed")
		if !strings.Contains(f.str("status_reason"), "ROLLBACK_COMPLETE") {
			t.Fatalf("failed tenant without the reason: %s", f.raw)
		}
		e.do("POST", "/v1/tenants/"+id+"/suspend", e.admin, nil).want(t, 409)
		r := e.do("POST", "/v1/tenants/"+id+"/retry", e.admin, nil).want(t, 202)
		if r.str("status") != "provisioning" {
			t.Fatalf("retry left status %s", r.str("status"))
		}
		if got := e.follow(t, r, e.admin).str("id"); got != id {
			t.Fatalf("retry: Location is tenant %s, want %s", got, id)
		}
		e.waitStatus(id, "active")
	})
}
