package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// base is a timestamp with microseconds, the precision stores keep.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

// newTenant returns a valid tenant with every field set; n varies its slug.
func newTenant(n int) tenants.Tenant {
	return tenants.Tenant{
		ID:           tenants.NewID(),
		Slug:         fmt.Sprintf("tenant-%03d", n),
		Name:         fmt.Sprintf("Tenant %d", n),
		Tier:         tenants.TierPooled,
		Status:       tenants.StatusProvisioning,
		StatusReason: "",
		HomeRegion:   "eu-west-1",
		Regions:      []string{"eu-west-1", "us-east-1"},
		Plan:         "growth",
		ContactEmail: "ops@example.com",
		Labels:       map[string]string{"team": "data", "cost-center": "42"},
		Version:      1,
		CreatedAt:    base,
		UpdatedAt:    base.Add(time.Second),
	}
}

// insert stores tenants in one transaction each and returns them with Seq.
func insert(t *testing.T, b store.Backend, ts ...tenants.Tenant) []tenants.Tenant {
	t.Helper()
	out := make([]tenants.Tenant, 0, len(ts))
	for _, tn := range ts {
		err := b.InTx(t.Context(), func(tx tenants.Tx) error {
			var err error
			tn, err = tx.TenantInsert(t.Context(), tn)
			return err
		})
		if err != nil {
			t.Fatalf("insert tenant %s: %v", tn.Slug, err)
		}
		out = append(out, tn)
	}
	return out
}

// update stores t, whose Version the caller has already increased.
func update(ctx context.Context, b store.Backend, t tenants.Tenant) error {
	return b.InTx(ctx, func(tx tenants.Tx) error { return tx.TenantUpdate(ctx, t) })
}

func get(t *testing.T, b store.Backend, id string) tenants.Tenant {
	t.Helper()
	got, err := b.TenantGet(t.Context(), id)
	if err != nil {
		t.Fatalf("get tenant %s: %v", id, err)
	}
	return got
}

func testTenantRoundTrip(t *testing.T, h Harness) {
	b := newBackend(t, h)

	full := newTenant(1)
	full.StatusReason = "waiting for quota"
	deleted := newTenant(2)
	deleted.Status = tenants.StatusDeleted
	deletedAt := base.Add(time.Hour + 999999*time.Microsecond)
	deleted.DeletedAt = &deletedAt
	empty := newTenant(3)
	empty.Tier = tenants.TierDedicated
	empty.Regions = []string{}
	empty.Labels = map[string]string{}
	empty.Plan, empty.ContactEmail = "", ""

	for _, want := range []tenants.Tenant{full, deleted, empty} {
		inserted := insert(t, b, want)[0]
		if inserted.Seq <= 0 {
			t.Errorf("%s: TenantInsert returned Seq %d, want > 0", want.Slug, inserted.Seq)
		}
		want.Seq = inserted.Seq
		if diff := cmp.Diff(want, inserted); diff != "" {
			t.Errorf("%s: TenantInsert returned (-want +got):\n%s", want.Slug, diff)
		}
		if diff := cmp.Diff(want, get(t, b, want.ID)); diff != "" {
			t.Errorf("%s: Store.TenantGet (-want +got):\n%s", want.Slug, diff)
		}
		var inTx tenants.Tenant
		err := b.InTx(t.Context(), func(tx tenants.Tx) error {
			var err error
			inTx, err = tx.TenantGet(t.Context(), want.ID)
			return err
		})
		if err != nil {
			t.Fatalf("Tx.TenantGet: %v", err)
		}
		if diff := cmp.Diff(want, inTx); diff != "" {
			t.Errorf("%s: Tx.TenantGet (-want +got):\n%s", want.Slug, diff)
		}
	}

	// Seq follows insertion order.
	list, err := b.TenantList(t.Context(), tenants.ListParams{Limit: 10})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 3 || !(list[0].Seq < list[1].Seq && list[1].Seq < list[2].Seq) ||
		list[0].ID != full.ID || list[2].ID != empty.ID {
		t.Errorf("list is not in insertion order: %v", ids(list))
	}
}

