package profiles_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// threeViews makes the segment "three views" (at least three Viewed within
// 7 days) and returns the tenant's notices, the segment, and a func that
// sends u1's next n views, a minute apart.
func threeViews(t *testing.T, f *fixture) (*recorder, profiles.Segment, func(n int)) {
	rec, clock := audienceFixture(t, f)
	three := f.segment(t, "three views", `{"event": "Viewed", "count": {"operator": "at_least", "value": 3}, "within": "7d"}`)
	return rec, three, func(n int) {
		for i := range n {
			*clock = clock.Add(time.Minute)
			f.send(f.ev(map[string]any{"type": "track", "event": "Viewed", "userId": "u1", "messageId": fmt.Sprint("v", clock.Unix(), i)}))
		}
	}
}

// A member's aggregates stored one item per leaf, as before combined
// items, still count: an evaluation and a segment's computation read
// them, and the member's first combined item takes them in and deletes
// them.
func TestLegacyAggregates(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		rec, three, view := threeViews(t, f)
		view(1)
		u1 := f.lookup("user_id", "u1").ID
		want(t, "one view", rec.take(t, f), "profile.created "+u1)

		// The member's aggregates as one item per leaf: its combined item
		// goes, each leaf's is stored alone.
		combined := profiles.AggregatesKey(f.tenant, u1)
		it, ok, err := f.store.Get(ctx, combined)
		if err != nil || !ok {
			t.Fatalf("combined aggregates of %s: found %v, %v", u1, ok, err)
		}
		leaves, err := profiles.DecodeAggregates(it)
		if err != nil || len(leaves) != 1 {
			t.Fatalf("combined aggregates %q: %v, want one leaf", it.Data, err)
		}
		var ops []profiles.Op
		var legacy []profiles.Key
		for leaf, a := range leaves {
			data, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			k := profiles.LegacyAggregateKey(f.tenant, u1, leaf)
			legacy = append(legacy, k)
			ops = append(ops, profiles.Op{Put: &profiles.Item{PK: k.PK, SK: k.SK, Data: data}})
		}
		ops = append(ops, profiles.Op{Delete: &combined})
		if err := f.store.Transact(ctx, ops); err != nil {
			t.Fatal(err)
		}

		// A segment's computation counts the per-leaf item: a new segment
		// of one view or more has the member at once.
		one := f.segment(t, "one view", `{"event": "Viewed", "count": {"operator": "at_least", "value": 1}, "within": "7d"}`)
		want(t, "computed", rec.take(t, f), "segment.entered "+u1+" "+one.ID)

		// The next evaluation counts on from it: the third view enters.
		// The combined item then holds the leaf, and no per-leaf item is left.
		view(1)
		want(t, "second view", rec.take(t, f))
		view(1)
		want(t, "third view", rec.take(t, f), "segment.entered "+u1+" "+three.ID)
		found, err := f.store.BatchGet(ctx, append(legacy, combined))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range legacy {
			if _, ok := found[k]; ok {
				t.Errorf("per-leaf aggregate %s %s still stored", k.PK, k.SK)
			}
		}
		a, err := profiles.DecodeAggregates(found[combined])
		if err != nil {
			t.Fatalf("combined aggregates %q: %v", found[combined].Data, err)
		}
		for leaf, agg := range a {
			if n := len(agg.Recent); n != 3 {
				t.Errorf("leaf %s counts %d views, want 3", leaf, n)
			}
		}
	})
}

