package httpapi_test

import (
	"testing"
)

// TestQueriesNeedTheEngine: without a query engine (a server given no
// query service) a query is refused with a 501 problem saying why, the
// list is empty and a query is not found; the routes take the lake:query
// scope.
func TestQueriesNeedTheEngine(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("queries-aws")
		tok := e.tenantToken(id, "lake:query")
		r := e.do("POST", "/v1/tenants/"+id+"/queries", tok, map[string]any{"sql": "SELECT 1"}).want(t, 501)
		if r.str("type") != "urn:cairn:problem:queries-unavailable" {
			t.Errorf("501: %s", r.raw)
		}
		if r := e.do("GET", "/v1/tenants/"+id+"/queries", tok, nil).want(t, 200); len(r.body["items"].([]any)) != 0 {
			t.Errorf("list: %s", r.raw)
		}
		e.do("GET", "/v1/tenants/"+id+"/queries/qry_aaaaaaaaaaaaaaaaaaaaaaaaaa", tok, nil).want(t, 404)
		e.do("POST", "/v1/tenants/"+id+"/queries", e.tenantToken(id, "usage:read"), map[string]any{"sql": "SELECT 1"}).want(t, 403)
	})
}
