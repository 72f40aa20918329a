package httpapi_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/cairn-cdp/cairn/internal/profiles/sqlitestore"
)

// profileItems counts the tenant's items in the environment's profile
// store, reading its file directly: the Store port has no way to list a
// tenant's items, and the count must include what no API route shows
// (deduplication records, identifier index entries, expired items).
func (e *env) profileItems(tenantID string) int {
	e.t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(e.dataDir, sqlitestore.FileName)+"?_pragma=query_only(1)")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	// A tenant's partition keys are the range [TENANT#<id>#, TENANT#<id>$).
	var n int
	if err := db.QueryRowContext(e.t.Context(), "SELECT count(*) FROM items WHERE pk >= ?1 AND pk < ?2",
		"TENANT#"+tenantID+"#", "TENANT#"+tenantID+"$").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestOffboardingPurgesProfilesAndSources offboards one of two pooled
// tenants that share the embedded profile store: its write key is refused
// and its sources revoked, and none of its profile items is left, while
// the other tenant's profile and write key work as before.
func TestOffboardingPurgesProfilesAndSources(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		gone := e.activeTenant("purge-gone")
		kept := e.activeTenant("purge-kept")
		keys := map[string]string{gone: e.source(gone, "web"), kept: e.source(kept, "web")}
		e.source(gone, "server") // a second source, never used
		for _, id := range []string{gone, kept} {
			e.segment("/v1/batch", keys[id], map[string]any{"batch": []any{
				segEvent("identify", "p1", map[string]any{"userId": "u1", "traits": map[string]any{"email": "u1@example.com"}}),
				segEvent("track", "p2", map[string]any{"userId": "u1", "event": "Signed Up"}),
				segEvent("identify", "p3", map[string]any{"anonymousId": "a1", "traits": map[string]any{"email": "u1@example.com"}}),
			}}).want(t, 200)
			e.do("GET", "/v1/tenants/"+id+"/profiles?identifier=user_id:u1", e.admin, nil).want(t, 200)
		}
		if n := e.profileItems(gone); n == 0 {
			t.Fatal("the tenant to offboard has no profile items: nothing to test")
		}
		keptItems := e.profileItems(kept)

		e.do("DELETE", "/v1/tenants/"+gone, e.admin, nil).want(t, 202)
		e.waitStatus(gone, "deleted")

		e.segment("/v1/track", keys[gone], segEvent("track", "p4", map[string]any{"userId": "u1", "event": "E"})).want(t, 401)
		srcs := e.do("GET", "/v1/tenants/"+gone+"/sources", e.admin, nil).want(t, 200).body["items"].([]any)
		if len(srcs) != 2 {
			t.Fatalf("%d sources of the offboarded tenant, want its 2 kept as revoked records", len(srcs))
		}
		for _, s := range srcs {
			if src := s.(map[string]any); src["revoked"] != true || src["revoked_at"] == nil {
				t.Errorf("source of the offboarded tenant not revoked: %v", src)
			}
		}
		if n := e.profileItems(gone); n != 0 {
			t.Errorf("%d profile items of the offboarded tenant are left", n)
		}

		if n := e.profileItems(kept); n != keptItems {
			t.Errorf("the other tenant has %d profile items, had %d", n, keptItems)
		}
		p := e.do("GET", "/v1/tenants/"+kept+"/profiles?identifier=email:u1@example.com", e.admin, nil).want(t, 200)
		if ids := p.body["identifiers"].([]any); len(ids) != 3 {
			t.Errorf("the other tenant's profile after the offboarding: %s", p.raw)
		}
		e.segment("/v1/track", keys[kept], segEvent("track", "p4", map[string]any{"userId": "u1", "event": "E"})).want(t, 200)
		if n := e.profileItems(kept); n <= keptItems {
			t.Errorf("the other tenant's write key wrote nothing: %d items, had %d", n, keptItems)
		}
	})
}
