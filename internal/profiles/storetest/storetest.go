// Package storetest is the contract suite of profiles.Store: every adapter
// (the embedded SQLite store, DynamoDB against the AWS emulator) runs Run in
// its tests, so that identity resolution can treat them alike.
//
// Beyond the doc comments of profiles.Store, the suite pins down what those
// leave open, so that the adapters cannot drift apart:
//
//   - Keys: every PK (and every GSI1PK, and Query's PK) starts with
//     "TENANT#ten_<26 base32 characters>#"; SK is not empty; GSI1PK and
//     GSI1SK are both set or both empty, and GSI1PK belongs to the PK's
//     tenant. Anything else is an error (not ErrConditionFailed) and writes
//     nothing.
//   - Transact: an op sets exactly one of Put and Delete, not both IfAbsent
//     and IfVersion, and a Check op sets one of them; no two ops name the
//     same key (DynamoDB's rule); all ops belong to one tenant. An empty
//     Transact is a no-op.
//   - Versions: IfAbsent puts store Version 1 and IfVersion puts store
//     IfVersion+1, so a caller knows the version it wrote without reading
//     it back. An unconditional put stores the stored version + 1; over an
//     expired item that the store still keeps, that is the expired item's
//     version + 1 (DynamoDB's UpdateItem cannot tell), so the suite does not
//     pin it. PutBatch stores Version 1.
//   - Expiry: an item is expired when ExpiresAt != 0 and ExpiresAt < now
//     (Unix seconds). Expired items are invisible to Get, BatchGet and
//     Query, fail IfVersion and pass IfAbsent.
//   - Query: After is exclusive and compares with the sort key of the
//     query's order (GSI1SK on gsi1); Prefix and After combine; Limit counts
//     only the items returned (live, in range). Sort keys compare as bytes
//     (UTF-8), like DynamoDB.
//   - Deleting an absent item is not an error.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// Run runs the contract suite. newStore returns the store a subtest uses;
// it is called once per subtest, which may run in parallel with others, so
// it may return one shared store: every subtest writes under its own fresh
// tenant ID.
func Run(t *testing.T, newStore func(t *testing.T) profiles.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"RoundTrip", testRoundTrip},
		{"PutReplacesItem", testPutReplacesItem},
		{"Versions", testVersions},
		{"IfAbsent", testIfAbsent},
		{"IfVersion", testIfVersion},
		{"Check", testCheck},
		{"IfExists", testIfExists},
		{"AllOrNothing", testAllOrNothing},
		{"TooManyOps", testTooManyOps},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"BatchGet", testBatchGet},
		{"Query", testQuery},
		{"QueryGSI1", testQueryGSI1},
		{"QueryExpired", testQueryExpired},
		{"PutBatch", testPutBatch},
		{"InvalidInput", testInvalidInput},
		{"RaceIfAbsent", testRaceIfAbsent},
		{"RaceCounter", testRaceCounter},
		{"Count", testCount},
		{"Scan", testScan},
		{"Model", testModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newFixture(t, newStore(t)))
		})
	}
}

// fixture is one subtest's store and tenant.
type fixture struct {
	s      profiles.Store
	ctx    context.Context
	tenant string
}

func newFixture(t *testing.T, s profiles.Store) *fixture {
	return &fixture{s: s, ctx: t.Context(), tenant: tenants.NewID()}
}

// pk returns a partition key of the fixture's tenant.
func (f *fixture) pk(name string) string { return "TENANT#" + f.tenant + "#" + name }

func (f *fixture) key(pk, sk string) profiles.Key { return profiles.Key{PK: f.pk(pk), SK: sk} }

// item returns a new item under key with a JSON document naming it.
func (f *fixture) item(k profiles.Key) profiles.Item {
	return profiles.Item{PK: k.PK, SK: k.SK, Data: fmt.Appendf(nil, `{"pk":%q,"sk":%q}`, k.PK, k.SK)}
}

func (f *fixture) put(t *testing.T, it profiles.Item) {
	t.Helper()
	if err := f.s.Transact(f.ctx, []profiles.Op{{Put: &it}}); err != nil {
		t.Fatalf("put %s/%s: %v", it.PK, it.SK, err)
	}
}

func (f *fixture) get(t *testing.T, k profiles.Key) (profiles.Item, bool) {
	t.Helper()
	it, ok, err := f.s.Get(f.ctx, k)
	if err != nil {
		t.Fatalf("get %s/%s: %v", k.PK, k.SK, err)
	}
	return it, ok
}

// mustGet returns the item, failing the test if it is missing.
func (f *fixture) mustGet(t *testing.T, k profiles.Key) profiles.Item {
	t.Helper()
	it, ok := f.get(t, k)
	if !ok {
		t.Fatalf("get %s/%s: missing", k.PK, k.SK)
	}
	return it
}

func (f *fixture) mustBeAbsent(t *testing.T, k profiles.Key) {
	t.Helper()
	if it, ok := f.get(t, k); ok {
		t.Fatalf("get %s/%s: got %+v, want none", k.PK, k.SK, it)
	}
}

func (f *fixture) transact(ops ...profiles.Op) error { return f.s.Transact(f.ctx, ops) }

// wantCondFailed fails unless err is ErrConditionFailed.
func wantCondFailed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, profiles.ErrConditionFailed) {
		t.Fatalf("got error %v, want ErrConditionFailed", err)
	}
}

