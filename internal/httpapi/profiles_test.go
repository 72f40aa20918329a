package httpapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	analytics "github.com/segmentio/analytics-go/v3"
)

// source creates a source for the tenant and returns its write key.
func (e *env) source(tenantID, name string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/tenants/"+tenantID+"/sources", e.admin, map[string]any{"name": name}).want(e.t, 201)
	key := r.str("write_key")
	if !strings.HasPrefix(key, "wk_") {
		e.t.Fatalf("write key %q", key)
	}
	// Its Location reads the source back, never the key.
	if got := e.follow(e.t, r, e.admin); got.str("id") != r.str("id") || got.str("name") != name || strings.Contains(string(got.raw), key) || got.body["write_key"] != nil {
		e.t.Fatalf("the source's Location answers %s", got.raw)
	}
	return key
}

func basic(key string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":")) }

// segment posts to a Segment-compatible route with a write key.
func (e *env) segment(path, key string, body any) resp {
	e.t.Helper()
	return e.do("POST", path, "", body, "Authorization", basic(key))
}

func segEvent(typ, msg string, fields map[string]any) map[string]any {
	m := map[string]any{"type": typ, "messageId": msg, "timestamp": "2026-11-26T10:00:00Z"}
	for k, v := range fields {
		m[k] = v
	}
	return m
}

func TestSegmentClientLibraryBuildsOneProfile(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("seg-co")
		key := e.source(id, "web")
		var mu sync.Mutex
		var failures []error
		client, err := analytics.NewWithConfig(key, analytics.Config{
			Endpoint:  e.url,
			BatchSize: 10,
			Interval:  50 * time.Millisecond,
			Callback:  callback{mu: &mu, failures: &failures},
		})
		if err != nil {
			t.Fatal(err)
		}
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(client.Enqueue(analytics.Identify{AnonymousId: "anon-42", Traits: analytics.NewTraits().SetEmail("jane@example.com").SetName("Jane")}))
		must(client.Enqueue(analytics.Track{AnonymousId: "anon-42", Event: "Signed Up", Properties: analytics.NewProperties().Set("plan", "pro")}))
		must(client.Enqueue(analytics.Alias{PreviousId: "anon-42", UserId: "user-42"}))
		must(client.Enqueue(analytics.Track{UserId: "user-42", Event: "Upgraded"}))
		must(client.Close()) // flushes
		if len(failures) > 0 {
			t.Fatalf("the client saw failures: %v", failures)
		}
		tok := e.tenantToken(id, "profiles:read")
		p := e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=user_id:user-42", tok, nil).want(t, 200)
		q := e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=email:jane@example.com", tok, nil).want(t, 200)
		if p.str("id") != q.str("id") {
			t.Fatalf("identify, track and alias made two profiles: %s vs %s", p.raw, q.raw)
		}
		if p.body["traits"].(map[string]any)["name"] != "Jane" {
			t.Fatalf("traits: %s", p.raw)
		}
		ev := e.do("GET", "/v1/tenants/"+id+"/profiles/"+p.str("id")+"/events?limit=10", tok, nil).want(t, 200)
		if n := len(ev.body["items"].([]any)); n != 4 {
			t.Fatalf("%d events, want 4: %s", n, ev.raw)
		}
		named := e.do("GET", "/v1/tenants/"+id+"/profiles/"+p.str("id")+"/events?event=Upgraded", tok, nil).want(t, 200)
		if n := len(named.body["items"].([]any)); n != 1 {
			t.Fatalf("filter by name: %d", n)
		}
		// Every accepted event is in the raw zone, unchanged.
		keys, err := e.raw.List(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, k := range keys {
			ls, err := e.raw.Read(context.Background(), id, k)
			if err != nil {
				t.Fatal(err)
			}
			lines += len(ls)
		}
		if lines != 4 {
			t.Fatalf("raw zone holds %d events, want 4", lines)
		}
	})
}

type callback struct {
	mu       *sync.Mutex
	failures *[]error
}

func (c callback) Success(analytics.Message) {}
func (c callback) Failure(_ analytics.Message, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.failures = append(*c.failures, err)
}

