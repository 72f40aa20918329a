package profiles_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
	"github.com/cairn-cdp/cairn/internal/profiles/sqlitestore"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// fixture is a profiles.Service on a real store and a real raw zone.
type fixture struct {
	t      testing.TB
	svc    *profiles.Service
	store  profiles.Store
	raw    profiles.RawZone
	tenant string
	seq    int
}

// sqliteStore opens an embedded store in a temporary directory.
func sqliteStore(t testing.TB) *sqlitestore.Store {
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "profiles.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// rawFree fails the test if a line of the tenant's raw zone contains s.
func (f *fixture) rawFree(s string) {
	f.t.Helper()
	ctx := context.Background()
	objects, err := f.raw.List(ctx, f.tenant)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, o := range objects {
		lines, err := f.raw.Read(ctx, f.tenant, o)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, l := range lines {
			if strings.Contains(string(l), s) {
				f.t.Fatalf("%s still holds %s", o, l)
			}
		}
	}
}

// stores runs fn against every profile store.
func stores(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, newFixture(t, sqliteStore(t)))
	})
	t.Run("dynamodb", func(t *testing.T) {
		t.Parallel()
		fn(t, newFixture(t, dynamoStore(t)))
	})
}

func newFixture(t testing.TB, st profiles.Store) *fixture {
	root := t.TempDir()
	// The bucket directory the local engine would have made.
	if err := os.MkdirAll(filepath.Join(root, "eu-west-1", "buckets", "cairn-pool-raw"), 0o700); err != nil {
		t.Fatal(err)
	}
	raw := &rawzone.Local{Root: root, Locate: func(context.Context, string) (profiles.RawZoneLocation, error) {
		return profiles.RawZoneLocation{Region: "eu-west-1", Bucket: "cairn-pool-raw", Prefix: "tenants/t/"}, nil
	}}
	return &fixture{t: t, svc: profiles.NewService(st, raw, nil), store: st, raw: raw, tenant: tenants.NewID()}
}

// recompute runs a segment's computation at once, as its job would.
func (f *fixture) recompute(ctx context.Context, a profiles.RecomputeArgs) error {
	return f.svc.RunRecompute(ctx, a)
}

// ev builds an event; fields: userId, anonymousId, email, phone, type, event, previousId.
func (f *fixture) ev(fields map[string]any) profiles.Event {
	f.t.Helper()
	f.seq++
	m := map[string]any{"type": "identify", "messageId": fmt.Sprintf("msg-%d-%d", time.Now().UnixNano(), f.seq),
		"timestamp": time.Date(2026, 1, 1, 0, 0, f.seq, 0, time.UTC).Format(time.RFC3339Nano)}
	traits := map[string]any{}
	for k, v := range fields {
		switch k {
		case "email", "phone", "name", "plan":
			traits[k] = v
		default:
			m[k] = v
		}
	}
	if len(traits) > 0 {
		m["traits"] = traits
	}
	if m["type"] == "track" && m["event"] == nil {
		m["event"] = "Clicked"
	}
	raw, _ := json.Marshal(m)
	e, err := profiles.ParseEvent(0, raw, "", time.Now())
	if err != nil {
		f.t.Fatalf("event %s: %v", raw, err)
	}
	return e
}

func (f *fixture) send(evs ...profiles.Event) profiles.IngestResult {
	f.t.Helper()
	res, err := f.svc.Ingest(context.Background(), f.tenant, evs)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *fixture) lookup(typ, value string) profiles.Profile {
	f.t.Helper()
	p, err := f.svc.Lookup(context.Background(), f.tenant, profiles.Identifier{Type: typ, Value: value})
	if err != nil {
		f.t.Fatalf("lookup %s:%s: %v", typ, value, err)
	}
	return p
}

func idsOf(p profiles.Profile) []string {
	var out []string
	for _, id := range p.Identifiers {
		out = append(out, id.Type+":"+id.Value)
	}
	slices.Sort(out)
	return out
}