// A combined aggregates item written as JSON, as before the binary form,
// still counts, and its next write is binary.
func TestJSONAggregates(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		rec, three, view := threeViews(t, f)
		view(2)
		u1 := f.lookup("user_id", "u1").ID
		want(t, "two views", rec.take(t, f), "profile.created "+u1)
		k := profiles.AggregatesKey(f.tenant, u1)
		it, ok, err := f.store.Get(ctx, k)
		if err != nil || !ok || len(it.Data) == 0 || it.Data[0] == '{' {
			t.Fatalf("aggregates of %s: %q, %v, %v; want the binary form", u1, it.Data, ok, err)
		}
		leaves, err := profiles.DecodeAggregates(it)
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(leaves)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.Transact(ctx, []profiles.Op{{Put: &profiles.Item{PK: k.PK, SK: k.SK, Data: js}, IfVersion: it.Version}}); err != nil {
			t.Fatal(err)
		}
		view(1)
		want(t, "the third view", rec.take(t, f), "segment.entered "+u1+" "+three.ID)
		it, _, err = f.store.Get(ctx, k)
		if err != nil || len(it.Data) == 0 || it.Data[0] == '{' {
			t.Fatalf("aggregates of %s written again: %q, %v; want the binary form", u1, it.Data, err)
		}
		if leaves, err = profiles.DecodeAggregates(it); err != nil || len(leaves) != 1 {
			t.Fatalf("aggregates: %v, %v", leaves, err)
		}
		for key, a := range leaves {
			if len(a.Recent) != 3 {
				t.Errorf("leaf %s holds %d times, want 3", key, len(a.Recent))
			}
		}
	})
}

// Aggregates of a leaf no segment counts in a window keep no event times;
// a window asked for later on that leaf counts by days until its times
// cover the window, never as if there were no events.
func TestAggregatesKeepTimesForWindows(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		rec, clock := audienceFixture(t, f)
		ever := f.segment(t, "ever viewed", `{"event": "Viewed"}`)
		for i := range 3 {
			*clock = clock.Add(time.Minute)
			f.send(f.ev(map[string]any{"type": "track", "event": "Viewed", "userId": "u1", "messageId": fmt.Sprint("v", i)}))
		}
		u1 := f.lookup("user_id", "u1").ID
		want(t, "views", rec.take(t, f), "profile.created "+u1, "segment.entered "+u1+" "+ever.ID)
		it, ok, err := f.store.Get(ctx, profiles.AggregatesKey(f.tenant, u1))
		if err != nil || !ok {
			t.Fatalf("aggregates of %s: found %v, %v", u1, ok, err)
		}
		leaves, err := profiles.DecodeAggregates(it)
		if err != nil || len(leaves) != 1 {
			t.Fatalf("aggregates %q: %v", it.Data, err)
		}
		for key, a := range leaves {
			if len(a.Recent) != 0 || !a.Partial || a.Days[clock.Format(time.DateOnly)] != 3 {
				t.Fatalf("leaf %s of an all-time segment: %+v, want three views by day and no times", key, a)
			}
		}

		// A segment counting the same leaf in a window: the three views of
		// today count, by day.
		recent := f.segment(t, "viewed thrice this week", `{"event": "Viewed", "within": "7d", "count": {"operator": "at_least", "value": 3}}`)
		want(t, "computed", rec.take(t, f), "segment.entered "+u1+" "+recent.ID)
		*clock = clock.Add(time.Minute)
		f.send(f.ev(map[string]any{"type": "track", "event": "Viewed", "userId": "u1", "messageId": "v3"}))
		want(t, "a fourth view", rec.take(t, f))
		it, _, err = f.store.Get(ctx, profiles.AggregatesKey(f.tenant, u1))
		if err != nil {
			t.Fatal(err)
		}
		if leaves, err = profiles.DecodeAggregates(it); err != nil {
			t.Fatal(err)
		}
		for key, a := range leaves {
			if len(a.Recent) != 1 || !a.Partial {
				t.Fatalf("leaf %s once windowed: %+v, want the new view's time, partial", key, a)
			}
		}
		// Eight days on, the window holds none of them: out.
		*clock = clock.Add(8 * 24 * time.Hour)
		if _, err := f.svc.Pending(ctx, f.tenant); err != nil {
			t.Fatal(err)
		}
		want(t, "a week on", rec.take(t, f), "segment.exited "+u1+" "+recent.ID)
	})
}
