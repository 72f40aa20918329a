package profiles_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// recorder is an Outbox subscribed to everything that keeps what it is
// given, by notice ID (Deliver is idempotent by ID, as the contract says).
type recorder struct {
	mu      sync.Mutex
	byID    map[string]profiles.Notice
	order   []string
	repeats int
}

func (r *recorder) Subscribed(context.Context, string, string) (bool, error) { return true, nil }

func (r *recorder) Deliver(_ context.Context, _ string, ns []profiles.Notice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]profiles.Notice{}
	}
	for _, n := range ns {
		if _, ok := r.byID[n.ID]; ok {
			r.repeats++
			continue
		}
		r.byID[n.ID] = n
		r.order = append(r.order, n.ID)
	}
	return nil
}

// identified relays the tenant's outbox and fails the test unless every
// notice not yet taken names the profile's identifiers, as a receiver
// expects of a segment event whether an event or a recompute made it.
func (r *recorder) identified(t *testing.T, f *fixture, what string) {
	t.Helper()
	if _, err := f.svc.Relay(context.Background(), f.tenant); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.order {
		n := r.byID[id]
		var d struct {
			Identifiers []map[string]string `json:"identifiers"`
		}
		if err := json.Unmarshal(n.Data, &d); err != nil || len(d.Identifiers) == 0 {
			t.Errorf("%s: %s of %s names no identifiers: %s", what, n.Type, n.ProfileID, n.Data)
		}
	}
}

// take relays the tenant's outbox and returns the notices delivered since
// the last call, as "type profile segment" strings, sorted.
func (r *recorder) take(t *testing.T, f *fixture) []string {
	t.Helper()
	if _, err := f.svc.Relay(context.Background(), f.tenant); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, id := range r.order {
		n := r.byID[id]
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", n.Type, n.ProfileID, n.SegmentID)))
	}
	r.order = nil
	sort.Strings(out)
	return out
}

// audienceFixture is a fixture whose service has a clock the test moves
// and a recording outbox.
func audienceFixture(t *testing.T, f *fixture) (*recorder, *time.Time) {
	clock := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	f.svc = profiles.NewService(f.store, f.raw, func() time.Time { return clock })
	rec := &recorder{}
	f.svc.SetOutbox(rec)
	return rec, &clock
}

func (f *fixture) segment(t *testing.T, name, def string) profiles.Segment {
	t.Helper()
	node, err := profiles.ParseDefinition([]byte(def), "/definition")
	if err != nil {
		t.Fatalf("definition %s: %v", def, err)
	}
	g, err := f.svc.CreateSegment(context.Background(), f.tenant, profiles.Segment{Name: name, Definition: &node}, f.recompute)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func want(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s: notices\n  %q\nwant\n  %q", what, got, want)
	}
}