func TestIdentityScenarios(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(f *fixture)
	}{
		{"attach", func(f *fixture) {
			f.send(f.ev(map[string]any{"userId": "u1", "email": "Jane@Example.com"}))
			f.send(f.ev(map[string]any{"type": "track", "userId": "u1", "anonymousId": "a1"}))
			p := f.lookup("anonymous_id", "a1")
			if got := idsOf(p); !slices.Equal(got, []string{"anonymous_id:a1", "email:jane@example.com", "user_id:u1"}) {
				f.t.Fatalf("identifiers %v", got)
			}
		}},
		{"create", func(f *fixture) {
			f.send(f.ev(map[string]any{"anonymousId": "a1"}), f.ev(map[string]any{"anonymousId": "a2"}))
			if f.lookup("anonymous_id", "a1").ID == f.lookup("anonymous_id", "a2").ID {
				f.t.Fatal("unrelated events share a profile")
			}
		}},
		{"merge of three", func(f *fixture) {
			f.send(f.ev(map[string]any{"anonymousId": "a1", "email": "x@example.com"}))
			f.send(f.ev(map[string]any{"anonymousId": "a2", "phone": "+15550001"}))
			f.send(f.ev(map[string]any{"anonymousId": "a3"}))
			f.send(f.ev(map[string]any{"anonymousId": "a3", "email": "x@example.com", "phone": "+15550001"}))
			p := f.lookup("anonymous_id", "a3")
			if len(idsOf(p)) != 5 || len(p.MergedProfileIDs) != 2 {
				f.t.Fatalf("merged profile: %+v", p)
			}
			for _, id := range []string{"a1", "a2"} {
				if f.lookup("anonymous_id", id).ID != p.ID {
					f.t.Fatalf("%s not merged", id)
				}
			}
			merges, err := f.svc.Merges(context.Background(), f.tenant, p.ID)
			if err != nil || len(merges) != 2 {
				f.t.Fatalf("merges %+v %v", merges, err)
			}
			// A merged-away ID keeps resolving to the survivor.
			for _, m := range p.MergedProfileIDs {
				got, err := f.svc.Profile(context.Background(), f.tenant, m)
				if err != nil || got.ID != p.ID {
					f.t.Fatalf("merged-away %s resolves to %s, %v", m, got.ID, err)
				}
			}
		}},
		{"limit-blocked merge", func(f *fixture) {
			f.send(f.ev(map[string]any{"userId": "u1", "anonymousId": "a1"}))
			f.send(f.ev(map[string]any{"userId": "u2", "anonymousId": "a1"}))
			p1, p2 := f.lookup("user_id", "u1"), f.lookup("user_id", "u2")
			if p1.ID == p2.ID {
				f.t.Fatal("two user_ids merged")
			}
			if got := idsOf(p2); !slices.Equal(got, []string{"user_id:u2"}) {
				f.t.Fatalf("the lowest-priority identifier was not dropped: %v", got)
			}
			if got := idsOf(p1); !slices.Equal(got, []string{"anonymous_id:a1", "user_id:u1"}) {
				f.t.Fatalf("first profile changed: %v", got)
			}
		}},
		{"blocked value", func(f *fixture) {
			cfg := profiles.DefaultIdentityConfig()
			for i := range cfg.Identifiers {
				switch cfg.Identifiers[i].Type {
				case "email":
					cfg.Identifiers[i].Blocked = []string{`/@example\.test$/`}
				case "anonymous_id":
					cfg.Identifiers[i].Blocked = []string{"anonymous"}
				}
			}
			if _, err := f.svc.SetIdentityConfig(context.Background(), f.tenant, cfg); err != nil {
				f.t.Fatal(err)
			}
			f.send(f.ev(map[string]any{"userId": "u1", "anonymousId": "anonymous", "email": "qa@example.test"}))
			f.send(f.ev(map[string]any{"userId": "u2", "anonymousId": "anonymous"}))
			if got := idsOf(f.lookup("user_id", "u1")); !slices.Equal(got, []string{"user_id:u1"}) {
				f.t.Fatalf("blocked values kept: %v", got)
			}
			if f.lookup("user_id", "u1").ID == f.lookup("user_id", "u2").ID {
				f.t.Fatal("a blocked value linked two profiles")
			}
		}},
		{"custom identifiers", func(f *fixture) {
			ext := map[string]any{"externalIds": []any{map[string]any{"type": "crm_id", "id": "c-1", "collection": "users", "encoding": "none"}}}
			f.send(f.ev(map[string]any{"anonymousId": "a1", "context": ext}))
			f.send(f.ev(map[string]any{"anonymousId": "a2", "email": "c@example.com", "context": ext}))
			p := f.lookup("crm_id", "c-1")
			if got := idsOf(p); !slices.Equal(got, []string{"anonymous_id:a1", "anonymous_id:a2", "crm_id:c-1", "email:c@example.com"}) {
				f.t.Fatalf("custom identifier did not link: %v", got)
			}
		}},
		{"alias", func(f *fixture) {
			f.send(f.ev(map[string]any{"anonymousId": "anon-9", "email": "n@example.com"}))
			f.send(f.ev(map[string]any{"type": "alias", "previousId": "anon-9", "userId": "u9"}))
			if f.lookup("user_id", "u9").ID != f.lookup("email", "n@example.com").ID {
				f.t.Fatal("alias did not link userId to previousId")
			}
		}},
		{"traits newest wins across members", func(f *fixture) {
			f.send(f.ev(map[string]any{"anonymousId": "a1", "plan": "free"}))
			f.send(f.ev(map[string]any{"userId": "u1", "plan": "pro"}))
			f.send(f.ev(map[string]any{"userId": "u1", "anonymousId": "a1"}))
			if got := f.lookup("user_id", "u1").Traits["plan"]; got != "pro" {
				f.t.Fatalf("plan %v", got)
			}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			stores(t, func(t *testing.T, f *fixture) { sc.run(f) })
		})
	}
}

