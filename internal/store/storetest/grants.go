package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/grants"
)

// Principals of the grants tests.
const (
	roleA   = "arn:aws:iam::111122223333:role/analyst"
	roleB   = "arn:aws:iam::111122223333:role/etl"
	account = "444455556666"
)

// newGrant returns a column grant with every field set, as GrantInsert
// stores it (Version 1); n varies its ID and table.
func newGrant(tenantID, principal string, n int) grants.Grant {
	return grants.Grant{
		ID:        fmt.Sprintf("grt_%s_%03d", tenantID, n),
		TenantID:  tenantID,
		Principal: principal,
		Resource: grants.Resource{
			Region:   "eu-west-1",
			Database: "cairn_" + tenantID,
			Table:    fmt.Sprintf("events_%03d", n),
			Columns:  []string{"user_id", "event", "ts"},
		},
		Permissions: []string{"SELECT", "DESCRIBE"},
		CellsFilter: "cairn_rows_" + tenantID,
		Status:      grants.StatusPending,
		Reason:      "waiting for Lake Formation",
		CreatedBy:   "tenant:" + tenantID,
		Version:     1,
		CreatedAt:   base,
		UpdatedAt:   base.Add(time.Second),
	}
}

func inGrantsTx(t *testing.T, s grants.Store, fn func(grants.Tx) error) error {
	t.Helper()
	return s.InTx(t.Context(), fn)
}

func insertGrant(t *testing.T, s grants.Store, g grants.Grant) (grants.Grant, bool) {
	t.Helper()
	var (
		out     grants.Grant
		created bool
	)
	err := inGrantsTx(t, s, func(tx grants.Tx) error {
		var err error
		out, created, err = tx.GrantInsert(t.Context(), g)
		return err
	})
	if err != nil {
		t.Fatalf("insert grant %s: %v", g.ID, err)
	}
	return out, created
}

// updateGrant runs GrantUpdate in a transaction of its own.
func updateGrant(t *testing.T, s grants.Store, g grants.Grant) (grants.Grant, error) {
	t.Helper()
	var out grants.Grant
	err := inGrantsTx(t, s, func(tx grants.Tx) error {
		var err error
		out, err = tx.GrantUpdate(t.Context(), g)
		return err
	})
	return out, err
}

func mustUpdateGrant(t *testing.T, s grants.Store, g grants.Grant) grants.Grant {
	t.Helper()
	out, err := updateGrant(t, s, g)
	if err != nil {
		t.Fatalf("update grant %s: %v", g.ID, err)
	}
	return out
}

func registerPrincipal(t *testing.T, s grants.Store, p grants.Principal) (grants.Principal, bool, error) {
	t.Helper()
	var (
		out     grants.Principal
		created bool
	)
	err := inGrantsTx(t, s, func(tx grants.Tx) error {
		var err error
		out, created, err = tx.PrincipalInsert(t.Context(), p)
		return err
	})
	return out, created, err
}

func deletePrincipal(t *testing.T, s grants.Store, tenantID, principal string) error {
	t.Helper()
	return inGrantsTx(t, s, func(tx grants.Tx) error { return tx.PrincipalDelete(t.Context(), tenantID, principal) })
}

func getGrant(t *testing.T, s grants.Store, tenantID, id string) grants.Grant {
	t.Helper()
	g, err := s.GrantGet(t.Context(), tenantID, id)
	if err != nil {
		t.Fatalf("get grant %s: %v", id, err)
	}
	return g
}

func listGrants(t *testing.T, s grants.Store, p grants.GrantListParams) []grants.Grant {
	t.Helper()
	got, err := s.GrantList(t.Context(), p)
	if err != nil {
		t.Fatalf("list grants %+v: %v", p, err)
	}
	return got
}

func grantIDs(gs []grants.Grant) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.ID
	}
	return out
}

