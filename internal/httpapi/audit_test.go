package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
)

// auditExempt lists the mutating operations that record no audit event,
// each with its reason; every other POST, PUT, PATCH and DELETE of the
// spec must be a step of TestAuditTrail. The ingestion operations (the
// spec marks them x-cairn-ingest) are exempt too, found from the spec: the
// raw zone keeps every event they accept, unchanged, which is their
// record.
var auditExempt = map[string]string{
	"previewSegment":  "evaluates a definition against the profiles and changes nothing",
	"createLakeQuery": "runs a read-only query over the tenant's own lake and changes no data; the query is its own record, listed with its SQL and times",
	"cancelLakeQuery": "stops a read-only query of the tenant's own; the query keeps its cancelled state and time",
}

// mutatingOps returns the operation IDs of the spec's POST, PUT, PATCH and
// DELETE operations that must be audited, read from the spec document
// itself so that a new route fails TestAuditTrail until it records its
// event (or is exempted above, with a reason).
func mutatingOps(t *testing.T) []string {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			switch method {
			case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			default:
				continue
			}
			if op.Extensions["x-cairn-ingest"] == true || auditExempt[op.OperationID] != "" {
				continue
			}
			ops = append(ops, op.OperationID)
		}
	}
	slices.Sort(ops)
	return ops
}

// auditWant is the one event a request must record.
type auditWant struct {
	action, targetType, targetID, tenant, actor string
}

// auditStep drives one operation with a minimal valid request.
type auditStep struct {
	op     string
	status int
	do     func() resp
	// want is the event, given the response (for IDs the request made).
	want func(r resp) auditWant
}

