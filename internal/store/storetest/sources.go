package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// keyHash returns the SHA-256 of a write key named by key.
func keyHash(key string) []byte {
	sum := sha256.Sum256([]byte("cairn-test-write-key-" + key))
	return sum[:]
}

// newSource returns a live source with every field a new source has set;
// n varies its ID, name and key.
func newSource(tenantID string, n int) profiles.Source {
	return profiles.Source{
		ID:        fmt.Sprintf("src_%s_%03d", tenantID, n),
		TenantID:  tenantID,
		Name:      fmt.Sprintf("source-%03d", n),
		KeyHash:   keyHash(fmt.Sprintf("%s-%d", tenantID, n)),
		KeyHint:   fmt.Sprintf("ck_%03d", n),
		CreatedAt: base.Add(time.Duration(n) * time.Second),
		Version:   1,
	}
}

func insertSource(t *testing.T, s profiles.SourceStore, src profiles.Source) profiles.Source {
	t.Helper()
	got, err := s.SourceInsert(t.Context(), src, audit.Event{})
	if err != nil {
		t.Fatalf("insert source %s: %v", src.ID, err)
	}
	return got
}

func updateSource(t *testing.T, s profiles.SourceStore, src profiles.Source) profiles.Source {
	t.Helper()
	got, err := s.SourceUpdate(t.Context(), src, audit.Event{})
	if err != nil {
		t.Fatalf("update source %s: %v", src.ID, err)
	}
	return got
}

// revokeSource revokes src at base plus an hour.
func revokeSource(t *testing.T, s profiles.SourceStore, src profiles.Source) profiles.Source {
	t.Helper()
	revoked := base.Add(time.Hour)
	src.RevokedAt = &revoked
	return updateSource(t, s, src)
}

func testSourceRoundTrip(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)

	live := newSource(ids[0], 1)
	live.Version = 7 // ignored: a new source is stored at Version 1
	rotated := newSource(ids[0], 2)
	rotatedAt, revokedAt := base.Add(time.Minute), base.Add(2*time.Minute)
	rotated.RotatedAt, rotated.RevokedAt = &rotatedAt, &revokedAt
	odd := newSource(ids[0], 3)
	odd.Name, odd.KeyHint = "名前 with 'quotes' and \"more\"", ""
	// A time in another zone, with nanoseconds, is stored as UTC
	// microseconds.
	odd.CreatedAt = time.Date(2025, 6, 7, 10, 11, 12, 987654321, time.FixedZone("X", 5*3600))

	for _, src := range []profiles.Source{live, rotated, odd} {
		got := insertSource(t, b, src)
		want := src
		want.Version = 1
		want.CreatedAt = src.CreatedAt.UTC().Truncate(time.Microsecond)
		if got.Seq <= 0 {
			t.Errorf("insert %s: Seq %d, want > 0", src.ID, got.Seq)
		}
		want.Seq = got.Seq
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("insert %s returned (-want +got):\n%s", src.ID, diff)
		}
		stored, err := b.SourceGet(t.Context(), src.TenantID, src.ID)
		if err != nil {
			t.Fatalf("get %s: %v", src.ID, err)
		}
		if diff := cmp.Diff(want, stored); diff != "" {
			t.Errorf("get %s (-want +got):\n%s", src.ID, diff)
		}
	}

	// A zero CreatedAt means now.
	before := time.Now()
	now := newSource(ids[1], 1)
	now.CreatedAt = time.Time{}
	got := insertSource(t, b, now)
	checkUpdatedAt(t, "insert without CreatedAt", got.CreatedAt, before, time.Now())

	// A source is its tenant's only.
	if _, err := b.SourceGet(t.Context(), ids[1], live.ID); !errors.Is(err, profiles.ErrSourceNotFound) {
		t.Errorf("get of another tenant's source = %v, want ErrSourceNotFound", err)
	}
	if _, err := b.SourceGet(t.Context(), ids[0], "src_absent"); !errors.Is(err, profiles.ErrSourceNotFound) {
		t.Errorf("get of an absent source = %v, want ErrSourceNotFound", err)
	}
}