func testPrincipals(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 2)

	if _, err := s.PrincipalGet(t.Context(), ids[0], roleA); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("get of an unregistered principal = %v, want ErrNotFound", err)
	}
	var want []grants.Principal
	for i, principal := range []string{roleA, account, roleB} {
		p := grants.Principal{TenantID: ids[0], Principal: principal, CreatedAt: base.Add(time.Duration(i) * time.Second)}
		got, created, err := registerPrincipal(t, s, p)
		if err != nil || !created {
			t.Fatalf("register %s = %t, %v; want created", principal, created, err)
		}
		if got.Seq <= 0 || (len(want) > 0 && got.Seq <= want[len(want)-1].Seq) {
			t.Errorf("register %s: Seq %d, want > 0 and increasing", principal, got.Seq)
		}
		p.Seq = got.Seq
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("register %s returned (-want +got):\n%s", principal, diff)
		}
		want = append(want, p)
	}

	// Registering again returns the existing record, whatever CreatedAt.
	again, created, err := registerPrincipal(t, s, grants.Principal{TenantID: ids[0], Principal: roleA, CreatedAt: base.Add(time.Hour)})
	if err != nil || created {
		t.Errorf("second registration = %t, %v; want not created", created, err)
	}
	if diff := cmp.Diff(want[0], again); diff != "" {
		t.Errorf("second registration returned (-first +got):\n%s", diff)
	}
	// A principal belongs to one tenant only.
	if _, _, err := registerPrincipal(t, s, grants.Principal{TenantID: ids[1], Principal: roleA, CreatedAt: base}); !errors.Is(err, grants.ErrPrincipalTaken) {
		t.Errorf("registration by another tenant = %v, want ErrPrincipalTaken", err)
	}
	if _, err := s.PrincipalGet(t.Context(), ids[1], roleA); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("get of another tenant's principal = %v, want ErrNotFound", err)
	}
	for _, p := range want {
		got, err := s.PrincipalGet(t.Context(), ids[0], p.Principal)
		if err != nil {
			t.Fatalf("get %s: %v", p.Principal, err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("get %s (-want +got):\n%s", p.Principal, diff)
		}
	}

	// A zero CreatedAt means now.
	before := time.Now()
	other, _, err := registerPrincipal(t, s, grants.Principal{TenantID: ids[1], Principal: "777788889999"})
	if err != nil {
		t.Fatalf("register without CreatedAt: %v", err)
	}
	checkUpdatedAt(t, "register without CreatedAt", other.CreatedAt, before, time.Now())

	// List pages the tenant's principals in registration order.
	got, err := s.PrincipalList(t.Context(), ids[0], 0, 10)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if got, err = s.PrincipalList(t.Context(), ids[0], 0, 0); err != nil || len(got) != len(want) {
		t.Errorf("list with no limit = %d principals, %v; want %d", len(got), err, len(want))
	}
	var paged []grants.Principal
	for after := int64(0); ; {
		page, err := s.PrincipalList(t.Context(), ids[0], after, 2)
		if err != nil {
			t.Fatalf("list after %d: %v", after, err)
		}
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Seq
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("paged list (-want +got):\n%s", diff)
	}

	// Delete removes the tenant's principal only.
	if err := deletePrincipal(t, s, ids[1], roleA); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("delete of another tenant's principal = %v, want ErrNotFound", err)
	}
	if err := deletePrincipal(t, s, ids[0], roleA); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.PrincipalGet(t.Context(), ids[0], roleA); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("get of a deleted principal = %v, want ErrNotFound", err)
	}
	if err := deletePrincipal(t, s, ids[0], roleA); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	if got, err = s.PrincipalList(t.Context(), ids[0], 0, 10); err != nil {
		t.Fatalf("list after delete: %v", err)
	} else if diff := cmp.Diff(want[1:], got); diff != "" {
		t.Errorf("list after delete (-want +got):\n%s", diff)
	}
	// Once deleted, the principal is free for another tenant.
	if _, created, err := registerPrincipal(t, s, grants.Principal{TenantID: ids[1], Principal: roleA, CreatedAt: base}); err != nil || !created {
		t.Errorf("registration of a deleted principal by another tenant = %t, %v; want created", created, err)
	}
}

