package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/httpapi"
	"github.com/cairn-cdp/cairn/internal/ratelimit"
	"github.com/cairn-cdp/cairn/internal/usage"
)

// withLimits turns the rate limits on, with a budget of refused
// credentials of burst per client address (and no refill worth the
// name), trusting proxies.
func withLimits(burst int, proxies string) func(*httpapi.Config) {
	return func(c *httpapi.Config) {
		p, err := ratelimit.ParseProxies(proxies)
		if err != nil {
			panic(err)
		}
		c.Limits = &httpapi.Limits{Proxies: p, FailedAuth: ratelimit.Limit{Rate: 1.0 / 3600, Burst: burst}}
	}
}

// putPlan makes or replaces a plan with these limits (and mode, if any).
func (e *env) putPlan(name string, limits map[string]any, mode ...string) resp {
	e.t.Helper()
	body := map[string]any{"limits": limits}
	if len(mode) > 0 {
		body["monthly_events_mode"] = mode[0]
	}
	r := e.do("PUT", "/v1/plans/"+name, e.admin, body)
	if r.status != 200 && r.status != 201 {
		e.t.Fatalf("put plan %s: %d %s", name, r.status, r.raw)
	}
	return r
}

// planTenant onboards an active pooled tenant on the plan.
func (e *env) planTenant(slug, plan string) string {
	e.t.Helper()
	id := e.onboard(slug, map[string]any{"plan": plan}).want(e.t, 202).str("id")
	e.waitStatus(id, "active")
	return id
}

// batchOf is a batch of n track events with message IDs prefix-0...
func batchOf(prefix string, n int) map[string]any {
	events := make([]any, n)
	for i := range events {
		events[i] = segEvent("track", fmt.Sprintf("%s-%d", prefix, i), map[string]any{"userId": prefix + "-user", "event": "Viewed"})
	}
	return map[string]any{"batch": events}
}

// wantLimited checks a 429 of the rate limits: its problem type, its
// Retry-After and both RateLimit fields, naming policy.
func wantLimited(t *testing.T, r resp, kind, policy string) {
	t.Helper()
	r.want(t, 429)
	if r.str("type") != "urn:cairn:problem:"+kind {
		t.Fatalf("429 of type %q, want %s: %s", r.str("type"), kind, r.raw)
	}
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" || strings.ContainsAny(ra, ".-") {
		t.Fatalf("Retry-After %q: want whole seconds, at least 1", ra)
	}
	if !strings.Contains(r.header.Get("RateLimit-Policy"), `"`+policy+`";q=`) {
		t.Fatalf("RateLimit-Policy %q does not name %s", r.header.Get("RateLimit-Policy"), policy)
	}
	if !strings.Contains(r.header.Get("RateLimit"), `"`+policy+`";r=0;t=`) {
		t.Fatalf("RateLimit %q does not say %s is spent", r.header.Get("RateLimit"), policy)
	}
}