func TestIngestionLimitsAndValidation(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("lim-co")
		key := e.source(id, "server")
		// Per-event errors are reported per event; the valid ones are kept.
		r := e.segment("/v1/batch", key, map[string]any{"batch": []any{
			segEvent("track", "m1", map[string]any{"userId": "u1", "event": "Ok"}),
			segEvent("track", "m2", map[string]any{"userId": "u1"}),
			segEvent("identify", "m3", map[string]any{}),
			segEvent("track", "m4", map[string]any{"userId": "u1", "event": "Big", "properties": map[string]any{"blob": strings.Repeat("x", 33<<10)}}),
		}}).want(t, 200)
		if r.body["accepted"].(float64) != 1 || len(r.body["errors"].([]any)) != 3 || r.body["success"] != false {
			t.Fatalf("per-event errors: %s", r.raw)
		}
		// Duplicates are applied once.
		r = e.segment("/v1/track", key, segEvent("track", "m1", map[string]any{"userId": "u1", "event": "Ok"})).want(t, 200)
		if r.body["duplicates"].(float64) != 1 || r.body["accepted"].(float64) != 0 {
			t.Fatalf("duplicate: %s", r.raw)
		}
		// An oversize batch is refused whole and stores nothing.
		var big []any
		for i := range 20 {
			big = append(big, segEvent("track", fmt.Sprintf("big-%d", i), map[string]any{"userId": "u2", "event": "E", "properties": map[string]any{"blob": strings.Repeat("y", 30<<10)}}))
		}
		e.segment("/v1/batch", key, map[string]any{"batch": big}).want(t, 400)
		e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=user_id:u2", e.admin, nil).want(t, 404)
		// The single-event routes insist on their type.
		if r := e.segment("/v1/identify", key, segEvent("track", "m9", map[string]any{"userId": "u1", "event": "X"})).want(t, 200); len(r.body["errors"].([]any)) != 1 {
			t.Fatalf("a track accepted on /v1/identify: %s", r.raw)
		}
		// Keys: unknown, rotated, revoked and suspended tenants are refused.
		e.segment("/v1/track", "wk_nope", segEvent("track", "k1", map[string]any{"userId": "u", "event": "E"})).want(t, 401)
		src := e.do("GET", "/v1/tenants/"+id+"/sources", e.admin, nil).want(t, 200).body["items"].([]any)[0].(map[string]any)
		rot := e.do("POST", "/v1/tenants/"+id+"/sources/"+src["id"].(string)+"/rotate", e.admin, nil).want(t, 200)
		e.segment("/v1/track", key, segEvent("track", "k2", map[string]any{"userId": "u", "event": "E"})).want(t, 401)
		newKey := rot.str("write_key")
		e.segment("/v1/track", newKey, segEvent("track", "k3", map[string]any{"userId": "u", "event": "E"})).want(t, 200)
		e.do("POST", "/v1/tenants/"+id+"/suspend", e.admin, nil).want(t, 200)
		e.segment("/v1/track", newKey, segEvent("track", "k4", map[string]any{"userId": "u", "event": "E"})).want(t, 403)
		e.do("POST", "/v1/tenants/"+id+"/resume", e.admin, nil).want(t, 200)
		e.do("DELETE", "/v1/tenants/"+id+"/sources/"+src["id"].(string), e.admin, nil).want(t, 200)
		e.segment("/v1/track", newKey, segEvent("track", "k5", map[string]any{"userId": "u", "event": "E"})).want(t, 401)
	})
}