func testSourceNameTaken(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)

	first := insertSource(t, b, newSource(ids[0], 1))
	dup := newSource(ids[0], 2)
	dup.Name = first.Name
	if _, err := b.SourceInsert(t.Context(), dup, audit.Event{}); !errors.Is(err, profiles.ErrSourceNameTaken) {
		t.Errorf("insert of a live name = %v, want ErrSourceNameTaken", err)
	}
	// Names are per tenant.
	other := newSource(ids[1], 1)
	other.Name = first.Name
	insertSource(t, b, other)

	// A revoked source frees its name; it stays a record.
	first = revokeSource(t, b, first)
	second := insertSource(t, b, dup)
	list, err := b.SourceList(t.Context(), ids[0], 0, 10)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if diff := cmp.Diff([]profiles.Source{first, second}, list); diff != "" {
		t.Errorf("list after revoke and reuse (-want +got):\n%s", diff)
	}
	// Revoked sources may share a name.
	second = revokeSource(t, b, second)
	third := newSource(ids[0], 3)
	third.Name = first.Name
	third = insertSource(t, b, third)

	// An update that would make two live sources of one name is refused,
	// and changes nothing: undoing a revoke, or a rename.
	undo := first
	undo.RevokedAt = nil
	if _, err := b.SourceUpdate(t.Context(), undo, audit.Event{}); !errors.Is(err, profiles.ErrSourceNameTaken) {
		t.Errorf("undoing a revoke onto a live name = %v, want ErrSourceNameTaken", err)
	}
	fourth := insertSource(t, b, newSource(ids[0], 4))
	rename := fourth
	rename.Name = third.Name
	if _, err := b.SourceUpdate(t.Context(), rename, audit.Event{}); !errors.Is(err, profiles.ErrSourceNameTaken) {
		t.Errorf("rename onto a live name = %v, want ErrSourceNameTaken", err)
	}
	for _, want := range []profiles.Source{first, second, third, fourth} {
		got, err := b.SourceGet(t.Context(), ids[0], want.ID)
		if err != nil {
			t.Fatalf("get %s: %v", want.ID, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("get %s after refused updates (-want +got):\n%s", want.ID, diff)
		}
	}
}

func testSourceConcurrentInsert(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	const n = 10
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			src := newSource(ids[0], i)
			src.Name = "racer"
			_, err := b.SourceInsert(t.Context(), src, audit.Event{})
			errs <- err
		}()
	}
	close(start)
	inserted := 0
	for range n {
		switch err := receive(t, errs, "an insert"); {
		case err == nil:
			inserted++
		case !errors.Is(err, profiles.ErrSourceNameTaken):
			t.Errorf("insert: %v, want nil or ErrSourceNameTaken", err)
		}
	}
	if inserted != 1 {
		t.Errorf("%d inserts of one name succeeded, want exactly 1", inserted)
	}
}

func testSourceByKeyHash(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)
	a := insertSource(t, b, newSource(ids[0], 1))
	other := insertSource(t, b, newSource(ids[1], 1))

	for _, want := range []profiles.Source{a, other} {
		got, err := b.SourceByKeyHash(t.Context(), want.KeyHash)
		if err != nil {
			t.Fatalf("by key hash of %s: %v", want.ID, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("by key hash of %s (-want +got):\n%s", want.ID, diff)
		}
	}
	for name, hash := range map[string][]byte{"unknown": keyHash("unknown"), "nil": nil, "empty": {}} {
		if _, err := b.SourceByKeyHash(t.Context(), hash); !errors.Is(err, profiles.ErrSourceNotFound) {
			t.Errorf("by key hash (%s) = %v, want ErrSourceNotFound", name, err)
		}
	}

	// A revoked source is still found by its key, with RevokedAt set, so
	// that ingestion can tell a revoked key from an unknown one.
	a = revokeSource(t, b, a)
	got, err := b.SourceByKeyHash(t.Context(), a.KeyHash)
	if err != nil {
		t.Fatalf("by key hash of a revoked source: %v", err)
	}
	if diff := cmp.Diff(a, got); diff != "" || got.RevokedAt == nil {
		t.Errorf("by key hash of a revoked source (-want +got):\n%s", diff)
	}

	// A key hash is one source's, revoked or not, across tenants.
	dup := newSource(ids[1], 2)
	dup.KeyHash = a.KeyHash
	if _, err := b.SourceInsert(t.Context(), dup, audit.Event{}); err == nil || errors.Is(err, profiles.ErrSourceNameTaken) {
		t.Errorf("insert with a key hash in use = %v, want an error other than ErrSourceNameTaken", err)
	}
}

