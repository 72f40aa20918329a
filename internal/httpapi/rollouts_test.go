package httpapi_test

import (
	"strings"
	"testing"
)

// TestRollouts starts a rollout of the dedicated template's next version
// over the API and follows it to its end: GET shows its waves and each
// stack's state and change set summary; bad plans are 400, an overlap
// 409, nothing behind the version 422; pause, resume, approve and abort
// answer 409 where they do not apply; tenant tokens are refused.
func TestRollouts(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		var ids []string
		for _, slug := range []string{"roll-api-a", "roll-api-b", "roll-api-c"} {
			id := e.onboard(slug, map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
			e.waitStatus(id, "active")
			ids = append(ids, id)
		}
		for _, bad := range []map[string]any{
			{"waves": []int{50, 40}},
			{"waves": []int{50}},
			{"selector": map[string]any{"tier": "gold"}},
			{"template_versions": map[string]any{"dedicated": "000000000000"}},
		} {
			e.do("POST", "/v1/rollouts", e.admin, bad).want(t, 400)
		}
		e.do("POST", "/v1/rollouts", e.tenantToken(ids[0]), map[string]any{}).want(t, 403)
		e.do("GET", "/v1/rollouts/rol_aaaaaaaaaaaaaaaaaaaaaaaaaa", e.admin, nil).want(t, 404)

		r := e.do("POST", "/v1/rollouts", e.admin, map[string]any{
			"selector": map[string]any{"tier": "dedicated", "tenant_ids": ids},
			"waves":    []int{50, 100}, "max_in_flight": 2,
		}).want(t, 201)
		id := r.str("id")
		if r.header.Get("Location") != "/v1/rollouts/"+id || r.str("state") != "running" || r.body["wave_count"].(float64) != 3 {
			t.Fatalf("created rollout: %s %s", r.header.Get("Location"), r.raw)
		}
		e.do("POST", "/v1/rollouts", e.admin, map[string]any{"selector": map[string]any{"tenant_ids": ids[:1]}}).want(t, 409)
		e.do("POST", "/v1/rollouts/"+id+"/approve", e.admin, nil).want(t, 409)

		done := e.waitRollout(id, "completed")
		if done.body["finished_at"] == nil || done.body["counts"].(map[string]any)["succeeded"].(float64) != 3 {
			t.Fatalf("completed rollout: %s", done.raw)
		}
		waves := done.body["waves_detail"].([]any)
		if len(waves) != 3 || waves[0].(map[string]any)["stacks"].(float64) != 1 {
			t.Fatalf("waves: %v", waves)
		}
		for _, s := range done.body["stacks"].([]any) {
			stack := s.(map[string]any)
			changes := stack["changes"].([]any)
			if stack["state"] != "succeeded" || len(changes) != 1 || changes[0].(map[string]any)["action"] != "Add" ||
				!strings.HasPrefix(stack["change_set"].(string), "cairn-rol-") {
				t.Fatalf("stack: %v", stack)
			}
		}
		for _, op := range []string{"pause", "resume", "abort"} {
			e.do("POST", "/v1/rollouts/"+id+"/"+op, e.admin, nil).want(t, 409)
		}
		list := e.do("GET", "/v1/rollouts?limit=1", e.admin, nil).want(t, 200)
		if items := list.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != id ||
			items[0].(map[string]any)["counts"].(map[string]any)["succeeded"].(float64) != 3 {
			t.Fatalf("list: %s", list.raw)
		}
		// Every stack selected is at the version now.
		e.do("POST", "/v1/rollouts", e.admin, map[string]any{"selector": map[string]any{"tier": "dedicated", "tenant_ids": ids}}).want(t, 422)
		for _, tid := range ids {
			for _, st := range e.do("GET", "/v1/tenants/"+tid+"/stacks", e.admin, nil).want(t, 200).body["items"].([]any) {
				if v := st.(map[string]any)["template_version"]; v != done.body["template_versions"].(map[string]any)["dedicated"] {
					t.Fatalf("stack of %s at version %v", tid, v)
				}
			}
		}
	})
}