func TestWriteKeysAndProfilesStayWithTheirTenant(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		a := e.activeTenant("iso-a")
		b := e.activeTenant("iso-b")
		keyA := e.source(a, "web")
		e.segment("/v1/identify", keyA, segEvent("identify", "x1", map[string]any{"userId": "shared-user", "traits": map[string]any{"email": "s@example.com"}})).want(t, 200)
		pa := e.do("GET", "/v1/tenants/"+a+"/profiles?identifier=user_id:shared-user", e.admin, nil).want(t, 200)
		// B sees nothing of A: not by identifier, not by ID, not through its token.
		e.do("GET", "/v1/tenants/"+b+"/profiles?identifier=user_id:shared-user", e.admin, nil).want(t, 404)
		e.do("GET", "/v1/tenants/"+b+"/profiles/"+pa.str("id"), e.admin, nil).want(t, 404)
		e.do("GET", "/v1/tenants/"+a+"/profiles/"+pa.str("id"), e.tenantToken(b, "profiles:read"), nil).want(t, 404)
		// A's key writes to A only.
		e.segment("/v1/track", keyA, segEvent("track", "x2", map[string]any{"userId": "only-a", "event": "E"})).want(t, 200)
		e.do("GET", "/v1/tenants/"+b+"/profiles?identifier=user_id:only-a", e.admin, nil).want(t, 404)
		e.do("POST", "/v1/tenants/"+b+"/events", e.tenantToken(a, "events:write"), map[string]any{"batch": []any{}}).want(t, http.StatusNotFound)
	})
}

func TestNativeEventsUnmergeAndErasure(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("gdpr-co")
		w := e.tenantToken(id, "profiles:write", "profiles:read", "events:write")
		e.do("POST", "/v1/tenants/"+id+"/events", w, map[string]any{"batch": []any{
			segEvent("identify", "n1", map[string]any{"anonymousId": "a1", "traits": map[string]any{"email": "m@example.com"}}),
			segEvent("identify", "n2", map[string]any{"userId": "u1", "traits": map[string]any{"plan": "pro"}}),
			segEvent("identify", "n3", map[string]any{"userId": "u1", "traits": map[string]any{"email": "m@example.com"}}),
		}}).want(t, 200)
		p := e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=user_id:u1", w, nil).want(t, 200)
		merged := p.body["merged_profile_ids"].([]any)
		if len(merged) != 1 {
			t.Fatalf("no merge: %s", p.raw)
		}
		m := e.do("GET", "/v1/tenants/"+id+"/profiles/"+p.str("id")+"/merges", w, nil).want(t, 200)
		if items := m.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["merged_profile_id"] != merged[0] {
			t.Fatalf("merges: %s", m.raw)
		}
		u := e.do("POST", "/v1/tenants/"+id+"/profiles/"+p.str("id")+"/unmerge", w, map[string]any{"profile_id": merged[0]}).want(t, 200)
		if u.str("id") != merged[0] {
			t.Fatalf("unmerge returned %s", u.raw)
		}
		e.do("POST", "/v1/tenants/"+id+"/profiles/"+p.str("id")+"/unmerge", w, map[string]any{"profile_id": merged[0]}).want(t, 409)

		er := e.do("DELETE", "/v1/tenants/"+id+"/profiles/"+p.str("id")+"?suppress=true", w, nil).want(t, 202)
		eid := er.str("id")
		// The 202 has real times: made now, and not changed since.
		for _, f := range []string{"created_at", "updated_at"} {
			if at, err := time.Parse(time.RFC3339Nano, er.str(f)); err != nil || time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
				t.Fatalf("erasure %s = %q (%v), want about now", f, er.str(f), err)
			}
		}
		if got := e.follow(t, er, w).str("id"); got != eid {
			t.Fatalf("erase: Location is erasure %s, want %s", got, eid)
		}
		for {
			g := e.do("GET", "/v1/tenants/"+id+"/erasures/"+eid, w, nil).want(t, 200)
			if g.str("status") == "completed" {
				break
			}
			<-e.jobDone
		}
		e.do("GET", "/v1/tenants/"+id+"/profiles/"+p.str("id"), w, nil).want(t, 404)
		e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=user_id:u1", w, nil).want(t, 404)
		r := e.do("POST", "/v1/tenants/"+id+"/events", w, map[string]any{"batch": []any{
			segEvent("track", "n4", map[string]any{"userId": "u1", "event": "Back"}),
		}}).want(t, 200)
		if r.body["suppressed"].(float64) != 1 {
			t.Fatalf("a suppressed identifier was accepted: %s", r.raw)
		}
	})
}