// wantItem compares every field of got with want.
func wantItem(t *testing.T, got, want profiles.Item) {
	t.Helper()
	if got.PK != want.PK || got.SK != want.SK || got.GSI1PK != want.GSI1PK || got.GSI1SK != want.GSI1SK ||
		got.Version != want.Version || got.ExpiresAt != want.ExpiresAt || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("item:\n got %+v (data %q)\nwant %+v (data %q)", got, got.Data, want, want.Data)
	}
}

func now() int64 { return time.Now().Unix() }

func testRoundTrip(t *testing.T, f *fixture) {
	k := f.key("PROFILE#p1", "META")
	f.mustBeAbsent(t, k)

	want := profiles.Item{
		PK: k.PK, SK: k.SK,
		GSI1PK: f.pk("EMAIL#a@example.com"), GSI1SK: "PROFILE#p1",
		// Not only JSON: the store must keep any bytes exactly.
		Data:      []byte("{\"name\":\"Zoë 🚀\",\"raw\":\"\x00\xff\xfe\"}\n"),
		ExpiresAt: now() + 3600,
	}
	f.put(t, want)
	want.Version = 1
	wantItem(t, f.mustGet(t, k), want)

	// Without optional fields.
	k2 := f.key("PROFILE#p1", "NOTE#1")
	want2 := profiles.Item{PK: k2.PK, SK: k2.SK, Data: []byte(`{}`)}
	f.put(t, want2)
	want2.Version = 1
	wantItem(t, f.mustGet(t, k2), want2)

	// Keys are exact: neighbours do not match.
	f.mustBeAbsent(t, f.key("PROFILE#p1", "MET"))
	f.mustBeAbsent(t, f.key("PROFILE#p", "META"))
	f.mustBeAbsent(t, profiles.Key{PK: "TENANT#" + tenants.NewID() + "#PROFILE#p1", SK: "META"})

	// The caller's Version is ignored: the store sets it.
	k3 := f.key("PROFILE#p1", "NOTE#2")
	it3 := f.item(k3)
	it3.Version = 42
	f.put(t, it3)
	if got := f.mustGet(t, k3).Version; got != 1 {
		t.Errorf("version of a new item put with Version 42: got %d, want 1", got)
	}
}