// TestRateLimitBurst: a burst over the plan's events a second per source,
// per tenant, and requests a second per token, is refused with 429,
// Retry-After, both RateLimit fields and a problem; answers within the
// plan say what is left.
func TestRateLimitBurst(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		e.putPlan("tiny", map[string]any{"events_per_second_per_source": 2, "events_per_second_per_tenant": 3, "requests_per_second_per_token": 1})
		id := e.planTenant("burst-co", "tiny")
		key := e.source(id, "web")
		track := func(msg string) map[string]any {
			return segEvent("track", msg, map[string]any{"userId": "u", "event": "E"})
		}

		ok := e.segment("/v1/track", key, track("one")).want(t, 200)
		if got, want := ok.header.Get("RateLimit-Policy"), `"per-source";q=2;w=1;cairn-unit="events", "per-tenant";q=3;w=1;cairn-unit="events"`; got != want {
			t.Fatalf("RateLimit-Policy %q, want %q", got, want)
		}
		if got := ok.header.Get("RateLimit"); !strings.HasPrefix(got, `"per-source";r=1;t=1, "per-tenant";r=2;t=1`) {
			t.Fatalf("RateLimit after one event: %q", got)
		}
		// A batch of 200 is admitted on budget and leaves the source a
		// minute in debt (the most a debt is): the next requests are
		// refused, however long the batch took.
		e.segment("/v1/batch", key, batchOf("b", 200)).want(t, 200)
		r := e.segment("/v1/track", key, track("two"))
		wantLimited(t, r, "rate-limited", "per-source")
		if r.str("code") != "rate-limited" || !strings.Contains(r.str("detail"), `plan "tiny"`) {
			t.Fatalf("a tracking route's refusal names its code and plan: %s", r.raw)
		}
		// The tenant's other source finds the tenant's budget spent too.
		other := e.source(id, "app")
		wantLimited(t, e.segment("/v1/track", other, track("three")), "rate-limited", "per-tenant")
		// So do its tokens' events.
		tok := e.tenantToken(id, "events:write", "profiles:read")
		wantLimited(t, e.do("POST", "/v1/tenants/"+id+"/events", tok, batchOf("t", 1)), "rate-limited", "per-tenant")

		// A token's requests: 1 a second. Sent at once, all but about one
		// are refused, however slow each is.
		reader := e.tenantToken(id, "profiles:read")
		answers := make([]resp, 20)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() { answers[i] = e.do("GET", "/v1/tenants/"+id, reader, nil) })
		}
		wg.Wait()
		served, denied := 0, 0
		for _, r := range answers {
			switch r.status {
			case 200:
				if !strings.HasPrefix(r.header.Get("RateLimit-Policy"), `"per-token";q=1;w=1`) {
					t.Errorf("a token's answer: RateLimit-Policy %q", r.header.Get("RateLimit-Policy"))
				}
				served++
			case 429:
				wantLimited(t, r, "rate-limited", "per-token")
				denied++
			default:
				t.Errorf("GET tenant: %d %s", r.status, r.raw)
			}
		}
		if served == 0 || denied == 0 {
			t.Fatalf("20 requests at once of a token allowed 1 a second: %d served, %d refused", served, denied)
		}
		// Another token of the tenant has a budget of its own, and the
		// admin none at all.
		e.do("GET", "/v1/tenants/"+id, e.tenantToken(id, "profiles:read"), nil).want(t, 200)
		for range 10 {
			if r := e.do("GET", "/v1/tenants/"+id, e.admin, nil).want(t, 200); r.header.Get("RateLimit") != "" {
				t.Fatalf("an admin's answer carries RateLimit %q", r.header.Get("RateLimit"))
			}
		}
	}, withLimits(1000, ""))
}

// TestRateLimitNeighbour: a pooled tenant flooding far over its plan never
// costs a neighbour in the same pool its own, smaller, load: measured in
// one run, the flooder is refused and the neighbour's every event is
// accepted.
func TestRateLimitNeighbour(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		e.putPlan("pool-small", map[string]any{"events_per_second_per_source": 50, "events_per_second_per_tenant": 50})
		flooder := e.planTenant("flood-co", "pool-small")
		neighbour := e.planTenant("quiet-co", "pool-small")
		floodKey, quietKey := e.source(flooder, "web"), e.source(neighbour, "web")

		var (
			stop                         atomic.Bool
			floodSent, floodOK, flood429 atomic.Int64
			wg                           sync.WaitGroup
		)
		start := time.Now()
		for w := range 4 {
			wg.Go(func() {
				for i := 0; !stop.Load() && i < 500; i++ {
					r := e.segment("/v1/batch", floodKey, batchOf(fmt.Sprintf("f%d-%d", w, i), 50))
					floodSent.Add(50)
					switch r.status {
					case 200:
						floodOK.Add(50)
					case 429:
						flood429.Add(1)
					default:
						t.Errorf("flood: %d %s", r.status, r.raw)
						return
					}
				}
			})
		}
		// The neighbour's load, 40 events in 10 batches: within its
		// budget whatever the timing, sent while the flood goes on.
		quietOK := 0
		for i := range 10 {
			r := e.segment("/v1/batch", quietKey, batchOf(fmt.Sprintf("q-%d", i), 4))
			if r.status != 200 {
				t.Errorf("neighbour's batch %d during the flood: %d %s", i, r.status, r.raw)
				continue
			}
			quietOK += int(r.body["accepted"].(float64))
		}
		quietElapsed := time.Since(start)
		// Let the flood go on until it has been refused plenty.
		for deadline := time.Now().Add(20 * time.Second); flood429.Load() < 20 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond) // pacing the check, not waiting for work
		}
		stop.Store(true)
		wg.Wait()
		elapsed := time.Since(start)
		t.Logf("flooder: %d events sent, %d accepted (%.0f/s), %d requests refused; neighbour: %d of 40 events accepted (%.0f/s) in %s",
			floodSent.Load(), floodOK.Load(), float64(floodOK.Load())/elapsed.Seconds(), flood429.Load(), quietOK, float64(quietOK)/quietElapsed.Seconds(), quietElapsed)
		if quietOK != 40 {
			t.Fatalf("the neighbour got %d of its 40 events accepted during the flood", quietOK)
		}
		if flood429.Load() == 0 {
			t.Fatal("the flooder was never refused")
		}
		// Generous: the flooder's accepted events are within its rate
		// over the run, its burst and a batch in flight per client.
		if limit := 50*elapsed.Seconds() + 50 + 4*50; float64(floodOK.Load()) > limit {
			t.Fatalf("the flooder got %d events accepted in %s, over %0.f", floodOK.Load(), elapsed, limit)
		}
	}, withLimits(1000, ""))
}

