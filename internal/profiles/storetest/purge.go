package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// RunDeleteTenant runs the contract of Store.DeleteTenant, as Run does for
// the other methods (newStore likewise). It is a suite of its own because
// DeleteTenant is for the offboarding job only: on DynamoDB it scans the
// whole table, so an adapter may want to run it on a store of its own.
//
// The contract: DeleteTenant deletes every item whose PK starts with
// "TENANT#<tenant>#", expired ones included, and nothing else; a tenant
// whose ID shares all but its last character with the deleted one keeps
// every item; an argument that is not a tenant ID (a truncated one, that
// would be a prefix of other IDs, or one with a '#') is ErrInvalidInput
// and deletes nothing; a second call deletes nothing and returns 0.
func RunDeleteTenant(t *testing.T, newStore func(t *testing.T) profiles.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"DeletesOnlyTheTenant", testDeleteTenant},
		{"RefusesWhatIsNotATenantID", testDeleteTenantInvalid},
		{"NoItems", testDeleteTenantNoItems},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newFixture(t, newStore(t)))
		})
	}
}

// neighbour returns a tenant ID that differs from id in its last
// character only, so that every key of one shares all but that character
// of its tenant prefix with the other's.
func neighbour(id string) string {
	last := id[len(id)-1]
	for _, c := range "abcdefghijklmnopqrstuvwxyz234567" {
		if byte(c) != last {
			return id[:len(id)-1] + string(c)
		}
	}
	panic("unreachable")
}

// tenantItems writes a tenant's items in the shapes the profiles package
// uses (a member with its gsi1 entry, identifiers, an index item, events,
// a deduplication record that expires later, one that has expired, the
// configuration) and returns them, the expired one last. events sets how
// many events; each carries about 1 KB, so that many of them span more
// than one page of a read or scan.
func tenantItems(t *testing.T, f *fixture, tenant string, events int) []profiles.Item {
	t.Helper()
	pk := func(name string) string { return "TENANT#" + tenant + "#" + name }
	data := func(pk, sk string) []byte {
		return fmt.Appendf(nil, `{"pk":%q,"sk":%q,"pad":%q}`, pk, sk, strings.Repeat("x", 1000))
	}
	items := []profiles.Item{
		{PK: pk("M#m1"), SK: "M", GSI1PK: pk("R#m1"), GSI1SK: "M#m1"},
		{PK: pk("M#m1"), SK: "I#user_id#u1"},
		{PK: pk("I#user_id#u1"), SK: "I"},
		{PK: pk("C"), SK: "identity"},
		{PK: pk("D#msg-1"), SK: "D", ExpiresAt: now() + 3600},
	}
	for i := range events {
		items = append(items, profiles.Item{PK: pk("M#m1"), SK: fmt.Sprintf("E#2026-01-01T00:00:00.%09dZ#msg-%d", i, i)})
	}
	items = append(items, profiles.Item{PK: pk("D#msg-0"), SK: "D", ExpiresAt: now() - 10})
	for i := range items {
		items[i].Data = data(items[i].PK, items[i].SK)
	}
	if err := f.s.PutBatch(f.ctx, items); err != nil {
		t.Fatalf("put items of %s: %v", tenant, err)
	}
	return items
}

func keysOf(items []profiles.Item) []profiles.Key {
	keys := make([]profiles.Key, len(items))
	for i, it := range items {
		keys[i] = profiles.Key{PK: it.PK, SK: it.SK}
	}
	return keys
}

// wantKept fails unless every live item of items is stored as written.
func wantKept(t *testing.T, f *fixture, items []profiles.Item) {
	t.Helper()
	live := items[:len(items)-1] // the expired one is invisible anyway
	got, err := f.s.BatchGet(f.ctx, keysOf(live))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range live {
		g, ok := got[profiles.Key{PK: it.PK, SK: it.SK}]
		if !ok || !bytes.Equal(g.Data, it.Data) {
			t.Fatalf("item %s/%s of another tenant: %t, %q; want it kept", it.PK, it.SK, ok, g.Data)
		}
	}
	member := items[0]
	q, err := f.s.Query(f.ctx, profiles.QueryInput{PK: member.GSI1PK, Index: "gsi1"})
	if err != nil || len(q) != 1 {
		t.Fatalf("gsi1 query of another tenant's member: %d items, %v; want 1", len(q), err)
	}
}

func testDeleteTenant(t *testing.T, f *fixture) {
	const events = 1234 // more than a page: of SQLite's reads, of a 1 MB scan
	near, other := neighbour(f.tenant), tenants.NewID()
	mine := tenantItems(t, f, f.tenant, events)
	nearItems := tenantItems(t, f, near, 30)
	otherItems := tenantItems(t, f, other, 30)

	n, err := f.s.DeleteTenant(f.ctx, f.tenant)
	if err != nil {
		t.Fatalf("DeleteTenant: %v", err)
	}
	// The expired item counts if the store still kept it: SQLite's sweep
	// or DynamoDB's TTL may have deleted it first.
	if live := len(mine) - 1; n != live && n != live+1 {
		t.Errorf("DeleteTenant deleted %d items, want %d (or %d with the expired one)", n, live+1, live)
	}

	got, err := f.s.BatchGet(f.ctx, keysOf(mine))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("%d items of the deleted tenant are left", len(got))
	}
	for _, in := range []profiles.QueryInput{
		{PK: mine[0].PK},
		{PK: mine[0].GSI1PK, Index: "gsi1"},
	} {
		if q, err := f.s.Query(f.ctx, in); err != nil || len(q) != 0 {
			t.Errorf("Query(%+v) after DeleteTenant: %d items, %v; want none", in, len(q), err)
		}
	}
	wantKept(t, f, nearItems)
	wantKept(t, f, otherItems)

	if n, err := f.s.DeleteTenant(f.ctx, f.tenant); err != nil || n != 0 {
		t.Errorf("second DeleteTenant: %d, %v; want 0", n, err)
	}
	wantKept(t, f, nearItems)
}

func testDeleteTenantInvalid(t *testing.T, f *fixture) {
	mine := tenantItems(t, f, f.tenant, 3)
	near := tenantItems(t, f, neighbour(f.tenant), 3)
	for _, bad := range []string{
		"",
		f.tenant[:len(f.tenant)-1], // a prefix of both tenants' IDs
		f.tenant + "a",             // an ID that f.tenant is a prefix of
		"ten_",
		"ten_a",
		f.tenant + "#M",
		"TENANT#" + f.tenant,
		strings.ToUpper(f.tenant),
	} {
		if n, err := f.s.DeleteTenant(f.ctx, bad); !errors.Is(err, profiles.ErrInvalidInput) || n != 0 {
			t.Errorf("DeleteTenant(%q) = %d, %v; want 0, ErrInvalidInput", bad, n, err)
		}
	}
	wantKept(t, f, mine)
	wantKept(t, f, near)
}

func testDeleteTenantNoItems(t *testing.T, f *fixture) {
	if n, err := f.s.DeleteTenant(f.ctx, f.tenant); err != nil || n != 0 {
		t.Errorf("DeleteTenant of a tenant without items: %d, %v; want 0", n, err)
	}
}
