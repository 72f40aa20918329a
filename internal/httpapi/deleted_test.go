package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
)

// pathSamples are valid values of the spec's path parameters other than
// tenant_id; a route with a parameter not listed here fails the test until
// a sample is added.
var pathSamples = map[string]string{
	"region":      "eu-west-1",
	"source_id":   "src_" + strings.Repeat("a", 26),
	"grant_id":    "grt_" + strings.Repeat("a", 26),
	"profile_id":  "prof_" + strings.Repeat("a", 26),
	"segment_id":  "seg_" + strings.Repeat("0", 26),
	"erasure_id":  "era_" + strings.Repeat("a", 26),
	"webhook_id":  "wh_" + strings.Repeat("a", 26),
	"delivery_id": "dlv_" + strings.Repeat("a", 26),
	"write_key":   "key",
	"query_id":    "qry_" + strings.Repeat("a", 26),
	"tenant_id":   "", // the test's tenant
	"placeholder": "",
}

type tenantOp struct {
	method, template, id string
	op                   *openapi3.Operation
}

// tenantOps returns every operation of the spec whose path has a
// {tenant_id}, read from the spec document itself so that a new route is
// covered without touching the test.
func tenantOps(t *testing.T) []tenantOp {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var ops []tenantOp
	for template, item := range doc.Paths.Map() {
		if !strings.Contains(template, "{tenant_id}") {
			continue
		}
		for method, op := range item.Operations() {
			ops = append(ops, tenantOp{method: method, template: template, id: op.OperationID, op: op})
		}
	}
	slices.SortFunc(ops, func(a, b tenantOp) int { return strings.Compare(a.id, b.id) })
	return ops
}

// path fills the template with the tenant and the samples.
func (o tenantOp) path(t *testing.T, tenant string) string {
	t.Helper()
	p := strings.ReplaceAll(o.template, "{tenant_id}", tenant)
	for {
		i := strings.Index(p, "{")
		if i < 0 {
			return p
		}
		j := strings.Index(p[i:], "}")
		name := p[i+1 : i+j]
		v, ok := pathSamples[name]
		if !ok || v == "" {
			t.Fatalf("%s: no sample for path parameter %s; add one to pathSamples", o.id, name)
		}
		p = p[:i] + v + p[i+j+1:]
	}
}

// TestDeletedTenantRefusesChanges: on a deleted tenant, every mutating
// operation of the spec under /v1/tenants/{tenant_id} answers one 409
// tenant-deleted problem to an admin token (a tenant token of a deleted
// tenant is refused at the gate already), the spec lists that 409, and
// nothing a read shows changes. Reads still answer, and say the tenant is
// deleted.
func TestDeletedTenantRefusesChanges(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("gone-co")
		base := "/v1/tenants/" + id
		e.do("POST", base+"/sources", e.admin, map[string]any{"name": "web"}).want(t, 201)
		e.do("POST", base+"/segments", e.admin, map[string]any{"name": "vip", "conditions": []any{
			map[string]any{"trait": "plan", "operator": "equals", "value": "gold"}}}).want(t, 201)
		e.do("POST", base+"/principals", e.admin, map[string]any{"principal": "123456789012"}).want(t, 201)
		tok := e.tenantToken(id, "profiles:write")
		e.do("DELETE", base, e.admin, nil).want(t, 202)
		e.waitStatus(id, "deleted")

		ops := tenantOps(t)
		// reads are the operations whose only path parameter is the
		// tenant: what they answer is the tenant's state.
		snapshot := func() map[string]string {
			out := map[string]string{}
			for _, o := range ops {
				if o.method != http.MethodGet || strings.Count(o.template, "{") != 1 {
					continue
				}
				r := e.do("GET", o.path(t, id), e.admin, nil)
				if r.status != 200 {
					continue // a problem carries its own request ID
				}
				out[o.id] = string(r.raw)
				if r.header.Get("Cairn-Tenant-Status") != "deleted" {
					t.Errorf("%s: a read of a deleted tenant does not say so (Cairn-Tenant-Status %q)", o.id, r.header.Get("Cairn-Tenant-Status"))
				}
			}
			return out
		}
		before := snapshot()
		mutating := 0
		for _, o := range ops {
			if o.method == http.MethodGet {
				continue
			}
			mutating++
			t.Run(o.id, func(t *testing.T) {
				if o.op.Responses.Status(http.StatusConflict) == nil {
					t.Errorf("%s %s: the spec lists no 409", o.method, o.template)
				}
				var body any
				if o.op.RequestBody != nil {
					body = map[string]any{}
				}
				r := e.do(o.method, o.path(t, id), e.admin, body, "Idempotency-Key", "k-"+o.id).want(t, 409)
				if r.str("type") != "urn:cairn:problem:tenant-deleted" || !strings.Contains(r.str("detail"), "offboarded") {
					t.Errorf("%s %s: problem %s, want tenant-deleted saying it was offboarded", o.method, o.template, r.raw)
				}
			})
		}
		if mutating < 20 {
			t.Fatalf("only %d mutating operations found in the spec", mutating)
		}
		after := snapshot()
		for op, b := range before {
			if after[op] != b {
				t.Errorf("%s changed:\nbefore %s\nafter  %s", op, b, after[op])
			}
		}
		// The tenant's own token is refused at the gate.
		e.do("POST", base+"/events", tok, map[string]any{"batch": []any{}}).want(t, 401)
	})
}

