package profiles_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore/dynamotest"
)

// countingStore counts the calls made to a Store, by method, and can run
// a hook before each Transact.
type countingStore struct {
	profiles.Store
	mu       sync.Mutex
	calls    map[string]int
	transact func(ops []profiles.Op)
}

func (c *countingStore) count(method string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[method]++
}

func (c *countingStore) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

func (c *countingStore) Get(ctx context.Context, k profiles.Key) (profiles.Item, bool, error) {
	c.count("Get")
	return c.Store.Get(ctx, k)
}

func (c *countingStore) BatchGet(ctx context.Context, keys []profiles.Key) (map[profiles.Key]profiles.Item, error) {
	c.count("BatchGet")
	return c.Store.BatchGet(ctx, keys)
}

func (c *countingStore) Query(ctx context.Context, in profiles.QueryInput) ([]profiles.Item, error) {
	c.count("Query")
	return c.Store.Query(ctx, in)
}

func (c *countingStore) Transact(ctx context.Context, ops []profiles.Op) error {
	c.count("Transact")
	if c.transact != nil {
		c.transact(ops)
	}
	return c.Store.Transact(ctx, ops)
}

func (c *countingStore) PutBatch(ctx context.Context, items []profiles.Item) error {
	c.count("PutBatch")
	return c.Store.PutBatch(ctx, items)
}

// counted returns a fixture on the same store, tenant and raw zone whose
// store calls are counted.
func (f *fixture) counted() (*fixture, *countingStore) {
	cs := &countingStore{Store: f.store}
	g := *f
	g.store, g.svc = cs, profiles.NewService(cs, f.raw, nil)
	return &g, cs
}

// customers sends one identify per customer (userId u<i>, anonymousId
// a<i>) and returns them.
func (f *fixture) customers(n int) {
	f.t.Helper()
	evs := make([]profiles.Event, n)
	for i := range evs {
		evs[i] = f.ev(map[string]any{"userId": fmt.Sprint("u", i), "anonymousId": fmt.Sprint("a", i), "plan": "free"})
	}
	if r := f.send(evs...); r.Accepted != n {
		f.t.Fatalf("seeding %d customers: %+v", n, r)
	}
}

// tracks returns one track per customer, naming both its identifiers.
func (f *fixture) tracks(n int) []profiles.Event {
	evs := make([]profiles.Event, n)
	for i := range evs {
		evs[i] = f.ev(map[string]any{"type": "track", "userId": fmt.Sprint("u", i), "anonymousId": fmt.Sprint("a", i), "event": "Viewed"})
	}
	return evs
}

func (f *fixture) eventCount(p profiles.Profile) int {
	f.t.Helper()
	evs, err := f.svc.Events(context.Background(), f.tenant, p.ID, "", "", 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(evs)
}

// A batch of events of known customers is recorded with one read and a
// transaction per 100 writes, whatever the number of customers: no
// resolution per event.
func TestKnownCustomersCostOneReadPerBatch(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		f.customers(100)
		g, cs := f.counted()

		r := g.send(g.tracks(100)...)
		calls := cs.reset()
		if r.Accepted != 100 {
			t.Fatalf("tracks: %+v", r)
		}
		// Get: the identity configuration; BatchGet: markers, suppression
		// and index entries of the whole batch; Transact: per customer, 2
		// writes for its event and a check, 33 customers a transaction;
		// Query: the tenant's segments (read once a second a replica).
		if calls["Get"] != 1 || calls["BatchGet"] != 1 || calls["Transact"] != 4 || calls["Query"] != 1 {
			t.Fatalf("store calls for 100 tracks of known customers: %v", calls)
		}

		// Identifies changing traits read the members once more.
		ids := make([]profiles.Event, 100)
		for i := range ids {
			ids[i] = g.ev(map[string]any{"userId": fmt.Sprint("u", i), "plan": "pro"})
		}
		if r := g.send(ids...); r.Accepted != 100 {
			t.Fatalf("identifies: %+v", r)
		}
		if calls := cs.reset(); calls["Get"] != 1 || calls["BatchGet"] != 2 || calls["Transact"] != 4 || calls["Query"] > 1 {
			t.Fatalf("store calls for 100 identifies of known customers: %v", calls)
		}
		for _, i := range []int{0, 57, 99} {
			p := f.lookup("user_id", fmt.Sprint("u", i))
			if p.Traits["plan"] != "pro" || f.eventCount(p) != 3 {
				t.Fatalf("customer %d: traits %v, %d events, want plan pro and 3 events", i, p.Traits, f.eventCount(p))
			}
		}
	})
}