func testGrantRoundTrip(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 1)

	columns := newGrant(ids[0], roleA, 1)
	table := newGrant(ids[0], roleA, 2)
	table.Resource.Columns = nil
	table.Permissions = []string{"SELECT"}
	table.CellsFilter, table.Reason = "", ""
	database := newGrant(ids[0], account, 3)
	database.Resource.Table, database.Resource.Columns = "", nil
	database.Permissions = []string{"DESCRIBE", "ALTER", "DROP"}
	database.Status = grants.StatusActive
	database.CreatedBy = "admin"
	odd := newGrant(ids[0], roleB, 4)
	odd.Resource.Columns = []string{"quote\"d", "ü", "comma,col"}
	odd.Status = grants.StatusSuspended
	tagged := newGrant(ids[0], roleB, 7)
	tagged.Resource.Table, tagged.Resource.Columns = "", nil
	tagged.Resource.Tags = grants.TagExpression{grants.TagPII: {"false"}, grants.TagPIIKind: {"none", "ip"}}
	tagged.CellsFilter = ""

	for _, want := range []grants.Grant{columns, table, database, odd, tagged} {
		got, created := insertGrant(t, s, want)
		if !created || got.Seq <= 0 {
			t.Errorf("%s: insert = created %t, Seq %d; want created, Seq > 0", want.ID, created, got.Seq)
		}
		want.Seq = got.Seq
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: insert returned (-want +got):\n%s", want.ID, diff)
		}
		if diff := cmp.Diff(want, getGrant(t, s, want.TenantID, want.ID)); diff != "" {
			t.Errorf("%s: Store.GrantGet (-want +got):\n%s", want.ID, diff)
		}
		var inTx grants.Grant
		err := inGrantsTx(t, s, func(tx grants.Tx) error {
			var err error
			inTx, err = tx.GrantGet(t.Context(), want.TenantID, want.ID)
			return err
		})
		if err != nil {
			t.Fatalf("Tx.GrantGet: %v", err)
		}
		if diff := cmp.Diff(want, inTx); diff != "" {
			t.Errorf("%s: Tx.GrantGet (-want +got):\n%s", want.ID, diff)
		}
	}

	// A new grant is stored at Version 1; zero times mean now.
	v := newGrant(ids[0], roleA, 5)
	v.Version, v.CreatedAt, v.UpdatedAt = 9, time.Time{}, time.Time{}
	before := time.Now()
	got, _ := insertGrant(t, s, v)
	if got.Version != 1 {
		t.Errorf("insert of Version 9 stored Version %d, want 1", got.Version)
	}
	checkUpdatedAt(t, "insert without times", got.CreatedAt, before, time.Now())
	if !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("insert without times: UpdatedAt %s, want CreatedAt %s", got.UpdatedAt, got.CreatedAt)
	}

	// A grant belongs to a tenant that exists.
	orphan := newGrant("ten_missing", roleA, 6)
	if err := inGrantsTx(t, s, func(tx grants.Tx) error {
		_, _, err := tx.GrantInsert(t.Context(), orphan)
		return err
	}); err == nil {
		t.Error("insert of a grant of a missing tenant succeeded")
	}
}