// auditEvents reads the whole audit trail, page by page, as token sees it.
func (e *env) auditEvents(token, query string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	cursor := ""
	for range 1000 {
		q := "limit=7&" + query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.do("GET", "/v1/audit-events?"+q, token, nil).want(e.t, 200)
		for _, it := range r.body["items"].([]any) {
			out = append(out, it.(map[string]any))
		}
		next, _ := r.body["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
	e.t.Fatal("the audit trail's pages never end")
	return nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// TestAuditTrail drives every mutating operation of the spec once and
// checks each recorded exactly one audit event, found by the request's ID,
// naming the right action, target, tenant and actor. Then the trail's
// filters, its paging, its NDJSON export and its tenant isolation are
// checked on what those requests recorded.
func TestAuditTrail(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		hookURL, _ := hookReceiver(t)

		// The tenants and resources the steps act on.
		a := e.activeTenant("audit-a")
		other := e.activeTenant("audit-other")
		failing := e.onboard("fail-audit-t", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		failingStack := e.onboard("fail-audit-s", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		e.waitStatus(failing, "failed")
		e.waitStatus(failingStack, "failed")
		tok := e.tenantToken(a, "profiles:read", "profiles:write", "events:write", "segments:write", "webhooks:write", "grants:write")
		asTenant := "tenant:" + a
		base := "/v1/tenants/" + a
		glue := outputsOf(stacksOf(t, e, a)["eu-west-1"])["glue_database"].(string)
		e.do("POST", base+"/principals", e.admin, map[string]any{"principal": "210987654321"}).want(t, 201)
		e.do("POST", base+"/events", tok, map[string]any{"batch": []any{
			segEvent("identify", "n1", map[string]any{"anonymousId": "a1", "traits": map[string]any{"email": "m@example.com"}}),
			segEvent("identify", "n2", map[string]any{"userId": "u1", "traits": map[string]any{"plan": "pro"}}),
			segEvent("identify", "n3", map[string]any{"userId": "u1", "traits": map[string]any{"email": "m@example.com"}}),
		}}).want(t, 200)
		survivor := e.do("GET", base+"/profiles?identifier=user_id:u1", tok, nil).want(t, 200)
		profile, merged := survivor.str("id"), survivor.body["merged_profile_ids"].([]any)[0].(string)
		code, _, err := e.auth.MintSignIn()
		if err != nil {
			t.Fatal(err)
		}

		var (
			created, grant, source, segment, hook, delivery, fleetHook, fleetDelivery, rollout string
		)
		same := func(action, typ, id, tenant, actor string) func(resp) auditWant {
			return func(resp) auditWant { return auditWant{action, typ, id, tenant, actor} }
		}
		made := func(action, typ, tenant, actor string, keep *string) func(resp) auditWant {
			return func(r resp) auditWant {
				*keep = r.str("id")
				return auditWant{action, typ, r.str("id"), tenant, actor}
			}
		}
		steps := []auditStep{
			{"putPlan", 201, func() resp {
				return e.do("PUT", "/v1/plans/audit-gold", e.admin, map[string]any{"limits": map[string]any{"segments": 3}})
			}, same("plan.create", "plan", "audit-gold", "", "admin")},
			{"createTenant", 202, func() resp {
				return e.do("POST", "/v1/tenants", e.admin, map[string]any{"name": "Audit B", "slug": "audit-b", "tier": "pooled", "home_region": "eu-west-1"})
			}, func(r resp) auditWant {
				created = r.str("id")
				return auditWant{"tenant.create", "tenant", created, created, "admin"}
			}},
			{"updateTenant", 200, func() resp {
				return e.do("PATCH", "/v1/tenants/"+created, e.admin, map[string]any{"name": "Audit B2"})
			}, func(resp) auditWant { return auditWant{"tenant.update", "tenant", created, created, "admin"} }},
			{"suspendTenant", 200, func() resp { return e.do("POST", base+"/suspend", e.admin, nil) },
				same("tenant.suspend", "tenant", a, a, "admin")},
			{"resumeTenant", 200, func() resp { return e.do("POST", base+"/resume", e.admin, nil) },
				same("tenant.resume", "tenant", a, a, "admin")},
			{"retryTenant", 202, func() resp { return e.do("POST", "/v1/tenants/"+failing+"/retry", e.admin, nil) },
				same("tenant.retry", "tenant", failing, failing, "admin")},
			{"retryStack", 202, func() resp {
				return e.do("POST", "/v1/tenants/"+failingStack+"/stacks/eu-west-1/retry", e.admin, nil)
			}, same("stack.retry", "stack", failingStack+"/eu-west-1", failingStack, "admin")},
			{"migrateTenant", 202, func() resp {
				return e.do("POST", "/v1/tenants/"+other+"/migrate", e.admin, map[string]any{"tier": "dedicated"})
			}, func(r resp) auditWant { return auditWant{"tenant.migrate", "migration", r.str("id"), other, "admin"} }},
			{"createTenantToken", 201, func() resp {
				return e.do("POST", base+"/tokens", e.admin, map[string]any{"scopes": []string{"profiles:read"}})
			}, same("token.mint", "tenant", a, a, "admin")},
			{"signIn", 200, func() resp { return e.do("POST", "/v1/sign-in", "", map[string]any{"code": code}) },
				same("token.mint", "admin", "admin", "", "sign-in")},
			{"registerPrincipal", 201, func() resp {
				return e.do("POST", base+"/principals", e.admin, map[string]any{"principal": "arn:aws:iam::123456789012:role/audit"})
			}, same("principal.register", "principal", "arn:aws:iam::123456789012:role/audit", a, "admin")},
			{"removePrincipal", 204, func() resp {
				return e.do("DELETE", base+"/principals", e.admin, map[string]any{"principal": "210987654321"})
			}, same("principal.remove", "principal", "210987654321", a, "admin")},
			{"createGrant", 202, func() resp {
				return e.do("POST", base+"/grants", tok, map[string]any{"principal": "arn:aws:iam::123456789012:role/audit",
					"resource": map[string]any{"region": "eu-west-1", "database": glue}, "permissions": []string{"DESCRIBE"}})
			}, made("grant.create", "grant", a, asTenant, &grant)},
			{"reconcileGrants", 200, func() resp { return e.do("POST", base+"/grants/reconcile", tok, nil) },
				same("grant.reconcile", "tenant", a, a, asTenant)},
			{"revokeGrant", 202, func() resp { return e.do("DELETE", base+"/grants/"+grant, tok, nil) },
				func(resp) auditWant { return auditWant{"grant.revoke", "grant", grant, a, asTenant} }},
			{"createCredentials", 201, func() resp { return e.do("POST", base+"/credentials", tok, nil) },
				func(r resp) auditWant { return auditWant{"credentials.issue", "role", r.str("role_arn"), a, asTenant} }},
			{"createSource", 201, func() resp { return e.do("POST", base+"/sources", tok, map[string]any{"name": "web"}) },
				made("source.create", "source", a, asTenant, &source)},
			{"updateSource", 200, func() resp {
				return e.do("PATCH", base+"/sources/"+source, tok, map[string]any{"allowed_origins": []string{"https://shop.example"}})
			}, func(resp) auditWant { return auditWant{"source.update", "source", source, a, asTenant} }},
			{"rotateSource", 200, func() resp { return e.do("POST", base+"/sources/"+source+"/rotate", tok, nil) },
				func(resp) auditWant { return auditWant{"source.rotate", "source", source, a, asTenant} }},
			{"revokeSource", 200, func() resp { return e.do("DELETE", base+"/sources/"+source, tok, nil) },
				func(resp) auditWant { return auditWant{"source.revoke", "source", source, a, asTenant} }},
			{"putIdentityConfig", 200, func() resp {
				return e.do("PUT", base+"/identity-config", tok, map[string]any{"identifiers": []any{
					map[string]any{"type": "user_id", "priority": 1, "limit": 1}, map[string]any{"type": "email", "priority": 2, "limit": 5}}})
			}, same("identity_config.put", "identity_config", a, a, asTenant)},
			{"unmergeProfile", 200, func() resp {
				return e.do("POST", base+"/profiles/"+profile+"/unmerge", tok, map[string]any{"profile_id": merged})
			}, same("profile.unmerge", "profile", profile, a, asTenant)},
			{"eraseProfile", 202, func() resp { return e.do("DELETE", base+"/profiles/"+profile, tok, nil) },
				same("profile.erase", "profile", profile, a, asTenant)},
			{"createSegment", 201, func() resp {
				return e.do("POST", base+"/segments", tok, map[string]any{"name": "vip", "conditions": []any{
					map[string]any{"trait": "plan", "operator": "equals", "value": "gold"}}})
			}, made("segment.create", "segment", a, asTenant, &segment)},
			{"updateSegment", 200, func() resp {
				return e.do("PATCH", base+"/segments/"+segment, tok, map[string]any{"description": "gold plans"})
			}, func(resp) auditWant { return auditWant{"segment.update", "segment", segment, a, asTenant} }},
			{"recomputeSegment", 202, func() resp { return e.do("POST", base+"/segments/"+segment+"/recompute", tok, nil) },
				func(resp) auditWant { return auditWant{"segment.recompute", "segment", segment, a, asTenant} }},
			{"deleteSegment", 204, func() resp { return e.do("DELETE", base+"/segments/"+segment, tok, nil) },
				func(resp) auditWant { return auditWant{"segment.delete", "segment", segment, a, asTenant} }},
			{"createWebhook", 201, func() resp {
				return e.do("POST", base+"/webhooks", tok, map[string]any{"url": hookURL, "event_types": []string{"profile.created"}})
			}, made("webhook.create", "webhook", a, asTenant, &hook)},
			{"updateWebhook", 200, func() resp {
				return e.do("PATCH", base+"/webhooks/"+hook, tok, map[string]any{"description": "CRM"})
			}, func(resp) auditWant { return auditWant{"webhook.update", "webhook", hook, a, asTenant} }},
			{"rotateWebhookSecret", 200, func() resp { return e.do("POST", base+"/webhooks/"+hook+"/rotate-secret", tok, nil) },
				func(resp) auditWant { return auditWant{"webhook.rotate_secret", "webhook", hook, a, asTenant} }},
			{"testWebhook", 202, func() resp { return e.do("POST", base+"/webhooks/"+hook+"/test", tok, nil) },
				func(r resp) auditWant {
					delivery = r.str("id")
					return auditWant{"webhook.test", "webhook", hook, a, asTenant}
				}},
			{"redeliverWebhook", 202, func() resp {
				return e.do("POST", base+"/webhooks/"+hook+"/deliveries/"+delivery+"/redeliver", tok, nil)
			}, func(resp) auditWant { return auditWant{"webhook.redeliver", "webhook_delivery", delivery, a, asTenant} }},
			{"recoverWebhook", 202, func() resp {
				return e.do("POST", base+"/webhooks/"+hook+"/recover", tok, map[string]any{"since": "2020-01-01T00:00:00Z"})
			}, func(resp) auditWant { return auditWant{"webhook.recover", "webhook", hook, a, asTenant} }},
			{"deleteWebhook", 204, func() resp { return e.do("DELETE", base+"/webhooks/"+hook, tok, nil) },
				func(resp) auditWant { return auditWant{"webhook.delete", "webhook", hook, a, asTenant} }},
			{"createFleetWebhook", 201, func() resp {
				return e.do("POST", "/v1/webhooks", e.admin, map[string]any{"url": hookURL, "event_types": []string{"tenant.deleted"}})
			}, made("webhook.create", "webhook", "", "admin", &fleetHook)},
			{"updateFleetWebhook", 200, func() resp {
				return e.do("PATCH", "/v1/webhooks/"+fleetHook, e.admin, map[string]any{"description": "ops"})
			}, func(resp) auditWant { return auditWant{"webhook.update", "webhook", fleetHook, "", "admin"} }},
			{"rotateFleetWebhookSecret", 200, func() resp { return e.do("POST", "/v1/webhooks/"+fleetHook+"/rotate-secret", e.admin, nil) },
				func(resp) auditWant { return auditWant{"webhook.rotate_secret", "webhook", fleetHook, "", "admin"} }},
			{"testFleetWebhook", 202, func() resp { return e.do("POST", "/v1/webhooks/"+fleetHook+"/test", e.admin, nil) },
				func(r resp) auditWant {
					fleetDelivery = r.str("id")
					return auditWant{"webhook.test", "webhook", fleetHook, "", "admin"}
				}},
			{"redeliverFleetWebhook", 202, func() resp {
				return e.do("POST", "/v1/webhooks/"+fleetHook+"/deliveries/"+fleetDelivery+"/redeliver", e.admin, nil)
			}, func(resp) auditWant {
				return auditWant{"webhook.redeliver", "webhook_delivery", fleetDelivery, "", "admin"}
			}},
			{"recoverFleetWebhook", 202, func() resp {
				return e.do("POST", "/v1/webhooks/"+fleetHook+"/recover", e.admin, map[string]any{"since": "2020-01-01T00:00:00Z"})
			}, func(resp) auditWant { return auditWant{"webhook.recover", "webhook", fleetHook, "", "admin"} }},
			{"deleteFleetWebhook", 204, func() resp { return e.do("DELETE", "/v1/webhooks/"+fleetHook, e.admin, nil) },
				func(resp) auditWant { return auditWant{"webhook.delete", "webhook", fleetHook, "", "admin"} }},
			{"createRollout", 201, func() resp {
				return e.do("POST", "/v1/rollouts", e.admin, map[string]any{"selector": map[string]any{"tier": "pooled"}})
			}, made("rollout.create", "rollout", "", "admin", &rollout)},
			{"pauseRollout", 200, func() resp { return e.do("POST", "/v1/rollouts/"+rollout+"/pause", e.admin, nil) },
				func(resp) auditWant { return auditWant{"rollout.pause", "rollout", rollout, "", "admin"} }},
			{"resumeRollout", 200, func() resp { return e.do("POST", "/v1/rollouts/"+rollout+"/resume", e.admin, nil) },
				func(resp) auditWant { return auditWant{"rollout.resume", "rollout", rollout, "", "admin"} }},
			{"approveRollout", 200, func() resp {
				// The pool's change set replaces its raw bucket: the
				// rollout halts for approval.
				e.waitRollout(rollout, "halted")
				return e.do("POST", "/v1/rollouts/"+rollout+"/approve", e.admin, nil)
			}, func(resp) auditWant { return auditWant{"rollout.approve", "rollout", rollout, "", "admin"} }},
			{"abortRollout", 200, func() resp { return e.do("POST", "/v1/rollouts/"+rollout+"/abort", e.admin, nil) },
				func(resp) auditWant { return auditWant{"rollout.abort", "rollout", rollout, "", "admin"} }},
			{"deleteTenant", 202, func() resp { return e.do("DELETE", "/v1/tenants/"+created, e.admin, nil) },
				func(resp) auditWant { return auditWant{"tenant.delete", "tenant", created, created, "admin"} }},
		}

		// Every mutating operation of the spec is a step, and no step is
		// for an operation the spec does not have.
		var stepOps []string
		for _, s := range steps {
			stepOps = append(stepOps, s.op)
		}
		slices.Sort(stepOps)
		if want := mutatingOps(t); !slices.Equal(stepOps, want) {
			for _, op := range want {
				if !slices.Contains(stepOps, op) {
					t.Errorf("%s changes state but has no audit step: add one to TestAuditTrail (or a reasoned exemption to auditExempt)", op)
				}
			}
			for _, op := range stepOps {
				if !slices.Contains(want, op) {
					t.Errorf("step %s is not a mutating operation of the spec", op)
				}
			}
		}

		start := time.Now().UTC().Add(-time.Second)
		wants := map[string]auditWant{}
		var order []string
		for _, s := range steps {
			r := s.do()
			if r.status != s.status {
				t.Fatalf("%s: status %d, want %d: %s", s.op, r.status, s.status, r.raw)
			}
			rid := r.header.Get("X-Request-Id")
			if rid == "" {
				t.Fatalf("%s: no X-Request-Id", s.op)
			}
			wants[rid] = s.want(r)
			order = append(order, rid)
		}

		// Cairn's own jobs (actor cairn) may still be recording the ends of
		// the work these requests started: comparisons of one reading of
		// the trail with another leave those out.
		stable := func(evs []map[string]any) []map[string]any {
			var out []map[string]any
			for _, ev := range evs {
				if str(ev, "actor") != "cairn" {
					out = append(out, ev)
				}
			}
			return out
		}
		all := stable(e.auditEvents(e.admin, ""))
		byRequest := map[string][]map[string]any{}
		for _, ev := range all {
			byRequest[str(ev, "request_id")] = append(byRequest[str(ev, "request_id")], ev)
		}
		for i, rid := range order {
			w, op := wants[rid], steps[i].op
			got := byRequest[rid]
			if len(got) != 1 {
				t.Errorf("%s (request %s): %d audit events, want exactly 1: %v", op, rid, len(got), got)
				continue
			}
			ev := got[0]
			have := auditWant{str(ev, "action"), str(ev, "target_type"), str(ev, "target_id"), str(ev, "tenant_id"), str(ev, "actor")}
			if have != w || str(ev, "outcome") == "" || str(ev, "resource") != w.targetID {
				t.Errorf("%s: event %v, want %+v", op, ev, w)
			}
		}

		// Filters: each keeps exactly the events that match it.
		check := func(name, query string, keep func(map[string]any) bool) {
			t.Helper()
			var want []string
			for _, ev := range all {
				if keep(ev) {
					want = append(want, str(ev, "id"))
				}
			}
			var got []string
			for _, ev := range stable(e.auditEvents(e.admin, query)) {
				got = append(got, str(ev, "id"))
			}
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("filter %s (%s): %v, want %v (non-empty)", name, query, got, want)
			}
		}
		check("tenant", "tenant_id="+a, func(ev map[string]any) bool { return str(ev, "tenant_id") == a })
		check("actor", "actor="+url.QueryEscape(asTenant), func(ev map[string]any) bool { return str(ev, "actor") == asTenant })
		check("action", "action=webhook.create", func(ev map[string]any) bool { return str(ev, "action") == "webhook.create" })
		check("tenant and action", "tenant_id="+a+"&action=source.rotate", func(ev map[string]any) bool {
			return str(ev, "tenant_id") == a && str(ev, "action") == "source.rotate"
		})
		at := func(ev map[string]any) time.Time {
			t.Helper()
			tm, err := time.Parse(time.RFC3339Nano, str(ev, "time"))
			if err != nil {
				t.Fatalf("event time %q: %v", str(ev, "time"), err)
			}
			return tm
		}
		mid := at(all[len(all)/2])
		bound := url.QueryEscape(mid.Format(time.RFC3339Nano))
		check("from", "from="+bound, func(ev map[string]any) bool { return !at(ev).Before(mid) })
		check("to", "to="+bound, func(ev map[string]any) bool { return at(ev).Before(mid) })
		if got := e.auditEvents(e.admin, "from="+url.QueryEscape(start.Add(-time.Hour).Format(time.RFC3339))+"&to="+url.QueryEscape(start.Add(-time.Minute).Format(time.RFC3339))); len(got) != 0 {
			t.Errorf("a time range before the test holds %d events", len(got))
		}
		e.do("GET", "/v1/audit-events?from=yesterday", e.admin, nil).want(t, 400)

		// The export is the filtered trail, one JSON object a line.
		export := func(token, query string) []map[string]any {
			t.Helper()
			// Not e.do, which reads a body starting with "{" as one object.
			req, err := http.NewRequest("GET", e.url+"/v1/audit-events/export?"+query, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("export: %d %q: %s", res.StatusCode, res.Header.Get("Content-Type"), raw)
			}
			var out []map[string]any
			sc := bufio.NewScanner(bytes.NewReader(raw))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var ev map[string]any
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatalf("export line %q: %v", sc.Text(), err)
				}
				out = append(out, ev)
			}
			if len(raw) > 0 && !bytes.HasSuffix(raw, []byte("\n")) {
				t.Errorf("export does not end with a newline")
			}
			return out
		}
		if got := stable(export(e.admin, "")); !jsonEqual(t, got, all) {
			t.Errorf("export of everything differs from the list:\n%v\n%v", got, all)
		}
		if got, want := export(e.admin, "tenant_id="+a+"&action=webhook.test"), e.auditEvents(e.admin, "tenant_id="+a+"&action=webhook.test"); len(want) != 1 || !jsonEqual(t, got, want) {
			t.Errorf("filtered export %v, want %v", got, want)
		}

		// A tenant reads its own trail only, with audit:read.
		reader := e.tenantToken(a, "audit:read")
		mine := stable(e.auditEvents(reader, ""))
		if want := stable(e.auditEvents(e.admin, "tenant_id="+a)); len(mine) == 0 || !jsonEqual(t, mine, want) {
			t.Errorf("tenant's own trail: %d events, want the %d of its tenant", len(mine), len(want))
		}
		for _, ev := range export(reader, "") {
			if str(ev, "tenant_id") != a {
				t.Errorf("a tenant's export shows another tenant's event: %v", ev)
			}
		}
		for _, path := range []string{"/v1/audit-events?tenant_id=" + other, "/v1/audit-events/export?tenant_id=" + other, "/v1/audit-events?tenant_id=" + created} {
			e.do("GET", path, reader, nil).want(t, 404)
		}
		r := e.do("GET", "/v1/audit-events", e.tenantToken(a, "profiles:read", "grants:write"), nil).want(t, 403)
		if !strings.Contains(r.str("detail"), "audit:read") {
			t.Errorf("403 does not name audit:read: %s", r.raw)
		}
		e.do("GET", "/v1/audit-events/export", e.tenantToken(a, "profiles:read"), nil).want(t, 403)
	})
}

// jsonEqual compares two lists of decoded JSON objects.
func jsonEqual(t *testing.T, a, b []map[string]any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}
