package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// testPlacementClaimFencing plays a worker that claims a stack create, is
// paused past its lease, and resumes after the poller and a second worker
// have taken the create over: every write the first worker makes under its
// old claim version is refused, and the second worker's claim stands.
func testPlacementClaimFencing(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	ctx := t.Context()
	now := base.Add(time.Hour)
	const lease = 15 * time.Second
	pending := ensurePlacement(t, b, newPlacement(ids[0], "eu-west-1", provisioner.KindDedicated, provisioner.StatusPending))
	if pending.ClaimVersion != 0 || !pending.LeaseUntil.IsZero() {
		t.Fatalf("a new placement has claim %d lease %v, want none", pending.ClaimVersion, pending.LeaseUntil)
	}

	// Worker A claims the create.
	want := pending
	want.Status = provisioner.StatusCreating
	a, err := b.PlacementClaim(ctx, want, now, now.Add(lease))
	if err != nil {
		t.Fatalf("claim A: %v", err)
	}
	if a.ClaimVersion != 1 || !a.LeaseUntil.Equal(now.Add(lease)) || a.Version != 2 || a.Status != provisioner.StatusCreating {
		t.Fatalf("claim A stored %+v, want claim 1 leased to %v at version 2, creating", a, now.Add(lease))
	}
	// A second claim from the same read is refused: one worker wins.
	if _, err := b.PlacementClaim(ctx, want, now, now.Add(lease)); !errors.Is(err, provisioner.ErrConflict) {
		t.Fatalf("a second claim from the same version = %v, want ErrConflict", err)
	}
	// A claim at the current version is refused while A's lease is live.
	if _, err := b.PlacementClaim(ctx, a, now.Add(lease/2), now.Add(2*lease)); !errors.Is(err, provisioner.ErrConflict) {
		t.Fatalf("a claim during A's live lease = %v, want ErrConflict", err)
	}
	// A renews while alive: the lease moves and the version increases.
	renewAt := now.Add(5 * time.Second)
	if err := b.PlacementRenew(ctx, ids[0], "eu-west-1", a.ClaimVersion, renewAt, renewAt.Add(lease)); err != nil {
		t.Fatalf("renew A: %v", err)
	}
	renewed, err := b.PlacementGet(ctx, ids[0], "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.LeaseUntil.Equal(renewAt.Add(lease)) || renewed.Version != a.Version+1 || renewed.ClaimVersion != 1 {
		t.Fatalf("after renewal: %+v, want lease %v, version %d, claim 1", renewed, renewAt.Add(lease), a.Version+1)
	}
	// An update made from a read before the renewal (the poller) is stale.
	if _, err := b.PlacementUpdate(ctx, a); !errors.Is(err, provisioner.ErrConflict) {
		t.Fatalf("update from before the renewal = %v, want ErrConflict", err)
	}

	// A is paused; its lease lapses. A renewal after the lapse is refused
	// even before anyone else claims.
	lapsed := renewed.LeaseUntil.Add(time.Second)
	if err := b.PlacementRenew(ctx, ids[0], "eu-west-1", a.ClaimVersion, lapsed, lapsed.Add(lease)); !errors.Is(err, provisioner.ErrClaimLost) {
		t.Fatalf("renewal after the lease lapsed = %v, want ErrClaimLost", err)
	}
	// The poller sends the lost create back to pending, and worker B
	// claims it: claim version 2.
	renewed.Status = provisioner.StatusPending
	back, err := b.PlacementUpdate(ctx, renewed)
	if err != nil {
		t.Fatalf("poller: %v", err)
	}
	back.Status = provisioner.StatusCreating
	bClaim, err := b.PlacementClaim(ctx, back, lapsed, lapsed.Add(lease))
	if err != nil {
		t.Fatalf("claim B: %v", err)
	}
	if bClaim.ClaimVersion != 2 {
		t.Fatalf("claim B has claim version %d, want 2", bClaim.ClaimVersion)
	}

	// A resumes: its writes under claim version 1 are refused, even at a
	// time when B's lease is live, and change nothing.
	if err := b.PlacementRenew(ctx, ids[0], "eu-west-1", a.ClaimVersion, lapsed, lapsed.Add(lease)); !errors.Is(err, provisioner.ErrClaimLost) {
		t.Fatalf("A's renewal under the old claim version = %v, want ErrClaimLost", err)
	}
	if _, err := b.PlacementClaim(ctx, a, lapsed.Add(time.Minute), lapsed.Add(time.Minute+lease)); !errors.Is(err, provisioner.ErrConflict) {
		t.Fatalf("A's claim from its old read = %v, want ErrConflict", err)
	}
	if got, err := b.PlacementGet(ctx, ids[0], "eu-west-1"); err != nil || got.ClaimVersion != 2 || !got.LeaseUntil.Equal(lapsed.Add(lease)) || got.Version != bClaim.Version {
		t.Fatalf("after A's refused writes: %+v, %v; want B's claim untouched", got, err)
	}
	// B's own renewal goes through.
	if err := b.PlacementRenew(ctx, ids[0], "eu-west-1", bClaim.ClaimVersion, lapsed.Add(time.Second), lapsed.Add(time.Second+lease)); err != nil {
		t.Fatalf("renew B: %v", err)
	}
	if err := b.PlacementRenew(ctx, ids[0], "us-east-1", 1, now, now.Add(lease)); !errors.Is(err, provisioner.ErrClaimLost) {
		t.Errorf("renewal of a missing placement = %v, want ErrClaimLost", err)
	}
}