// Every kind of profile change gives exactly the transitions it should,
// each once, with IDs that do not change on a replay.
func TestTransitions(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		rec, clock := audienceFixture(t, f)
		pro := f.segment(t, "pro", `{"trait": "plan", "operator": "equals", "value": "pro"}`)
		active := f.segment(t, "active", `{"event": "Clicked", "within": "1h"}`)
		proActive := f.segment(t, "pro and active", fmt.Sprintf(`{"all": [{"segment": %q}, {"segment": %q}]}`, pro.ID, active.ID))
		want(t, "segments made over no profile", rec.take(t, f))

		// Entering on a trait, then on an event, and the segment built on both.
		f.send(f.ev(map[string]any{"userId": "u1", "plan": "pro"}))
		u1 := f.lookup("user_id", "u1").ID
		want(t, "pro", rec.take(t, f), "profile.created "+u1, "segment.entered "+u1+" "+pro.ID)
		f.send(f.ev(map[string]any{"type": "track", "userId": "u1"}))
		want(t, "active", rec.take(t, f), "segment.entered "+u1+" "+active.ID, "segment.entered "+u1+" "+proActive.ID)
		if got := f.lookup("user_id", "u1").Segments; !slices.Equal(got, []string{pro.ID, active.ID, proActive.ID}) {
			t.Fatalf("u1's segments: %v", got)
		}
		// An event that changes nothing gives nothing.
		f.send(f.ev(map[string]any{"userId": "u1", "plan": "pro"}))
		want(t, "same plan", rec.take(t, f))

		// Merge of two members of "pro": one membership, no exit and no
		// entry, only the merge.
		f.send(f.ev(map[string]any{"anonymousId": "a2", "plan": "pro"}))
		a2 := f.lookup("anonymous_id", "a2").ID
		want(t, "a2", rec.take(t, f), "profile.created "+a2, "segment.entered "+a2+" "+pro.ID)
		f.send(f.ev(map[string]any{"type": "track", "event": "Other", "userId": "u1", "anonymousId": "a2"}))
		merged := f.lookup("user_id", "u1")
		notices := rec.take(t, f)
		if len(notices) != 1 || !strings.HasPrefix(notices[0], "profile.merged "+merged.ID) {
			t.Fatalf("merge: notices %q, want only the merge", notices)
		}
		if n, err := f.svc.MemberCount(ctx, f.tenant, pro.ID); err != nil || n != 1 {
			t.Fatalf("pro has %d members (%v) after the merge, want 1", n, err)
		}

		// Unmerge: both are evaluated again; a2 is pro again on its own.
		other := merged.MergedProfileIDs[0]
		if _, err := f.svc.Unmerge(ctx, f.tenant, merged.ID, other); err != nil {
			t.Fatal(err)
		}
		got := rec.take(t, f)
		if !slices.Contains(got, "segment.entered "+other+" "+pro.ID) || !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "profile.unmerged") }) {
			t.Fatalf("unmerge: %q", got)
		}

		// The window closes with no new event: the sweep finds it due.
		*clock = clock.Add(2 * time.Hour)
		if _, err := f.svc.Pending(ctx, f.tenant); err != nil {
			t.Fatal(err)
		}
		want(t, "window closed", rec.take(t, f), "segment.exited "+u1+" "+active.ID, "segment.exited "+u1+" "+proActive.ID)

		// A trait change out of the segment.
		f.send(f.ev(map[string]any{"userId": "u1", "plan": "free"}))
		want(t, "free", rec.take(t, f), "segment.exited "+u1+" "+pro.ID)

		// An edit re-evaluates everyone: now "free" is the segment.
		_, err := f.svc.UpdateSegment(ctx, f.tenant, pro.ID, 0, func(g *profiles.Segment) error {
			node, err := profiles.ParseDefinition([]byte(`{"trait": "plan", "operator": "in", "value": ["free", "trial"]}`), "/definition")
			g.Definition = &node
			return err
		}, f.recompute)
		if err != nil {
			t.Fatal(err)
		}
		rec.identified(t, f, "edit")
		want(t, "edit", rec.take(t, f), "segment.entered "+u1+" "+pro.ID, "segment.exited "+other+" "+pro.ID)
		if st, err := f.svc.Status(ctx, f.tenant, pro.ID); err != nil || st.Status != profiles.SegmentReady || st.Progress != 100 {
			t.Fatalf("status after the edit: %+v, %v", st, err)
		}

		// Erasure: an exit for each membership, and the erasure.
		e, err := f.svc.StartErasure(ctx, f.tenant, u1, false, func(ctx context.Context, a profiles.ErasureArgs) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Erase(ctx, f.tenant, e.ID); err != nil {
			t.Fatal(err)
		}
		want(t, "erasure", rec.take(t, f), "profile.erased "+u1, "segment.exited "+u1+" "+pro.ID)
		if n, err := f.svc.MemberCount(ctx, f.tenant, pro.ID); err != nil || n != 0 {
			t.Fatalf("pro has %d members (%v) after the erasure, want 0", n, err)
		}

		// Replays: running the sweep and the relay again delivers nothing
		// new, and nothing was delivered twice.
		if _, err := f.svc.Pending(ctx, f.tenant); err != nil {
			t.Fatal(err)
		}
		want(t, "replay", rec.take(t, f))
		if rec.repeats != 0 {
			t.Fatalf("%d notices delivered twice", rec.repeats)
		}
	})
}

