package httpapi_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitSegment waits, woken by finished jobs, until the segment is ready.
func (e *env) waitSegment(token, path string) resp {
	e.t.Helper()
	deadline := time.After(waitLimit)
	for {
		r := e.do("GET", path, token, nil).want(e.t, 200)
		if r.str("status") == "ready" {
			return r
		}
		select {
		case <-e.jobDone:
		case <-deadline:
			e.t.Fatalf("segment %s is %s; waited for ready", path, r.raw)
		}
	}
}

// memberIDs lists a segment's members a page of limit at a time, checking
// that paging gives each once, in profile ID order.
func (e *env) memberIDs(token, path string, limit int) []string {
	e.t.Helper()
	var ids []string
	cursor := ""
	for range 100 {
		q := path + "/members?limit=" + strconv.Itoa(limit)
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := e.do("GET", q, token, nil).want(e.t, 200)
		items := r.body["items"].([]any)
		if len(items) > limit {
			e.t.Fatalf("page of %d holds %d: %s", limit, len(items), r.raw)
		}
		for _, it := range items {
			m := it.(map[string]any)
			if m["entered_at"] == nil || m["entered_at"] == "" {
				e.t.Fatalf("member without entered_at: %s", r.raw)
			}
			ids = append(ids, m["profile_id"].(string))
		}
		cursor = r.str("next_cursor")
		if cursor == "" {
			if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
				e.t.Fatalf("members not each once in ID order: %v", ids)
			}
			return ids
		}
	}
	e.t.Fatal("members never ended")
	return nil
}

