package profiles_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// parse builds an event from its JSON, as the HTTP handler does.
func (f *fixture) parse(raw string) profiles.Event {
	f.t.Helper()
	e, err := profiles.ParseEvent(0, json.RawMessage(raw), "", time.Now())
	if err != nil {
		f.t.Fatalf("event %s: %v", raw, err)
	}
	return e
}

// setLimit sets the limit of one identifier type in the tenant's config.
func (f *fixture) setLimit(typ string, limit int) {
	f.t.Helper()
	cfg := profiles.DefaultIdentityConfig()
	for i := range cfg.Identifiers {
		if cfg.Identifiers[i].Type == typ {
			cfg.Identifiers[i].Limit = limit
		}
	}
	if _, err := f.svc.SetIdentityConfig(context.Background(), f.tenant, cfg); err != nil {
		f.t.Fatal(err)
	}
}

// withinLimits fails the test if p holds more identifiers of a type than
// the default config allows.
func withinLimits(t testing.TB, p profiles.Profile) {
	t.Helper()
	held := map[string]int{}
	for _, id := range p.Identifiers {
		held[id.Type]++
	}
	for _, r := range profiles.DefaultIdentityConfig().Identifiers {
		if held[r.Type] > r.Limit {
			t.Fatalf("profile %s holds %d %s identifiers, limit %d: %v", p.ID, held[r.Type], r.Type, r.Limit, idsOf(p))
		}
	}
}

func notFound(f *fixture, typ, value string) {
	f.t.Helper()
	if p, err := f.svc.Lookup(context.Background(), f.tenant, profiles.Identifier{Type: typ, Value: value}); err != profiles.ErrProfileNotFound {
		f.t.Fatalf("%s:%s resolves to %v (%v)", typ, value, idsOf(p), err)
	}
}