func testGrantInsertIdempotent(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 2)

	first, _ := insertGrant(t, s, newGrant(ids[0], roleA, 1))

	// The same grant, asked again with columns and permissions in another
	// order and other bookkeeping, is the first one.
	same := newGrant(ids[0], roleA, 1)
	same.ID = "grt_same"
	same.Resource.Columns = []string{"ts", "user_id", "event"}
	same.Permissions = []string{"DESCRIBE", "SELECT"}
	same.Status, same.Reason, same.CreatedBy, same.CellsFilter = grants.StatusActive, "", "admin", ""
	same.CreatedAt = base.Add(time.Hour)
	got, created := insertGrant(t, s, same)
	if created {
		t.Error("insert of the same grant created another")
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("insert of the same grant returned (-first +got):\n%s", diff)
	}
	if _, err := s.GrantGet(t.Context(), ids[0], same.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("the duplicate's ID was stored: get = %v", err)
	}
	// So is a tag grant asked again with its values in another order.
	tagFirst := newGrant(ids[0], roleB, 9)
	tagFirst.Resource.Columns = nil
	tagFirst.Resource.Tags = grants.TagExpression{grants.TagPII: {"true", "false"}, grants.TagPIIKind: {"none"}}
	tagFirst, _ = insertGrant(t, s, tagFirst)
	tagSame := newGrant(ids[0], roleB, 9)
	tagSame.ID = "grt_tag_same"
	tagSame.Resource.Columns = nil
	tagSame.Resource.Tags = grants.TagExpression{grants.TagPIIKind: {"none"}, grants.TagPII: {"false", "true"}}
	if got, created := insertGrant(t, s, tagSame); created || got.ID != tagFirst.ID {
		t.Errorf("insert of the same tag grant = %s, created %t; want %s", got.ID, created, tagFirst.ID)
	}

	// Other content, or another tenant, is another grant.
	morePerms := newGrant(ids[0], roleA, 1)
	morePerms.ID = "grt_more"
	morePerms.Permissions = []string{"SELECT", "DESCRIBE", "INSERT"}
	fewerCols := newGrant(ids[0], roleA, 1)
	fewerCols.ID = "grt_fewer"
	fewerCols.Resource.Columns = []string{"user_id"}
	otherPrincipal := newGrant(ids[0], roleB, 1)
	otherPrincipal.ID = "grt_principal"
	otherTenant := newGrant(ids[1], roleA, 1)
	otherTenant.Resource.Database = first.Resource.Database
	byTag := newGrant(ids[0], roleA, 1)
	byTag.ID = "grt_tag"
	byTag.Resource.Columns, byTag.Resource.Tags = nil, grants.TagExpression{grants.TagPII: {"false"}}
	otherTag := byTag
	otherTag.ID = "grt_tag_other"
	otherTag.Resource.Tags = grants.TagExpression{grants.TagPII: {"false", "true"}}
	for _, g := range []grants.Grant{morePerms, fewerCols, otherPrincipal, otherTenant, byTag, otherTag} {
		if got, created := insertGrant(t, s, g); !created || got.ID != g.ID {
			t.Errorf("insert of %s = %s, created %t; want a new grant", g.ID, got.ID, created)
		}
	}

	// A revoked grant frees its key: the same grant may be granted again,
	// and asking again returns the new grant, not the revoked one.
	for _, status := range []grants.Status{grants.StatusRevoking, grants.StatusRevoked} {
		first.Status = status
		first = mustUpdateGrant(t, s, first)
		if status == grants.StatusRevoking {
			if got, created := insertGrant(t, s, same); created || got.ID != first.ID {
				t.Errorf("insert while revoking = %s, created %t; want %s, not created", got.ID, created, first.ID)
			}
		}
	}
	again, created := insertGrant(t, s, same)
	if !created || again.ID != same.ID {
		t.Errorf("insert after revoke = %s, created %t; want %s, created", again.ID, created, same.ID)
	}
	third := same
	third.ID = "grt_third"
	if got, created := insertGrant(t, s, third); created || got.ID != again.ID {
		t.Errorf("insert after re-grant = %s, created %t; want %s, not created", got.ID, created, again.ID)
	}
	if got := getGrant(t, s, ids[0], first.ID); got.Status != grants.StatusRevoked {
		t.Errorf("revoked grant has status %s", got.Status)
	}
}

// testGrantConcurrentInsert races inserts of one grant: one row is stored
// and every caller gets it back.
func testGrantConcurrentInsert(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 1)
	const n = 10
	type result struct {
		g       grants.Grant
		created bool
		err     error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			g := newGrant(ids[0], roleA, 1)
			g.ID = fmt.Sprintf("grt_racer_%d", i)
			var r result
			r.err = s.InTx(t.Context(), func(tx grants.Tx) error {
				var err error
				r.g, r.created, err = tx.GrantInsert(t.Context(), g)
				return err
			})
			results <- r
		}()
	}
	close(start)
	var (
		winner  grants.Grant
		created int
		all     []grants.Grant
	)
	for range n {
		r := receive(t, results, "an insert")
		if r.err != nil {
			t.Fatalf("insert: %v", r.err)
		}
		if r.created {
			created++
			winner = r.g
		}
		all = append(all, r.g)
	}
	if created != 1 {
		t.Fatalf("%d inserts created the grant, want exactly 1", created)
	}
	for _, g := range all {
		if diff := cmp.Diff(winner, g); diff != "" {
			t.Errorf("inserts returned different grants (-winner +got):\n%s", diff)
		}
	}
	list := listGrants(t, s, grants.GrantListParams{TenantID: ids[0], Limit: 100})
	if len(list) != 1 {
		t.Fatalf("%d grants stored, want 1: %v", len(list), grantIDs(list))
	}
	if diff := cmp.Diff(winner, list[0]); diff != "" {
		t.Errorf("stored differs from what insert returned (-returned +stored):\n%s", diff)
	}
}