func TestConcurrentNewIdentifiersMakeOneProfile(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		var wg sync.WaitGroup
		events := make([]profiles.Event, 50)
		for i := range events {
			events[i] = f.ev(map[string]any{"userId": "racer", "email": "racer@example.com", "anonymousId": fmt.Sprintf("anon-%d", i)})
		}
		errs := make(chan error, len(events))
		for _, e := range events {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.svc.Ingest(context.Background(), f.tenant, []profiles.Event{e}); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// One profile holds the user: every anonymous ID that attached is on
		// it, and those beyond the anonymous_id limit were dropped, never
		// left on a second profile.
		p := f.lookup("user_id", "racer")
		attached := 0
		for i := range events {
			got, err := f.svc.Lookup(context.Background(), f.tenant, profiles.Identifier{Type: "anonymous_id", Value: fmt.Sprintf("anon-%d", i)})
			if err == profiles.ErrProfileNotFound {
				continue
			}
			if err != nil || got.ID != p.ID {
				t.Fatalf("anon-%d is on %s (%v), not %s", i, got.ID, err, p.ID)
			}
			attached++
		}
		if attached != 5 || f.lookup("email", "racer@example.com").ID != p.ID {
			t.Fatalf("%d anonymous IDs attached, want the limit of 5", attached)
		}
		if n := len(idsOf(p)); n > 1+1+5 {
			t.Fatalf("limits broken under concurrency: %d identifiers", n)
		}
	})
}

// TestBatchResolvesInOrder sends, in one batch, many independent runs of
// three identifies: an anonymous visitor with an email, a user, then the
// user with that email. Resolved in batch order, each run makes two
// profiles and merges them; the batch's parallel lanes must not reorder a
// run (which would attach everything to one profile, with no merge).
func TestBatchResolvesInOrder(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		const runs = 40
		var batch []profiles.Event
		for i := range runs {
			email := fmt.Sprintf("m%d@example.com", i)
			batch = append(batch,
				f.ev(map[string]any{"anonymousId": fmt.Sprint("a", i), "email": email}),
				f.ev(map[string]any{"userId": fmt.Sprint("u", i), "plan": "pro"}),
				f.ev(map[string]any{"userId": fmt.Sprint("u", i), "email": email}),
			)
		}
		if res := f.send(batch...); res.Accepted != 3*runs {
			t.Fatalf("accepted %d of %d events", res.Accepted, 3*runs)
		}
		for i := range runs {
			p := f.lookup(profiles.IDUserID, fmt.Sprint("u", i))
			want := []string{"anonymous_id:a" + fmt.Sprint(i), "email:m" + fmt.Sprint(i) + "@example.com", "user_id:u" + fmt.Sprint(i)}
			if got := idsOf(p); len(p.MergedProfileIDs) != 1 || !slices.Equal(got, want) {
				t.Errorf("run %d: identifiers %v, merged %v; want %v and one merge", i, got, p.MergedProfileIDs, want)
			}
		}
	})
}