func testSourceRotate(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	src := insertSource(t, b, newSource(ids[0], 1))
	old := src.KeyHash

	rotatedAt := base.Add(time.Hour)
	want := src
	want.KeyHash, want.KeyHint, want.RotatedAt = keyHash("rotated"), "ck_new", &rotatedAt
	got := updateSource(t, b, want)
	want.Version = 2
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rotate returned (-want +got):\n%s", diff)
	}
	if _, err := b.SourceByKeyHash(t.Context(), old); !errors.Is(err, profiles.ErrSourceNotFound) {
		t.Errorf("by the old key hash after rotating = %v, want ErrSourceNotFound", err)
	}
	byNew, err := b.SourceByKeyHash(t.Context(), want.KeyHash)
	if err != nil {
		t.Fatalf("by the new key hash: %v", err)
	}
	if diff := cmp.Diff(want, byNew); diff != "" {
		t.Errorf("by the new key hash (-want +got):\n%s", diff)
	}
	// The old key is free again: a new source may (in theory) get it.
	insertSource(t, b, profiles.Source{ID: "src_reuse", TenantID: ids[0], Name: "reuse", KeyHash: old, CreatedAt: base})
}

func testSourceUpdateVersion(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)
	src := insertSource(t, b, newSource(ids[0], 1))

	renamed := src
	renamed.Name = "renamed"
	v2 := updateSource(t, b, renamed)
	if v2.Version != 2 || v2.Name != "renamed" {
		t.Fatalf("update = version %d, name %q; want 2, renamed", v2.Version, v2.Name)
	}
	// Writing from the old version conflicts and changes nothing.
	stale := src
	stale.Name = "stale"
	if _, err := b.SourceUpdate(t.Context(), stale, audit.Event{}); !errors.Is(err, profiles.ErrSourceConflict) {
		t.Errorf("update from a stale version = %v, want ErrSourceConflict", err)
	}
	ahead := v2
	ahead.Version = 5
	if _, err := b.SourceUpdate(t.Context(), ahead, audit.Event{}); !errors.Is(err, profiles.ErrSourceConflict) {
		t.Errorf("update from a version ahead = %v, want ErrSourceConflict", err)
	}
	got, err := b.SourceGet(t.Context(), ids[0], src.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if diff := cmp.Diff(v2, got); diff != "" {
		t.Errorf("get after conflicts (-want +got):\n%s", diff)
	}

	absent := v2
	absent.ID = "src_absent"
	if _, err := b.SourceUpdate(t.Context(), absent, audit.Event{}); !errors.Is(err, profiles.ErrSourceNotFound) {
		t.Errorf("update of an absent source = %v, want ErrSourceNotFound", err)
	}
	otherTenant := v2
	otherTenant.TenantID = ids[1]
	if _, err := b.SourceUpdate(t.Context(), otherTenant, audit.Event{}); !errors.Is(err, profiles.ErrSourceNotFound) {
		t.Errorf("update of another tenant's source = %v, want ErrSourceNotFound", err)
	}

	// Of concurrent updates from one version exactly one succeeds.
	const n = 8
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			u := v2
			u.KeyHint = fmt.Sprintf("ck_racer_%d", i)
			_, err := b.SourceUpdate(t.Context(), u, audit.Event{})
			errs <- err
		}()
	}
	close(start)
	updated := 0
	for range n {
		switch err := receive(t, errs, "an update"); {
		case err == nil:
			updated++
		case !errors.Is(err, profiles.ErrSourceConflict):
			t.Errorf("concurrent update: %v, want nil or ErrSourceConflict", err)
		}
	}
	if updated != 1 {
		t.Errorf("%d concurrent updates succeeded, want exactly 1", updated)
	}
	if got, err := b.SourceGet(t.Context(), ids[0], src.ID); err != nil || got.Version != 3 {
		t.Errorf("get after concurrent updates = version %d, %v; want 3", got.Version, err)
	}
}

func testSourceList(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)

	// Two tenants' sources interleaved; one revoked.
	var want []profiles.Source
	for i := range 7 {
		want = append(want, insertSource(t, b, newSource(ids[0], i)))
		insertSource(t, b, newSource(ids[1], i))
	}
	want[2] = revokeSource(t, b, want[2])
	for i := 1; i < len(want); i++ {
		if want[i].Seq <= want[i-1].Seq {
			t.Fatalf("Seq %d after %d: want increasing", want[i].Seq, want[i-1].Seq)
		}
	}

	list := func(after int64, limit int) []profiles.Source {
		t.Helper()
		got, err := b.SourceList(t.Context(), ids[0], after, limit)
		if err != nil {
			t.Fatalf("list after %d limit %d: %v", after, limit, err)
		}
		return got
	}
	if diff := cmp.Diff(want, list(0, 100)); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	var paged []profiles.Source
	pages := 0
	for after := int64(0); ; {
		page := list(after, 3)
		pages++
		paged = append(paged, page...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].Seq
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("paged list (-want +got):\n%s", diff)
	}
	if pages != 3 {
		t.Errorf("%d pages of 3 for 7 sources, want 3", pages)
	}
	if got := list(want[len(want)-1].Seq, 3); len(got) != 0 {
		t.Errorf("list after the last = %d sources, want none", len(got))
	}
	if got, err := b.SourceList(t.Context(), "ten_absent", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("list of an unknown tenant = %d sources, %v; want none", len(got), err)
	}
}