func testGrantGetOtherTenant(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 2)
	g, _ := insertGrant(t, s, newGrant(ids[0], roleA, 1))

	for _, k := range []struct{ tenantID, id string }{{ids[1], g.ID}, {ids[0], "grt_missing"}, {"", g.ID}} {
		if _, err := s.GrantGet(t.Context(), k.tenantID, k.id); !errors.Is(err, grants.ErrNotFound) {
			t.Errorf("Store.GrantGet(%q, %q) = %v, want ErrNotFound", k.tenantID, k.id, err)
		}
		err := inGrantsTx(t, s, func(tx grants.Tx) error {
			_, err := tx.GrantGet(t.Context(), k.tenantID, k.id)
			return err
		})
		if !errors.Is(err, grants.ErrNotFound) {
			t.Errorf("Tx.GrantGet(%q, %q) = %v, want ErrNotFound", k.tenantID, k.id, err)
		}
	}
	// Nor can another tenant change it.
	stolen := g
	stolen.TenantID, stolen.Status = ids[1], grants.StatusRevoked
	if _, err := updateGrant(t, s, stolen); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("update through another tenant = %v, want ErrNotFound", err)
	}
	if got := getGrant(t, s, ids[0], g.ID); got.Status != g.Status || got.Version != g.Version {
		t.Errorf("another tenant changed the grant: %+v", got)
	}
}

func testGrantUpdate(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 1)
	stored, _ := insertGrant(t, s, newGrant(ids[0], roleA, 1))

	sent := stored
	sent.Status = grants.StatusFailed
	sent.Reason = "AccessDeniedException"
	sent.CellsFilter = "cairn_rows_other"
	sent.Permissions = []string{"SELECT"}
	// Not stored: the grant's identity and history never change.
	sent.Principal = roleB
	sent.Resource.Table = "other"
	sent.CreatedBy = "someone"
	sent.CreatedAt = base.Add(time.Hour)
	before := time.Now()
	got, err := updateGrant(t, s, sent)
	after := time.Now()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	checkUpdatedAt(t, "update", got.UpdatedAt, before, after)
	want := stored
	want.Status, want.Reason, want.CellsFilter, want.Permissions = sent.Status, sent.Reason, sent.CellsFilter, sent.Permissions
	want.Version, want.UpdatedAt = 2, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("update returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(got, getGrant(t, s, ids[0], stored.ID)); diff != "" {
		t.Errorf("stored differs from what update returned (-returned +stored):\n%s", diff)
	}

	// The key follows the permissions: the old content is free, the new
	// one taken.
	if g, created := insertGrant(t, s, got); created || g.ID != got.ID {
		t.Errorf("insert of the updated content = %s, created %t; want %s, not created", g.ID, created, got.ID)
	}
	old := newGrant(ids[0], roleA, 1)
	old.ID = "grt_old"
	if g, created := insertGrant(t, s, old); !created {
		t.Errorf("insert of the content before the update = %s, not created; want a new grant", g.ID)
	}
	// An update that would make two live grants alike is a conflict.
	alike := got
	alike.Permissions = old.Permissions
	if _, err := updateGrant(t, s, alike); !errors.Is(err, grants.ErrConflict) {
		t.Errorf("update to another live grant's content = %v, want ErrConflict", err)
	}

	// A second update from the returned grant succeeds; one from the grant
	// as it was before the first update is stale.
	got.Status = grants.StatusActive
	if got, err = updateGrant(t, s, got); err != nil || got.Version != 3 {
		t.Fatalf("second update = version %d, %v; want version 3", got.Version, err)
	}
	stale := stored
	stale.Reason = "stale"
	if _, err := updateGrant(t, s, stale); !errors.Is(err, grants.ErrConflict) {
		t.Errorf("stale update = %v, want ErrConflict", err)
	}
	if read := getGrant(t, s, ids[0], stored.ID); read.Version != 3 || read.Reason == "stale" {
		t.Errorf("after a stale update: %+v", read)
	}
	missing := newGrant(ids[0], roleA, 9)
	if _, err := updateGrant(t, s, missing); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("update of a missing grant = %v, want ErrNotFound", err)
	}
}

