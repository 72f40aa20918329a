package httpapi_test

import (
	"regexp"
	"slices"
	"testing"
)

func TestSegmentsThroughTheAPI(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("seg-api")
		writer := e.tenantToken(id, "segments:write")
		reader := e.tenantToken(id, "segments:read", "profiles:read")
		base := "/v1/tenants/" + id + "/segments"

		vip := e.do("POST", base, writer, map[string]any{
			"name": "VIPs", "description": "Pro plan, or big accounts", "match": "any",
			"conditions": []map[string]any{
				{"trait": "plan", "operator": "equals", "value": "pro"},
				{"trait": "seats", "operator": "greater_than", "value": 100},
			},
		}).want(t, 201)
		gmail := e.do("POST", base, writer, map[string]any{
			"name": "Gmail", "conditions": []map[string]any{{"trait": "email", "operator": "contains", "value": "@gmail.com"}},
		}).want(t, 201)
		if vip.str("tenant_id") != id || vip.str("match") != "any" || gmail.str("match") != "all" {
			t.Fatalf("created: %s %s", vip.raw, gmail.raw)
		}
		if got := e.follow(t, vip, reader).str("id"); got != vip.str("id") {
			t.Fatalf("create: Location is segment %s, want %s", got, vip.str("id"))
		}

		// Bad definitions are refused, naming the field, and store nothing.
		e.do("POST", base, writer, map[string]any{"name": "x", "conditions": []map[string]any{{"trait": "plan", "operator": "like"}}}).want(t, 400)
		e.do("POST", base, writer, map[string]any{"name": "x", "conditions": []map[string]any{}}).want(t, 400)
		// A reader may not define segments.
		e.do("POST", base, reader, map[string]any{"name": "x", "conditions": []map[string]any{{"trait": "plan", "operator": "exists"}}}).want(t, 403)

		list := e.do("GET", base+"?limit=1", reader, nil).want(t, 200)
		items := list.body["items"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["id"] != vip.str("id") || list.str("next_cursor") == "" {
			t.Fatalf("page 1: %s", list.raw)
		}
		rest := e.do("GET", base+"?cursor="+list.str("next_cursor"), reader, nil).want(t, 200)
		if items := rest.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != gmail.str("id") || rest.body["next_cursor"] != nil {
			t.Fatalf("page 2: %s", rest.raw)
		}

		key := e.source(id, "web")
		e.segment("/v1/batch", key, map[string]any{"batch": []any{
			segEvent("identify", "m1", map[string]any{"userId": "u1", "traits": map[string]any{"plan": "pro", "email": "a@gmail.com"}}),
			segEvent("identify", "m2", map[string]any{"userId": "u2", "traits": map[string]any{"plan": "free", "seats": 5}}),
		}}).want(t, 200)
		segs := func(user string) []string {
			t.Helper()
			p := e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=user_id:"+user, reader, nil).want(t, 200)
			var out []string
			for _, s := range p.body["segments"].([]any) {
				out = append(out, s.(string))
			}
			return out
		}
		if got := segs("u1"); !slices.Equal(got, []string{vip.str("id"), gmail.str("id")}) {
			t.Fatalf("u1 segments %v", got)
		}
		if got := segs("u2"); len(got) != 0 {
			t.Fatalf("u2 segments %v", got)
		}
		// A trait change moves the profile in at once.
		e.segment("/v1/identify", key, segEvent("identify", "m3", map[string]any{"userId": "u2", "traits": map[string]any{"seats": 250}})).want(t, 200)
		if got := segs("u2"); !slices.Equal(got, []string{vip.str("id")}) {
			t.Fatalf("u2 segments after the change %v", got)
		}

		e.do("GET", base+"/"+vip.str("id"), reader, nil).want(t, 200)
		e.do("DELETE", base+"/"+vip.str("id"), reader, nil).want(t, 403)
		e.do("DELETE", base+"/"+vip.str("id"), writer, nil).want(t, 204)
		e.do("GET", base+"/"+vip.str("id"), reader, nil).want(t, 404)
		e.do("DELETE", base+"/"+vip.str("id"), writer, nil).want(t, 404)
		if got := segs("u1"); !slices.Equal(got, []string{gmail.str("id")}) {
			t.Fatalf("u1 segments after the delete %v", got)
		}
	})
}

// TestSegmentIDAlphabet: new segment IDs are of the one ID alphabet, and
// IDs made by earlier versions (base32hex) still name a segment: a 404 for
// one that does not exist, not a 400, in a path and in a definition.
func TestSegmentIDAlphabet(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("seg-ids")
		base := "/v1/tenants/" + id + "/segments"
		seg := e.do("POST", base, e.admin, map[string]any{"name": "any-plan",
			"definition": map[string]any{"trait": "plan", "operator": "exists"}}).want(t, 201).str("id")
		if !regexp.MustCompile(`^seg_[a-z2-7]{26}$`).MatchString(seg) {
			t.Fatalf("segment ID %q is not seg_ and 26 characters of [a-z2-7]", seg)
		}
		old := "seg_06bsd0rr8o4bbumhk9e0afvq7g"
		e.do("GET", base+"/"+old, e.admin, nil).want(t, 404)
		e.do("GET", base+"/seg_06bsd0rr8o4bbumhk9e0afvq7_", e.admin, nil).want(t, 400)
		// A definition may name a segment by an old ID; one that does not
		// exist matches no one.
		e.do("POST", base+"/preview", e.admin, map[string]any{"definition": map[string]any{"segment": old}}).want(t, 200)
	})
}

// TestConditionValueIsAnyJSON: a condition's value is any JSON value, null
// and arrays or objects holding null included (the contract's JSONValue).
func TestConditionValueIsAnyJSON(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("seg-values")
		base := "/v1/tenants/" + id + "/segments"
		for i, c := range []map[string]any{
			{"trait": "plan", "operator": "in", "value": []any{nil}},
			{"trait": "plan", "operator": "in", "value": []any{"pro", 1, true, []any{nil}, map[string]any{"a": nil}}},
			{"trait": "plan", "operator": "equals", "value": nil},
			{"trait": "plan", "operator": "equals", "value": map[string]any{"a": []any{nil}}},
			{"trait": "plan", "operator": "exists"},
		} {
			e.do("POST", base, e.admin, map[string]any{"name": "values-" + string(rune('a'+i)), "conditions": []any{c}}).want(t, 201)
		}
	})
}