// TestFailedAuthPerAddress: refused tokens and unknown write keys from one
// address run out its budget, and then every request of it that takes
// credentials is refused, valid ones included, before they are checked; a
// client's X-Forwarded-For is believed only from a trusted proxy.
func TestFailedAuthPerAddress(t *testing.T) {
	t.Run("tokens", func(t *testing.T) {
		backends(t, func(t *testing.T, newEnv func() *env) {
			e := newEnv()
			// No credentials at all cost nothing to refuse, and are not
			// counted.
			for range 10 {
				e.do("GET", "/v1/tenants", "", nil).want(t, 401)
			}
			for i := range 5 {
				e.do("GET", "/v1/tenants", fmt.Sprintf("bad-token-%d", i), nil).want(t, 401)
			}
			// The address is spent now.
			r := e.do("GET", "/v1/tenants", "bad-token-6", nil)
			wantLimited(t, r, "too-many-failed-attempts", "per-address")
			wantLimited(t, e.do("GET", "/v1/tenants", e.admin, nil), "too-many-failed-attempts", "per-address")
			// X-Forwarded-For from an untrusted peer changes nothing.
			wantLimited(t, e.do("GET", "/v1/tenants", e.admin, nil, "X-Forwarded-For", "198.51.100.9"), "too-many-failed-attempts", "per-address")
			// Public routes still answer.
			e.do("GET", "/healthz", "", nil).want(t, 200)
		}, withLimits(5, ""))
	})
	t.Run("write keys", func(t *testing.T) {
		backends(t, func(t *testing.T, newEnv func() *env) {
			e := newEnv()
			id := e.activeTenant("keys-co")
			key := e.source(id, "web")
			for i := range 5 {
				e.segment("/v1/track", fmt.Sprintf("wk_guess%d", i), segEvent("track", "g", map[string]any{"userId": "u", "event": "E"})).want(t, 401)
			}
			wantLimited(t, e.segment("/v1/track", key, segEvent("track", "g", map[string]any{"userId": "u", "event": "E"})), "too-many-failed-attempts", "per-address")
			wantLimited(t, e.do("GET", "/v1/projects/"+key+"/settings", "", nil), "too-many-failed-attempts", "per-address")
		}, withLimits(5, ""))
	})
	t.Run("behind a trusted proxy", func(t *testing.T) {
		backends(t, func(t *testing.T, newEnv func() *env) {
			e := newEnv()
			from := func(addr string) []string { return []string{"X-Forwarded-For", "203.0.113.50, " + addr} }
			for range 3 {
				e.do("GET", "/v1/tenants", "bad", nil, from("198.51.100.1")...).want(t, 401)
			}
			wantLimited(t, e.do("GET", "/v1/tenants", e.admin, nil, from("198.51.100.1")...), "too-many-failed-attempts", "per-address")
			// Another client of the proxy has its own budget; the proxy
			// itself, and what a client claims before the proxy's entry,
			// are not the key.
			e.do("GET", "/v1/tenants", e.admin, nil, from("198.51.100.2")...).want(t, 200)
			e.do("GET", "/v1/tenants", e.admin, nil).want(t, 200)
			e.do("GET", "/v1/tenants", e.admin, nil, "X-Forwarded-For", "198.51.100.1, 198.51.100.3").want(t, 200)
			// Unknown write keys on the browser settings count too.
			for i := range 3 {
				e.do("GET", fmt.Sprintf("/v1/projects/wk_none%d/settings", i), "", nil, from("198.51.100.4")...).want(t, 404)
			}
			wantLimited(t, e.do("GET", "/v1/projects/wk_none/settings", "", nil, from("198.51.100.4")...), "too-many-failed-attempts", "per-address")
		}, withLimits(3, "127.0.0.0/8, ::1"))
	})
}