func TestDuplicatesAreAppliedOnce(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		e := f.ev(map[string]any{"type": "track", "userId": "u1"})
		first := f.send(e, e)
		again := f.send(e)
		if first.Accepted != 1 || first.Duplicates != 1 || again.Accepted != 0 || again.Duplicates != 1 {
			t.Fatalf("first %+v, again %+v", first, again)
		}
		p := f.lookup("user_id", "u1")
		evs, err := f.svc.Events(context.Background(), f.tenant, p.ID, "", "", 10)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events %d, %v", len(evs), err)
		}
	})
}

func TestUnmergeRestoresExactly(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.send(f.ev(map[string]any{"anonymousId": "a1", "email": "a@example.com", "plan": "free"}))
		f.send(f.ev(map[string]any{"type": "track", "anonymousId": "a1", "event": "Viewed"}))
		before := f.lookup("anonymous_id", "a1")
		beforeEvents, _ := f.svc.Events(ctx, f.tenant, before.ID, "", "", 100)
		f.send(f.ev(map[string]any{"userId": "u1", "name": "Bo"}))
		f.send(f.ev(map[string]any{"userId": "u1", "email": "a@example.com"}))
		merged := f.lookup("user_id", "u1")
		if !slices.Contains(merged.MergedProfileIDs, before.ID) && merged.ID != before.ID {
			t.Fatalf("no merge: %+v", merged)
		}
		survivor, mergedAway := merged.ID, before.ID
		if survivor == before.ID {
			mergedAway = merged.MergedProfileIDs[0]
		}
		restored, err := f.svc.Unmerge(ctx, f.tenant, survivor, mergedAway)
		if err != nil {
			t.Fatal(err)
		}
		if restored.ID != mergedAway {
			t.Fatalf("restored %s, want %s", restored.ID, mergedAway)
		}
		a := f.lookup("anonymous_id", "a1")
		u := f.lookup("user_id", "u1")
		if a.ID == u.ID {
			t.Fatal("still merged")
		}
		if a.ID == before.ID {
			if !slices.Equal(idsOf(a), idsOf(before)) || a.Traits["plan"] != "free" || a.Traits["name"] != nil {
				t.Fatalf("restored profile differs: %+v vs %+v", a, before)
			}
			evs, _ := f.svc.Events(ctx, f.tenant, a.ID, "", "", 100)
			if len(evs) != len(beforeEvents) {
				t.Fatalf("restored events %d, before %d", len(evs), len(beforeEvents))
			}
		}
		if _, err := f.svc.Unmerge(ctx, f.tenant, survivor, mergedAway); err == nil {
			t.Fatal("second unmerge succeeded")
		}
	})
}

