package httpapi_test

import (
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/grants"
)

// waitStack waits, woken by finished jobs, until the tenant's stack in
// region has status.
func (e *env) waitStack(id, region, status string) map[string]any {
	e.t.Helper()
	deadline := time.After(waitLimit)
	for {
		s := stacksOf(e.t, e, id)[region]
		if s != nil && s["status"] == status {
			return s
		}
		select {
		case <-e.jobDone:
		case <-deadline:
			e.t.Fatalf("stack of %s in %s is %v; waited for %s", id, region, s, status)
		}
	}
}

// failGrant marks a grant failed with reason, as the apply job does when
// Lake Formation refuses it on its last attempt (the job's retries back
// off for minutes before that).
func (e *env) failGrant(tenantID, id, reason string) {
	e.t.Helper()
	ctx := context.Background()
	err := e.db.Grants().InTx(ctx, func(tx grants.Tx) error {
		g, err := tx.GrantGet(ctx, tenantID, id)
		if err != nil {
			return err
		}
		g.Status, g.Reason = grants.StatusFailed, reason
		_, err = tx.GrantUpdate(ctx, g)
		return err
	})
	if err != nil {
		e.t.Fatalf("fail grant %s: %v", id, err)
	}
}

// attentionPages pages through /v1/attention?query with limit, returning
// the items in order.
func (e *env) attentionPages(t *testing.T, query url.Values, limit string) []map[string]any {
	t.Helper()
	var out []map[string]any
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	if limit != "" {
		q.Set("limit", limit)
	}
	for range 100 {
		r := e.do("GET", "/v1/attention?"+q.Encode(), e.admin, nil).want(t, 200)
		for _, it := range r.body["items"].([]any) {
			out = append(out, it.(map[string]any))
		}
		next, _ := r.body["next_cursor"].(string)
		if next == "" {
			return out
		}
		q.Set("cursor", next)
	}
	t.Fatal("the pages do not end")
	return nil
}

func attentionKeys(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		key, _ := it["grant_id"].(string)
		if key == "" {
			tenant, _ := it["tenant_id"].(string)
			key = tenant + "/" + it["region"].(string)
		}
		out[i] = it["kind"].(string) + ":" + key
	}
	return out
}