func testTenantNotFound(t *testing.T, h Harness) {
	b := newBackend(t, h)
	if _, err := b.TenantGet(t.Context(), "ten_missing"); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("Store.TenantGet = %v, want ErrNotFound", err)
	}
	err := b.InTx(t.Context(), func(tx tenants.Tx) error {
		_, err := tx.TenantGet(t.Context(), "ten_missing")
		return err
	})
	if !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("Tx.TenantGet = %v, want ErrNotFound", err)
	}
}

func testTenantSlugTaken(t *testing.T, h Harness) {
	b := newBackend(t, h)
	holder := insert(t, b, newTenant(1))[0]

	dup := newTenant(1)
	err := b.InTx(t.Context(), func(tx tenants.Tx) error {
		_, err := tx.TenantInsert(t.Context(), dup)
		return err
	})
	if !errors.Is(err, tenants.ErrSlugTaken) {
		t.Fatalf("insert with a live tenant's slug = %v, want ErrSlugTaken", err)
	}
	if _, err := b.TenantGet(t.Context(), dup.ID); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("refused tenant was stored: get = %v", err)
	}

	// Any live status holds the slug; only deleted frees it.
	for _, status := range []tenants.Status{tenants.StatusDeprovisioning, tenants.StatusDeleted} {
		holder.Status = status
		holder.Version++
		if status == tenants.StatusDeleted {
			holder.DeletedAt = &base
		}
		if err := update(t.Context(), b, holder); err != nil {
			t.Fatalf("update holder to %s: %v", status, err)
		}
	}
	reuse := insert(t, b, newTenant(1))[0]

	// Two tombstones may share a slug, and a live tenant's slug cannot be
	// given to another tenant by update either.
	reuse.Status, reuse.DeletedAt, reuse.Version = tenants.StatusDeleted, &base, reuse.Version+1
	if err := update(t.Context(), b, reuse); err != nil {
		t.Fatalf("delete second holder: %v", err)
	}
	other := insert(t, b, newTenant(2))[0]
	third := insert(t, b, newTenant(1))[0]
	other.Slug = third.Slug
	other.Version++
	if err := update(t.Context(), b, other); !errors.Is(err, tenants.ErrSlugTaken) {
		t.Errorf("update to a live tenant's slug = %v, want ErrSlugTaken", err)
	}
}

func testTenantUpdateVersion(t *testing.T, h Harness) {
	b := newBackend(t, h)
	tn := insert(t, b, newTenant(1))[0]

	want := tn
	want.Version = 2
	want.Name = "Renamed"
	want.Status = tenants.StatusSuspended
	want.StatusReason = "unpaid"
	want.Regions = []string{"ap-south-1", "eu-west-1"}
	want.Plan = "enterprise"
	want.ContactEmail = "new@example.com"
	want.Labels = map[string]string{"tier": "gold"}
	want.UpdatedAt = base.Add(time.Minute + time.Microsecond)
	if err := update(t.Context(), b, want); err != nil {
		t.Fatalf("update: %v", err)
	}
	if diff := cmp.Diff(want, get(t, b, tn.ID)); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}

	stale := tn // read at version 1, so it writes version 2 again
	stale.Version = 2
	stale.Name = "Stale"
	if err := update(t.Context(), b, stale); !errors.Is(err, tenants.ErrVersionMismatch) {
		t.Errorf("stale update = %v, want ErrVersionMismatch", err)
	}
	if got := get(t, b, tn.ID); got.Name != "Renamed" {
		t.Errorf("stale update changed the name to %q", got.Name)
	}

	missing := newTenant(2)
	missing.Version = 2
	if err := update(t.Context(), b, missing); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("update of a missing tenant = %v, want ErrNotFound", err)
	}
}