// A notice's ID is a function of the transition: the exit of a membership
// derives from its entry, so a replayed exit has the same ID.
func TestTransitionIDsAreStable(t *testing.T) {
	f := newFixture(t, sqliteStore(t))
	rec, _ := audienceFixture(t, f)
	pro := f.segment(t, "pro", `{"trait": "plan", "operator": "equals", "value": "pro"}`)
	f.send(f.ev(map[string]any{"userId": "u1", "plan": "pro"}))
	f.send(f.ev(map[string]any{"userId": "u1", "plan": "free"}))
	rec.take(t, f)
	var entered, exited profiles.Notice
	for _, n := range rec.byID {
		switch {
		case n.Type == profiles.NoticeSegmentEntered && n.SegmentID == pro.ID:
			entered = n
		case n.Type == profiles.NoticeSegmentExited && n.SegmentID == pro.ID:
			exited = n
		}
	}
	if entered.ID == "" || exited.ID == "" || entered.ID == exited.ID {
		t.Fatalf("entered %q, exited %q", entered.ID, exited.ID)
	}
	var data map[string]any
	if err := json.Unmarshal(entered.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["profile_id"] != entered.ProfileID || data["identifiers"] == nil || entered.Traits["plan"] != "pro" {
		t.Fatalf("entered notice: %s, traits %v", entered.Data, entered.Traits)
	}
}

// An event rule counts the events from before its segment existed, and
// every event once, whether a marker or the backfill counted it.
func TestBackfillCountsEveryEventOnce(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		click := func(user string) { f.send(f.ev(map[string]any{"type": "track", "userId": user})) }
		for range 3 {
			click("u1")
		}
		click("u2")
		u1, u2 := f.lookup("user_id", "u1").ID, f.lookup("user_id", "u2").ID

		// Made without its computation: the events that arrive now are
		// counted by markers (and remembered as seen) before the backfill.
		node, err := profiles.ParseDefinition([]byte(`{"event": "Clicked", "count": {"operator": "exactly", "value": 4}}`), "/definition")
		if err != nil {
			t.Fatal(err)
		}
		var queued []profiles.RecomputeArgs
		four, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: "four", Definition: &node}, func(_ context.Context, a profiles.RecomputeArgs) error {
			queued = append(queued, a)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		click("u1")
		click("u2")
		if n, _ := f.svc.MemberCount(ctx, f.tenant, four.ID); n != 0 {
			t.Fatalf("%d members before the backfill: markers alone count 1 click each", n)
		}
		n, sample, err := f.svc.Preview(ctx, f.tenant, node, 20)
		if err != nil || n != 1 || !slices.Equal(sample, []string{u1}) {
			t.Fatalf("preview of an incomplete leaf: %d %v %v, want u1 alone", n, sample, err)
		}
		for _, a := range queued {
			if err := f.svc.RunRecompute(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		members, err := f.svc.Members(ctx, f.tenant, four.ID, "", 10)
		if err != nil || len(members) != 1 || members[0].ProfileID != u1 {
			t.Fatalf("after the backfill: %+v, %v; want u1 (4 clicks) alone", members, err)
		}
		// Later events are counted once each: u1 leaves at 5, u2 enters
		// at 4 (2 before, then 2 more).
		click("u1")
		click("u2")
		click("u2")
		for _, id := range []string{u1, u2} {
			p, err := f.svc.Profile(ctx, f.tenant, id)
			if err != nil {
				t.Fatal(err)
			}
			if in := slices.Contains(p.Segments, four.ID); in != (id == u2) {
				t.Fatalf("%s in four: %v after the later clicks", id, in)
			}
		}
		// A second recompute changes nothing: the backfill is done once.
		if err := f.svc.RunRecompute(ctx, profiles.RecomputeArgs{TenantID: f.tenant, SegmentID: four.ID}); err != nil {
			t.Fatal(err)
		}
		if members, _ := f.svc.Members(ctx, f.tenant, four.ID, "", 10); len(members) != 1 || members[0].ProfileID != u2 {
			t.Fatalf("after a second recompute: %+v", members)
		}
	})
}

// A window segment's member leaves within 45 s (a wake-up step and the
// sweep's period) of the moment it stops qualifying, and not before.
func TestWindowClosesOnTime(t *testing.T) {
	f := newFixture(t, sqliteStore(t))
	rec, clock := audienceFixture(t, f)
	ctx := context.Background()
	active := f.segment(t, "active", `{"event": "Clicked", "within": "1h"}`)
	ev := f.ev(map[string]any{"type": "track", "userId": "u1"})
	*clock = ev.Timestamp.Add(30 * time.Minute)
	f.send(ev)
	u1 := f.lookup("user_id", "u1").ID
	want(t, "clicked", rec.take(t, f), "profile.created "+u1, "segment.entered "+u1+" "+active.ID)

	edge := ev.Timestamp.Add(time.Hour) // the click leaves the window
	for _, at := range []time.Time{edge.Add(-time.Second), edge} {
		*clock = at
		if _, err := f.svc.Pending(ctx, f.tenant); err != nil {
			t.Fatal(err)
		}
		want(t, "before the wake-up "+at.String(), rec.take(t, f))
	}
	*clock = edge.Add(15 * time.Second) // the wake-up, rounded up to its step
	if _, err := f.svc.Pending(ctx, f.tenant); err != nil {
		t.Fatal(err)
	}
	want(t, "window closed", rec.take(t, f), "segment.exited "+u1+" "+active.ID)
}

// A profile's membership set is written with its memberships; a known
// customer's events are evaluated as they are recorded, leaving no marker;
// and memberships stored before sets existed (no set) are read from their
// items, with exact transitions, the evaluation writing the set.
func TestMembershipSets(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		rec, _ := audienceFixture(t, f)
		pro := f.segment(t, "pro", `{"trait": "plan", "operator": "equals", "value": "pro"}`)
		active := f.segment(t, "active", `{"event": "Clicked", "within": "1h"}`)
		f.send(f.ev(map[string]any{"userId": "u1", "plan": "pro"}))
		u1 := f.lookup("user_id", "u1").ID
		want(t, "pro", rec.take(t, f), "profile.created "+u1, "segment.entered "+u1+" "+pro.ID)
		setKey := profiles.MembershipSetKey(f.tenant, u1)
		if _, ok, err := f.store.Get(ctx, setKey); err != nil || !ok {
			t.Fatalf("u1's membership set: found %v, %v", ok, err)
		}

		// A known customer's event: evaluated in the transaction that
		// records it.
		f.send(f.ev(map[string]any{"type": "track", "userId": "u1"}))
		want(t, "active", rec.take(t, f), "segment.entered "+u1+" "+active.ID)
		if items, err := f.store.Query(ctx, profiles.QueryInput{PK: profiles.QueuePK(f.tenant)}); err != nil || len(items) != 0 {
			t.Fatalf("markers left: %d (%v), want none", len(items), err)
		}

		// Memberships stored before sets: the set is gone, the items stay.
		if err := f.store.Transact(ctx, []profiles.Op{{Delete: &setKey}}); err != nil {
			t.Fatal(err)
		}
		f.send(f.ev(map[string]any{"userId": "u1", "plan": "free"}))
		want(t, "free, without a set", rec.take(t, f), "segment.exited "+u1+" "+pro.ID)
		if got := f.lookup("user_id", "u1").Segments; !slices.Equal(got, []string{active.ID}) {
			t.Fatalf("u1's segments: %v, want only active", got)
		}
		if _, ok, err := f.store.Get(ctx, setKey); err != nil || !ok {
			t.Fatalf("u1's membership set after its evaluation: found %v, %v", ok, err)
		}
		// The set written from the items is right: the next changes are
		// exact, each once.
		f.send(f.ev(map[string]any{"type": "track", "userId": "u1"}), f.ev(map[string]any{"userId": "u1", "plan": "pro"}))
		want(t, "pro again", rec.take(t, f), "segment.entered "+u1+" "+pro.ID)
		for _, g := range []profiles.Segment{pro, active} {
			if n, err := f.svc.MemberCount(ctx, f.tenant, g.ID); err != nil || n != 1 {
				t.Fatalf("%s has %d members (%v), want 1", g.Name, n, err)
			}
		}
		if rec.repeats != 0 {
			t.Fatalf("%d notices delivered twice", rec.repeats)
		}
	})
}

