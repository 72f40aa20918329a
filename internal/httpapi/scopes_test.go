package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cairn-cdp/cairn/api"
	"github.com/cairn-cdp/cairn/internal/auth"
	"github.com/cairn-cdp/cairn/internal/httpapi"
)

// TestEveryScopeMeansSomething: every tenant scope a token can be minted
// with is the scope of at least one route, every scope the spec requires
// can be minted, and the security scheme's description says which routes
// each scope opens.
func TestEveryScopeMeansSomething(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string][]string{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			need, err := httpapi.Scopes(doc, op)
			if err != nil {
				t.Fatal(err)
			}
			for _, alt := range need {
				for _, s := range alt {
					used[s] = append(used[s], op.OperationID)
				}
			}
		}
	}
	desc := doc.Components.SecuritySchemes["bearerAuth"].Value.Description
	for _, s := range auth.TenantScopes() {
		if len(used[s]) == 0 {
			t.Errorf("scope %s can be minted but no route needs it", s)
		}
		if !strings.Contains(desc, "`"+s+"`") {
			t.Errorf("the bearerAuth description does not say what %s opens", s)
		}
	}
	for s, ops := range used {
		if s != auth.ScopeAdmin && !slices.Contains(auth.TenantScopes(), s) {
			t.Errorf("routes %v need %s, which no token can be minted with", ops, s)
		}
	}
}

// TestScopeOfEachRoute: a tenant token reaches a route with exactly its
// scope, and a token with every other scope is refused with a 403 that
// names the missing scope.
func TestScopeOfEachRoute(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("scoped-co")
		base := "/v1/tenants/" + id
		events := map[string]any{"batch": []any{segEvent("track", "s1", map[string]any{"userId": "u1", "event": "Signed Up"})}}
		seg := base + "/segments/" + e.do("POST", base+"/segments", e.admin, map[string]any{"name": "any-plan",
			"definition": map[string]any{"trait": "plan", "operator": "exists"}}).want(t, 201).str("id")
		preview := map[string]any{"definition": map[string]any{"trait": "plan", "operator": "exists"}}
		src := base + "/sources/" + e.do("POST", base+"/sources", e.admin, map[string]any{"name": "scoped"}).want(t, 201).str("id")
		tests := []struct {
			method, path string
			body         any
			scope        string // a tenant token needs this one
			also         string // or, if set, this one
			ok           int
		}{
			{"POST", base + "/events", events, auth.ScopeEventsWrite, "", 200},
			{"GET", base + "/sources", nil, auth.ScopeEventsWrite, "", 200},
			{"POST", base + "/sources", map[string]any{"name": "web"}, auth.ScopeEventsWrite, "", 201},
			{"GET", src, nil, auth.ScopeEventsWrite, "", 200},
			{"GET", base + "/identity-config", nil, auth.ScopeProfilesRead, "", 200},
			{"PUT", base + "/identity-config", map[string]any{"identifiers": []any{map[string]any{"type": "user_id", "priority": 1, "limit": 1}}}, auth.ScopeProfilesWrite, "", 200},
			{"GET", base + "/profiles?identifier=user_id:u1", nil, auth.ScopeProfilesRead, "", 200},
			{"GET", base + "/segments", nil, auth.ScopeSegmentsRead, auth.ScopeSegmentsWrite, 200},
			{"POST", base + "/segments/preview", preview, auth.ScopeSegmentsRead, auth.ScopeSegmentsWrite, 200},
			{"GET", seg + "/members", nil, auth.ScopeSegmentsRead, auth.ScopeSegmentsWrite, 200},
			{"PATCH", seg, map[string]any{"name": "renamed"}, auth.ScopeSegmentsWrite, "", 200},
			{"POST", seg + "/recompute", nil, auth.ScopeSegmentsWrite, "", 202},
			{"GET", base + "/grants", nil, auth.ScopeGrantsWrite, "", 200},
			{"GET", base + "/webhooks", nil, auth.ScopeWebhooksRead, auth.ScopeWebhooksWrite, 200},
			{"POST", base + "/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "event_types": []string{"profile.created"}}, auth.ScopeWebhooksWrite, "", 201},
			{"GET", "/v1/audit-events", nil, auth.ScopeAuditRead, "", 200},
			{"GET", "/v1/audit-events/export", nil, auth.ScopeAuditRead, "", 200},
		}
		for _, tc := range tests {
			t.Run(tc.method+" "+strings.TrimPrefix(tc.path, base), func(t *testing.T) {
				var others []string
				for _, s := range auth.TenantScopes() {
					if s != tc.scope && s != tc.also {
						others = append(others, s)
					}
				}
				r := e.do(tc.method, tc.path, e.tenantToken(id, others...), tc.body).want(t, http.StatusForbidden)
				if r.str("type") != "urn:cairn:problem:forbidden" || !strings.Contains(r.str("detail"), tc.scope) ||
					(tc.also != "" && !strings.Contains(r.str("detail"), tc.also)) {
					t.Errorf("403 does not name the missing scope %s: %s", tc.scope, r.raw)
				}
				e.do(tc.method, tc.path, e.tenantToken(id, tc.scope), tc.body).want(t, tc.ok)
			})
		}
	})
}