// testGrantConcurrentUpdate races read-modify-write changes of one grant,
// each reading it with Tx.GrantGet: none fails its version check on
// PostgreSQL, which locks the row, nor on SQLite, which runs transactions
// one at a time.
func testGrantConcurrentUpdate(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 1)
	g, _ := insertGrant(t, s, newGrant(ids[0], roleA, 1))
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.InTx(t.Context(), func(tx grants.Tx) error {
				cur, err := tx.GrantGet(t.Context(), ids[0], g.ID)
				if err != nil {
					return err
				}
				cur.Reason = fmt.Sprintf("writer %d", i)
				_, err = tx.GrantUpdate(t.Context(), cur)
				return err
			})
		}()
	}
	for range n {
		if err := receive(t, errs, "an update"); err != nil {
			t.Errorf("concurrent update: %v", err)
		}
	}
	if got := getGrant(t, s, ids[0], g.ID); got.Version != 1+n {
		t.Errorf("version after %d updates = %d, want %d", n, got.Version, 1+n)
	}
}

func testGrantList(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 2)

	var all []grants.Grant // ids[0]'s grants in Seq order
	for i := range 12 {
		principal := []string{roleA, roleB, account}[i%3]
		g, _ := insertGrant(t, s, newGrant(ids[0], principal, i))
		all = append(all, g)
	}
	other, _ := insertGrant(t, s, newGrant(ids[1], roleA, 0))
	// Statuses: 0 active, 1 revoked, 2 failed, 3 active, 4 revoked, ...
	for i := range all {
		all[i].Status = []grants.Status{grants.StatusActive, grants.StatusRevoked, grants.StatusFailed}[i%3]
		all[i] = mustUpdateGrant(t, s, all[i])
	}
	pick := func(keep func(i int, g grants.Grant) bool) []grants.Grant {
		var out []grants.Grant
		for i, g := range all {
			if keep(i, g) {
				out = append(out, g)
			}
		}
		return out
	}

	tests := []struct {
		name string
		p    grants.GrantListParams
		want []grants.Grant
	}{
		{"tenant", grants.GrantListParams{TenantID: ids[0]}, all},
		{"other tenant", grants.GrantListParams{TenantID: ids[1]}, []grants.Grant{other}},
		{"every tenant", grants.GrantListParams{}, append(slices.Clone(all), other)},
		{"missing tenant", grants.GrantListParams{TenantID: "ten_missing"}, nil},
		{"principal", grants.GrantListParams{TenantID: ids[0], Principal: roleB},
			pick(func(_ int, g grants.Grant) bool { return g.Principal == roleB })},
		{"principal of another tenant", grants.GrantListParams{TenantID: ids[1], Principal: roleB}, nil},
		{"status", grants.GrantListParams{TenantID: ids[0], Status: grants.StatusRevoked},
			pick(func(i int, _ grants.Grant) bool { return i%3 == 1 })},
		{"principal and status", grants.GrantListParams{TenantID: ids[0], Principal: roleA, Status: grants.StatusActive},
			pick(func(_ int, g grants.Grant) bool { return g.Principal == roleA })},
		{"principal and other status", grants.GrantListParams{TenantID: ids[0], Principal: roleA, Status: grants.StatusFailed}, nil},
		{"after seq", grants.GrantListParams{TenantID: ids[0], AfterSeq: all[4].Seq}, all[5:]},
		{"limit", grants.GrantListParams{TenantID: ids[0], Limit: 3}, all[:3]},
		{"after seq with filter and limit", grants.GrantListParams{TenantID: ids[0], Status: grants.StatusFailed, AfterSeq: all[2].Seq, Limit: 2},
			[]grants.Grant{all[5], all[8]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listGrants(t, s, tt.p)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("list %+v (-want +got):\n%s", tt.p, diff)
			}
		})
	}

	// Paging with AfterSeq sees every grant once, in Seq order.
	for _, limit := range []int{1, 5, 12, 20} {
		var paged []grants.Grant
		for after, page := int64(0), 0; ; page++ {
			got := listGrants(t, s, grants.GrantListParams{TenantID: ids[0], AfterSeq: after, Limit: limit})
			if len(got) > limit {
				t.Fatalf("list with limit %d returned %d", limit, len(got))
			}
			paged = append(paged, got...)
			if len(got) < limit {
				break
			}
			after = got[len(got)-1].Seq
			if page > len(all) {
				t.Fatalf("limit %d: paging does not end", limit)
			}
		}
		if diff := cmp.Diff(grantIDs(all), grantIDs(paged)); diff != "" {
			t.Errorf("limit %d: paged grants (-want +got):\n%s", limit, diff)
		}
	}

	// Live grants are every status but revoked, in Seq order.
	live, err := s.GrantListLive(t.Context(), ids[0])
	if err != nil {
		t.Fatalf("list live: %v", err)
	}
	wantLive := pick(func(_ int, g grants.Grant) bool { return g.Status != grants.StatusRevoked })
	if diff := cmp.Diff(wantLive, live); diff != "" {
		t.Errorf("live grants (-want +got):\n%s", diff)
	}
	for _, status := range []grants.Status{grants.StatusPending, grants.StatusRevoking, grants.StatusSuspended} {
		g := all[1] // revoked
		g.Status = status
		all[1] = mustUpdateGrant(t, s, g)
		live, err := s.GrantListLive(t.Context(), ids[0])
		if err != nil {
			t.Fatalf("list live: %v", err)
		}
		if !slices.Contains(grantIDs(live), g.ID) {
			t.Errorf("a %s grant is not live", status)
		}
	}
	if live, err := s.GrantListLive(t.Context(), "ten_missing"); err != nil || len(live) != 0 {
		t.Errorf("live grants of a tenant without grants = %v, %v; want none", grantIDs(live), err)
	}
}

