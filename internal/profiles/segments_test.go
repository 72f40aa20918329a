package profiles_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Memberships follow a profile's traits, merges and unmerges, and a
// deleted segment has no members.
func TestSegmentMemberships(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		mk := func(name, match string, conds ...profiles.Condition) profiles.Segment {
			g, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: name, Match: match, Conditions: conds}, f.recompute)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		pro := mk("pro", "", profiles.Condition{Trait: "plan", Operator: profiles.OpEquals, Value: "pro"})
		named := mk("named", "all", profiles.Condition{Trait: "name", Operator: profiles.OpExists})
		either := mk("pro or named", "any",
			profiles.Condition{Trait: "plan", Operator: profiles.OpEquals, Value: "pro"},
			profiles.Condition{Trait: "name", Operator: profiles.OpExists})
		segmentsOf := func(typ, value string) []string {
			t.Helper()
			return f.lookup(typ, value).Segments
		}

		f.send(f.ev(map[string]any{"anonymousId": "a1", "plan": "free"}))
		if got := segmentsOf("anonymous_id", "a1"); len(got) != 0 {
			t.Fatalf("free, unnamed: %v", got)
		}
		f.send(f.ev(map[string]any{"anonymousId": "a1", "plan": "pro"}))
		if got := segmentsOf("anonymous_id", "a1"); !slices.Equal(got, []string{pro.ID, either.ID}) {
			t.Fatalf("pro: %v, want %v", got, []string{pro.ID, either.ID})
		}

		// A merge brings the other profile's traits, an unmerge takes them
		// away again.
		f.send(f.ev(map[string]any{"userId": "u1", "name": "Jo"}))
		if got := segmentsOf("user_id", "u1"); !slices.Equal(got, []string{named.ID, either.ID}) {
			t.Fatalf("named: %v", got)
		}
		f.send(f.ev(map[string]any{"type": "track", "userId": "u1", "anonymousId": "a1"}))
		merged := f.lookup("user_id", "u1")
		if !slices.Equal(merged.Segments, []string{pro.ID, named.ID, either.ID}) {
			t.Fatalf("merged: %v", merged.Segments)
		}
		other := merged.MergedProfileIDs[0]
		if _, err := f.svc.Unmerge(ctx, f.tenant, merged.ID, other); err != nil {
			t.Fatal(err)
		}
		if got := segmentsOf("user_id", "u1"); len(got) != 2 || slices.Contains(got, pro.ID) == slices.Contains(got, named.ID) {
			t.Fatalf("after unmerge: %v", got)
		}

		// Deleting a segment ends its memberships.
		if err := f.svc.DeleteSegment(ctx, f.tenant, either.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteSegment(ctx, f.tenant, either.ID); !errors.Is(err, profiles.ErrSegmentNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := f.svc.GetSegment(ctx, f.tenant, either.ID); !errors.Is(err, profiles.ErrSegmentNotFound) {
			t.Fatalf("deleted segment: %v", err)
		}
		for _, id := range [][2]string{{"user_id", "u1"}, {"anonymous_id", "a1"}} {
			if slices.Contains(segmentsOf(id[0], id[1]), either.ID) {
				t.Fatalf("%s still in a deleted segment", id[1])
			}
		}

		// Listing pages in creation order.
		page1, err := f.svc.Segments(ctx, f.tenant, "", 1)
		if err != nil || len(page1) != 1 || page1[0].ID != pro.ID {
			t.Fatalf("page 1: %+v %v", page1, err)
		}
		page2, err := f.svc.Segments(ctx, f.tenant, page1[0].ID, 10)
		if err != nil || len(page2) != 1 || page2[0].ID != named.ID {
			t.Fatalf("page 2: %+v %v", page2, err)
		}
	})
}

func TestSegmentValidationAndLimit(t *testing.T) {
	st := sqliteStore(t)
	f := newFixture(t, st)
	ctx := context.Background()
	cond := []profiles.Condition{{Trait: "plan", Operator: profiles.OpExists}}
	for _, bad := range []profiles.Segment{
		{Name: "", Conditions: cond},
		{Name: "x", Match: "some", Conditions: cond},
		{Name: "x"},
		{Name: "x", Conditions: []profiles.Condition{{Trait: "plan", Operator: "like"}}},
		{Name: "x", Conditions: []profiles.Condition{{Trait: "", Operator: profiles.OpExists}}},
	} {
		var ve *profiles.ValidationError
		if _, err := f.svc.CreateSegment(ctx, f.tenant, bad, f.recompute); !errors.As(err, &ve) {
			t.Errorf("CreateSegment(%+v) = %v, want a validation error", bad, err)
		}
	}
	if list, _ := f.svc.Segments(ctx, f.tenant, "", 0); len(list) != 0 {
		t.Fatalf("refused segments stored: %+v", list)
	}
	for i := range profiles.MaxSegments {
		if _, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: fmt.Sprint("s", i), Conditions: cond}, f.recompute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: "one too many", Conditions: cond}, f.recompute); !errors.Is(err, profiles.ErrSegmentLimit) {
		t.Fatalf("segment %d: %v, want ErrSegmentLimit", profiles.MaxSegments+1, err)
	}
}