// TestDeprovisioningTenantRefusesChanges: while a tenant is being
// offboarded, every mutating operation but its own lifecycle (the DELETE a
// client may repeat, a retry, which the tenants service judges) answers
// one 409 tenant-deprovisioning problem, and reads say the status.
func TestDeprovisioningTenantRefusesChanges(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		// A "stuck-" tenant's dedicated stack never finishes deleting.
		id := e.onboard("stuck-co", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		e.waitStatus(id, "active")
		base := "/v1/tenants/" + id
		e.do("DELETE", base, e.admin, nil).want(t, 202)
		e.waitStatus(id, "deprovisioning")

		lifecycle := map[string]bool{"deleteTenant": true, "retryTenant": true}
		refused := 0
		for _, o := range tenantOps(t) {
			if o.method == http.MethodGet || lifecycle[o.id] {
				continue
			}
			refused++
			t.Run(o.id, func(t *testing.T) {
				var body any
				if o.op.RequestBody != nil {
					body = map[string]any{}
				}
				r := e.do(o.method, o.path(t, id), e.admin, body, "Idempotency-Key", "k-"+o.id).want(t, 409)
				if r.str("type") != "urn:cairn:problem:tenant-deprovisioning" {
					t.Errorf("%s %s: problem %s, want tenant-deprovisioning", o.method, o.template, r.raw)
				}
			})
		}
		if refused < 20 {
			t.Fatalf("only %d mutating operations refused", refused)
		}
		// Its lifecycle is the tenants service's to judge: not this refusal.
		for _, r := range []resp{e.do("DELETE", base, e.admin, nil), e.do("POST", base+"/retry", e.admin, nil)} {
			if r.str("type") == "urn:cairn:problem:tenant-deprovisioning" {
				t.Errorf("a lifecycle route refused as deprovisioning: %s", r.raw)
			}
		}
		if r := e.do("GET", base+"/sources", e.admin, nil).want(t, 200); r.header.Get("Cairn-Tenant-Status") != "deprovisioning" {
			t.Errorf("a read of a tenant being offboarded does not say so (Cairn-Tenant-Status %q)", r.header.Get("Cairn-Tenant-Status"))
		}
		if got := e.do("GET", base, e.admin, nil).want(t, 200).str("status"); got != "deprovisioning" {
			t.Fatalf("status %s after the refusals, want deprovisioning", got)
		}
	})
}

// TestOffboardingProgress reads a tenant's offboarding as it goes: the
// revocations and the purge finished, the stacks' teardown pending while a
// "stuck-" tenant's stack never finishes deleting.
func TestOffboardingProgress(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.onboard("stuck-progress", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		if r := e.waitStatus(id, "active"); r.body["offboarding"] != nil {
			t.Errorf("an active tenant shows offboarding progress: %s", r.raw)
		}
		e.do("DELETE", "/v1/tenants/"+id, e.admin, nil).want(t, 202)
		deadline := time.After(waitLimit)
		for {
			r := e.do("GET", "/v1/tenants/"+id, e.admin, nil).want(t, 200)
			p, _ := r.body["offboarding"].(map[string]any)
			var done []string
			if p != nil {
				for _, d := range p["done"].([]any) {
					step := d.(map[string]any)
					if _, err := time.Parse(time.RFC3339, step["finished_at"].(string)); err != nil {
						t.Errorf("step %v: finished_at %v", step["step"], err)
					}
					done = append(done, step["step"].(string))
				}
			}
			if len(done) == 3 {
				if want := []string{"revoke_grants", "revoke_sources", "purge_profiles"}; !slices.Equal(done, want) {
					t.Errorf("done %v, want %v", done, want)
				}
				if pending := p["pending"].([]any); len(pending) != 1 || pending[0] != "teardown_stacks" {
					t.Errorf("pending %v, want the stacks' teardown", pending)
				}
				if r.str("status") != "deprovisioning" {
					t.Errorf("status %s, want deprovisioning", r.str("status"))
				}
				return
			}
			select {
			case <-e.jobDone:
			case <-deadline:
				t.Fatalf("offboarding progress %v; waited for the first three steps", r.body["offboarding"])
			}
		}
	})
}
