package profiles_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// count is the tenant's profile count, failing the test on an error.
func (f *fixture) count() int {
	f.t.Helper()
	n, err := f.svc.ProfileCount(context.Background(), f.tenant)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestProfileCount: the count is the number of profiles through every
// change that makes or unmakes one: new users (sent concurrently, and
// again as duplicates), a merge, an unmerge and an erasure; and each
// change notes the tenant in CountsChanged.
func TestProfileCount(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if n := f.count(); n != 0 {
			t.Fatalf("a new tenant counts %d profiles", n)
		}
		const users = 12
		events := make([]profiles.Event, users)
		for i := range events {
			events[i] = f.ev(map[string]any{"userId": fmt.Sprintf("u%d", i), "email": fmt.Sprintf("u%d@example.com", i)})
		}
		var wg sync.WaitGroup
		for i := range 3 { // three replicas' worth of concurrent batches
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.svc.Ingest(ctx, f.tenant, events[i*users/3:(i+1)*users/3]); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		f.send(events...) // duplicates: nothing new
		f.send(f.ev(map[string]any{"type": "track", "userId": "u0"}))
		if n := f.count(); n != users {
			t.Fatalf("%d users counted as %d profiles", users, n)
		}
		if got := f.svc.CountsChanged(); !slices.Equal(got, []string{f.tenant}) {
			t.Errorf("CountsChanged %v, want the tenant", got)
		}
		if got := f.svc.CountsChanged(); len(got) != 0 {
			t.Errorf("CountsChanged again %v, want nothing: it forgets", got)
		}

		// An anonymous visitor is a profile until an identify links it to u0.
		f.send(f.ev(map[string]any{"type": "page", "anonymousId": "visitor"}))
		if n := f.count(); n != users+1 {
			t.Fatalf("with a visitor: %d, want %d", n, users+1)
		}
		f.send(f.ev(map[string]any{"userId": "u0", "anonymousId": "visitor"}))
		if n := f.count(); n != users {
			t.Fatalf("after the merge: %d, want %d", n, users)
		}
		merged := f.lookup(profiles.IDUserID, "u0")
		if len(merged.MergedProfileIDs) != 1 {
			t.Fatalf("no merge: %+v", merged)
		}
		f.svc.CountsChanged()
		if _, err := f.svc.Unmerge(ctx, f.tenant, merged.ID, merged.MergedProfileIDs[0]); err != nil {
			t.Fatal(err)
		}
		if n := f.count(); n != users+1 || len(f.svc.CountsChanged()) != 1 {
			t.Fatalf("after the unmerge: %d, want %d, and the tenant noted", n, users+1)
		}

		p := f.lookup(profiles.IDUserID, "u1")
		var job profiles.ErasureArgs
		if _, err := f.svc.StartErasure(ctx, f.tenant, p.ID, false, func(_ context.Context, a profiles.ErasureArgs) error {
			job = a
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RunErasure(ctx, job); err != nil {
			t.Fatal(err)
		}
		if n := f.count(); n != users || len(f.svc.CountsChanged()) != 1 {
			t.Fatalf("after the erasure: %d, want %d, and the tenant noted", n, users)
		}
		// The index agrees with the members: a check finds nothing to do.
		if added, removed, err := f.svc.IndexProfiles(ctx, f.tenant); err != nil || added != 0 || removed != 0 {
			t.Fatalf("IndexProfiles on a kept index: +%d -%d %v", added, removed, err)
		}
	})
}

// TestIndexProfiles: profiles made without their index item (by a version
// before the index) are added, an item whose profile is gone is removed,
// and a profile made while the index is checked is counted once.
func TestIndexProfiles(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		const users = 120 // more than one transaction's worth
		var batch []profiles.Event
		for i := range users {
			batch = append(batch, f.ev(map[string]any{"userId": fmt.Sprintf("u%d", i)}))
		}
		f.send(batch...)
		// Forget the index as an older version never wrote it, and leave an
		// item of a profile that does not exist.
		pk := "TENANT#" + f.tenant + "#P"
		items, err := f.store.Query(ctx, profiles.QueryInput{PK: pk})
		if err != nil || len(items) != users {
			t.Fatalf("index items %d (%v), want %d", len(items), err, users)
		}
		var ops []profiles.Op
		for _, it := range items {
			ops = append(ops, profiles.Op{Delete: &profiles.Key{PK: it.PK, SK: it.SK}})
		}
		for chunk := range slices.Chunk(ops, profiles.MaxTransactOps) {
			if err := f.store.Transact(ctx, chunk); err != nil {
				t.Fatal(err)
			}
		}
		ghost := profiles.NewProfileID()
		if err := f.store.Transact(ctx, []profiles.Op{{Put: &profiles.Item{PK: pk, SK: ghost, Data: []byte(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
		if n := f.count(); n != 1 {
			t.Fatalf("before indexing: %d", n)
		}
		// A new profile while the index is checked: it writes its own item.
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := f.svc.Ingest(ctx, f.tenant, []profiles.Event{f.ev(map[string]any{"userId": "late"})}); err != nil {
				t.Error(err)
			}
		}()
		added, removed, err := f.svc.IndexProfiles(ctx, f.tenant)
		<-done
		if err != nil || added < users || removed != 1 {
			t.Fatalf("IndexProfiles: +%d -%d %v; want +%d (or one more) -1", added, removed, err, users)
		}
		if n := f.count(); n != users+1 {
			t.Fatalf("after indexing: %d profiles, want %d", n, users+1)
		}
		if added, removed, err := f.svc.IndexProfiles(ctx, f.tenant); err != nil || added != 0 || removed != 0 {
			t.Fatalf("IndexProfiles again: +%d -%d %v, want nothing to do", added, removed, err)
		}
	})
}