func TestIngestSemantics(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(f *fixture)
	}{
		{"context traits of an identify", func(f *fixture) {
			// rudder-sdk-python sends identify traits in context.traits only.
			f.send(f.parse(`{"type":"identify","messageId":"m1","userId":"u1","context":{"traits":{"email":"Py@Example.com","plan":"free"}}}`))
			p := f.lookup("email", "py@example.com")
			if got := idsOf(p); !slices.Equal(got, []string{"email:py@example.com", "user_id:u1"}) || p.Traits["plan"] != "free" {
				f.t.Fatalf("identifiers %v, traits %v", got, p.Traits)
			}
			// Both: the top-level trait wins, context-only ones count.
			f.send(f.parse(`{"type":"identify","messageId":"m2","userId":"u1","traits":{"plan":"pro"},"context":{"traits":{"plan":"free","phone":"+15550002"}}}`))
			p = f.lookup("user_id", "u1")
			if p.Traits["plan"] != "pro" || p.Traits["phone"] != "+15550002" || f.lookup("phone", "+15550002").ID != p.ID {
				f.t.Fatalf("traits %v, identifiers %v", p.Traits, idsOf(p))
			}
		}},
		{"alias of an anonymous visitor", func(f *fixture) {
			f.send(f.ev(map[string]any{"anonymousId": "anon-9", "email": "n@example.com"}))
			f.send(f.ev(map[string]any{"userId": "u9", "plan": "pro"}))
			f.send(f.ev(map[string]any{"type": "alias", "previousId": "anon-9", "userId": "u9"}))
			p := f.lookup("user_id", "u9")
			if got := idsOf(p); !slices.Equal(got, []string{"anonymous_id:anon-9", "email:n@example.com", "user_id:u9"}) || len(p.MergedProfileIDs) != 1 {
				f.t.Fatalf("identifiers %v, merged %v", got, p.MergedProfileIDs)
			}
		}},
		{"alias of an unknown visitor", func(f *fixture) {
			f.send(f.ev(map[string]any{"type": "alias", "previousId": "anon-1", "userId": "u1"}))
			if got := idsOf(f.lookup("user_id", "u1")); !slices.Equal(got, []string{"anonymous_id:anon-1", "user_id:u1"}) {
				f.t.Fatalf("identifiers %v", got)
			}
		}},
		{"alias of a user ID", func(f *fixture) {
			f.setLimit(profiles.IDUserID, 2)
			f.send(f.ev(map[string]any{"userId": "old", "email": "o@example.com"}))
			f.send(f.ev(map[string]any{"type": "track", "userId": "new", "anonymousId": "a1"}))
			f.send(f.ev(map[string]any{"type": "alias", "previousId": "old", "userId": "new"}))
			p := f.lookup("user_id", "new")
			if got := idsOf(p); !slices.Equal(got, []string{"anonymous_id:a1", "email:o@example.com", "user_id:new", "user_id:old"}) || len(p.MergedProfileIDs) != 1 {
				f.t.Fatalf("identifiers %v, merged %v", got, p.MergedProfileIDs)
			}
			notFound(f, profiles.IDAnonymousID, "old")
		}},
		{"alias of a user ID beyond the limit", func(f *fixture) {
			// One user_id a profile (the default): the alias cannot merge,
			// and previousId becomes no anonymous ID.
			f.send(f.ev(map[string]any{"userId": "old", "email": "o@example.com"}))
			f.send(f.ev(map[string]any{"type": "alias", "previousId": "old", "userId": "new"}))
			if got := idsOf(f.lookup("user_id", "old")); !slices.Equal(got, []string{"email:o@example.com", "user_id:old"}) {
				f.t.Fatalf("identifiers %v", got)
			}
			if got := idsOf(f.lookup("user_id", "new")); !slices.Equal(got, []string{"user_id:new"}) {
				f.t.Fatalf("identifiers %v", got)
			}
			notFound(f, profiles.IDAnonymousID, "old")
		}},
		{"limits hold after a merge", func(f *fixture) {
			var batch []profiles.Event
			for i := range 3 {
				batch = append(batch,
					f.ev(map[string]any{"anonymousId": fmt.Sprint("a", i), "email": "e@example.com"}),
					f.ev(map[string]any{"anonymousId": fmt.Sprint("b", i), "userId": "u1"}))
			}
			f.send(batch...)
			before := f.lookup("email", "e@example.com")
			// Merging would give 6 anonymous IDs, over the limit of 5: the
			// event's lowest-priority identifier (the email) is dropped.
			if r := f.send(f.ev(map[string]any{"userId": "u1", "email": "e@example.com", "plan": "pro"})); r.Accepted != 1 {
				f.t.Fatalf("result %+v", r)
			}
			u := f.lookup("user_id", "u1")
			withinLimits(f.t, u)
			if got := idsOf(u); len(got) != 4 || len(u.MergedProfileIDs) != 0 || u.Traits["plan"] != "pro" {
				f.t.Fatalf("identifiers %v, merged %v, traits %v", got, u.MergedProfileIDs, u.Traits)
			}
			if e := f.lookup("email", "e@example.com"); e.ID != before.ID || !slices.Equal(idsOf(e), idsOf(before)) {
				f.t.Fatalf("email profile changed: %v", idsOf(e))
			}
		}},
		{"limits hold after a merge in one batch", func(f *fixture) {
			var batch []profiles.Event
			for i := range 3 {
				batch = append(batch,
					f.ev(map[string]any{"anonymousId": fmt.Sprint("a", i), "phone": "+15550003"}),
					f.ev(map[string]any{"anonymousId": fmt.Sprint("b", i), "email": "f@example.com"}))
			}
			batch = append(batch, f.ev(map[string]any{"userId": "u1", "email": "f@example.com", "phone": "+15550003"}))
			if r := f.send(batch...); r.Accepted != len(batch) {
				f.t.Fatalf("result %+v", r)
			}
			u := f.lookup("user_id", "u1")
			withinLimits(f.t, u)
			withinLimits(f.t, f.lookup("phone", "+15550003"))
			if f.lookup("phone", "+15550003").ID == f.lookup("email", "f@example.com").ID {
				f.t.Fatal("merged beyond the anonymous_id limit")
			}
		}},
		{"merge within limits", func(f *fixture) {
			f.send(f.ev(map[string]any{"anonymousId": "a1", "email": "g@example.com"}), f.ev(map[string]any{"anonymousId": "a2", "email": "g@example.com"}))
			f.send(f.ev(map[string]any{"anonymousId": "b1", "userId": "u1"}), f.ev(map[string]any{"anonymousId": "b2", "userId": "u1"}), f.ev(map[string]any{"anonymousId": "b3", "userId": "u1"}))
			f.send(f.ev(map[string]any{"userId": "u1", "email": "g@example.com"}))
			u := f.lookup("user_id", "u1")
			if len(idsOf(u)) != 7 || len(u.MergedProfileIDs) != 1 {
				f.t.Fatalf("identifiers %v, merged %v", idsOf(u), u.MergedProfileIDs)
			}
		}},
		{"generated messageId", func(f *fixture) {
			raw := `{"type":"track","event":"Signed Up","userId":"u1","properties":{"plan":"pro"}}`
			first, second := f.parse(raw), f.parse(raw)
			// Two events sent without messageId are two events.
			if r := f.send(first, second); r.Accepted != 2 || r.Duplicates != 0 {
				f.t.Fatalf("result %+v", r)
			}
			p := f.lookup("user_id", "u1")
			evs, err := f.svc.Events(context.Background(), f.tenant, p.ID, "", "", 10)
			if err != nil || len(evs) != 2 {
				f.t.Fatalf("events %+v, %v", evs, err)
			}
			ids := []string{first.MessageID, second.MessageID}
			for _, e := range evs {
				if !slices.Contains(ids, e.MessageID) {
					f.t.Fatalf("stored messageId %q, sent %v", e.MessageID, ids)
				}
			}
			// The raw zone's lines carry the assigned IDs.
			var seen []string
			objects, err := f.raw.List(context.Background(), f.tenant)
			if err != nil {
				f.t.Fatal(err)
			}
			for _, o := range objects {
				lines, err := f.raw.Read(context.Background(), f.tenant, o)
				if err != nil {
					f.t.Fatal(err)
				}
				for _, l := range lines {
					var w struct {
						MessageID string `json:"messageId"`
					}
					if err := json.Unmarshal(l, &w); err != nil || !strings.Contains(string(l), `"plan":"pro"`) {
						f.t.Fatalf("raw line %s: %v", l, err)
					}
					seen = append(seen, w.MessageID)
				}
			}
			slices.Sort(seen)
			slices.Sort(ids)
			if !slices.Equal(seen, ids) {
				f.t.Fatalf("raw zone messageIds %v, want %v", seen, ids)
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			stores(t, func(t *testing.T, f *fixture) { sc.run(f) })
		})
	}
}