// testPoolClaimFencing is testPlacementClaimFencing for a Region's pool.
func testPoolClaimFencing(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	now := base.Add(time.Hour)
	const lease = 15 * time.Second
	pending := ensurePool(t, b, newPool("eu-west-1", provisioner.StatusPending))

	pending.Status = provisioner.StatusCreating
	a, err := b.PoolClaim(ctx, pending, now, now.Add(lease))
	if err != nil || a.ClaimVersion != 1 || !a.LeaseUntil.Equal(now.Add(lease)) {
		t.Fatalf("claim A = %+v, %v; want claim 1 leased to %v", a, err, now.Add(lease))
	}
	if _, err := b.PoolClaim(ctx, pending, now, now.Add(lease)); !errors.Is(err, provisioner.ErrConflict) {
		t.Fatalf("a second claim from the same version = %v, want ErrConflict", err)
	}
	if err := b.PoolRenew(ctx, "eu-west-1", a.ClaimVersion, now.Add(time.Second), now.Add(time.Second+lease)); err != nil {
		t.Fatalf("renew A: %v", err)
	}
	lapsed := now.Add(time.Second + lease + time.Second)
	current, err := b.PoolGet(ctx, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	current.Status = provisioner.StatusPending
	back, err := b.PoolUpdate(ctx, current)
	if err != nil {
		t.Fatalf("poller: %v", err)
	}
	back.Status = provisioner.StatusCreating
	bClaim, err := b.PoolClaim(ctx, back, lapsed, lapsed.Add(lease))
	if err != nil || bClaim.ClaimVersion != 2 {
		t.Fatalf("claim B = %+v, %v; want claim version 2", bClaim, err)
	}
	if err := b.PoolRenew(ctx, "eu-west-1", a.ClaimVersion, lapsed, lapsed.Add(lease)); !errors.Is(err, provisioner.ErrClaimLost) {
		t.Fatalf("A's renewal under the old claim version = %v, want ErrClaimLost", err)
	}
	if got, err := b.PoolGet(ctx, "eu-west-1"); err != nil || got.ClaimVersion != 2 || got.Version != bClaim.Version {
		t.Fatalf("after A's refused renewal: %+v, %v; want B's claim untouched", got, err)
	}
}

// testTenantsStalled: a tenant in provisioning is stalled when neither it
// nor its placements changed for a while and none of its placements is in
// flight or under a live claim.
func testTenantsStalled(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	ts := make([]tenants.Tenant, 6)
	for i := range ts {
		ts[i] = newTenant(i)
	}
	ts[5].Status = tenants.StatusActive
	ids := make([]string, len(ts))
	for i, tn := range insert(t, b, ts...) {
		ids[i] = tn.ID
	}
	// Placements are stored at base+1s unless said otherwise; quiet since
	// an hour later, with now a minute after that.
	quietSince := base.Add(time.Hour)
	now := quietSince.Add(time.Minute)
	const lease = 15 * time.Second
	// 0: no placement yet. Stalled.
	// 1: a pending placement, long unchanged. Stalled.
	ensurePlacement(t, b, newPlacement(ids[1], "eu-west-1", provisioner.KindPooled, provisioner.StatusPending))
	// 2: a stack in flight: the poller watches it.
	ensurePlacement(t, b, newPlacement(ids[2], "eu-west-1", provisioner.KindDedicated, provisioner.StatusCreating))
	// 3: a claim whose lease is live at now.
	p3 := ensurePlacement(t, b, newPlacement(ids[3], "eu-west-1", provisioner.KindDedicated, provisioner.StatusPending))
	if _, err := b.PlacementClaim(ctx, p3, now, now.Add(lease)); err != nil {
		t.Fatal(err)
	}
	// 4: a placement changed after quietSince (PlacementUpdate stamps the
	// real time, which is after base+1h).
	p4 := ensurePlacement(t, b, newPlacement(ids[4], "eu-west-1", provisioner.KindPooled, provisioner.StatusPending))
	p4.LastError = "changed"
	if _, err := b.PlacementUpdate(ctx, p4); err != nil {
		t.Fatal(err)
	}
	// 5: active.
	got, err := b.TenantsStalled(ctx, now, quietSince, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ids[0], ids[1]}; !slices.Equal(got, want) {
		t.Errorf("stalled = %v, want %v (oldest first)", got, want)
	}
	if got, err := b.TenantsStalled(ctx, now, quietSince, 1); err != nil || !slices.Equal(got, []string{ids[0]}) {
		t.Errorf("stalled with limit 1 = %v, %v; want %v", got, err, ids[:1])
	}
	// Once the claim of 3 has lapsed, 3 is stalled too (its claim
	// stamped UpdatedAt with the claim's now, before quietSince+lease).
	later := now.Add(2 * lease)
	if got, err := b.TenantsStalled(ctx, later, later.Add(-lease), 10); err != nil || !slices.Contains(got, ids[3]) || slices.Contains(got, ids[2]) {
		t.Errorf("stalled after the lease lapsed = %v, %v; want %s among them, and not %s", got, err, ids[3], ids[2])
	}
}

// testWebhookDeliveryLeaseRenew: a dispatcher renews the lease of an
// attempt in flight, which keeps the delivery from others past the first
// lease and moves the lease its result is recorded under; once the lease
// has lapsed and another dispatcher has claimed the delivery, the first
// one's renewals and result are refused.
func testWebhookDeliveryLeaseRenew(t *testing.T, h Harness) {
	addr := h.NewDatabase(t)
	paused, other := open(t, h, addr), open(t, h, addr)
	ctx := t.Context()
	ids := tenantIDs(t, paused, 1)
	e := insertEndpoint(t, paused, newEndpoint(ids[0], 1))
	ds := insertDeliveries(t, paused, newDelivery(e, 1, "p1"))

	got := claim(t, paused, base, 4, 10) // leased for a minute
	if len(got) != 1 {
		t.Fatalf("claim: %v", deliveryIDs(got))
	}
	first := *got[0].ClaimedUntil
	renewAt := base.Add(50 * time.Second)
	second := renewAt.Add(time.Minute)
	if err := paused.WebhookDeliveryRenew(ctx, ds[0].ID, first, renewAt, second); err != nil {
		t.Fatalf("renew: %v", err)
	}
	// Past the first lease, the renewed one holds.
	if again := claim(t, other, first.Add(time.Second), 4, 10); len(again) != 0 {
		t.Fatalf("claimed under a renewed lease: %v", deliveryIDs(again))
	}
	// A renewal under the old lease is refused.
	if err := paused.WebhookDeliveryRenew(ctx, ds[0].ID, first, renewAt, second.Add(time.Minute)); !errors.Is(err, webhooks.ErrLeaseLost) {
		t.Fatalf("renewal under a replaced lease: %v, want ErrLeaseLost", err)
	}
	// The dispatcher is paused past its lease: a renewal then is refused,
	// and another dispatcher takes the delivery over.
	lapsed := second.Add(time.Second)
	if err := paused.WebhookDeliveryRenew(ctx, ds[0].ID, second, lapsed, lapsed.Add(time.Minute)); !errors.Is(err, webhooks.ErrLeaseLost) {
		t.Fatalf("renewal after the lease lapsed: %v, want ErrLeaseLost", err)
	}
	taken := claim(t, other, lapsed, 4, 10)
	if !slices.Equal(deliveryIDs(taken), []string{ds[0].ID}) {
		t.Fatalf("takeover claim: %v, want the lapsed delivery", deliveryIDs(taken))
	}
	// It resumes: its renewal and its result under its last lease are
	// refused; the new holder's stand.
	if err := paused.WebhookDeliveryRenew(ctx, ds[0].ID, second, lapsed, lapsed.Add(time.Minute)); !errors.Is(err, webhooks.ErrLeaseLost) {
		t.Fatalf("renewal of the paused dispatcher: %v, want ErrLeaseLost", err)
	}
	err := paused.WebhookDeliveryRecord(ctx, webhooks.AttemptResult{ID: ds[0].ID, Lease: second, Status: webhooks.StatusDelivered, At: lapsed, NextAttemptAt: lapsed})
	if !errors.Is(err, webhooks.ErrLeaseLost) {
		t.Fatalf("result of the paused dispatcher: %v, want ErrLeaseLost", err)
	}
	if err := other.WebhookDeliveryRenew(ctx, ds[0].ID, *taken[0].ClaimedUntil, lapsed.Add(time.Second), lapsed.Add(time.Minute)); err != nil {
		t.Fatalf("renewal of the new holder: %v", err)
	}
}
