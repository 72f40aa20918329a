package httpapi_test

import (
	"strings"
	"testing"
)

// TestIdentityConfigBlockedValuesBounded: a configuration whose blocked
// regular expressions would compile to huge programs (an abuse probe: 100
// expressions of ".{1,1000}" repeated 45 times, each within the spec's
// 500 bytes) is a 400 naming the first offending value, and stores nothing.
func TestIdentityConfigBlockedValuesBounded(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.onboard("probe-co").want(t, 202).str("id")
		path := "/v1/tenants/" + id + "/identity-config"
		probe := make([]string, 100)
		for i := range probe {
			probe[i] = "/" + strings.Repeat(".{1,1000}", 45) + "/"
		}
		rules := []any{
			map[string]any{"type": "user_id", "priority": 1, "limit": 1},
			map[string]any{"type": "email", "priority": 2, "limit": 5, "blocked": probe},
		}
		r := e.do("PUT", path, e.admin, map[string]any{"identifiers": rules}).want(t, 400)
		if f := soleField(t, r); f != "identifiers/1/blocked/0" {
			t.Fatalf("field %q, want identifiers/1/blocked/0: %s", f, r.raw)
		}
		got := e.do("GET", path, e.admin, nil).want(t, 200)
		if strings.Contains(string(got.raw), "1000") {
			t.Fatalf("the refused config was stored: %s", got.raw)
		}
		rules[1] = map[string]any{"type": "email", "priority": 2, "limit": 5, "blocked": []string{`/@example\.test$/`}}
		e.do("PUT", path, e.admin, map[string]any{"identifiers": rules}).want(t, 200)
	})
}

// TestSegmentEventsWithoutMessageIDOrWithDuplicateNames: over HTTP, an
// event without messageId is accepted (and given one), and an event with a
// duplicate name is refused on its own, naming the member.
func TestSegmentEventsWithoutMessageIDOrWithDuplicateNames(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("msgid-co")
		key := e.source(id, "server")
		r := e.segment("/v1/track", key, `{"userId":"u1","event":"Signed Up"}`).want(t, 200)
		if r.body["accepted"].(float64) != 1 {
			t.Fatalf("event without messageId: %s", r.raw)
		}
		r = e.segment("/v1/batch", key, `{"batch":[
			{"type":"track","userId":"u1","event":"Ok"},
			{"type":"identify","userId":"u1","traits":{"plan":"pro","plan":"free"}},
			{"type":"identify","userId":"u1","traits":{"age":1e400}}]}`).want(t, 200)
		errs, _ := r.body["errors"].([]any)
		if r.body["accepted"].(float64) != 1 || len(errs) != 2 {
			t.Fatalf("batch: %s", r.raw)
		}
		for i, want := range []string{"traits.plan", "traits.age"} {
			if f := errs[i].(map[string]any)["field"]; f != want {
				t.Fatalf("error %d names %v, want %s: %s", i, f, want, r.raw)
			}
		}
	})
}
