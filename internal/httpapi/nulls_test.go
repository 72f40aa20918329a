package httpapi_test

import "testing"

// TestExplicitNullIsRefused: fields that are not nullable refuse null
// rather than silently taking their default.
func TestExplicitNullIsRefused(t *testing.T) {
	e := startEnv(t, "", t.TempDir())
	id := e.activeTenant("nulls")
	e.do("POST", "/v1/tenants/"+id+"/tokens", e.admin, `{"scopes":["profiles:read"],"ttl_seconds":null}`).want(t, 400)
	e.do("PATCH", "/v1/tenants/"+id, e.admin, `{"name":null}`).want(t, 400)
	if got := e.do("GET", "/v1/tenants/"+id, e.admin, nil).str("name"); got != "Tenant nulls" {
		t.Fatalf("name %q after refused PATCH", got)
	}
}