func TestSegmentDefinitionsThroughTheAPI(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("segdef-api")
		writer := e.tenantToken(id, "segments:write")
		reader := e.tenantToken(id, "segments:read", "profiles:read")
		base := "/v1/tenants/" + id + "/segments"
		key := e.source(id, "web")
		profile := func(user string) string {
			t.Helper()
			return e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=user_id:"+user, reader, nil).want(t, 200).str("id")
		}

		// Traits before the segment: u1 and u2 are pro, u3 free.
		e.segment("/v1/batch", key, map[string]any{"batch": []any{
			segEvent("identify", "d1", map[string]any{"userId": "u1", "traits": map[string]any{"plan": "pro"}}),
			segEvent("identify", "d2", map[string]any{"userId": "u2", "traits": map[string]any{"plan": "pro"}}),
			segEvent("identify", "d3", map[string]any{"userId": "u3", "traits": map[string]any{"plan": "free"}}),
		}}).want(t, 200)
		u1, u2, u3 := profile("u1"), profile("u2"), profile("u3")

		order := map[string]any{"event": "Order Completed", "where": []any{map[string]any{"property": "total", "operator": "gte", "value": 10}}}
		buyers := map[string]any{"all": []any{
			map[string]any{"trait": "plan", "operator": "equals", "value": "pro"},
			map[string]any{"event": "Order Completed", "where": order["where"], "count": map[string]any{"operator": "at_least", "value": 1}},
		}}
		created := e.do("POST", base, writer, map[string]any{"name": "Pro buyers", "definition": buyers}).want(t, 201)
		sid := created.str("id")
		seg := base + "/" + sid
		if created.header.Get("ETag") != `"v1"` || created.body["version"] != float64(1) || created.body["match"] != nil || created.body["conditions"] != nil {
			t.Fatalf("created: ETag %q %s", created.header.Get("ETag"), created.raw)
		}
		if st := created.str("status"); st != "computing" && st != "ready" {
			t.Fatalf("created with status %q", st)
		}

		// The job computes it over the profiles there are: nobody ordered.
		got := e.waitSegment(reader, seg)
		if got.body["progress"] != float64(100) || got.body["member_count"] != float64(0) || got.header.Get("ETag") != `"v1"` {
			t.Fatalf("computed: %s", got.raw)
		}
		if def, _ := got.body["definition"].(map[string]any); len(def["all"].([]any)) != 2 {
			t.Fatalf("definition not shown: %s", got.raw)
		}
		if ids := e.memberIDs(reader, seg, 5); len(ids) != 0 {
			t.Fatalf("members %v before any order", ids)
		}

		// Events arriving move profiles in: u1 and u3 order (u3 is free),
		// then u2, and a small order of u3 does not count.
		e.segment("/v1/batch", key, map[string]any{"batch": []any{
			segEvent("track", "d4", map[string]any{"userId": "u1", "event": "Order Completed", "properties": map[string]any{"total": 50}}),
			segEvent("track", "d5", map[string]any{"userId": "u3", "event": "Order Completed", "properties": map[string]any{"total": 70}}),
		}}).want(t, 200)
		if ids := e.memberIDs(reader, seg, 5); !slices.Equal(ids, []string{u1}) {
			t.Fatalf("members %v, want [%s]", ids, u1)
		}
		e.segment("/v1/track", key, segEvent("track", "d6", map[string]any{"userId": "u2", "event": "Order Completed", "properties": map[string]any{"total": 12}})).want(t, 200)
		want := []string{u1, u2}
		slices.Sort(want)
		if ids := e.memberIDs(reader, seg, 1); !slices.Equal(ids, want) {
			t.Fatalf("members after u2 ordered %v, want %v", ids, want)
		}
		if n := e.do("GET", seg, reader, nil).want(t, 200).body["member_count"]; n != float64(2) {
			t.Fatalf("member_count %v, want 2", n)
		}

		// Lists show the status but no count.
		list := e.do("GET", base, reader, nil).want(t, 200)
		item := list.body["items"].([]any)[0].(map[string]any)
		if item["status"] != "ready" || item["member_count"] != nil {
			t.Fatalf("list item: %v", item)
		}

		// A preview counts and samples, and stores nothing.
		prev := e.do("POST", base+"/preview", reader, map[string]any{"definition": order}).want(t, 200)
		sample := []string{}
		for _, s := range prev.body["sample"].([]any) {
			sample = append(sample, s.(string))
		}
		slices.Sort(sample)
		all := []string{u1, u2, u3}
		slices.Sort(all)
		if prev.body["member_count"] != float64(3) || !slices.Equal(sample, all) {
			t.Fatalf("preview: %s, want 3 of %v", prev.raw, all)
		}
		if n := len(e.do("GET", base, reader, nil).want(t, 200).body["items"].([]any)); n != 1 {
			t.Fatalf("a preview stored a segment: %d segments", n)
		}
		e.do("POST", base+"/preview", e.tenantToken(id, "profiles:read"), map[string]any{"definition": buyers}).want(t, 403)

		// Invalid definitions name the offending member by JSON Pointer.
		bad := map[string]any{"all": []any{
			map[string]any{"trait": "plan", "operator": "equals", "value": "pro"},
			map[string]any{"trait": "plan", "operator": "like", "value": "p"},
		}}
		for _, r := range []resp{
			e.do("POST", base, writer, map[string]any{"name": "bad", "definition": bad}),
			e.do("PATCH", seg, writer, map[string]any{"definition": bad}),
			e.do("POST", base+"/preview", reader, map[string]any{"definition": bad}),
		} {
			r.want(t, 400)
			if f := soleField(t, r); !strings.HasPrefix(f, "/definition/all/1") || !strings.Contains(r.str("detail"), f) {
				t.Fatalf("invalid definition names %q: %s", f, r.raw)
			}
		}
		r := e.do("POST", base, writer, map[string]any{"name": "both", "definition": buyers,
			"conditions": []any{map[string]any{"trait": "plan", "operator": "exists"}}}).want(t, 400)
		if f := soleField(t, r); !strings.Contains(f, "definition") {
			t.Fatalf("definition with conditions names %q: %s", f, r.raw)
		}

		// PATCH at the version read; a stale If-Match changes nothing.
		renamed := e.do("PATCH", seg, writer, map[string]any{"name": "Pro customers"}, "If-Match", `"v1"`).want(t, 200)
		if renamed.header.Get("ETag") != `"v2"` || renamed.str("name") != "Pro customers" || renamed.str("status") != "ready" {
			t.Fatalf("renamed: ETag %q %s", renamed.header.Get("ETag"), renamed.raw)
		}
		stale := e.do("PATCH", seg, writer, map[string]any{"name": "Lost update"}, "If-Match", `"v1"`).want(t, 412)
		if stale.str("type") != "urn:cairn:problem:precondition-failed" {
			t.Fatalf("stale If-Match: %s", stale.raw)
		}
		if g := e.do("GET", seg, reader, nil).want(t, 200); g.str("name") != "Pro customers" || g.header.Get("ETag") != `"v2"` {
			t.Fatalf("after the stale PATCH: %s", g.raw)
		}
		e.do("PATCH", seg, reader, map[string]any{"name": "x"}).want(t, 403)

		// A new definition is computed again: pro only, u1 and u2.
		e.do("PATCH", seg, writer, map[string]any{"definition": map[string]any{"trait": "plan", "operator": "equals", "value": "pro"}}, "If-Match", `"v2"`).want(t, 200)
		if got := e.waitSegment(reader, seg); got.body["member_count"] != float64(2) || got.body["version"] != float64(3) {
			t.Fatalf("after the new definition: %s", got.raw)
		}

		// Back to version 1 conditions through PATCH.
		legacy := e.do("PATCH", seg, writer, map[string]any{"match": "any", "conditions": []any{
			map[string]any{"trait": "plan", "operator": "equals", "value": "free"}}}).want(t, 200)
		if legacy.str("match") != "any" || legacy.body["definition"] != nil {
			t.Fatalf("back to conditions: %s", legacy.raw)
		}
		e.waitSegment(reader, seg)
		if ids := e.memberIDs(reader, seg, 5); !slices.Equal(ids, []string{u3}) {
			t.Fatalf("members by conditions %v, want [%s]", ids, u3)
		}

		// Recompute: 202, the segment and where to read it.
		rc := e.do("POST", seg+"/recompute", writer, nil).want(t, 202)
		if rc.header.Get("Location") != seg || rc.str("id") != sid || rc.header.Get("ETag") == "" {
			t.Fatalf("recompute: Location %q %s", rc.header.Get("Location"), rc.raw)
		}
		e.do("POST", seg+"/recompute", reader, nil).want(t, 403)
		e.waitSegment(reader, seg)

		// A segment another references cannot be deleted.
		outer := e.do("POST", base, writer, map[string]any{"name": "Outer", "definition": map[string]any{"segment": sid}}).want(t, 201)
		ref := e.do("DELETE", seg, writer, nil).want(t, 409)
		if ref.str("type") != "urn:cairn:problem:segment-referenced" || !strings.Contains(ref.str("detail"), outer.str("id")) {
			t.Fatalf("referenced delete: %s", ref.raw)
		}
		e.do("DELETE", base+"/"+outer.str("id"), writer, nil).want(t, 204)
		e.do("DELETE", seg, writer, nil).want(t, 204)
		e.do("GET", seg+"/members", reader, nil).want(t, 404)
		e.do("PATCH", seg, writer, map[string]any{"name": "gone"}).want(t, 404)
		e.do("POST", seg+"/recompute", writer, nil).want(t, 404)
	})
}