// Many events of one customer in a batch span several transactions, the
// trait updates chained by version.
func TestManyEventsOfOneCustomer(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		f.customers(1)
		var evs []profiles.Event
		for i := range 120 {
			evs = append(evs, f.ev(map[string]any{"userId": "u0", "name": fmt.Sprint("n", i)}))
		}
		if r := f.send(evs...); r.Accepted != 120 {
			t.Fatalf("%+v", r)
		}
		p := f.lookup("user_id", "u0")
		if p.Traits["name"] != "n119" || f.eventCount(p) != 121 {
			t.Fatalf("traits %v, %d events", p.Traits, f.eventCount(p))
		}
	})
}

// The same batch sent by several clients at once is applied once, and
// the dedup markers name every raw object holding a copy, so an erasure
// removes them all.
func TestConcurrentRetriesOfABatch(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.customers(50)
		evs := f.tracks(50)
		var wg sync.WaitGroup
		results := make([]profiles.IngestResult, 4)
		for c := range results {
			wg.Go(func() {
				r, err := f.svc.Ingest(ctx, f.tenant, evs)
				if err != nil {
					t.Error(err)
				}
				results[c] = r
			})
		}
		wg.Wait()
		accepted, dups := 0, 0
		for _, r := range results {
			accepted, dups = accepted+r.Accepted, dups+r.Duplicates
		}
		if accepted != 50 || dups != 150 {
			t.Fatalf("accepted %d, duplicates %d: %+v", accepted, dups, results)
		}
		for i := range 50 {
			if n := f.eventCount(f.lookup("user_id", fmt.Sprint("u", i))); n != 2 {
				t.Fatalf("customer %d has %d events, want 2", i, n)
			}
		}
		// Where each track's copies are.
		copies := map[string][]string{}
		objects, err := f.raw.List(ctx, f.tenant)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objects {
			lines, err := f.raw.Read(ctx, f.tenant, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range lines {
				var ev struct{ MessageID string }
				if err := json.Unmarshal(l, &ev); err != nil {
					t.Fatal(err)
				}
				copies[ev.MessageID] = append(copies[ev.MessageID], o)
			}
		}
		for _, ev := range evs {
			it, ok, err := f.store.Get(ctx, profiles.Key{PK: "TENANT#" + f.tenant + "#D#" + ev.MessageID, SK: "D"})
			if err != nil || !ok {
				t.Fatalf("marker of %s: %v %v", ev.MessageID, ok, err)
			}
			var d struct{ Objects []string }
			if err := json.Unmarshal(it.Data, &d); err != nil {
				t.Fatal(err)
			}
			for _, o := range copies[ev.MessageID] {
				if !slices.Contains(d.Objects, o) {
					t.Fatalf("marker of %s names %v, not the copy in %s", ev.MessageID, d.Objects, o)
				}
			}
		}

		// Erasing a customer leaves none of its copies.
		p := f.lookup("user_id", "u7")
		var job profiles.ErasureArgs
		if _, err := f.svc.StartErasure(ctx, f.tenant, p.ID, false, func(_ context.Context, a profiles.ErasureArgs) error { job = a; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RunErasure(ctx, job); err != nil {
			t.Fatal(err)
		}
		f.rawFree(`"u7"`)
	})
}

// A customer erased between the batch's read and its write gets nothing
// written under the erased profile: the event is resolved again and makes
// a new profile.
func TestKnownCustomerErasedMeanwhile(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.customers(2)
		gone := f.lookup("user_id", "u0")
		g, cs := f.counted()
		var once sync.Once
		cs.transact = func(ops []profiles.Op) {
			once.Do(func() {
				// What an erasure deletes first: the index entries and
				// the member.
				var del []profiles.Op
				for _, k := range []profiles.Key{
					{PK: "TENANT#" + f.tenant + "#I#user_id#u0", SK: "I"},
					{PK: "TENANT#" + f.tenant + "#I#anonymous_id#a0", SK: "I"},
					{PK: "TENANT#" + f.tenant + "#M#" + gone.ID, SK: "M"},
				} {
					del = append(del, profiles.Op{Delete: &k})
				}
				if err := f.store.Transact(ctx, del); err != nil {
					t.Error(err)
				}
			})
		}
		if r := g.send(g.tracks(2)...); r.Accepted != 2 {
			t.Fatalf("%+v", r)
		}
		items, err := f.store.Query(ctx, profiles.QueryInput{PK: "TENANT#" + f.tenant + "#M#" + gone.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if strings.HasPrefix(it.SK, "E#") && strings.Contains(string(it.Data), "Viewed") {
				t.Fatalf("event written under the erased profile: %s", it.SK)
			}
		}
		if p := f.lookup("user_id", "u0"); p.ID == gone.ID || f.eventCount(p) != 1 {
			t.Fatalf("the event did not make a new profile: %+v", p)
		}
		if n := f.eventCount(f.lookup("user_id", "u1")); n != 2 {
			t.Fatalf("the other customer has %d events, want 2", n)
		}
	})
}