// Creates racing for the last free places, as replicas would, get exactly
// those places; the rest are refused with ErrSegmentLimit. The tenant's
// first segments are stored as before the count existed, so the first
// create also counts them.
func TestSegmentLimitUnderConcurrency(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		cond := []profiles.Condition{{Trait: "plan", Operator: profiles.OpExists}}
		const free = 5
		var items []profiles.Item
		for i := range profiles.MaxSegments - free {
			g := profiles.Segment{ID: fmt.Sprintf("seg_%06d", i), Name: fmt.Sprint("s", i), Match: "all", Conditions: cond, CreatedAt: time.Now()}
			d, err := json.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			items = append(items, profiles.Item{PK: "TENANT#" + f.tenant + "#SG", SK: g.ID, Data: d})
		}
		if err := f.store.PutBatch(ctx, items); err != nil {
			t.Fatal(err)
		}
		race := func(n int) (made []string, refused int) {
			t.Helper()
			var (
				mu sync.Mutex
				wg sync.WaitGroup
			)
			for i := range n {
				wg.Go(func() {
					g, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: fmt.Sprint("racer", i), Conditions: cond}, f.recompute)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						made = append(made, g.ID)
					case errors.Is(err, profiles.ErrSegmentLimit):
						refused++
					default:
						t.Errorf("racer %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			return made, refused
		}
		made, refused := race(20)
		if len(made) != free || refused != 20-free {
			t.Fatalf("20 creates racing for %d places: %d made, %d refused", free, len(made), refused)
		}
		if all, err := f.svc.Segments(ctx, f.tenant, "", 0); err != nil || len(all) != profiles.MaxSegments {
			t.Fatalf("%d segments stored (%v), want %d", len(all), err, profiles.MaxSegments)
		}
		// A delete frees one place, for one of the next racers.
		if err := f.svc.DeleteSegment(ctx, f.tenant, made[0]); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteSegment(ctx, f.tenant, made[0]); !errors.Is(err, profiles.ErrSegmentNotFound) {
			t.Fatalf("second delete: %v, want ErrSegmentNotFound", err)
		}
		if made, refused := race(4); len(made) != 1 || refused != 3 {
			t.Fatalf("4 creates racing for the place a delete freed: %d made, %d refused", len(made), refused)
		}
	})
}

// alwaysOutraced is a store on which every transaction loses its
// conditions, as if other changes always won.
type alwaysOutraced struct{ profiles.Store }

func (alwaysOutraced) Transact(context.Context, []profiles.Op) error {
	return profiles.ErrConditionFailed
}

// A create or delete that keeps losing the count to other changes gives
// up with ErrSegmentsBusy, which the API answers 409, and changes nothing.
func TestSegmentChangesGiveUpWhenAlwaysOutraced(t *testing.T) {
	st := sqliteStore(t)
	f := newFixture(t, st)
	ctx := context.Background()
	cond := []profiles.Condition{{Trait: "plan", Operator: profiles.OpExists}}
	g, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: "kept", Conditions: cond}, f.recompute)
	if err != nil {
		t.Fatal(err)
	}
	busy := profiles.NewService(alwaysOutraced{st}, f.raw, nil)
	if _, err := busy.CreateSegment(ctx, f.tenant, profiles.Segment{Name: "new", Conditions: cond}, f.recompute); !errors.Is(err, profiles.ErrSegmentsBusy) {
		t.Errorf("create: %v, want ErrSegmentsBusy", err)
	}
	if err := busy.DeleteSegment(ctx, f.tenant, g.ID); !errors.Is(err, profiles.ErrSegmentsBusy) {
		t.Errorf("delete: %v, want ErrSegmentsBusy", err)
	}
	if all, err := f.svc.Segments(ctx, f.tenant, "", 0); err != nil || len(all) != 1 || all[0].ID != g.ID {
		t.Errorf("segments after the failed changes: %+v, %v; want only %s", all, err, g.ID)
	}
}

// Memberships are stored: a replica serves those a segment made through
// another one computed at once, and so do later replicas.
func TestSegmentsReachOtherReplicas(t *testing.T) {
	st := sqliteStore(t)
	f := newFixture(t, st)
	ctx := context.Background()
	now := time.Now()
	other := profiles.NewService(st, f.raw, func() time.Time { return now })
	f.send(f.ev(map[string]any{"userId": "u1", "plan": "pro"}))
	segs := func(svc *profiles.Service) []string {
		t.Helper()
		p, err := svc.Lookup(ctx, f.tenant, profiles.Identifier{Type: "user_id", Value: "u1"})
		if err != nil {
			t.Fatal(err)
		}
		return p.Segments
	}
	if got := segs(other); len(got) != 0 {
		t.Fatalf("before any segment: %v", got)
	}
	g, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: "pro", Conditions: []profiles.Condition{{Trait: "plan", Operator: profiles.OpEquals, Value: "pro"}}}, f.recompute)
	if err != nil {
		t.Fatal(err)
	}
	if got := segs(f.svc); !slices.Equal(got, []string{g.ID}) {
		t.Fatalf("the replica that made it: %v", got)
	}
	if got := segs(other); !slices.Equal(got, []string{g.ID}) {
		t.Fatalf("another replica at once: %v", got)
	}
	now = now.Add(time.Second)
	if got := segs(other); !slices.Equal(got, []string{g.ID}) {
		t.Fatalf("another replica a second later: %v", got)
	}
}
