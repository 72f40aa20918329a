package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/attention"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

func listAttention(t *testing.T, b store.Backend, p attention.ListParams) []attention.Item {
	t.Helper()
	items, err := b.AttentionList(t.Context(), p)
	if err != nil {
		t.Fatalf("list attention %+v: %v", p, err)
	}
	return items
}

func comparePositions(a, b attention.Position) int {
	if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

// testAttentionList lists the failed stacks of tenants, the failed pool
// stacks and the failed grants, and nothing healthy, with the tenant each
// belongs to, oldest first (ties in byte order of kind and key), filtered
// by kind and Region and paged by position; a stack that is retried
// leaves the list.
func testAttentionList(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	if got := listAttention(t, b, attention.ListParams{}); len(got) != 0 {
		t.Fatalf("a new database needs attention: %+v", got)
	}
	ids := tenantIDs(t, b, 3)
	tn := make([]tenants.Tenant, 3)
	for i, id := range ids {
		tn[i] = get(t, b, id)
	}
	// Stored as they are given, so at base+1s each: their order is by
	// kind and key.
	failedAt := func(pl provisioner.Placement, reason string) provisioner.Placement {
		pl.Status, pl.StackStatus, pl.LastError = provisioner.StatusFailed, "ROLLBACK_COMPLETE", reason
		return ensurePlacement(t, b, pl)
	}
	ensurePlacement(t, b, newPlacement(ids[0], "eu-west-1", provisioner.KindDedicated, provisioner.StatusReady))
	stack0 := failedAt(newPlacement(ids[0], "us-east-1", provisioner.KindDedicated, provisioner.StatusCreating), "The following resource(s) failed to create: [RawBucket].")
	stack2 := failedAt(newPlacement(ids[2], "eu-west-1", provisioner.KindDedicated, provisioner.StatusCreating), "ROLLBACK_COMPLETE")
	ensurePlacement(t, b, newPlacement(ids[1], "eu-west-1", provisioner.KindPooled, provisioner.StatusCreating))
	ensurePool(t, b, newPool("eu-west-1", provisioner.StatusReady))
	failedPool := newPool("us-east-1", provisioner.StatusFailed)
	failedPool.LastError = "The following resource(s) failed to create: [PoolTable]."
	failedPool = ensurePool(t, b, failedPool)

	grantsStore := b.Grants()
	grant := func(tenantID string, n int, status grants.Status, reason string, at time.Time) grants.Grant {
		g := newGrant(tenantID, roleA, n)
		g.Status, g.Reason, g.UpdatedAt = status, reason, at
		g, _ = insertGrant(t, grantsStore, g)
		return g
	}
	grant(ids[0], 1, grants.StatusActive, "", base.Add(time.Minute))
	failedGrant := grant(ids[1], 2, grants.StatusFailed, "AccessDeniedException: Insufficient Lake Formation permission(s)", base.Add(2*time.Minute))
	grant(ids[1], 3, grants.StatusPending, "", base.Add(3*time.Minute))
	grant(ids[2], 4, grants.StatusRevoked, "", base.Add(4*time.Minute))
	grant(ids[2], 5, grants.StatusSuspended, "tenant suspended", base.Add(5*time.Minute))

	// A stack that fails now, through the provisioner's update, is the
	// newest item.
	pl := ensurePlacement(t, b, newPlacement(ids[1], "ap-south-1", provisioner.KindDedicated, provisioner.StatusCreating))
	pl.Status, pl.LastError = provisioner.StatusFailed, "DELETE_FAILED"
	late, err := b.PlacementUpdate(ctx, pl)
	if err != nil {
		t.Fatal(err)
	}

	stackItem := func(tn tenants.Tenant, pl provisioner.Placement) attention.Item {
		return attention.Item{
			Kind: attention.KindStack, TenantID: tn.ID, TenantSlug: tn.Slug, TenantName: tn.Name, TenantStatus: string(tn.Status),
			Region: pl.Region, Status: "failed", Reason: pl.LastError, StackName: pl.StackName, UpdatedAt: pl.UpdatedAt.Truncate(time.Microsecond),
		}
	}
	want := []attention.Item{
		stackItem(tn[0], stack0),
		stackItem(tn[2], stack2),
		{
			Kind: attention.KindPoolStack, Region: "us-east-1", Status: "failed", Reason: failedPool.LastError,
			StackName: failedPool.StackName, UpdatedAt: failedPool.UpdatedAt,
		},
		{
			Kind: attention.KindGrant, TenantID: tn[1].ID, TenantSlug: tn[1].Slug, TenantName: tn[1].Name, TenantStatus: string(tn[1].Status),
			Region: "eu-west-1", Status: "failed", Reason: failedGrant.Reason, GrantID: failedGrant.ID, Principal: roleA,
			UpdatedAt: failedGrant.UpdatedAt,
		},
		stackItem(tn[1], late),
	}
	slices.SortStableFunc(want, func(x, y attention.Item) int { return comparePositions(x.Position(), y.Position()) })
	if want[0].UpdatedAt != base.Add(time.Second) || want[3].Kind != attention.KindGrant || want[4].UpdatedAt != late.UpdatedAt.Truncate(time.Microsecond) {
		t.Fatalf("the fixtures are not in the order this test means: %+v", want)
	}
	got := listAttention(t, b, attention.ListParams{})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("attention (-want +got):\n%s", diff)
	}

	// Filters.
	if got := listAttention(t, b, attention.ListParams{Kind: attention.KindGrant}); len(got) != 1 || got[0].GrantID != failedGrant.ID {
		t.Errorf("grants: %+v", got)
	}
	if got := listAttention(t, b, attention.ListParams{Kind: attention.KindPoolStack}); len(got) != 1 || got[0].Region != "us-east-1" {
		t.Errorf("pool stacks: %+v", got)
	}
	var inUS []attention.Item
	for _, it := range want {
		if it.Region == "us-east-1" {
			inUS = append(inUS, it)
		}
	}
	if diff := cmp.Diff(inUS, listAttention(t, b, attention.ListParams{Region: "us-east-1"})); diff != "" {
		t.Errorf("us-east-1 (-want +got):\n%s", diff)
	}
	if got := listAttention(t, b, attention.ListParams{Kind: attention.KindStack, Region: "us-east-1"}); len(got) != 1 || got[0].TenantID != ids[0] {
		t.Errorf("stacks in us-east-1: %+v", got)
	}

	// Pages of one, each after the last item's position, and of two.
	for _, size := range []int{1, 2} {
		var paged []attention.Item
		var after attention.Position
		for range len(want) + 1 {
			page := listAttention(t, b, attention.ListParams{After: after, Limit: size})
			paged = append(paged, page...)
			if len(page) < size {
				break
			}
			// The position survives its text form, as a cursor carries it.
			if after, err = attention.ParsePosition(page[len(page)-1].Position().String()); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(want, paged); diff != "" {
			t.Fatalf("pages of %d (-want +got):\n%s", size, diff)
		}
	}
	if got := listAttention(t, b, attention.ListParams{After: want[len(want)-1].Position()}); len(got) != 0 {
		t.Errorf("after the last item: %+v", got)
	}

	// A retried stack no longer needs attention.
	late.Status = provisioner.StatusReplacing
	if _, err := b.PlacementUpdate(ctx, late); err != nil {
		t.Fatal(err)
	}
	if got := listAttention(t, b, attention.ListParams{}); len(got) != len(want)-1 || slices.ContainsFunc(got, func(it attention.Item) bool { return it.Region == "ap-south-1" }) {
		t.Errorf("after a retry: %+v", got)
	}
}