// testGrantTx checks that a grant, its audit event and its job commit or
// roll back together.
func testGrantTx(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()
	ids := tenantIDs(t, b, 1)

	errBoom := errors.New("boom")
	g := newGrant(ids[0], roleA, 1)
	err := inGrantsTx(t, s, func(tx grants.Tx) error {
		if _, _, err := tx.PrincipalInsert(t.Context(), grants.Principal{TenantID: ids[0], Principal: roleA}); err != nil {
			return err
		}
		if _, _, err := tx.GrantInsert(t.Context(), g); err != nil {
			return err
		}
		if err := tx.JobInsert(t.Context(), signalArgs{Token: "rolled back"}); err != nil {
			return err
		}
		if err := tx.AuditAppend(t.Context(), audit.Event{TenantID: ids[0], Actor: "admin", Action: "grant.create"}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	if _, err := s.GrantGet(t.Context(), ids[0], g.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("rolled-back grant: get = %v, want ErrNotFound", err)
	}
	if _, err := s.PrincipalGet(t.Context(), ids[0], roleA); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("rolled-back principal: get = %v, want ErrNotFound", err)
	}
	if events := listAudit(t, b, audit.ListParams{}); len(events) != 0 {
		t.Errorf("rolled-back audit events are there: %+v", events)
	}
	if counts := jobCounts(t, b); totalJobs(counts) != 0 {
		t.Errorf("rolled-back job is there: %v", counts)
	}

	// The same, committed: the job is there with the grant.
	err = inGrantsTx(t, s, func(tx grants.Tx) error {
		if _, _, err := tx.GrantInsert(t.Context(), g); err != nil {
			return err
		}
		return tx.JobInsert(t.Context(), signalArgs{Token: "committed"})
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	getGrant(t, s, ids[0], g.ID)
	if counts := jobCounts(t, b); counts["available"] != 1 || totalJobs(counts) != 1 {
		t.Errorf("after one committed job: JobCounts = %v, want one available", counts)
	}
}
