package httpapi_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
	"github.com/cairn-cdp/cairn/internal/httpapi"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// tenantRoute is one operation under /v1/tenants/{tenant_id}.
type tenantRoute struct {
	method, path string
	// tenantAccess is true when some tenant token may call the route (for
	// its own tenant); false for admin-only routes.
	tenantAccess bool
}

// tenantRoutes reads every tenant-scoped operation from the spec, so routes
// that later issues add join the isolation matrix without being listed.
func tenantRoutes(t *testing.T) []tenantRoute {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var out []tenantRoute
	for path, item := range doc.Paths.Map() {
		if !strings.Contains(path, "{tenant_id}") {
			continue
		}
		for method, op := range item.Operations() {
			need, err := httpapi.Scopes(doc, op)
			if err != nil {
				t.Fatal(err)
			}
			access := need == nil || slices.ContainsFunc(need, func(alt []string) bool {
				return !slices.Contains(alt, "admin")
			})
			out = append(out, tenantRoute{method: method, path: path, tenantAccess: access})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path+out[i].method < out[j].path+out[j].method })
	return out
}

var otherParam = regexp.MustCompile(`\{[a-z_]+\}`)

// TestCrossTenantMatrix calls every tenant-scoped route of tenant A with
// tenant B's token (all tenant scopes) and expects refusal: 404 where tenant
// tokens are admitted, so tenant IDs cannot be probed, and 403 on admin-only
// routes. Nothing about A may change.
func TestCrossTenantMatrix(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		a := e.activeTenant("tenant-a")
		b := e.activeTenant("tenant-b")
		bToken := e.tenantToken(b, "profiles:read", "profiles:write", "events:write", "segments:read", "segments:write", "webhooks:read", "webhooks:write", "grants:write")
		before := e.do("GET", "/v1/tenants/"+a, e.admin, nil).want(t, 200)

		routes := tenantRoutes(t)
		if len(routes) < 7 {
			t.Fatalf("found only %d tenant routes in the spec", len(routes))
		}
		for _, r := range routes {
			path := strings.ReplaceAll(r.path, "{tenant_id}", a)
			path = otherParam.ReplaceAllString(path, "x1")
			var body any
			if r.method == http.MethodPost || r.method == http.MethodPatch || r.method == http.MethodPut {
				body = map[string]any{}
			}
			want := http.StatusForbidden
			if r.tenantAccess {
				want = http.StatusNotFound
			}
			got := e.do(r.method, path, bToken, body)
			if got.status != want {
				t.Errorf("%s %s with another tenant's token: %d, want %d: %s", r.method, r.path, got.status, want, got.raw)
			}
			// B's token must not reach its own tenant's admin-only routes either.
			if !r.tenantAccess {
				own := otherParam.ReplaceAllString(strings.ReplaceAll(r.path, "{tenant_id}", b), "x1")
				if got := e.do(r.method, own, bToken, body); got.status != http.StatusForbidden {
					t.Errorf("%s %s with the tenant's own token: %d, want 403", r.method, r.path, got.status)
				}
			}
		}
		after := e.do("GET", "/v1/tenants/"+a, e.admin, nil).want(t, 200)
		if before.body["version"] != after.body["version"] || after.str("status") != "active" {
			t.Fatalf("tenant A changed: %s -> %s", before.raw, after.raw)
		}
	})
}

// TestSpecMatchesDomain keeps the spec's enums and patterns in step with
// the domain's rules.
func TestSpecMatchesDomain(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	var regions []string
	for _, v := range doc.Components.Schemas["Region"].Value.Enum {
		regions = append(regions, v.(string))
	}
	if !slices.Equal(regions, tenants.Regions) {
		t.Fatalf("spec Regions %v\ndomain Regions %v", regions, tenants.Regions)
	}
	var statuses []string
	for _, v := range doc.Components.Schemas["TenantStatus"].Value.Enum {
		statuses = append(statuses, v.(string))
	}
	for i, s := range tenants.Statuses {
		if statuses[i] != string(s) {
			t.Fatalf("spec statuses %v, domain %v", statuses, tenants.Statuses)
		}
	}
	idPattern := regexp.MustCompile(doc.Components.Schemas["TenantID"].Value.Pattern)
	if id := tenants.NewID(); !idPattern.MatchString(id) {
		t.Fatalf("NewID %q does not match the spec's TenantID pattern", id)
	}
}