// interleaved is a store on which, once armed, another replica's
// evaluation (hook, on the store underneath) commits just before the
// first transaction that writes the item at key.
type interleaved struct {
	profiles.Store
	key   profiles.Key
	armed bool
	hook  func()
	once  sync.Once
}

func (s *interleaved) Transact(ctx context.Context, ops []profiles.Op) error {
	for _, op := range ops {
		if s.armed && op.Put != nil && !op.Check && op.Put.PK == s.key.PK && op.Put.SK == s.key.SK {
			s.once.Do(s.hook)
		}
	}
	return s.Store.Transact(ctx, ops)
}

// Two replicas evaluate one profile at once: one takes in a trait, the
// other a purchase, and the first changes no membership. The first
// commits second, having read what the other then wrote (its aggregates,
// or its membership set), so it must not commit on what it read: the
// profile ends in the segment that needs both.
func TestConcurrentEvaluationsSeeEachOther(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		rec, clock := audienceFixture(t, f)
		now := func() time.Time { return *clock }
		base := f.svc
		for _, c := range []struct {
			name     string
			readAggs bool // the trait's evaluation reads stored aggregates
			segments func() []profiles.Segment
		}{
			// The purchase changes the aggregates alone.
			{"aggregates", true, func() []profiles.Segment {
				return []profiles.Segment{f.segment(t, "vip buyers", `{"all": [{"trait": "plan", "operator": "equals", "value": "vip"}, {"event": "Purchase"}]}`)}
			}},
			// The purchase changes the set; the trait's evaluation reads
			// the set, not the aggregates.
			{"set", false, func() []profiles.Segment {
				buyers := f.segment(t, "buyers", `{"event": "Purchase"}`)
				return []profiles.Segment{buyers, f.segment(t, "vip in buyers", fmt.Sprintf(`{"all": [{"trait": "plan", "operator": "equals", "value": "vip"}, {"segment": %q}]}`, buyers.ID))}
			}},
		} {
			f.svc, f.tenant = base, tenants.NewID()
			segments := c.segments()
			f.send(f.ev(map[string]any{"userId": "u1", "plan": "free"}))
			id := f.lookup("user_id", "u1").ID
			want(t, c.name, rec.take(t, f), "profile.created "+id)
			if _, ok, err := f.store.Get(ctx, profiles.AggregatesKey(f.tenant, id)); err != nil || ok != c.readAggs {
				t.Fatalf("%s: aggregates: found %v, %v", c.name, ok, err)
			}

			// Each replica a Service of its own, with an empty item cache.
			other := profiles.NewService(f.store, f.raw, now)
			other.SetOutbox(rec)
			st := &interleaved{Store: f.store, key: profiles.MemberKey(f.tenant, id)}
			ran := false
			st.hook = func() {
				ran = true
				if _, err := other.Ingest(ctx, f.tenant, []profiles.Event{f.ev(map[string]any{"type": "track", "event": "Purchase", "userId": "u1"})}); err != nil {
					t.Error(err)
				}
			}
			f.svc = profiles.NewService(st, f.raw, now)
			f.svc.SetOutbox(rec)
			st.armed = true
			f.send(f.ev(map[string]any{"userId": "u1", "plan": "vip"}))
			if !ran {
				t.Fatalf("%s: the other replica's evaluation did not run", c.name)
			}
			var entered []string
			for _, g := range segments {
				entered = append(entered, "segment.entered "+id+" "+g.ID)
			}
			want(t, c.name+": vip and a purchase", rec.take(t, f), entered...)
		}
	})
}

