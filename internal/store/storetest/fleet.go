package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// outbox returns the whole fleet outbox, oldest first.
func outbox(t *testing.T, b store.Backend) []fleet.Event {
	t.Helper()
	evs, err := b.FleetEventList(t.Context(), 1000)
	if err != nil {
		t.Fatalf("list fleet events: %v", err)
	}
	return evs
}

func outboxTypes(evs []fleet.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func newFleetEvent(id string, n int) fleet.Event {
	at := base.Add(time.Duration(n) * time.Second)
	return fleet.Event{ID: id, Type: fleet.TenantSuspended, At: at, Data: fleet.Data{
		TenantID: "ten_x", Slug: "x-co", Name: "X", Status: "suspended", Tier: "pooled", Regions: []string{"eu-west-1", "us-east-1"},
		Reason: "why", At: fleet.FormatTime(at),
	}}
}

// testFleetEventOutbox round-trips events, lists them in insertion order
// and within a limit, ignores a repeated ID, and deletes by ID.
func testFleetEventOutbox(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	if evs := outbox(t, b); len(evs) != 0 {
		t.Fatalf("new outbox: %+v", evs)
	}
	var want []fleet.Event
	for i, id := range []string{"evt_c", "evt_a", "evt_b"} {
		ev := newFleetEvent(id, i)
		want = append(want, ev)
		if err := b.InTx(ctx, func(tx tenants.Tx) error { return tx.FleetEventInsert(ctx, ev) }); err != nil {
			t.Fatal(err)
		}
	}
	// A retried change writes its event again: the outbox keeps the first.
	again := newFleetEvent("evt_a", 9)
	if err := b.InTx(ctx, func(tx tenants.Tx) error { return tx.FleetEventInsert(ctx, again) }); err != nil {
		t.Fatalf("insert a held ID: %v", err)
	}
	got := outbox(t, b)
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Seq" }, cmp.Ignore())); diff != "" {
		t.Fatalf("outbox (-want +got):\n%s", diff)
	}
	if !slices.IsSortedFunc(got, func(a, b fleet.Event) int { return int(a.Seq - b.Seq) }) || got[0].Seq == 0 {
		t.Fatalf("outbox not in seq order: %+v", got)
	}
	first, err := b.FleetEventList(ctx, 2)
	if err != nil || len(first) != 2 || first[0].ID != "evt_c" || first[1].ID != "evt_a" {
		t.Fatalf("list 2 = %+v, %v", first, err)
	}
	if err := b.FleetEventDelete(ctx, []string{"evt_c", "evt_a", "evt_gone"}); err != nil {
		t.Fatal(err)
	}
	if err := b.FleetEventDelete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := outbox(t, b); len(got) != 1 || got[0].ID != "evt_b" {
		t.Fatalf("after delete: %+v", got)
	}
}