// TestDynamoDBCallsPerBatch counts the SDK calls ingestion makes on
// DynamoDB (one event, and a batch of 100, of known customers).
func TestDynamoDBCallsPerBatch(t *testing.T) {
	calls := &awsclient.CallCounter{}
	f := newFixture(t, dynamotest.CountedStore(t, calls))
	f.customers(100)
	total := func() (n int64) {
		for op, c := range calls.Snapshot() {
			if strings.HasPrefix(op, "DynamoDB.") {
				n += c
			}
		}
		return n
	}

	calls.Reset()
	f.send(f.tracks(1)...)
	one, oneOps := total(), calls.Snapshot()
	calls.Reset()
	f.send(f.tracks(100)...)
	hundred, hundredOps := total(), calls.Snapshot()
	t.Logf("DynamoDB calls: 1 event %d %v; 100 events %d %v", one, oneOps, hundred, hundredOps)
	// One event: GetItem (configuration), BatchGetItem, TransactWriteItems,
	// and the Query of the tenant's segments when this replica's copy is
	// older than a second.
	if one > 4 || oneOps["DynamoDB.Query"] > 1 {
		t.Errorf("one event of a known customer took %d DynamoDB calls, want ≤ 4: %v", one, oneOps)
	}
	// 100 events: exactly the 8 calls the README states, GetItem,
	// BatchGetItem × 3 (300 keys) and TransactWriteItems × 4 (300 writes
	// and checks), besides the segments' Query when this replica's copy is
	// older than a second (which a slow machine may need here).
	want := map[string]int64{"DynamoDB.GetItem": 1, "DynamoDB.BatchGetItem": 3, "DynamoDB.TransactWriteItems": 4}
	got := map[string]int64{}
	for op, c := range hundredOps {
		if strings.HasPrefix(op, "DynamoDB.") && op != "DynamoDB.Query" {
			got[op] = c
		}
	}
	if !maps.Equal(got, want) || hundredOps["DynamoDB.Query"] > 1 {
		t.Errorf("100 events of known customers took %d DynamoDB calls %v, want the README's 8 (%v) and at most one Query", hundred, hundredOps, want)
	}
}

// An event recorded after an erasure surveyed the profile, before its
// deletes, is erased too, raw copy included.
func TestEventRacingAnErasure(t *testing.T) {
	stores(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.customers(2)
		p := f.lookup("user_id", "u0")
		g, cs := f.counted()
		late := f.tracks(1)[0]
		var once sync.Once
		cs.transact = func(ops []profiles.Op) {
			if ops[0].Delete == nil {
				return
			}
			once.Do(func() { // the erasure's first delete: the survey is done
				if r := f.send(late); r.Accepted != 1 {
					t.Errorf("late event: %+v", r)
				}
			})
		}
		var job profiles.ErasureArgs
		if _, err := g.svc.StartErasure(ctx, f.tenant, p.ID, false, func(_ context.Context, a profiles.ErasureArgs) error { job = a; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := g.svc.RunErasure(ctx, job); err != nil {
			t.Fatal(err)
		}
		e, err := g.svc.GetErasure(ctx, f.tenant, job.ErasureID)
		if err != nil || e.Status != profiles.ErasureCompleted || e.LinesRemoved != 2 {
			t.Fatalf("erasure %+v, %v; want 2 lines removed (the seeded identify and the late track)", e, err)
		}
		items, err := f.store.Query(ctx, profiles.QueryInput{PK: "TENANT#" + f.tenant + "#M#" + p.ID})
		if err != nil || len(items) != 0 {
			t.Fatalf("left in the erased profile's partition: %d items, %v", len(items), err)
		}
		f.rawFree(`"u0"`)
		f.lookup("user_id", "u1")
	})
}