func testSourceRevokeAll(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)
	var live []profiles.Source
	for i := range 3 {
		live = append(live, insertSource(t, b, newSource(ids[0], i)))
	}
	revoked := revokeSource(t, b, insertSource(t, b, newSource(ids[0], 3)))
	other := insertSource(t, b, newSource(ids[1], 0))

	at := base.Add(2 * time.Hour)
	n, err := b.SourceRevokeAll(t.Context(), ids[0], at)
	if err != nil || n != len(live) {
		t.Fatalf("revoke all = %d, %v; want %d", n, err, len(live))
	}
	// The live sources are revoked at at, a version on; the one revoked
	// before keeps its revocation; the other tenant's is untouched.
	var want []profiles.Source
	for _, src := range live {
		src.RevokedAt, src.Version = &at, src.Version+1
		want = append(want, src)
	}
	want = append(want, revoked)
	got, err := b.SourceList(t.Context(), ids[0], 0, 10)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources after revoke all (-want +got):\n%s", diff)
	}
	for _, src := range want {
		byKey, err := b.SourceByKeyHash(t.Context(), src.KeyHash)
		if err != nil || byKey.RevokedAt == nil {
			t.Errorf("by key hash of %s after revoke all = %+v, %v; want it revoked", src.ID, byKey, err)
		}
	}
	if got, err := b.SourceGet(t.Context(), ids[1], other.ID); err != nil || !cmp.Equal(other, got) {
		t.Errorf("the other tenant's source after revoke all = %+v, %v; want %+v", got, err, other)
	}

	// Again: nothing left to revoke, nothing changes.
	if n, err := b.SourceRevokeAll(t.Context(), ids[0], at.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("second revoke all = %d, %v; want 0", n, err)
	}
	if got, err := b.SourceList(t.Context(), ids[0], 0, 10); err != nil || !cmp.Equal(want, got) {
		t.Errorf("sources after a second revoke all changed: %+v, %v", got, err)
	}
	if n, err := b.SourceRevokeAll(t.Context(), "ten_absent", at); err != nil || n != 0 {
		t.Errorf("revoke all of an unknown tenant = %d, %v; want 0", n, err)
	}
}

// testSourceAllowedOrigins: a source's allowed origins are stored at
// insert and by an update, in order, and read back by every query; none
// read back as nil.
func testSourceAllowedOrigins(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)

	origins := []string{"https://shop.example", "http://localhost:3000", "https://名前.example"}
	withOrigins := newSource(ids[0], 1)
	withOrigins.AllowedOrigins = origins
	got := insertSource(t, b, withOrigins)
	if diff := cmp.Diff(origins, got.AllowedOrigins); diff != "" {
		t.Errorf("insert returned origins (-want +got):\n%s", diff)
	}
	byKey, err := b.SourceByKeyHash(t.Context(), withOrigins.KeyHash)
	if err != nil {
		t.Fatalf("by key hash: %v", err)
	}
	if diff := cmp.Diff(got, byKey); diff != "" {
		t.Errorf("by key hash (-want +got):\n%s", diff)
	}

	empty := newSource(ids[0], 2)
	empty.AllowedOrigins = []string{}
	if got := insertSource(t, b, empty); got.AllowedOrigins != nil {
		t.Errorf("insert of no origins reads back %#v, want nil", got.AllowedOrigins)
	}

	// An update replaces the list, and an empty list clears it.
	narrowed := got
	narrowed.AllowedOrigins = []string{"https://other.example"}
	narrowed = updateSource(t, b, narrowed)
	if diff := cmp.Diff([]string{"https://other.example"}, narrowed.AllowedOrigins); diff != "" {
		t.Errorf("update returned origins (-want +got):\n%s", diff)
	}
	cleared := narrowed
	cleared.AllowedOrigins = nil
	cleared = updateSource(t, b, cleared)
	stored, err := b.SourceGet(t.Context(), ids[0], withOrigins.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if stored.AllowedOrigins != nil || cleared.AllowedOrigins != nil {
		t.Errorf("after clearing: stored %#v, returned %#v; want nil", stored.AllowedOrigins, cleared.AllowedOrigins)
	}
	list, err := b.SourceList(t.Context(), ids[0], 0, 10)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 2 || list[0].AllowedOrigins != nil {
		t.Errorf("list: %+v", list)
	}
}