// A known customer's events are evaluated as they are recorded, against
// its membership set: each entry and exit, by a trait or by an event that
// moves no wake-up, changes the set as it changes the membership items.
func TestMembershipSetFollowsTransitions(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		rec, _ := audienceFixture(t, f)
		pro := f.segment(t, "pro", `{"trait": "plan", "operator": "equals", "value": "pro"}`)
		clicked := f.segment(t, "clicked", `{"event": "Clicked"}`)
		agree := func(what string, want ...string) {
			t.Helper()
			u1 := f.lookup("user_id", "u1").ID
			set, items, err := profiles.Memberships(ctx, f.store, f.tenant, u1)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(want)
			if !slices.Equal(set, want) || !slices.Equal(items, want) {
				t.Fatalf("%s: the set holds %q and the items %q, want %q", what, set, items, want)
			}
			// The set the item cache keeps decoded is the one stored.
			if n, err := profiles.CachedSetMemos(f.svc); err != nil || n == 0 {
				t.Fatalf("%s: %d decoded sets checked in the item cache: %v", what, n, err)
			}
		}
		f.send(f.ev(map[string]any{"userId": "u1", "plan": "free"}))
		agree("a new customer")
		f.send(f.ev(map[string]any{"userId": "u1", "plan": "pro"}))
		agree("enters on a trait", pro.ID)
		f.send(f.ev(map[string]any{"type": "track", "event": "Clicked", "userId": "u1"}))
		agree("enters on an event", pro.ID, clicked.ID)
		f.send(f.ev(map[string]any{"userId": "u1", "plan": "free"}))
		agree("leaves on a trait", clicked.ID)
		u1 := f.lookup("user_id", "u1").ID
		want(t, "transitions", rec.take(t, f), "profile.created "+u1, "segment.entered "+u1+" "+pro.ID,
			"segment.entered "+u1+" "+clicked.ID, "segment.exited "+u1+" "+pro.ID)
	})
}