func testPutReplacesItem(t *testing.T, f *fixture) {
	k := f.key("PROFILE#p1", "META")
	gsi := f.pk("EMAIL#b@example.com")
	f.put(t, profiles.Item{PK: k.PK, SK: k.SK, GSI1PK: gsi, GSI1SK: "x", Data: []byte(`{"a":1}`), ExpiresAt: now() + 3600})
	// A put replaces the whole item: the GSI keys and expiry go away.
	f.put(t, profiles.Item{PK: k.PK, SK: k.SK, Data: []byte(`{"b":2}`)})
	wantItem(t, f.mustGet(t, k), profiles.Item{PK: k.PK, SK: k.SK, Version: 2, Data: []byte(`{"b":2}`)})
	got, err := f.s.Query(f.ctx, profiles.QueryInput{PK: gsi, Index: "gsi1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("gsi1 query after the GSI keys were dropped: got %d items, want 0", len(got))
	}
}

func testVersions(t *testing.T, f *fixture) {
	k := f.key("PROFILE#p1", "META")
	it := f.item(k)
	for want := int64(1); want <= 3; want++ {
		f.put(t, it)
		if got := f.mustGet(t, k).Version; got != want {
			t.Fatalf("after put %d: version %d, want %d", want, got, want)
		}
	}
	if err := f.transact(profiles.Op{Put: &it, IfVersion: 3}); err != nil {
		t.Fatal(err)
	}
	if got := f.mustGet(t, k).Version; got != 4 {
		t.Fatalf("after IfVersion 3 put: version %d, want 4", got)
	}
	// A delete then a put starts again at 1.
	if err := f.transact(profiles.Op{Delete: &k}); err != nil {
		t.Fatal(err)
	}
	f.put(t, it)
	if got := f.mustGet(t, k).Version; got != 1 {
		t.Fatalf("put after delete: version %d, want 1", got)
	}
}

func testIfAbsent(t *testing.T, f *fixture) {
	k := f.key("IDENT#email#a@example.com", "IDENT")
	it := f.item(k)
	if err := f.transact(profiles.Op{Put: &it, IfAbsent: true}); err != nil {
		t.Fatal(err)
	}
	wantItem(t, f.mustGet(t, k), profiles.Item{PK: k.PK, SK: k.SK, Version: 1, Data: it.Data})

	other := it
	other.Data = []byte(`{"other":true}`)
	wantCondFailed(t, f.transact(profiles.Op{Put: &other, IfAbsent: true}))
	wantCondFailed(t, f.transact(profiles.Op{Delete: &k, IfAbsent: true}))
	wantItem(t, f.mustGet(t, k), profiles.Item{PK: k.PK, SK: k.SK, Version: 1, Data: it.Data})
}

func testIfVersion(t *testing.T, f *fixture) {
	k := f.key("PROFILE#p1", "META")
	it := f.item(k)

	// On a missing item every IfVersion fails.
	wantCondFailed(t, f.transact(profiles.Op{Put: &it, IfVersion: 1}))
	wantCondFailed(t, f.transact(profiles.Op{Delete: &k, IfVersion: 1}))
	f.mustBeAbsent(t, k)

	f.put(t, it) // version 1
	for _, v := range []int64{2, -1, 100} {
		wantCondFailed(t, f.transact(profiles.Op{Put: &it, IfVersion: v}))
	}
	updated := it
	updated.Data = []byte(`{"updated":true}`)
	if err := f.transact(profiles.Op{Put: &updated, IfVersion: 1}); err != nil {
		t.Fatal(err)
	}
	wantItem(t, f.mustGet(t, k), profiles.Item{PK: k.PK, SK: k.SK, Version: 2, Data: updated.Data})
	// The old version no longer matches.
	wantCondFailed(t, f.transact(profiles.Op{Put: &it, IfVersion: 1}))
	wantCondFailed(t, f.transact(profiles.Op{Delete: &k, IfVersion: 1}))
	if err := f.transact(profiles.Op{Delete: &k, IfVersion: 2}); err != nil {
		t.Fatal(err)
	}
	f.mustBeAbsent(t, k)
}

func testCheck(t *testing.T, f *fixture) {
	guard := f.key("PROFILE#p1", "META")
	guardItem := f.item(guard)
	f.put(t, guardItem) // version 1
	target := f.key("PROFILE#p1", "TRAIT#x")
	targetItem := f.item(target)

	// A failing Check writes nothing, and neither do the other ops.
	wantCondFailed(t, f.transact(
		profiles.Op{Put: &guardItem, IfVersion: 2, Check: true},
		profiles.Op{Put: &targetItem},
	))
	wantCondFailed(t, f.transact(
		profiles.Op{Delete: &guard, IfAbsent: true, Check: true},
		profiles.Op{Put: &targetItem},
	))
	f.mustBeAbsent(t, target)

	// A passing Check lets the others write, and writes nothing itself.
	changed := guardItem
	changed.Data = []byte(`{"must":"not be written"}`)
	if err := f.transact(
		profiles.Op{Put: &changed, IfVersion: 1, Check: true},
		profiles.Op{Put: &targetItem},
	); err != nil {
		t.Fatal(err)
	}
	wantItem(t, f.mustGet(t, guard), profiles.Item{PK: guard.PK, SK: guard.SK, Version: 1, Data: guardItem.Data})
	f.mustGet(t, target)

	// Check IfAbsent on a missing key passes without creating it; a Check
	// on a Delete does not delete.
	missing := f.key("PROFILE#p2", "META")
	missingItem := f.item(missing)
	if err := f.transact(
		profiles.Op{Put: &missingItem, IfAbsent: true, Check: true},
		profiles.Op{Delete: &guard, IfVersion: 1, Check: true},
	); err != nil {
		t.Fatal(err)
	}
	f.mustBeAbsent(t, missing)
	f.mustGet(t, guard)
}

func testAllOrNothing(t *testing.T, f *fixture) {
	existing := f.key("PROFILE#p1", "META")
	existingItem := f.item(existing)
	f.put(t, existingItem) // version 1
	doomed := f.key("PROFILE#p1", "TRAIT#doomed")
	doomedItem := f.item(doomed)
	a, b := f.key("IDENT#a", "IDENT"), f.key("IDENT#b", "IDENT")
	aItem, bItem := f.item(a), f.item(b)

	for i, ops := range [][]profiles.Op{
		// The failing condition first, in the middle, last.
		{{Put: &existingItem, IfAbsent: true}, {Put: &aItem, IfAbsent: true}, {Put: &bItem}},
		{{Put: &aItem, IfAbsent: true}, {Put: &existingItem, IfVersion: 7}, {Put: &bItem}},
		{{Put: &aItem}, {Put: &bItem, IfAbsent: true}, {Delete: &existing, IfVersion: 2}},
		{{Put: &aItem}, {Put: &doomedItem}, {Delete: &existing}, {Put: &bItem, IfVersion: 1}},
	} {
		if err := f.transact(ops...); !errors.Is(err, profiles.ErrConditionFailed) {
			t.Fatalf("transaction %d: got %v, want ErrConditionFailed", i, err)
		}
		f.mustBeAbsent(t, a)
		f.mustBeAbsent(t, b)
		f.mustBeAbsent(t, doomed)
		wantItem(t, f.mustGet(t, existing), profiles.Item{PK: existing.PK, SK: existing.SK, Version: 1, Data: existingItem.Data})
	}

	// The same transaction with every condition true applies every op.
	if err := f.transact(
		profiles.Op{Put: &aItem, IfAbsent: true},
		profiles.Op{Put: &bItem, IfAbsent: true},
		profiles.Op{Delete: &existing, IfVersion: 1},
		profiles.Op{Put: &doomedItem},
	); err != nil {
		t.Fatal(err)
	}
	f.mustGet(t, a)
	f.mustGet(t, b)
	f.mustGet(t, doomed)
	f.mustBeAbsent(t, existing)
}

func testTooManyOps(t *testing.T, f *fixture) {
	ops := make([]profiles.Op, profiles.MaxTransactOps+1)
	for i := range ops {
		it := f.item(f.key("EVENT#e", fmt.Sprintf("%03d", i)))
		ops[i] = profiles.Op{Put: &it, IfAbsent: true}
	}
	if err := f.transact(ops...); !errors.Is(err, profiles.ErrTooManyOps) {
		t.Fatalf("Transact of %d ops: got %v, want ErrTooManyOps", len(ops), err)
	}
	got, err := f.s.Query(f.ctx, profiles.QueryInput{PK: f.pk("EVENT#e")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("after ErrTooManyOps: %d items written, want 0", len(got))
	}
	if err := f.transact(ops[:profiles.MaxTransactOps]...); err != nil {
		t.Fatalf("Transact of %d ops: %v", profiles.MaxTransactOps, err)
	}
	got, err = f.s.Query(f.ctx, profiles.QueryInput{PK: f.pk("EVENT#e")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != profiles.MaxTransactOps {
		t.Fatalf("after %d ops: %d items, want %d", profiles.MaxTransactOps, len(got), profiles.MaxTransactOps)
	}
	if err := f.transact(); err != nil {
		t.Fatalf("empty Transact: %v", err)
	}
}

func testDelete(t *testing.T, f *fixture) {
	k := f.key("PROFILE#p1", "META")
	keep := f.key("PROFILE#p1", "META2")
	f.put(t, f.item(k))
	f.put(t, f.item(keep))
	if err := f.transact(profiles.Op{Delete: &k}); err != nil {
		t.Fatal(err)
	}
	f.mustBeAbsent(t, k)
	f.mustGet(t, keep)
	// Deleting what is not there succeeds.
	if err := f.transact(profiles.Op{Delete: &k}); err != nil {
		t.Fatalf("delete of an absent item: %v", err)
	}
	// IfAbsent on a delete passes when absent (and deletes nothing).
	if err := f.transact(profiles.Op{Delete: &k, IfAbsent: true}); err != nil {
		t.Fatalf("IfAbsent delete of an absent item: %v", err)
	}
}

func testIfExists(t *testing.T, f *fixture) {
	guard := f.key("PROFILE#p1", "META")
	guardItem := f.item(guard)
	f.put(t, guardItem)
	f.put(t, guardItem) // version 2: IfExists ignores the version
	expired := f.key("PROFILE#p2", "META")
	expiredItem := f.item(expired)
	expiredItem.ExpiresAt = now() - 3600
	f.put(t, expiredItem)
	missing := f.key("PROFILE#p3", "META")
	missingItem := f.item(missing)
	target := f.key("PROFILE#p1", "EVENT#1")
	targetItem := f.item(target)

	// A Check IfExists on a missing or expired item fails the transaction.
	wantCondFailed(t, f.transact(
		profiles.Op{Put: &missingItem, IfExists: true, Check: true},
		profiles.Op{Put: &targetItem},
	))
	wantCondFailed(t, f.transact(
		profiles.Op{Put: &expiredItem, IfExists: true, Check: true},
		profiles.Op{Put: &targetItem},
	))
	f.mustBeAbsent(t, target)

	// On a live item it passes and writes nothing itself.
	if err := f.transact(
		profiles.Op{Put: &guardItem, IfExists: true, Check: true},
		profiles.Op{Put: &targetItem},
	); err != nil {
		t.Fatal(err)
	}
	f.mustGet(t, target)
	wantItem(t, f.mustGet(t, guard), profiles.Item{PK: guard.PK, SK: guard.SK, Version: 2, Data: guardItem.Data})

	// A Delete IfExists deletes a live item and fails on a missing one.
	wantCondFailed(t, f.transact(profiles.Op{Delete: &missing, IfExists: true}))
	if err := f.transact(profiles.Op{Delete: &target, IfExists: true}); err != nil {
		t.Fatal(err)
	}
	f.mustBeAbsent(t, target)

	// IfExists on a Put that writes is refused, as is a second condition.
	for _, op := range []profiles.Op{
		{Put: &targetItem, IfExists: true},
		{Put: &guardItem, IfExists: true, IfVersion: 2, Check: true},
		{Delete: &guard, IfExists: true, IfAbsent: true},
	} {
		if err := f.transact(op); !errors.Is(err, profiles.ErrInvalidInput) {
			t.Errorf("Transact(%+v) = %v, want ErrInvalidInput", op, err)
		}
	}
}

func testExpiry(t *testing.T, f *fixture) {
	past, future := now()-3600, now()+3600
	expired := f.key("DEDUP#e1", "DEDUP")
	live := f.key("DEDUP#e2", "DEDUP")
	expiredItem, liveItem := f.item(expired), f.item(live)
	expiredItem.ExpiresAt, liveItem.ExpiresAt = past, future
	f.put(t, expiredItem)
	f.put(t, liveItem)

	f.mustBeAbsent(t, expired)
	wantItem(t, f.mustGet(t, live), profiles.Item{PK: live.PK, SK: live.SK, Version: 1, Data: liveItem.Data, ExpiresAt: future})
	got, err := f.s.BatchGet(f.ctx, []profiles.Key{expired, live})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[expired]; ok || len(got) != 1 {
		t.Fatalf("BatchGet with an expired key: got %v, want only the live item", slices.Collect(maps.Keys(got)))
	}

	// An expired item fails IfVersion and passes IfAbsent, as a Check too.
	wantCondFailed(t, f.transact(profiles.Op{Put: &expiredItem, IfVersion: 1}))
	wantCondFailed(t, f.transact(profiles.Op{Delete: &expired, IfVersion: 1, Check: true}))
	wantCondFailed(t, f.transact(profiles.Op{Put: &liveItem, IfAbsent: true}))
	if err := f.transact(profiles.Op{Put: &expiredItem, IfAbsent: true, Check: true}); err != nil {
		t.Fatalf("Check IfAbsent on an expired item: %v", err)
	}
	// An IfAbsent put over an expired item replaces it and starts at
	// version 1.
	fresh := expiredItem
	fresh.ExpiresAt = future
	fresh.Data = []byte(`{"fresh":true}`)
	if err := f.transact(profiles.Op{Put: &fresh, IfAbsent: true}); err != nil {
		t.Fatalf("IfAbsent put over an expired item: %v", err)
	}
	wantItem(t, f.mustGet(t, expired), profiles.Item{PK: expired.PK, SK: expired.SK, Version: 1, Data: fresh.Data, ExpiresAt: future})

	// An unconditional put over an expired item makes it live again (the
	// version is not pinned: see the package doc).
	again := f.key("DEDUP#e3", "DEDUP")
	againItem := f.item(again)
	againItem.ExpiresAt = past
	f.put(t, againItem)
	againItem.ExpiresAt = 0
	f.put(t, againItem)
	if it := f.mustGet(t, again); it.Version < 1 || it.ExpiresAt != 0 {
		t.Fatalf("put over an expired item: got %+v", it)
	}
}

func testBatchGet(t *testing.T, f *fixture) {
	got, err := f.s.BatchGet(f.ctx, nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("BatchGet(nil) = %v, %v; want empty", got, err)
	}

	// 250 keys over several partitions: every third one missing, every
	// seventh one expired, and some keys asked twice.
	var keys []profiles.Key
	want := map[profiles.Key]profiles.Item{}
	var items []profiles.Item
	for i := range 250 {
		k := f.key(fmt.Sprintf("PROFILE#p%d", i%9), fmt.Sprintf("TRAIT#%03d", i))
		keys = append(keys, k)
		if i%3 == 0 {
			continue
		}
		it := f.item(k)
		if i%7 == 0 {
			it.ExpiresAt = now() - 60
		} else {
			want[k] = profiles.Item{PK: k.PK, SK: k.SK, Version: 1, Data: it.Data}
		}
		items = append(items, it)
	}
	if err := f.s.PutBatch(f.ctx, items); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, keys[1], keys[2], keys[3])
	got, err = f.s.BatchGet(f.ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("BatchGet: %d items, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("BatchGet: %v missing", k)
		}
		wantItem(t, g, w)
	}
}

// partition writes items under one PK with the given sort keys and returns
// the PK.
func (f *fixture) partition(t *testing.T, name string, sks ...string) string {
	t.Helper()
	pk := f.pk(name)
	items := make([]profiles.Item, len(sks))
	for i, sk := range sks {
		items[i] = f.item(profiles.Key{PK: pk, SK: sk})
	}
	if err := f.s.PutBatch(f.ctx, items); err != nil {
		t.Fatal(err)
	}
	return pk
}

func (f *fixture) querySKs(t *testing.T, in profiles.QueryInput, gsi bool) []string {
	t.Helper()
	got, err := f.s.Query(f.ctx, in)
	if err != nil {
		t.Fatalf("Query(%+v): %v", in, err)
	}
	sks := make([]string, len(got))
	for i, it := range got {
		if gsi {
			sks[i] = it.GSI1SK
		} else {
			sks[i] = it.SK
		}
		if it.Version != 1 || len(it.Data) == 0 {
			t.Fatalf("Query(%+v): item %d incomplete: %+v", in, i, it)
		}
	}
	return sks
}

func testQuery(t *testing.T, f *fixture) {
	pk := f.partition(t, "PROFILE#p1",
		"EVENT#2024-01-01", "EVENT#2024-01-02", "EVENT#2024-01-03",
		"IDENT#email#a", "IDENT#email#b", "IDENT#phone#1",
		"META", "Méta", "a-lower")
	f.partition(t, "PROFILE#p2", "EVENT#2024-01-01") // another partition
	f.partition(t, "PROFILE#p10", "EVENT#2024-01-09")

	all := []string{"EVENT#2024-01-01", "EVENT#2024-01-02", "EVENT#2024-01-03",
		"IDENT#email#a", "IDENT#email#b", "IDENT#phone#1", "META", "Méta", "a-lower"}
	rev := slices.Clone(all)
	slices.Reverse(rev)
	cases := []struct {
		name string
		in   profiles.QueryInput
		want []string
	}{
		{"all", profiles.QueryInput{}, all},
		{"desc", profiles.QueryInput{Desc: true}, rev},
		{"limit", profiles.QueryInput{Limit: 2}, all[:2]},
		{"desc limit", profiles.QueryInput{Desc: true, Limit: 2}, rev[:2]},
		{"prefix", profiles.QueryInput{Prefix: "IDENT#"}, all[3:6]},
		{"prefix desc", profiles.QueryInput{Prefix: "IDENT#", Desc: true}, []string{"IDENT#phone#1", "IDENT#email#b", "IDENT#email#a"}},
		{"prefix limit", profiles.QueryInput{Prefix: "IDENT#email#", Limit: 1}, all[3:4]},
		{"prefix none", profiles.QueryInput{Prefix: "NOPE#"}, nil},
		{"prefix equal to a key", profiles.QueryInput{Prefix: "META"}, []string{"META"}},
		{"after", profiles.QueryInput{After: "EVENT#2024-01-02"}, all[2:]},
		{"after between keys", profiles.QueryInput{After: "EVENT#2024-01-02x"}, all[2:]},
		{"after last", profiles.QueryInput{After: "a-lower"}, nil},
		{"after desc", profiles.QueryInput{After: "IDENT#email#a", Desc: true}, rev[6:]},
		{"after desc first", profiles.QueryInput{After: "EVENT#2024-01-01", Desc: true}, nil},
		{"after limit", profiles.QueryInput{After: "EVENT#2024-01-01", Limit: 3}, all[1:4]},
		{"prefix after inside", profiles.QueryInput{Prefix: "EVENT#", After: "EVENT#2024-01-01"}, all[1:3]},
		{"prefix after before range", profiles.QueryInput{Prefix: "IDENT#", After: "A"}, all[3:6]},
		{"prefix after beyond range", profiles.QueryInput{Prefix: "EVENT#", After: "IDENT#"}, nil},
		{"prefix after desc inside", profiles.QueryInput{Prefix: "EVENT#", After: "EVENT#2024-01-03", Desc: true}, []string{"EVENT#2024-01-02", "EVENT#2024-01-01"}},
		{"prefix after desc beyond range", profiles.QueryInput{Prefix: "EVENT#", After: "Z", Desc: true}, []string{"EVENT#2024-01-03", "EVENT#2024-01-02", "EVENT#2024-01-01"}},
		{"prefix after desc before range", profiles.QueryInput{Prefix: "IDENT#", After: "EVENT#9", Desc: true}, nil},
		{"prefix after desc equal to prefix", profiles.QueryInput{Prefix: "IDENT#", After: "IDENT#", Desc: true}, nil},
		{"prefix after limit desc", profiles.QueryInput{Prefix: "IDENT#", After: "IDENT#phone#1", Desc: true, Limit: 1}, []string{"IDENT#email#b"}},
		{"utf-8 byte order", profiles.QueryInput{Prefix: "M"}, []string{"META", "Méta"}},
	}
	for _, c := range cases {
		in := c.in
		in.PK = pk
		if got := f.querySKs(t, in, false); !slices.Equal(got, c.want) {
			t.Errorf("%s: Query(%+v) = %q, want %q", c.name, in, got, c.want)
		}
	}

	// Paging through After returns every item once.
	var paged []string
	after := ""
	for {
		got := f.querySKs(t, profiles.QueryInput{PK: pk, After: after, Limit: 4}, false)
		paged = append(paged, got...)
		if len(got) < 4 {
			break
		}
		after = got[len(got)-1]
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged: %q, want %q", paged, all)
	}

	if got := f.querySKs(t, profiles.QueryInput{PK: f.pk("PROFILE#none")}, false); len(got) != 0 {
		t.Errorf("empty partition: %q", got)
	}
}

func testQueryGSI1(t *testing.T, f *fixture) {
	email := f.pk("EMAIL#a@example.com")
	var items []profiles.Item
	for i, p := range []string{"p3", "p1", "p2", "p4"} {
		k := f.key("PROFILE#"+p, "META")
		it := f.item(k)
		it.GSI1PK = email
		it.GSI1SK = "PROFILE#" + p
		if i == 3 {
			it.GSI1SK = "MERGED#" + p
		}
		items = append(items, it)
	}
	// Not in the index: another gsi1 partition, and no GSI keys.
	other := f.item(f.key("PROFILE#p5", "META"))
	other.GSI1PK, other.GSI1SK = f.pk("EMAIL#b@example.com"), "PROFILE#p5"
	items = append(items, other, f.item(f.key("PROFILE#p6", "META")))
	if err := f.s.PutBatch(f.ctx, items); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		in   profiles.QueryInput
		want []string
	}{
		{profiles.QueryInput{}, []string{"MERGED#p4", "PROFILE#p1", "PROFILE#p2", "PROFILE#p3"}},
		{profiles.QueryInput{Prefix: "PROFILE#"}, []string{"PROFILE#p1", "PROFILE#p2", "PROFILE#p3"}},
		{profiles.QueryInput{Prefix: "PROFILE#", Desc: true, Limit: 2}, []string{"PROFILE#p3", "PROFILE#p2"}},
		{profiles.QueryInput{Prefix: "PROFILE#", After: "PROFILE#p1"}, []string{"PROFILE#p2", "PROFILE#p3"}},
		{profiles.QueryInput{After: "PROFILE#p2", Desc: true}, []string{"PROFILE#p1", "MERGED#p4"}},
	}
	for _, c := range cases {
		in := c.in
		in.PK, in.Index = email, "gsi1"
		if got := f.querySKs(t, in, true); !slices.Equal(got, c.want) {
			t.Errorf("Query(%+v) = %q, want %q", in, got, c.want)
		}
	}

	// gsi1 items come back whole, with their base keys.
	got, err := f.s.Query(f.ctx, profiles.QueryInput{PK: email, Index: "gsi1", Prefix: "PROFILE#p1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("gsi1 query: %d items, want 1", len(got))
	}
	want := items[1]
	want.Version = 1
	wantItem(t, got[0], want)
}

func testQueryExpired(t *testing.T, f *fixture) {
	pk := f.pk("PROFILE#p1")
	gsi := f.pk("EMAIL#x")
	var items []profiles.Item
	for i := range 10 {
		it := f.item(profiles.Key{PK: pk, SK: fmt.Sprintf("EVENT#%02d", i)})
		it.GSI1PK, it.GSI1SK = gsi, it.SK
		if i%2 == 0 {
			it.ExpiresAt = now() - 10
		}
		items = append(items, it)
	}
	if err := f.s.PutBatch(f.ctx, items); err != nil {
		t.Fatal(err)
	}
	for _, in := range []profiles.QueryInput{
		{PK: pk, Limit: 3},
		{PK: gsi, Index: "gsi1", Limit: 3},
	} {
		if got := f.querySKs(t, in, in.Index != ""); !slices.Equal(got, []string{"EVENT#01", "EVENT#03", "EVENT#05"}) {
			t.Errorf("Query(%+v) = %q: expired items must be skipped and not counted", in, got)
		}
	}
	in := profiles.QueryInput{PK: pk, Desc: true}
	if got := f.querySKs(t, in, false); !slices.Equal(got, []string{"EVENT#09", "EVENT#07", "EVENT#05", "EVENT#03", "EVENT#01"}) {
		t.Errorf("Query(%+v) = %q", in, got)
	}
}

func testPutBatch(t *testing.T, f *fixture) {
	if err := f.s.PutBatch(f.ctx, nil); err != nil {
		t.Fatalf("PutBatch(nil): %v", err)
	}
	var items []profiles.Item
	for i := range 60 {
		it := f.item(f.key("EVENT#p1", fmt.Sprintf("%05d", i)))
		if i%2 == 0 {
			it.GSI1PK, it.GSI1SK = f.pk("SOURCE#s1"), it.SK
		}
		if i%5 == 0 {
			it.ExpiresAt = now() + 3600
		}
		it.Version = 9 // ignored
		items = append(items, it)
	}
	if err := f.s.PutBatch(f.ctx, items); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		want := it
		want.Version = 1
		wantItem(t, f.mustGet(t, profiles.Key{PK: it.PK, SK: it.SK}), want)
	}
	got, err := f.s.Query(f.ctx, profiles.QueryInput{PK: f.pk("SOURCE#s1"), Index: "gsi1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 30 {
		t.Fatalf("gsi1 after PutBatch: %d items, want 30", len(got))
	}

	// A key given twice: the last item wins.
	k := f.key("EVENT#p2", "1")
	first, last := f.item(k), f.item(k)
	last.Data = []byte(`{"last":true}`)
	if err := f.s.PutBatch(f.ctx, []profiles.Item{first, last}); err != nil {
		t.Fatal(err)
	}
	if got := f.mustGet(t, k); !bytes.Equal(got.Data, last.Data) {
		t.Fatalf("PutBatch with a key twice: got %q, want the last item", got.Data)
	}

	// Items of several tenants in one batch each go to their tenant.
	g := newFixture(t, f.s)
	kf, kg := f.key("EVENT#x", "1"), g.key("EVENT#x", "1")
	if err := f.s.PutBatch(f.ctx, []profiles.Item{f.item(kf), g.item(kg)}); err != nil {
		t.Fatal(err)
	}
	f.mustGet(t, kf)
	g.mustGet(t, kg)
}

func testInvalidInput(t *testing.T, f *fixture) {
	valid := f.item(f.key("PROFILE#p1", "META"))
	other := newFixture(t, f.s)
	otherItem := other.item(other.key("PROFILE#p1", "META"))
	with := func(mod func(*profiles.Item)) *profiles.Item {
		it := valid
		mod(&it)
		return &it
	}
	validKey := profiles.Key{PK: valid.PK, SK: valid.SK}
	txs := map[string][]profiles.Op{
		"no tenant prefix":     {{Put: with(func(it *profiles.Item) { it.PK = "PROFILE#p1" })}},
		"bad tenant id":        {{Put: with(func(it *profiles.Item) { it.PK = "TENANT#ten_short#PROFILE#p1" })}},
		"uppercase tenant id":  {{Put: with(func(it *profiles.Item) { it.PK = "TENANT#TEN_AAAAAAAAAAAAAAAAAAAAAAAAAA#P" })}},
		"empty sort key":       {{Put: with(func(it *profiles.Item) { it.SK = "" })}},
		"gsi1pk of another":    {{Put: with(func(it *profiles.Item) { it.GSI1PK, it.GSI1SK = otherItem.PK, "x" })}},
		"gsi1pk without sk":    {{Put: with(func(it *profiles.Item) { it.GSI1PK = f.pk("EMAIL#a") })}},
		"gsi1sk without pk":    {{Put: with(func(it *profiles.Item) { it.GSI1SK = "x" })}},
		"negative expiry":      {{Put: with(func(it *profiles.Item) { it.ExpiresAt = -1 })}},
		"neither put nor del":  {{IfAbsent: true}},
		"both put and delete":  {{Put: &valid, Delete: &validKey}},
		"both conditions":      {{Put: &valid, IfAbsent: true, IfVersion: 1}},
		"check without cond":   {{Put: &valid, Check: true}},
		"same key twice":       {{Put: &valid}, {Delete: &validKey}},
		"two tenants":          {{Put: &valid}, {Put: &otherItem}},
		"bad key in a delete":  {{Delete: &profiles.Key{PK: "x", SK: "y"}}},
		"bad key after a good": {{Put: &valid}, {Delete: &profiles.Key{PK: f.pk("A"), SK: ""}}},
	}
	for name, ops := range txs {
		err := f.transact(ops...)
		if err == nil || errors.Is(err, profiles.ErrConditionFailed) {
			t.Errorf("Transact (%s): got %v, want a validation error", name, err)
		}
	}
	f.mustBeAbsent(t, validKey)
	other.mustBeAbsent(t, profiles.Key{PK: otherItem.PK, SK: otherItem.SK})

	if err := f.s.PutBatch(f.ctx, []profiles.Item{valid, *with(func(it *profiles.Item) { it.PK = "nope" })}); err == nil {
		t.Error("PutBatch with a bad key: no error")
	}
	f.mustBeAbsent(t, validKey)
	if _, _, err := f.s.Get(f.ctx, profiles.Key{PK: "nope", SK: "x"}); err == nil {
		t.Error("Get with a bad key: no error")
	}
	if _, err := f.s.BatchGet(f.ctx, []profiles.Key{validKey, {PK: "nope", SK: "x"}}); err == nil {
		t.Error("BatchGet with a bad key: no error")
	}
	for name, in := range map[string]profiles.QueryInput{
		"bad pk":         {PK: "nope"},
		"unknown index":  {PK: f.pk("A"), Index: "gsi2"},
		"negative limit": {PK: f.pk("A"), Limit: -1},
	} {
		if _, err := f.s.Query(f.ctx, in); err == nil {
			t.Errorf("Query (%s): no error", name)
		}
	}
}

// racers is how many goroutines the race tests run.
const racers = 20

func testRaceIfAbsent(t *testing.T, f *fixture) {
	k := f.key("IDENT#email#race@example.com", "IDENT")
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, racers)
	)
	for i := range racers {
		wg.Go(func() {
			it := f.item(k)
			it.Data = fmt.Appendf(nil, `{"winner":%d}`, i)
			side := f.item(f.key("PROFILE#r", fmt.Sprint(i)))
			<-start
			errs[i] = f.transact(profiles.Op{Put: &it, IfAbsent: true}, profiles.Op{Put: &side})
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both won the IfAbsent race", winner, i)
			}
			winner = i
		case !errors.Is(err, profiles.ErrConditionFailed):
			t.Fatalf("goroutine %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine won the IfAbsent race")
	}
	got := f.mustGet(t, k)
	if want := fmt.Sprintf(`{"winner":%d}`, winner); string(got.Data) != want || got.Version != 1 {
		t.Fatalf("stored %q version %d, want %s version 1", got.Data, got.Version, want)
	}
	// Only the winner's other op was applied.
	side, err := f.s.Query(f.ctx, profiles.QueryInput{PK: f.pk("PROFILE#r")})
	if err != nil {
		t.Fatal(err)
	}
	if len(side) != 1 || side[0].SK != fmt.Sprint(winner) {
		t.Fatalf("side items: %d, want only the winner's", len(side))
	}
}

func testRaceCounter(t *testing.T, f *fixture) {
	const increments = 5
	k := f.key("COUNTER#c", "COUNTER")
	f.put(t, profiles.Item{PK: k.PK, SK: k.SK, Data: []byte("0")})

	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, racers)
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			for range increments {
				if err := f.increment(k); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := f.mustGet(t, k)
	if want := fmt.Sprint(racers * increments); string(got.Data) != want {
		t.Fatalf("counter = %s, want %s", got.Data, want)
	}
	if want := int64(1 + racers*increments); got.Version != want {
		t.Fatalf("counter version = %d, want %d", got.Version, want)
	}
}

// increment adds one to the counter at k by read-modify-write, retrying on
// ErrConditionFailed.
func (f *fixture) increment(k profiles.Key) error {
	for attempt := 0; ; attempt++ {
		if attempt == 10_000 {
			return errors.New("increment: too many conflicts")
		}
		it, ok, err := f.s.Get(f.ctx, k)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("increment: counter missing")
		}
		var n int
		if _, err := fmt.Sscan(string(it.Data), &n); err != nil {
			return fmt.Errorf("increment: %w", err)
		}
		next := it
		next.Data = fmt.Append(nil, n+1)
		err = f.s.Transact(f.ctx, []profiles.Op{{Put: &next, IfVersion: it.Version}})
		if err == nil {
			return nil
		}
		if !errors.Is(err, profiles.ErrConditionFailed) {
			return err
		}
	}
}

func testCount(t *testing.T, f *fixture) {
	pk := f.partition(t, "C", "A#1", "A#2", "B#1")
	for _, tt := range []struct {
		in   profiles.QueryInput
		want int
	}{
		{profiles.QueryInput{PK: pk}, 3},
		{profiles.QueryInput{PK: pk, Prefix: "A#", Limit: 1}, 2},
		{profiles.QueryInput{PK: pk, Prefix: "C#"}, 0},
		{profiles.QueryInput{PK: f.pk("none")}, 0},
	} {
		if n, err := f.s.Count(f.ctx, tt.in); err != nil || n != tt.want {
			t.Errorf("Count(%+v) = %d, %v; want %d", tt.in, n, err, tt.want)
		}
	}
	expired := f.item(f.key("C", "A#3"))
	expired.ExpiresAt = now() - 10
	f.put(t, expired)
	if n, err := f.s.Count(f.ctx, profiles.QueryInput{PK: pk, Prefix: "A#"}); err != nil || n < 2 {
		t.Errorf("Count after an expired item = %d, %v; want at least 2", n, err)
	}
}

func testScan(t *testing.T, f *fixture) {
	var want []string
	for i := range 25 {
		pk := f.partition(t, fmt.Sprintf("S#%02d", i), "M", "X")
		want = append(want, pk)
	}
	f.partition(t, "T#other", "M")
	other := &fixture{s: f.s, ctx: f.ctx, tenant: tenants.NewID()}
	other.partition(t, "S#00", "M")

	var got []string
	after := profiles.Key{}
	for pages := 0; ; pages++ {
		if pages > 30 {
			t.Fatal("Scan does not end")
		}
		items, next, err := f.s.Scan(f.ctx, profiles.ScanInput{PKPrefix: f.pk("S#"), SK: "M", After: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 && next != (profiles.Key{}) {
			t.Fatal("Scan returned an empty page before its end")
		}
		for _, it := range items {
			if it.SK != "M" || len(it.Data) == 0 {
				t.Fatalf("Scan returned %+v", it)
			}
			got = append(got, it.PK)
		}
		if next == (profiles.Key{}) {
			break
		}
		after = next
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Scan found %d partitions %v, want %d %v", len(got), got, len(want), want)
	}
	// Without a sort key, every item of the partitions.
	n := 0
	for after := (profiles.Key{}); ; {
		items, next, err := f.s.Scan(f.ctx, profiles.ScanInput{PKPrefix: f.pk("S#"), After: after, Limit: 9})
		if err != nil {
			t.Fatal(err)
		}
		n += len(items)
		if next == (profiles.Key{}) {
			break
		}
		after = next
	}
	if n != 2*len(want) {
		t.Fatalf("Scan without a sort key found %d items, want %d", n, 2*len(want))
	}
}
