package httpapi_test

import (
	"strings"
	"testing"
)

// A request wrong in several fields hears of each, once, and an unknown
// Region is named without the list of every Region.
func TestValidationListsEveryField(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		r := e.do("POST", "/v1/tenants", e.admin, map[string]any{
			"name": "Acme", "slug": "A B", "tier": "gold", "home_region": "mars-1",
		}).want(t, 400)
		errs, _ := r.body["errors"].([]any)
		got := map[string]string{}
		for _, x := range errs {
			f, _ := x.(map[string]any)
			field, _ := f["field"].(string)
			msg, _ := f["message"].(string)
			if _, dup := got[field]; dup {
				t.Errorf("%s listed twice: %s", field, r.raw)
			}
			got[field] = msg
		}
		for _, field := range []string{"/slug", "/tier", "/home_region"} {
			if got[field] == "" {
				t.Errorf("no error for %s: %s", field, r.raw)
			}
		}
		if len(got) != 3 {
			t.Errorf("errors %v, want exactly /slug, /tier and /home_region", got)
		}
		if msg := got["/home_region"]; !strings.Contains(msg, `"mars-1"`) || strings.Contains(msg, "eu-west-1") {
			t.Errorf("the unknown Region's message: %q, want it named without the list", msg)
		}
		if d := r.str("detail"); strings.Contains(d, "eu-west-1") || !strings.Contains(d, "2 more") {
			t.Errorf("detail %q: want the first error and how many more, without the Region list", d)
		}
		// One wrong field: the detail is that field's message alone.
		one := e.do("POST", "/v1/tenants", e.admin, map[string]any{
			"name": "Acme", "slug": "acme", "tier": "gold", "home_region": "eu-west-1",
		}).want(t, 400)
		if one.str("detail") != `/tier: value is not one of the allowed values ["pooled","dedicated"]` {
			t.Errorf("one wrong field: detail %q", one.str("detail"))
		}
	})
}