// quotaHook is a tenant.quota_exceeded delivery.
type quotaHook struct {
	Type string `json:"type"`
	Data struct {
		TenantID string `json:"tenant_id"`
		Quota    string `json:"quota"`
		Plan     string `json:"plan"`
		Limit    int64  `json:"limit"`
		Month    string `json:"month"`
		Mode     string `json:"mode"`
	} `json:"data"`
}

// quotaHooks receives n announcements, one per tenant, by tenant.
func quotaHooks(t *testing.T, hooks <-chan quotaHook, n int) map[string]quotaHook {
	t.Helper()
	got := map[string]quotaHook{}
	deadline := time.After(waitLimit)
	for len(got) < n {
		select {
		case h := <-hooks:
			if _, twice := got[h.Data.TenantID]; twice {
				t.Fatalf("announced twice: %+v", h)
			}
			got[h.Data.TenantID] = h
		case <-deadline:
			t.Fatalf("quota announcements: %+v", got)
		}
	}
	return got
}

// quotaEndpoint registers a fleet endpoint for tenant.quota_exceeded and
// returns what it receives.
func quotaEndpoint(e *env) <-chan quotaHook {
	out := make(chan quotaHook, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h quotaHook
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &h); err != nil {
			e.t.Errorf("quota hook %s: %v", body, err)
		}
		out <- h
		w.WriteHeader(http.StatusNoContent)
	}))
	e.t.Cleanup(srv.Close)
	e.do("POST", "/v1/webhooks", e.admin, map[string]any{"url": srv.URL + "/quota", "event_types": []string{"tenant.quota_exceeded"}}).want(e.t, 201)
	return out
}

// TestMonthlyQuota: past a plan's monthly quota of events, warn mode
// accepts with a warning and block mode refuses with a 429 naming the
// quota; stored and unflushed counts add up; the ISV hears of each
// tenant's crossing once.
func TestMonthlyQuota(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		hooks := quotaEndpoint(e)
		e.putPlan("warned", map[string]any{"monthly_events": 5}, "warn")
		e.putPlan("blocked", map[string]any{"monthly_events": 5}, "block")
		warned, blocked := e.planTenant("warned-co", "warned"), e.planTenant("blocked-co", "blocked")
		wkey, bkey := e.source(warned, "web"), e.source(blocked, "web")

		for _, key := range []string{wkey, bkey} {
			e.segment("/v1/batch", key, batchOf("m1", 3)).want(t, 200)
		}
		// Counted partly in the store, partly not yet flushed.
		if err := e.meter.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{wkey, bkey} {
			r := e.segment("/v1/batch", key, batchOf("m2", 2)).want(t, 200)
			if w := r.header.Get("Cairn-Quota-Warning"); w != "" {
				t.Fatalf("a warning within the quota: %q", w)
			}
			if !strings.Contains(r.header.Get("RateLimit"), `"monthly-events";r=0;t=`) {
				t.Fatalf("RateLimit with the quota just spent: %q", r.header.Get("RateLimit"))
			}
		}
		// Over it: accepted with a warning...
		for i := range 2 {
			r := e.segment("/v1/track", wkey, segEvent("track", fmt.Sprintf("m3-%d", i), map[string]any{"userId": "u", "event": "E"})).want(t, 200)
			if accepted(t, r, 1); !strings.Contains(r.header.Get("Cairn-Quota-Warning"), "monthly events quota") {
				t.Fatalf("over the quota in warn mode: Cairn-Quota-Warning %q", r.header.Get("Cairn-Quota-Warning"))
			}
		}
		// ...or refused, the quota named, until the month ends.
		r := e.segment("/v1/track", bkey, segEvent("track", "m3", map[string]any{"userId": "u", "event": "E"}))
		wantLimited(t, r, "monthly-events-quota", "monthly-events")
		if !strings.Contains(r.str("detail"), "5 events a month") {
			t.Fatalf("the refusal says why: %s", r.raw)
		}
		tok := e.tenantToken(blocked, "events:write")
		wantLimited(t, e.do("POST", "/v1/tenants/"+blocked+"/events", tok, batchOf("m4", 1)), "monthly-events-quota", "monthly-events")

		// Each crossing announced once to the fleet.
		got := quotaHooks(t, hooks, 2)
		month := time.Now().UTC().Format("2006-01")
		for tenant, mode := range map[string]string{warned: "warn", blocked: "block"} {
			h := got[tenant]
			if h.Type != "tenant.quota_exceeded" || h.Data.Quota != "monthly_events" || h.Data.Limit != 5 || h.Data.Month != month || h.Data.Mode != mode {
				t.Errorf("announcement of %s: %+v", tenant, h)
			}
		}
		select {
		case h := <-hooks:
			t.Fatalf("a third announcement: %+v", h)
		case <-time.After(500 * time.Millisecond):
		}
	}, withLimits(1000, ""))
}