func TestErasureLeavesNothing(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		keep := f.ev(map[string]any{"userId": "other", "email": "keep@example.com"})
		gone := []profiles.Event{
			f.ev(map[string]any{"userId": "u1", "email": "gone@example.com"}),
			f.ev(map[string]any{"type": "track", "anonymousId": "a1", "userId": "u1"}),
		}
		f.send(append([]profiles.Event{keep}, gone...)...)
		if r := f.send(gone[1]); r.Duplicates != 1 { // a retry: dropped before the raw zone
			t.Fatalf("retry: %+v", r)
		}
		p := f.lookup("user_id", "u1")
		var job profiles.ErasureArgs
		e, err := f.svc.StartErasure(ctx, f.tenant, p.ID, true, func(_ context.Context, args profiles.ErasureArgs) error {
			job = args
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RunErasure(ctx, job); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Erase(ctx, f.tenant, e.ID); err != nil {
			t.Fatal("erasure is not safe to repeat:", err)
		}
		done, err := f.svc.GetErasure(ctx, f.tenant, e.ID)
		if err != nil || done.Status != profiles.ErasureCompleted || done.LinesRemoved != 2 {
			t.Fatalf("erasure %+v %v", done, err)
		}
		// Its record keeps counts, not the customer's identifiers.
		it, _, err := f.store.Get(ctx, profiles.Key{PK: "TENANT#" + f.tenant + "#X#" + e.ID, SK: "X"})
		if err != nil || strings.Contains(string(it.Data), "u1") || strings.Contains(string(it.Data), "gone@") {
			t.Fatalf("completed erasure record keeps personal data: %s %v", it.Data, err)
		}
		for _, id := range [][2]string{{"user_id", "u1"}, {"email", "gone@example.com"}, {"anonymous_id", "a1"}} {
			if _, err := f.svc.Lookup(ctx, f.tenant, profiles.Identifier{Type: id[0], Value: id[1]}); err == nil {
				t.Fatalf("%s:%s still resolves", id[0], id[1])
			}
		}
		if _, err := f.svc.Profile(ctx, f.tenant, p.ID); err == nil {
			t.Fatal("erased profile still readable")
		}
		keys, err := f.raw.List(ctx, f.tenant)
		if err != nil {
			t.Fatal(err)
		}
		lines := 0
		for _, k := range keys {
			ls, err := f.raw.Read(ctx, f.tenant, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range ls {
				lines++
				if strings.Contains(string(l), "u1") || strings.Contains(string(l), "gone@") {
					t.Fatalf("raw zone still holds %s", l)
				}
			}
		}
		if lines != 1 {
			t.Fatalf("raw zone kept %d lines, want only the other customer's", lines)
		}
		// Suppressed: later events naming the identifiers are dropped.
		if r := f.send(f.ev(map[string]any{"userId": "u1"})); r.Suppressed != 1 || r.Accepted != 0 {
			t.Fatalf("suppressed identifier accepted: %+v", r)
		}
		f.lookup("user_id", "other")
	})
}

// An erasure is queued before it is recorded: a queue that fails leaves
// nothing, and a job whose record a crash prevented writes it itself.
func TestErasureJobWithoutRecord(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		first := f.ev(map[string]any{"userId": "u1", "email": "gone@example.com"})
		f.send(first)
		p := f.lookup("user_id", "u1")

		var failed profiles.ErasureArgs
		_, err := f.svc.StartErasure(ctx, f.tenant, p.ID, false, func(_ context.Context, args profiles.ErasureArgs) error {
			failed = args
			return fmt.Errorf("queue down")
		})
		if err == nil {
			t.Fatal("StartErasure succeeded with its queue failing")
		}
		if _, err := f.svc.GetErasure(ctx, f.tenant, failed.ErasureID); err != profiles.ErrErasureNotFound {
			t.Fatalf("erasure recorded without its job: %v", err)
		}
		f.lookup("user_id", "u1")

		// The job alone, as after a crash right after queueing it.
		job := profiles.ErasureArgs{TenantID: f.tenant, ErasureID: "era_crashed", ProfileID: p.ID, CreatedAt: time.Now().UTC()}
		if err := f.svc.RunErasure(ctx, job); err != nil {
			t.Fatal(err)
		}
		e, err := f.svc.GetErasure(ctx, f.tenant, job.ErasureID)
		if err != nil || e.Status != profiles.ErasureCompleted || e.ProfileID != p.ID {
			t.Fatalf("erasure %+v, %v", e, err)
		}
		if _, err := f.svc.Lookup(ctx, f.tenant, profiles.Identifier{Type: "user_id", Value: "u1"}); err != profiles.ErrProfileNotFound {
			t.Fatalf("erased profile still resolves: %v", err)
		}
		// The record StartErasure writes late does not reset a finished
		// erasure's status: a job run again leaves it completed.
		if err := f.svc.RunErasure(ctx, job); err != nil {
			t.Fatal(err)
		}
		if e, _ := f.svc.GetErasure(ctx, f.tenant, job.ErasureID); e.Status != profiles.ErasureCompleted {
			t.Fatalf("status after a second run: %s", e.Status)
		}
		// A client's retry of the erased event is a duplicate within the
		// dedup window: it brings nothing back, not even to the raw zone.
		if r := f.send(first); r.Duplicates != 1 || r.Accepted != 0 || r.Object != "" {
			t.Fatalf("retry of an erased event: %+v", r)
		}
		if keys, err := f.raw.List(ctx, f.tenant); err != nil || len(keys) != 0 {
			t.Fatalf("raw zone after the retry: %v %v", keys, err)
		}
	})
}