// testTenantConcurrentChanges checks that Tx.TenantGet serializes changes
// to one tenant: none fails its version check.
func testTenantConcurrentChanges(t *testing.T, h Harness) {
	b := newBackend(t, h)
	svc := tenants.NewService(b, nil)
	tn := insert(t, b, newTenant(1))[0]

	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			name := fmt.Sprintf("Name %d", i)
			_, err := svc.Update(t.Context(), tn.ID, tenants.UpdateParams{Name: &name})
			errs <- err
		}()
	}
	for range n {
		if err := receive(t, errs, "an update"); err != nil {
			t.Errorf("concurrent update: %v", err)
		}
	}
	if got := get(t, b, tn.ID); got.Version != 1+n {
		t.Errorf("version after %d updates = %d, want %d", n, got.Version, 1+n)
	}
}

// testMarkFailedAtVersion checks that the provisioner's failure verdict
// lands only on the tenant version it judged: after a retry (or any
// change) it is refused and changes nothing.
func testMarkFailedAtVersion(t *testing.T, h Harness) {
	b := newBackend(t, h)
	svc := tenants.NewService(b, nil)
	tn := insert(t, b, newTenant(1))[0] // provisioning
	judged := tn.Version
	name := "Renamed"
	if _, err := svc.Update(t.Context(), tn.ID, tenants.UpdateParams{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.MarkFailed(t.Context(), tn.ID, judged, "stale"); !errors.Is(err, tenants.ErrVersionMismatch) {
		t.Fatalf("MarkFailed at a stale version = %v, want ErrVersionMismatch", err)
	}
	if got := get(t, b, tn.ID); got.Status != tenants.StatusProvisioning || got.Version != judged+1 {
		t.Fatalf("after a refused MarkFailed: %s at version %d, want provisioning at %d", got.Status, got.Version, judged+1)
	}
	failed, err := svc.MarkFailed(t.Context(), tn.ID, judged+1, "us-east-1: ROLLBACK_COMPLETE")
	if err != nil || failed.Status != tenants.StatusFailed || failed.StatusReason != "us-east-1: ROLLBACK_COMPLETE" {
		t.Fatalf("MarkFailed at the current version = %+v, %v", failed, err)
	}
}

func testTenantListFilters(t *testing.T, h Harness) {
	b := newBackend(t, h)
	a := newTenant(1) // pooled, provisioning, eu-west-1 + us-east-1
	c := newTenant(2)
	c.Tier = tenants.TierDedicated
	c.Status = tenants.StatusActive
	c.HomeRegion, c.Regions = "us-east-1", []string{"us-east-1"}
	d := newTenant(3)
	d.Status = tenants.StatusActive
	d.HomeRegion, d.Regions = "ap-south-1", []string{"ap-south-1"}
	e := newTenant(4)
	e.Tier = tenants.TierDedicated
	e.HomeRegion, e.Regions = "eu-west-1", []string{"eu-west-1", "us-east-2"}
	e.Name, e.Labels = "Acme Retail", map[string]string{"team": "retail", "tier.example/gold": ""}
	all := insert(t, b, a, c, d, e)
	ptr := func(s string) *string { return &s }

	tests := []struct {
		name string
		p    tenants.ListParams
		want []tenants.Tenant
	}{
		{"all", tenants.ListParams{}, all},
		{"status", tenants.ListParams{Status: tenants.StatusActive}, []tenants.Tenant{all[1], all[2]}},
		{"tier", tenants.ListParams{Tier: tenants.TierDedicated}, []tenants.Tenant{all[1], all[3]}},
		{"region", tenants.ListParams{Region: "us-east-1"}, []tenants.Tenant{all[0], all[1]}},
		{"region is exact", tenants.ListParams{Region: "us-east-2"}, []tenants.Tenant{all[3]}},
		{"region nobody has", tenants.ListParams{Region: "sa-east-1"}, nil},
		{"combined", tenants.ListParams{Tier: tenants.TierDedicated, Region: "eu-west-1"}, []tenants.Tenant{all[3]}},
		{"after seq", tenants.ListParams{AfterSeq: all[1].Seq}, all[2:]},
		{"limit", tenants.ListParams{Limit: 2}, all[:2]},
		{"after seq with filter", tenants.ListParams{AfterSeq: all[0].Seq, Tier: tenants.TierPooled}, []tenants.Tenant{all[2]}},
		{"search in name", tenants.ListParams{Search: "acme ret"}, []tenants.Tenant{all[3]}},
		{"search in slug", tenants.ListParams{Search: "tenant-002"}, []tenants.Tenant{all[1]}},
		{"search in ID", tenants.ListParams{Search: all[2].ID[4:]}, []tenants.Tenant{all[2]}},
		{"search is a substring, not a pattern", tenants.ListParams{Search: "tenant_%"}, nil},
		{"label key", tenants.ListParams{LabelKey: "team"}, all},
		{"label value", tenants.ListParams{LabelKey: "team", LabelValue: ptr("retail")}, []tenants.Tenant{all[3]}},
		{"label with dots and slashes", tenants.ListParams{LabelKey: "tier.example/gold"}, []tenants.Tenant{all[3]}},
		{"empty label value", tenants.ListParams{LabelKey: "tier.example/gold", LabelValue: ptr("")}, []tenants.Tenant{all[3]}},
		{"label nobody has", tenants.ListParams{LabelKey: "cost"}, nil},
		{"label value nobody has", tenants.ListParams{LabelKey: "team", LabelValue: ptr("nobody")}, nil},
		{"search with label", tenants.ListParams{Search: "tenant", LabelKey: "cost-center", LabelValue: ptr("42")}, all[:3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.p.Limit == 0 {
				tt.p.Limit = 50
			}
			got, err := b.TenantList(t.Context(), tt.p)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("list %+v (-want +got):\n%s", tt.p, diff)
			}
		})
	}
}

// testTenantListPagingWhileInserting pages through tenants with AfterSeq
// while another goroutine inserts: every tenant that existed before paging
// began is seen exactly once, in ascending Seq order.
func testTenantListPagingWhileInserting(t *testing.T, h Harness) {
	b := newBackend(t, h)
	const before, during, limit = 25, 25, 7
	existing := make([]tenants.Tenant, before)
	for i := range existing {
		existing[i] = newTenant(i)
	}
	existing = insert(t, b, existing...)

	var wg sync.WaitGroup
	wg.Add(1)
	insertErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := range during {
			tn := newTenant(before + i)
			if err := b.InTx(t.Context(), func(tx tenants.Tx) error {
				_, err := tx.TenantInsert(t.Context(), tn)
				return err
			}); err != nil {
				insertErr <- err
				return
			}
		}
	}()

	seen := map[string]int{}
	var after int64
	for {
		page, err := b.TenantList(t.Context(), tenants.ListParams{AfterSeq: after, Limit: limit})
		if err != nil {
			t.Fatalf("list after %d: %v", after, err)
		}
		for _, tn := range page {
			if tn.Seq <= after {
				t.Fatalf("seq %d after cursor %d: not ascending", tn.Seq, after)
			}
			after = tn.Seq
			seen[tn.ID]++
		}
		if len(page) < limit {
			break
		}
	}
	wg.Wait()
	select {
	case err := <-insertErr:
		t.Fatalf("concurrent insert: %v", err)
	default:
	}

	for _, tn := range existing {
		if seen[tn.ID] != 1 {
			t.Errorf("tenant %s (seq %d) seen %d times, want once", tn.Slug, tn.Seq, seen[tn.ID])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("tenant %s seen %d times", id, n)
		}
	}
}

func ids(ts []tenants.Tenant) []string {
	out := make([]string, len(ts))
	for i, tn := range ts {
		out[i] = tn.Slug
	}
	return out
}