// TestProfilesLimit: a tenant whose sampled profiles reached its plan's
// limit has its events accepted with a warning in warn mode and refused
// (403 profiles-quota, nothing stored) in block mode; a tenant under its
// limit hears nothing, and the ISV hears of each crossing once.
func TestProfilesLimit(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		hooks := quotaEndpoint(e)
		for _, name := range []string{"pwarn", "pblock", "roomy"} {
			e.putPlan(name, map[string]any{})
		}
		warned, blocked, roomy := e.planTenant("pwarn-co", "pwarn"), e.planTenant("pblock-co", "pblock"), e.planTenant("roomy-co", "roomy")
		keys := map[string]string{warned: e.source(warned, "web"), blocked: e.source(blocked, "web"), roomy: e.source(roomy, "web")}
		// Two profiles each, sampled as the server's sampler samples them.
		var samples []usage.Sample
		for tenant, key := range keys {
			for _, user := range []string{"ada", "grace"} {
				e.segment("/v1/identify", key, segEvent("identify", tenant+user, map[string]any{"userId": user})).want(t, 200)
			}
			n, err := e.profiles.ProfileCount(t.Context(), tenant)
			if err != nil || n != 2 {
				t.Fatalf("profiles of %s: %d, %v; want 2", tenant, n, err)
			}
			samples = append(samples, usage.Sample{TenantID: tenant, Metric: usage.Profiles, At: time.Now().UTC(), Value: int64(n)})
		}
		if err := e.db.UsageSample(t.Context(), samples); err != nil {
			t.Fatal(err)
		}
		e.do("PUT", "/v1/plans/pwarn", e.admin, map[string]any{"limits": map[string]any{"profiles": 2}, "profiles_mode": "warn"}).want(t, 200)
		e.do("PUT", "/v1/plans/pblock", e.admin, map[string]any{"limits": map[string]any{"profiles": 2}, "profiles_mode": "block"}).want(t, 200)
		if r := e.do("PUT", "/v1/plans/roomy", e.admin, map[string]any{"limits": map[string]any{"profiles": 3}, "profiles_mode": "block"}).want(t, 200); r.str("profiles_mode") != "block" {
			t.Fatalf("the plan's profiles_mode: %s", r.raw)
		}

		for i := range 2 {
			r := e.segment("/v1/track", keys[warned], segEvent("track", fmt.Sprintf("w-%d", i), map[string]any{"userId": "ada", "event": "E"}))
			if accepted(t, r, 1); !strings.Contains(r.header.Get("Cairn-Quota-Warning"), "limit of profiles") {
				t.Fatalf("at the limit in warn mode: Cairn-Quota-Warning %q", r.header.Get("Cairn-Quota-Warning"))
			}
		}
		r := e.segment("/v1/track", keys[blocked], segEvent("track", "b-0", map[string]any{"userId": "hedy", "event": "E"})).want(t, 403)
		if r.str("type") != "urn:cairn:problem:profiles-quota" || !strings.Contains(r.str("detail"), "allows 2 profiles") {
			t.Fatalf("at the limit in block mode: %s", r.raw)
		}
		tok := e.tenantToken(blocked, "events:write")
		e.do("POST", "/v1/tenants/"+blocked+"/events", tok, batchOf("b-1", 1)).want(t, 403)
		if n, err := e.profiles.ProfileCount(t.Context(), blocked); err != nil || n != 2 {
			t.Fatalf("refused events made profiles: %d, %v", n, err)
		}
		r = e.segment("/v1/track", keys[roomy], segEvent("track", "r-0", map[string]any{"userId": "hedy", "event": "E"}))
		if accepted(t, r, 1); r.header.Get("Cairn-Quota-Warning") != "" {
			t.Fatalf("under the limit: Cairn-Quota-Warning %q", r.header.Get("Cairn-Quota-Warning"))
		}

		got := quotaHooks(t, hooks, 2)
		for tenant, mode := range map[string]string{warned: "warn", blocked: "block"} {
			if h := got[tenant]; h.Type != "tenant.quota_exceeded" || h.Data.Quota != "profiles" || h.Data.Limit != 2 || h.Data.Mode != mode {
				t.Errorf("announcement of %s: %+v", tenant, h)
			}
		}
	}, withLimits(1000, ""))
}