// TestAttention lists the fleet's failed stacks, an active tenant's failed
// Region included, and its failed grants, with their tenants, oldest
// first and in pages; healthy stacks and grants stay out, a retried stack
// leaves the list, and only the ISV admin reads it.
func TestAttention(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		if items := e.attentionPages(t, nil, ""); len(items) != 0 {
			t.Fatalf("a new fleet needs attention: %v", items)
		}
		// Healthy: a pooled tenant (and its Region's pool) with an active grant.
		calm := e.activeTenant("calm-co")
		db := outputsOf(stacksOf(t, e, calm)["eu-west-1"])["glue_database"].(string)
		principal := "arn:aws:iam::123456789012:role/analysts"
		e.do("POST", "/v1/tenants/"+calm+"/principals", e.admin, map[string]any{"principal": principal}).want(t, 201)
		grant := func(perms ...string) string {
			body := map[string]any{"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db}, "permissions": perms}
			id := e.do("POST", "/v1/tenants/"+calm+"/grants", e.admin, body).want(t, 202).str("id")
			e.waitGrant(calm, id, "active")
			return id
		}
		grant("DESCRIBE")

		// A tenant whose only stack failed: the tenant failed too.
		broken := e.onboard("fail-attn", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		e.waitStatus(broken, "failed")

		// An active tenant whose added Region failed: the tenant stays
		// active, and only this list shows the failure fleet-wide.
		grow := e.onboard("fail-grow", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		e.waitStatus(grow, "failed")
		e.do("POST", "/v1/tenants/"+grow+"/stacks/eu-west-1/retry", e.admin, nil).want(t, 202)
		e.waitStatus(grow, "active")
		e.do("PATCH", "/v1/tenants/"+grow, e.admin, map[string]any{"regions": []string{"eu-west-1", "us-east-1"}}).want(t, 200)
		failedRegion := e.waitStack(grow, "us-east-1", "failed")
		if got := e.do("GET", "/v1/tenants/"+grow, e.admin, nil).str("status"); got != "active" {
			t.Fatalf("a failed added Region made the tenant %s", got)
		}

		// A grant Lake Formation refused.
		refused := grant("ALTER")
		e.failGrant(calm, refused, "AccessDeniedException: Insufficient Lake Formation permission(s) on "+db)

		items := e.attentionPages(t, nil, "")
		want := []string{"stack:" + broken + "/eu-west-1", "stack:" + grow + "/us-east-1", "grant:" + refused}
		if got := attentionKeys(items); !slices.Equal(got, want) {
			t.Fatalf("attention %v, want %v (oldest first):\n%v", got, want, items)
		}
		byKey := map[string]map[string]any{}
		for i, k := range attentionKeys(items) {
			byKey[k] = items[i]
		}
		stack := byKey["stack:"+grow+"/us-east-1"]
		if stack["tenant_name"] != "Tenant fail-grow" || stack["tenant_slug"] != "fail-grow" || stack["tenant_status"] != "active" ||
			stack["status"] != "failed" || stack["reason"] != failedRegion["last_error"] || stack["stack_name"] != failedRegion["stack_name"] ||
			stack["updated_at"] != failedRegion["updated_at"] || stack["grant_id"] != nil || stack["principal"] != nil {
			t.Errorf("the failed Region: %v, its stack %v", stack, failedRegion)
		}
		if s := byKey["stack:"+broken+"/eu-west-1"]; s["tenant_status"] != "failed" || s["reason"] == nil {
			t.Errorf("the failed tenant's stack: %v", s)
		}
		g := byKey["grant:"+refused]
		stored := e.do("GET", "/v1/tenants/"+calm+"/grants/"+refused, e.admin, nil).want(t, 200)
		if g["tenant_id"] != calm || g["tenant_slug"] != "calm-co" || g["tenant_status"] != "active" || g["region"] != "eu-west-1" ||
			g["status"] != "failed" || g["principal"] != principal || g["reason"] != stored.str("reason") ||
			g["updated_at"] != stored.str("updated_at") || g["stack_name"] != nil {
			t.Errorf("the failed grant: %v, stored %s", g, stored.raw)
		}

		// Pages of one and two give the same list.
		for _, limit := range []string{"1", "2"} {
			if got := attentionKeys(e.attentionPages(t, nil, limit)); !slices.Equal(got, want) {
				t.Errorf("pages of %s: %v, want %v", limit, got, want)
			}
		}
		// Filters.
		for _, tc := range []struct {
			query url.Values
			want  []string
		}{
			{url.Values{"kind": {"grant"}}, want[2:]},
			{url.Values{"kind": {"stack"}}, want[:2]},
			{url.Values{"kind": {"pool_stack"}}, nil},
			{url.Values{"region": {"us-east-1"}}, want[1:2]},
			{url.Values{"region": {"eu-west-1"}, "kind": {"stack"}}, want[:1]},
		} {
			if got := attentionKeys(e.attentionPages(t, tc.query, "1")); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.query.Encode(), got, tc.want)
			}
		}
		// Bad input is a problem naming it.
		for _, q := range []string{
			"kind=tenant", "region=moon-1", "limit=0", "cursor=%21%21",
			"cursor=" + base64.RawURLEncoding.EncodeToString([]byte("\x02not a position")),
		} {
			e.do("GET", "/v1/attention?"+q, e.admin, nil).want(t, 400)
		}
		// The ISV admin's only.
		e.do("GET", "/v1/attention", e.tenantToken(calm, "profiles:read", "grants:write", "audit:read"), nil).want(t, 403)
		e.do("GET", "/v1/attention", "", nil).want(t, 401)

		// A retried stack leaves the list at once (it is being replaced).
		e.do("POST", "/v1/tenants/"+grow+"/stacks/us-east-1/retry", e.admin, nil).want(t, 202)
		if got := attentionKeys(e.attentionPages(t, nil, "")); !slices.Equal(got, []string{want[0], want[2]}) {
			t.Errorf("after a retry: %v", got)
		}
		e.waitStack(grow, "us-east-1", "ready")
	})
}
