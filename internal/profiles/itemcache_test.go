package profiles_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// A Service whose item cache is stale (another replica changed the
// customer since) still records and evaluates exactly: what it read from
// its cache is conditioned on, so the events are resolved again from the
// store.
func TestItemCacheStale(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		g := f.segment(t, "Pro", `{"trait": "plan", "operator": "equals", "value": "pro"}`)
		f.send(f.ev(map[string]any{"userId": "u0", "plan": "free"}))
		// A track of the known customer: this Service caches its member
		// and membership set.
		f.send(f.ev(map[string]any{"type": "track", "userId": "u0", "event": "Viewed"}))
		// Another replica: the customer moves to pro and enters.
		other := *f
		other.svc = profiles.NewService(f.store, f.raw, nil)
		other.send(f.ev(map[string]any{"userId": "u0", "plan": "pro"}))
		if p := f.lookup("user_id", "u0"); !slices.Contains(p.Segments, g.ID) {
			t.Fatalf("after the other replica's pro: segments %v, want %s", p.Segments, g.ID)
		}
		// Back to free through this Service, whose cache still says free:
		// the member changes, and the profile leaves.
		f.send(f.ev(map[string]any{"userId": "u0", "plan": "free"}))
		p := f.lookup("user_id", "u0")
		if p.Traits["plan"] != "free" || slices.Contains(p.Segments, g.ID) {
			t.Fatalf("plan %v, segments %v: want free and not in %s", p.Traits["plan"], p.Segments, g.ID)
		}
		if n, err := f.svc.MemberCount(ctx, f.tenant, g.ID); err != nil || n != 0 {
			t.Fatalf("member count %d, %v; want 0", n, err)
		}
		// And in again, through this Service, from a cache that learnt.
		f.send(f.ev(map[string]any{"userId": "u0", "plan": "pro"}))
		if n, err := f.svc.MemberCount(ctx, f.tenant, g.ID); err != nil || n != 1 {
			t.Fatalf("member count %d, %v; want 1", n, err)
		}
	})
}