// TestPlans: the plan routes: the default plan, PUT makes, replaces and
// repeats, versioned with ETag and If-Match, validated and audited; a
// tenant names only a plan that exists.
func TestPlans(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		def := e.do("GET", "/v1/plans/default", e.admin, nil).want(t, 200)
		if def.header.Get("ETag") != `"v1"` || def.str("monthly_events_mode") != "warn" {
			t.Fatalf("the default plan: %s %v", def.raw, def.header)
		}

		body := map[string]any{"description": "Gold", "limits": map[string]any{"events_per_second_per_source": 100, "segments": 10}, "monthly_events_mode": "block"}
		made := e.do("PUT", "/v1/plans/gold", e.admin, body).want(t, 201)
		if made.header.Get("Location") != "/v1/plans/gold" || made.header.Get("ETag") != `"v1"` || made.str("name") != "gold" {
			t.Fatalf("made: %s %v", made.raw, made.header)
		}
		again := e.do("PUT", "/v1/plans/gold", e.admin, body).want(t, 200)
		if again.header.Get("ETag") != `"v1"` || string(again.raw) != string(made.raw) {
			t.Fatalf("the same PUT again: %s %v, want the plan as it was", again.raw, again.header)
		}
		body["limits"] = map[string]any{"webhooks": 2}
		e.do("PUT", "/v1/plans/gold", e.admin, body, "If-Match", `"v7"`).want(t, 412)
		e.do("PUT", "/v1/plans/gold", e.admin, body, "If-Match", `W/"v1"`).want(t, 412)
		e.do("PUT", "/v1/plans/silver", e.admin, body, "If-Match", `*`).want(t, 412)
		changed := e.do("PUT", "/v1/plans/gold", e.admin, body, "If-Match", `"v1"`).want(t, 200)
		if changed.header.Get("ETag") != `"v2"` || changed.body["limits"].(map[string]any)["segments"] != nil {
			t.Fatalf("replaced: %s", changed.raw)
		}

		for _, bad := range []struct {
			path  string
			body  any
			field string
		}{
			{"/v1/plans/gold", map[string]any{"limits": map[string]any{"segments": -1}}, "/limits/segments"},
			{"/v1/plans/gold", map[string]any{"limits": map[string]any{"events_per_second_per_tenant": 0}}, "/limits/events_per_second_per_tenant"},
			{"/v1/plans/gold", map[string]any{"limits": map[string]any{"seats": 3}}, "/limits"},
			{"/v1/plans/gold", map[string]any{"limits": map[string]any{}, "monthly_events_mode": "shout"}, "/monthly_events_mode"},
			{"/v1/plans/gold", map[string]any{"description": "no limits"}, "/limits"},
			{"/v1/plans/bad%20name", map[string]any{"limits": map[string]any{}}, "plan_name"},
		} {
			r := e.do("PUT", bad.path, e.admin, bad.body).want(t, 400)
			if f := soleField(t, r); f != bad.field {
				t.Errorf("PUT %s %v: field %q, want %q", bad.path, bad.body, f, bad.field)
			}
		}
		if got := e.do("GET", "/v1/plans/gold", e.admin, nil).want(t, 200); got.header.Get("ETag") != `"v2"` {
			t.Fatalf("bad input changed the plan: %s", got.raw)
		}
		e.do("GET", "/v1/plans/none", e.admin, nil).want(t, 404)

		var names []string
		cursor := ""
		for {
			q := "/v1/plans?limit=1"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			r := e.do("GET", q, e.admin, nil).want(t, 200)
			for _, it := range r.body["items"].([]any) {
				names = append(names, it.(map[string]any)["name"].(string))
			}
			next, _ := r.body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(names) != "[default gold]" {
			t.Fatalf("plans listed: %v", names)
		}

		// Admins only.
		id := e.activeTenant("plan-reader")
		tok := e.tenantToken(id, "profiles:read", "profiles:write", "events:write", "segments:read", "webhooks:write", "audit:read")
		e.do("GET", "/v1/plans", tok, nil).want(t, 403)
		e.do("PUT", "/v1/plans/gold", tok, body).want(t, 403)

		// Audited: created, unchanged, replaced; refusals change nothing.
		var got []string
		for _, ev := range e.auditEvents(e.admin, "action=plan.create") {
			got = append(got, str(ev, "action")+":"+str(ev, "target_id"))
		}
		for _, ev := range e.auditEvents(e.admin, "action=plan.update") {
			d, _ := ev["detail"].(map[string]any)
			got = append(got, fmt.Sprintf("%s:%s:%v", str(ev, "action"), str(ev, "target_id"), d["unchanged"]))
		}
		if want := "[plan.create:gold plan.update:gold:true plan.update:gold:<nil>]"; fmt.Sprint(got) != want {
			t.Fatalf("audit events %v, want %s", got, want)
		}

		// A tenant names a plan that exists, or none.
		// (scripts/schemathesis_hooks.py excuses exactly this answer.)
		r := e.onboard("no-such-plan-co", map[string]any{"plan": "platinum"}).want(t, 400)
		if f := soleField(t, r); f != "plan" || r.body["errors"].([]any)[0].(map[string]any)["message"] != `no plan is named "platinum"` {
			t.Fatalf("onboarding on an unknown plan: %s", r.raw)
		}
		gold := e.onboard("gold-co", map[string]any{"plan": "gold"}).want(t, 202).str("id")
		e.do("PATCH", "/v1/tenants/"+gold, e.admin, map[string]any{"plan": "platinum"}).want(t, 400)
		e.do("PATCH", "/v1/tenants/"+gold, e.admin, map[string]any{"plan": "default"}).want(t, 200)
		e.do("PATCH", "/v1/tenants/"+gold, e.admin, map[string]any{"plan": ""}).want(t, 200)
	})
}