// testFleetEventWithTenantChange checks that a tenant's status change and
// its event commit together: a rolled-back transaction, a refused change
// and a lost version race write no event, and a change retried at the same
// version announces once.
func testFleetEventWithTenantChange(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	svc := tenants.NewService(b, nil)
	tn := insert(t, b, newTenant(1))[0] // provisioning

	// Rolled back: neither the change nor its event.
	errBoom := errors.New("boom")
	err := b.InTx(ctx, func(tx tenants.Tx) error {
		cur, err := tx.TenantGet(ctx, tn.ID)
		if err != nil {
			return err
		}
		from := cur.Status
		cur.Status, cur.Version = tenants.StatusActive, cur.Version+1
		if err := tx.TenantUpdate(ctx, cur); err != nil {
			return err
		}
		ev, _ := tenants.Announcement(from, cur)
		if err := tx.FleetEventInsert(ctx, ev); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v", err)
	}
	if got := get(t, b, tn.ID); got.Status != tenants.StatusProvisioning || len(outbox(t, b)) != 0 {
		t.Fatalf("rolled back: tenant %s, outbox %+v", got.Status, outbox(t, b))
	}

	// A refused change (stale version) writes nothing.
	if _, err := svc.MarkFailed(ctx, tn.ID, tn.Version+5, "stale"); !errors.Is(err, tenants.ErrVersionMismatch) {
		t.Fatalf("MarkFailed at a stale version = %v", err)
	}
	// A change that loses the version race in the store writes nothing.
	err = b.InTx(ctx, func(tx tenants.Tx) error {
		stale := tn
		stale.Status, stale.Version = tenants.StatusFailed, tn.Version+2
		if err := tx.TenantUpdate(ctx, stale); err != nil {
			return err
		}
		ev, _ := tenants.Announcement(tn.Status, stale)
		return tx.FleetEventInsert(ctx, ev)
	})
	if !errors.Is(err, tenants.ErrVersionMismatch) {
		t.Fatalf("stale TenantUpdate = %v", err)
	}
	if evs := outbox(t, b); len(evs) != 0 {
		t.Fatalf("refused changes announced: %+v", evs)
	}

	active, err := svc.MarkProvisioned(ctx, tn.ID)
	if err != nil {
		t.Fatal(err)
	}
	evs := outbox(t, b)
	want, _ := tenants.Announcement(tenants.StatusProvisioning, active)
	if len(evs) != 1 || evs[0].ID != want.ID || evs[0].Type != fleet.TenantProvisioned || evs[0].Data.TenantID != tn.ID ||
		evs[0].Data.Slug != tn.Slug || evs[0].Data.Status != "active" || !slices.Equal(evs[0].Data.Regions, tn.Regions) {
		t.Fatalf("after MarkProvisioned: %+v, want one %+v", evs, want)
	}
	// Provisioned again (a second worker): refused, nothing more.
	if _, err := svc.MarkProvisioned(ctx, tn.ID); err == nil {
		t.Fatal("provisioned twice")
	}
	// The same change retried at the same version (a crash after commit,
	// say) writes the same ID, which the outbox holds once.
	if err := b.InTx(ctx, func(tx tenants.Tx) error { return tx.FleetEventInsert(ctx, want) }); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Suspend(ctx, audit.Event{}, tn.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Resume(ctx, audit.Event{}, tn.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Offboard(ctx, audit.Event{}, tn.ID, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.MarkDeleted(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	evs = outbox(t, b)
	if got, want := outboxTypes(evs), []string{fleet.TenantProvisioned, fleet.TenantSuspended, fleet.TenantDeleted}; !slices.Equal(got, want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
	if ids := map[string]bool{evs[0].ID: true, evs[1].ID: true, evs[2].ID: true}; len(ids) != 3 {
		t.Fatalf("event IDs repeat: %+v", evs)
	}
}

// testFleetEventWithStackFailure checks that a placement's or a pool's
// update and its events commit together, and that a stale update writes
// neither.
func testFleetEventWithStackFailure(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	id := tenantIDs(t, b, 1)[0]
	pl := ensurePlacement(t, b, newPlacement(id, "eu-west-1", provisioner.KindDedicated, provisioner.StatusCreating))
	failed := pl
	failed.Status, failed.LastError = provisioner.StatusFailed, "ROLLBACK_COMPLETE"
	ev := newFleetEvent("evt_stack", 1)
	ev.Type = fleet.StackFailed

	stale := failed
	stale.Version++
	if _, err := b.PlacementUpdate(ctx, stale, ev); !errors.Is(err, provisioner.ErrConflict) {
		t.Fatalf("stale update = %v, want ErrConflict", err)
	}
	missing := failed
	missing.Region = "sa-east-1"
	if _, err := b.PlacementUpdate(ctx, missing, ev); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("update of a missing placement = %v, want ErrNotFound", err)
	}
	if evs := outbox(t, b); len(evs) != 0 {
		t.Fatalf("failed updates announced: %+v", evs)
	}
	stored, err := b.PlacementUpdate(ctx, failed, ev)
	if err != nil || stored.Status != provisioner.StatusFailed || stored.Version != pl.Version+1 {
		t.Fatalf("update = %+v, %v", stored, err)
	}
	if evs := outbox(t, b); len(evs) != 1 || evs[0].ID != "evt_stack" || evs[0].Type != fleet.StackFailed {
		t.Fatalf("outbox %+v", evs)
	}
	// Retried with the same event: one row still.
	stored.StackStatus = "ROLLBACK_COMPLETE"
	if _, err := b.PlacementUpdate(ctx, stored, ev); err != nil {
		t.Fatal(err)
	}
	if evs := outbox(t, b); len(evs) != 1 {
		t.Fatalf("a repeated ID was written twice: %+v", evs)
	}

	pool := ensurePool(t, b, newPool("eu-west-1", provisioner.StatusCreating))
	poolEv := newFleetEvent("evt_pool", 2)
	poolEv.Type, poolEv.Data = fleet.StackFailed, fleet.Data{Region: "eu-west-1", StackName: pool.StackName, Reason: "x", At: poolEv.Data.At}
	stalePool := pool
	stalePool.Version++
	if _, err := b.PoolUpdate(ctx, stalePool, poolEv); !errors.Is(err, provisioner.ErrConflict) {
		t.Fatalf("stale pool update = %v", err)
	}
	if evs := outbox(t, b); len(evs) != 1 {
		t.Fatalf("stale pool update announced: %+v", evs)
	}
	pool.Status = provisioner.StatusFailed
	if _, err := b.PoolUpdate(ctx, pool, poolEv); err != nil {
		t.Fatal(err)
	}
	evs := outbox(t, b)
	if len(evs) != 2 || evs[1].ID != "evt_pool" || evs[1].Data.TenantID != "" || evs[1].Data.StackName != pool.StackName {
		t.Fatalf("outbox %+v", evs)
	}
}

// recordPublisher records what a Relay publishes, failing while fail is
// set.
type recordPublisher struct {
	mu   sync.Mutex
	got  []string
	fail bool
}

func (p *recordPublisher) Publish(_ context.Context, evs []fleet.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("publisher down")
	}
	for _, ev := range evs {
		p.got = append(p.got, ev.ID)
	}
	return nil
}

// testFleetRelay relays the outbox in order and in batches, deleting only
// what was published.
func testFleetRelay(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	pub := &recordPublisher{fail: true}
	r, err := fleet.NewRelay(fleet.Config{Store: b, Publisher: pub, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, id := range []string{"evt_3", "evt_1", "evt_2", "evt_5", "evt_4"} {
		ev := newFleetEvent(id, i)
		if err := b.InTx(ctx, func(tx tenants.Tx) error { return tx.FleetEventInsert(ctx, ev) }); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if n, err := r.RelayOnce(ctx); err == nil || n != 0 {
		t.Fatalf("relay to a failing publisher = %d, %v", n, err)
	}
	if evs := outbox(t, b); len(evs) != 5 {
		t.Fatalf("unpublished events left the outbox: %+v", evs)
	}
	pub.fail = false
	if n, err := r.RelayOnce(ctx); err != nil || n != 5 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	if !slices.Equal(pub.got, want) {
		t.Fatalf("published %v, want %v", pub.got, want)
	}
	if evs := outbox(t, b); len(evs) != 0 {
		t.Fatalf("relayed events stayed: %+v", evs)
	}
	if n, err := r.RelayOnce(ctx); err != nil || n != 0 {
		t.Fatalf("relay of an empty outbox = %d, %v", n, err)
	}
}