// TestPlanCountLimits: a plan's segments and webhook endpoints are
// counted at creation, past them a 409 plan-limit problem; another
// tenant's plan is its own.
func TestPlanCountLimits(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		e.putPlan("small", map[string]any{"segments": 1, "webhooks": 1})
		small := e.planTenant("small-co", "small")
		roomy := e.activeTenant("roomy-co")
		url, _ := hookReceiver(t)
		segment := func(i int) map[string]any {
			return map[string]any{"name": fmt.Sprintf("s%d", i), "conditions": []any{map[string]any{"trait": "plan", "operator": "equals", "value": "pro"}}}
		}
		hook := map[string]any{"url": url, "event_types": []string{"profile.created"}}
		for _, id := range []string{small, roomy} {
			e.do("POST", "/v1/tenants/"+id+"/segments", e.admin, segment(1)).want(t, 201)
			e.do("POST", "/v1/tenants/"+id+"/webhooks", e.admin, hook).want(t, 201)
		}
		for path, body := range map[string]any{"/segments": segment(2), "/webhooks": hook} {
			r := e.do("POST", "/v1/tenants/"+small+path, e.admin, body).want(t, 409)
			if r.str("type") != "urn:cairn:problem:plan-limit" || !strings.Contains(r.str("detail"), `plan "small" allows 1`) {
				t.Fatalf("POST %s past the plan: %s", path, r.raw)
			}
			e.do("POST", "/v1/tenants/"+roomy+path, e.admin, body).want(t, 201)
		}
		// A larger plan lifts the limit.
		e.putPlan("small", map[string]any{"segments": 2, "webhooks": 2})
		e.do("POST", "/v1/tenants/"+small+"/segments", e.admin, segment(3)).want(t, 201)
	})
}
