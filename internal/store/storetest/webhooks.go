package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// newEndpoint returns an enabled endpoint of tenantID ("" for the fleet);
// n varies its ID and URL.
func newEndpoint(tenantID string, n int) webhooks.Endpoint {
	return webhooks.Endpoint{
		ID:         fmt.Sprintf("wh_%s_%03d", tenantID, n),
		TenantID:   tenantID,
		URL:        fmt.Sprintf("https://example.com/hooks/%d", n),
		EventTypes: []string{webhooks.SegmentEntered},
		Enabled:    true,
		Secret:     fmt.Sprintf("whsec_secret%03d", n),
		CreatedAt:  base.Add(time.Duration(n) * time.Second),
		UpdatedAt:  base.Add(time.Duration(n) * time.Second),
		Version:    1,
	}
}

func insertEndpoint(t *testing.T, s webhooks.Store, e webhooks.Endpoint) webhooks.Endpoint {
	t.Helper()
	got, err := s.WebhookEndpointInsert(t.Context(), e, 20, audit.Event{})
	if err != nil {
		t.Fatalf("insert endpoint %s: %v", e.ID, err)
	}
	return got
}

// newDelivery returns a pending delivery of event n to the endpoint with
// the order key, due at base.
func newDelivery(e webhooks.Endpoint, n int, orderKey string) webhooks.Delivery {
	return webhooks.Delivery{
		ID:            fmt.Sprintf("dlv_%s_%03d", e.ID, n),
		EndpointID:    e.ID,
		EventID:       fmt.Sprintf("evt_%03d", n),
		EventType:     webhooks.SegmentEntered,
		TenantID:      e.TenantID,
		OrderKey:      orderKey,
		Payload:       []byte(fmt.Sprintf(`{"type":"segment.entered","n":%d}`, n)),
		NextAttemptAt: base,
		CreatedAt:     base.Add(time.Duration(n) * time.Millisecond),
	}
}

func insertDeliveries(t *testing.T, s webhooks.Store, ds ...webhooks.Delivery) []webhooks.Delivery {
	t.Helper()
	got, err := s.WebhookDeliveryInsert(t.Context(), ds, audit.Event{})
	if err != nil {
		t.Fatalf("insert deliveries: %v", err)
	}
	return got
}

func claim(t *testing.T, s webhooks.Store, now time.Time, perEndpoint, limit int) []webhooks.Delivery {
	t.Helper()
	got, err := s.WebhookDeliveryClaim(t.Context(), webhooks.ClaimParams{
		Now: now, LeaseUntil: now.Add(time.Minute), PerEndpoint: perEndpoint, Limit: limit,
	})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return got
}

func deliveryIDs(ds []webhooks.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func record(t *testing.T, s webhooks.Store, d webhooks.Delivery, status webhooks.Status, at time.Time) {
	t.Helper()
	err := s.WebhookDeliveryRecord(t.Context(), webhooks.AttemptResult{
		ID: d.ID, Lease: *d.ClaimedUntil, Status: status, NextAttemptAt: at.Add(time.Hour), At: at,
		ResponseStatus: 500, ResponseBody: []byte("no\x00pe"), LastError: "HTTP 500",
	})
	if err != nil {
		t.Fatalf("record %s: %v", d.ID, err)
	}
}

func testWebhookEndpointRoundTrip(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)

	full := newEndpoint(ids[0], 1)
	full.Version = 9 // ignored: a new endpoint is stored at Version 1
	full.Description = "名前 with 'quotes'"
	full.EventTypes = []string{webhooks.SegmentEntered, webhooks.ProfileMerged}
	full.SegmentIDs = []string{"seg_1", "seg_2"}
	full.Traits = []string{"email", "plan"}
	exp, failing := base.Add(24*time.Hour), base.Add(time.Minute)
	full.PreviousSecret, full.PreviousSecretExpiresAt, full.FailingSince = "whsec_old", &exp, &failing
	fleet := newEndpoint("", 2)

	for _, e := range []webhooks.Endpoint{full, fleet} {
		got := insertEndpoint(t, b, e)
		want := e
		want.Version = 1
		if got.Seq == 0 {
			t.Errorf("%s: no Seq assigned", e.ID)
		}
		want.Seq = got.Seq
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("insert %s (-want +got):\n%s", e.ID, diff)
		}
		read, err := b.WebhookEndpointGet(t.Context(), e.TenantID, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, read); diff != "" {
			t.Errorf("get %s (-inserted +read):\n%s", e.ID, diff)
		}
	}
	// Another tenant's (or the fleet's) endpoint is not found.
	for _, tenant := range []string{ids[1], ""} {
		if _, err := b.WebhookEndpointGet(t.Context(), tenant, full.ID); !errors.Is(err, webhooks.ErrNotFound) {
			t.Errorf("get %s as %q: %v, want ErrNotFound", full.ID, tenant, err)
		}
	}
	if _, err := b.WebhookEndpointGet(t.Context(), ids[0], fleet.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("get a fleet endpoint as a tenant: %v, want ErrNotFound", err)
	}

	// Listing pages in creation order; enabled lists only enabled ones.
	var all []webhooks.Endpoint
	for i := 3; i <= 6; i++ {
		e := newEndpoint(ids[0], i)
		e.Enabled = i%2 == 0
		all = append(all, insertEndpoint(t, b, e))
	}
	page1, err := b.WebhookEndpointList(t.Context(), ids[0], 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	page2, err := b.WebhookEndpointList(t.Context(), ids[0], page1[len(page1)-1].Seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, e := range slices.Concat(page1, page2) {
		listed = append(listed, e.ID)
	}
	if want := []string{full.ID, all[0].ID, all[1].ID, all[2].ID, all[3].ID}; !slices.Equal(listed, want) {
		t.Errorf("list: %v, want %v", listed, want)
	}
	enabled, err := b.WebhookEndpointsEnabled(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	var enabledIDs []string
	for _, e := range enabled {
		enabledIDs = append(enabledIDs, e.ID)
	}
	if want := []string{full.ID, all[1].ID, all[3].ID}; !slices.Equal(enabledIDs, want) {
		t.Errorf("enabled: %v, want %v", enabledIDs, want)
	}
}

func testWebhookEndpointLimit(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)
	const max = 5
	var wg sync.WaitGroup
	errs := make(chan error, 3*max)
	for i := range 3 * max {
		wg.Go(func() {
			_, err := b.WebhookEndpointInsert(t.Context(), newEndpoint(ids[0], i), max, audit.Event{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, webhooks.ErrLimit):
			t.Errorf("insert: %v, want nil or ErrLimit", err)
		}
	}
	if ok != max {
		t.Errorf("%d concurrent inserts succeeded, want %d", ok, max)
	}
	// The limit is per tenant.
	if _, err := b.WebhookEndpointInsert(t.Context(), newEndpoint(ids[1], 1), max, audit.Event{}); err != nil {
		t.Errorf("another tenant's insert: %v", err)
	}
}

func testWebhookEndpointUpdate(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 2)
	e := insertEndpoint(t, b, newEndpoint(ids[0], 1))

	changed := e
	changed.URL, changed.Description = "https://example.org/new", "new"
	changed.EventTypes, changed.SegmentIDs, changed.Traits = []string{webhooks.ProfileCreated}, []string{"seg_x"}, []string{"email"}
	changed.Enabled, changed.DisabledReason = false, "paused"
	exp := base.Add(time.Hour)
	changed.Secret, changed.PreviousSecret, changed.PreviousSecretExpiresAt = "whsec_new", e.Secret, &exp
	changed.UpdatedAt = base.Add(time.Hour)
	got, err := b.WebhookEndpointUpdate(t.Context(), changed, audit.Event{})
	if err != nil {
		t.Fatal(err)
	}
	want := changed
	want.Version = 2
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}

	// A stale version, another tenant and an unknown ID.
	if _, err := b.WebhookEndpointUpdate(t.Context(), changed, audit.Event{}); !errors.Is(err, webhooks.ErrVersionMismatch) {
		t.Errorf("update from a stale version: %v, want ErrVersionMismatch", err)
	}
	other := got
	other.TenantID = ids[1]
	if _, err := b.WebhookEndpointUpdate(t.Context(), other, audit.Event{}); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("update as another tenant: %v, want ErrNotFound", err)
	}

	// Of concurrent updates from one version exactly one succeeds.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			c := got
			c.Description = fmt.Sprint(i)
			_, err := b.WebhookEndpointUpdate(t.Context(), c, audit.Event{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, webhooks.ErrVersionMismatch) {
			t.Errorf("concurrent update: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent updates succeeded, want 1", ok)
	}

	// Delete checks the version, cancels pending deliveries and keeps the
	// delivered ones.
	cur, err := b.WebhookEndpointGet(t.Context(), ids[0], e.ID)
	if err != nil {
		t.Fatal(err)
	}
	cur.Enabled = true
	cur, err = b.WebhookEndpointUpdate(t.Context(), cur, audit.Event{})
	if err != nil {
		t.Fatal(err)
	}
	ds := insertDeliveries(t, b, newDelivery(cur, 1, "p1"), newDelivery(cur, 2, "p2"))
	claimed := claim(t, b, base, 4, 1)
	record(t, b, claimed[0], webhooks.StatusDelivered, base)
	if err := b.WebhookEndpointDelete(t.Context(), ids[0], e.ID, cur.Version-1, audit.Event{}); !errors.Is(err, webhooks.ErrVersionMismatch) {
		t.Errorf("delete at a stale version: %v, want ErrVersionMismatch", err)
	}
	if err := b.WebhookEndpointDelete(t.Context(), ids[1], e.ID, 0, audit.Event{}); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("delete as another tenant: %v, want ErrNotFound", err)
	}
	if err := b.WebhookEndpointDelete(t.Context(), ids[0], e.ID, cur.Version, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WebhookEndpointGet(t.Context(), ids[0], e.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	for i, want := range []webhooks.Status{webhooks.StatusDelivered, webhooks.StatusCancelled} {
		d, err := b.WebhookDeliveryGet(t.Context(), e.ID, ds[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != want {
			t.Errorf("delivery %d after delete: %s, want %s", i, d.Status, want)
		}
	}
}

func testWebhookEndpointFailing(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	e := insertEndpoint(t, b, newEndpoint(ids[0], 1))
	insertDeliveries(t, b, newDelivery(e, 1, "p1"))

	first, second := base.Add(time.Minute), base.Add(time.Hour)
	got, err := b.WebhookEndpointFailing(t.Context(), e.ID, first)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = b.WebhookEndpointFailing(t.Context(), e.ID, second); err != nil {
		t.Fatal(err)
	}
	if got.FailingSince == nil || !got.FailingSince.Equal(first) || got.Version != 1 {
		t.Errorf("failing since %v at version %d, want %v at 1 (a streak keeps its start)", got.FailingSince, got.Version, first)
	}
	if err := b.WebhookEndpointAnswering(t.Context(), e.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ = b.WebhookEndpointGet(t.Context(), ids[0], e.ID); got.FailingSince != nil {
		t.Errorf("failing since %v after an answer, want nil", got.FailingSince)
	}

	ok, err := b.WebhookEndpointDisable(t.Context(), e.ID, "gone", second)
	if err != nil || !ok {
		t.Fatalf("disable: %v, %v", ok, err)
	}
	if ok, err = b.WebhookEndpointDisable(t.Context(), e.ID, "again", second); err != nil || ok {
		t.Errorf("disable twice: %v, %v; want false", ok, err)
	}
	got, _ = b.WebhookEndpointGet(t.Context(), ids[0], e.ID)
	if got.Enabled || got.DisabledReason != "gone" || got.Version != 2 {
		t.Errorf("disabled endpoint: enabled %v reason %q version %d", got.Enabled, got.DisabledReason, got.Version)
	}
	ds, err := b.WebhookDeliveryList(t.Context(), e.ID, webhooks.StatusCancelled, 0, 0)
	if err != nil || len(ds) != 1 {
		t.Errorf("cancelled deliveries after disable: %d, %v; want 1", len(ds), err)
	}
}

// testWebhookEndpointReseal: the endpoints with a plaintext secret, of
// every tenant and the fleet, are listed; a reseal replaces the secrets
// only if they are unchanged, and keeps the version.
func testWebhookEndpointReseal(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	plain := insertEndpoint(t, b, newEndpoint(ids[0], 1))
	fleet := newEndpoint("", 2)
	fleet.Secret, fleet.PreviousSecret = "sealed.v1.k.a", "whsec_previous"
	fleet = insertEndpoint(t, b, fleet)
	done := newEndpoint(ids[0], 3)
	done.Secret = "sealed.v1.k.b"
	insertEndpoint(t, b, done)

	list, err := b.WebhookEndpointsUnsealed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.ID)
	}
	if want := []string{plain.ID, fleet.ID}; !slices.Equal(got, want) {
		t.Fatalf("unsealed endpoints %v, want %v", got, want)
	}
	if ok, err := b.WebhookEndpointReseal(t.Context(), plain.ID, "whsec_changed", "", "sealed.v1.k.c", ""); err != nil || ok {
		t.Fatalf("reseal of a changed secret: %v %v", ok, err)
	}
	if ok, err := b.WebhookEndpointReseal(t.Context(), plain.ID, plain.Secret, "", "sealed.v1.k.c", ""); err != nil || !ok {
		t.Fatalf("reseal: %v %v", ok, err)
	}
	if ok, err := b.WebhookEndpointReseal(t.Context(), fleet.ID, fleet.Secret, fleet.PreviousSecret, fleet.Secret, "sealed.v1.k.d"); err != nil || !ok {
		t.Fatalf("reseal of the previous secret: %v %v", ok, err)
	}
	after, _ := b.WebhookEndpointGet(t.Context(), ids[0], plain.ID)
	if after.Secret != "sealed.v1.k.c" || after.Version != plain.Version {
		t.Errorf("resealed endpoint: secret %q version %d", after.Secret, after.Version)
	}
	if list, err = b.WebhookEndpointsUnsealed(t.Context()); err != nil || len(list) != 0 {
		t.Errorf("unsealed after the reseals: %d %v", len(list), err)
	}
}

func testWebhookDeliveryUnique(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	e1 := insertEndpoint(t, b, newEndpoint(ids[0], 1))
	e2 := insertEndpoint(t, b, newEndpoint(ids[0], 2))

	first := insertDeliveries(t, b, newDelivery(e1, 1, "p1"), newDelivery(e2, 1, "p1"))
	if len(first) != 2 {
		t.Fatalf("inserted %d, want 2", len(first))
	}
	want := newDelivery(e1, 1, "p1")
	want.Status, want.Seq = webhooks.StatusPending, first[0].Seq
	if diff := cmp.Diff(want, first[0]); diff != "" {
		t.Errorf("inserted delivery (-want +got):\n%s", diff)
	}
	// The same event again, with a new delivery ID, creates nothing; a new
	// event in the same call does.
	again := newDelivery(e1, 1, "p1")
	again.ID = "dlv_other"
	got := insertDeliveries(t, b, again, newDelivery(e1, 2, "p1"))
	if len(got) != 1 || got[0].EventID != "evt_002" {
		t.Errorf("re-insert: %v, want only evt_002", deliveryIDs(got))
	}
	// Concurrent inserts of one event create one delivery.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			d := newDelivery(e2, 3, "p1")
			d.ID = fmt.Sprintf("dlv_race_%d", i)
			if _, err := b.WebhookDeliveryInsert(t.Context(), []webhooks.Delivery{d}, audit.Event{}); err != nil {
				t.Errorf("concurrent insert: %v", err)
			}
		})
	}
	wg.Wait()
	all, err := b.WebhookDeliveryList(t.Context(), e2.ID, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("e2 has %d deliveries, want 2", len(all))
	}
	if _, err := b.WebhookDeliveryGet(t.Context(), e2.ID, first[0].ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("get e1's delivery through e2: %v, want ErrNotFound", err)
	}
}

// testWebhookDeliveryClaimOrder: only the oldest pending delivery of an
// (endpoint, order key) is claimed, whether or not it is due, and at most
// PerEndpoint of an endpoint are under a lease at once.
func testWebhookDeliveryClaimOrder(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	e1 := insertEndpoint(t, b, newEndpoint(ids[0], 1))
	e2 := insertEndpoint(t, b, newEndpoint(ids[0], 2))
	off := newEndpoint(ids[0], 3)
	off.Enabled = false
	off = insertEndpoint(t, b, off)

	// e1: p1 has 1, 2, 3; p2 has 4; p3 has 5 (not due yet) and 6; p4..p6
	// have 7..9. e2: p1 has 10. off: 11.
	var ds []webhooks.Delivery
	keys := []string{"p1", "p1", "p1", "p2", "p3", "p3", "p4", "p5", "p6"}
	for i, k := range keys {
		d := newDelivery(e1, i+1, k)
		if i == 4 {
			d.NextAttemptAt = base.Add(time.Hour)
		}
		ds = append(ds, d)
	}
	ds = append(ds, newDelivery(e2, 10, "p1"), newDelivery(off, 11, "p1"))
	ds = insertDeliveries(t, b, ds...)

	now := base.Add(time.Second)
	got := claim(t, b, now, 3, 100)
	// e1 gets its 3 oldest claimable heads: 1 (p1), 4 (p2), 7 (p4); not 5
	// (not due), not 6 (behind 5); e2 gets 10.
	if want := []string{ds[0].ID, ds[3].ID, ds[6].ID, ds[9].ID}; !slices.Equal(deliveryIDs(got), want) {
		t.Fatalf("first claim: %v, want %v", deliveryIDs(got), want)
	}
	for _, d := range got {
		if d.ClaimedUntil == nil || !d.ClaimedUntil.Equal(now.Add(time.Minute)) {
			t.Errorf("%s claimed until %v", d.ID, d.ClaimedUntil)
		}
	}
	// Nothing more while the leases are live: e1 is at its limit, e2's p1
	// has no other delivery.
	if again := claim(t, b, now, 3, 100); len(again) != 0 {
		t.Errorf("claim under live leases: %v, want none", deliveryIDs(again))
	}
	// Delivering p1's head makes 2 claimable; e1 then has 3 leases again.
	record(t, b, got[0], webhooks.StatusDelivered, now)
	if next := claim(t, b, now, 3, 100); !slices.Equal(deliveryIDs(next), []string{ds[1].ID}) {
		t.Errorf("after delivering 1: %v, want [%s]", deliveryIDs(next), ds[1].ID)
	}
	// A failed head (retried later) still holds its key back; a head that
	// failed for good does not.
	record(t, b, got[1], webhooks.StatusPending, now) // 4, p2: due in an hour
	if next := claim(t, b, now, 3, 100); !slices.Equal(deliveryIDs(next), []string{ds[7].ID}) {
		t.Errorf("after a retried failure: %v, want [%s]", deliveryIDs(next), ds[7].ID)
	}
	// Limit bounds one call.
	later := now.Add(2 * time.Hour) // every lease lapsed, 4 and 5 due
	first := claim(t, b, later, 10, 2)
	if len(first) != 2 {
		t.Errorf("claim with limit 2: %d", len(first))
	}

	// A recorded result under a lease that was taken over is refused.
	stale := got[2] // 7, claimed at now; its lease lapsed and it was claimed again (or not)
	err := b.WebhookDeliveryRecord(t.Context(), webhooks.AttemptResult{ID: stale.ID, Lease: base, Status: webhooks.StatusDelivered, At: now, NextAttemptAt: now})
	if !errors.Is(err, webhooks.ErrLeaseLost) {
		t.Errorf("record under a lost lease: %v, want ErrLeaseLost", err)
	}
}

// testWebhookDeliveryLeaseTakeover: a delivery whose lease has lapsed (its
// dispatcher crashed) is claimed again, and the crashed dispatcher's late
// result is dropped.
func testWebhookDeliveryLeaseTakeover(t *testing.T, h Harness) {
	addr := h.NewDatabase(t)
	crashed, survivor := open(t, h, addr), open(t, h, addr)
	ids := tenantIDs(t, crashed, 1)
	e := insertEndpoint(t, crashed, newEndpoint(ids[0], 1))
	ds := insertDeliveries(t, crashed, newDelivery(e, 1, "p1"), newDelivery(e, 2, "p1"))

	got := claim(t, crashed, base, 4, 10)
	if !slices.Equal(deliveryIDs(got), []string{ds[0].ID}) {
		t.Fatalf("claim: %v", deliveryIDs(got))
	}
	if again := claim(t, survivor, base.Add(59*time.Second), 4, 10); len(again) != 0 {
		t.Fatalf("claimed under a live lease: %v", deliveryIDs(again))
	}
	takeover := base.Add(61 * time.Second)
	taken := claim(t, survivor, takeover, 4, 10)
	if !slices.Equal(deliveryIDs(taken), []string{ds[0].ID}) {
		t.Fatalf("takeover claim: %v, want the lapsed delivery", deliveryIDs(taken))
	}
	err := crashed.WebhookDeliveryRecord(t.Context(), webhooks.AttemptResult{
		ID: ds[0].ID, Lease: *got[0].ClaimedUntil, Status: webhooks.StatusDelivered, At: takeover, NextAttemptAt: takeover})
	if !errors.Is(err, webhooks.ErrLeaseLost) {
		t.Errorf("late result of the crashed dispatcher: %v, want ErrLeaseLost", err)
	}
	record(t, survivor, taken[0], webhooks.StatusDelivered, takeover)
	d, err := survivor.WebhookDeliveryGet(t.Context(), e.ID, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != webhooks.StatusDelivered || d.Attempts != 1 || d.ClaimedUntil != nil || d.ResponseStatus != 500 ||
		string(d.ResponseBody) != "no\x00pe" || d.LastError != "HTTP 500" || d.LastAttemptAt == nil || !d.LastAttemptAt.Equal(takeover) {
		t.Errorf("recorded delivery: %+v", d)
	}
}

// testWebhookDeliveryConcurrentClaims: claims racing from several
// backends never hand out a delivery twice nor exceed the per-endpoint
// limit.
func testWebhookDeliveryConcurrentClaims(t *testing.T, h Harness) {
	addr := h.NewDatabase(t)
	backends := []store.Backend{open(t, h, addr), open(t, h, addr), open(t, h, addr)}
	ids := tenantIDs(t, backends[0], 1)
	var ds []webhooks.Delivery
	var eps []webhooks.Endpoint
	for i := range 3 {
		eps = append(eps, insertEndpoint(t, backends[0], newEndpoint(ids[0], i)))
	}
	for i := range 60 {
		ds = append(ds, newDelivery(eps[i%3], i, fmt.Sprintf("p%d", i)))
	}
	insertDeliveries(t, backends[0], ds...)

	var (
		mu  sync.Mutex
		all []webhooks.Delivery
		wg  sync.WaitGroup
	)
	for _, b := range backends {
		for range 3 {
			wg.Go(func() {
				got := claim(t, b, base, 4, 100)
				mu.Lock()
				all = append(all, got...)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	perEndpoint := map[string]int{}
	seen := map[string]bool{}
	for _, d := range all {
		if seen[d.ID] {
			t.Errorf("%s claimed twice", d.ID)
		}
		seen[d.ID] = true
		perEndpoint[d.EndpointID]++
	}
	for _, e := range eps {
		if perEndpoint[e.ID] != 4 {
			t.Errorf("endpoint %s: %d under lease, want 4", e.ID, perEndpoint[e.ID])
		}
	}
}

func testWebhookDeliveryRetryRecover(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ids := tenantIDs(t, b, 1)
	e := insertEndpoint(t, b, newEndpoint(ids[0], 1))
	ds := insertDeliveries(t, b, newDelivery(e, 1, "p1"), newDelivery(e, 2, "p2"), newDelivery(e, 3, "p3"))
	got := claim(t, b, base, 4, 10)
	record(t, b, got[0], webhooks.StatusDelivered, base)
	record(t, b, got[1], webhooks.StatusFailed, base)
	record(t, b, got[2], webhooks.StatusFailed, base)

	at := base.Add(time.Hour)
	d, err := b.WebhookDeliveryRetry(t.Context(), e.ID, ds[0].ID, at, audit.Event{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != webhooks.StatusPending || d.Attempts != 0 || !d.NextAttemptAt.Equal(at) || d.EventID != ds[0].EventID ||
		string(d.Payload) != string(ds[0].Payload) {
		t.Errorf("retried delivery: %+v", d)
	}
	if _, err := b.WebhookDeliveryRetry(t.Context(), "wh_other", ds[0].ID, at, audit.Event{}); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("retry through another endpoint: %v, want ErrNotFound", err)
	}
	// Recover makes failed deliveries created since the bound pending.
	n, err := b.WebhookDeliveryRecover(t.Context(), e.ID, ds[2].CreatedAt, at, audit.Event{})
	if err != nil || n != 1 {
		t.Errorf("recover since the third: %d, %v; want 1", n, err)
	}
	if n, err = b.WebhookDeliveryRecover(t.Context(), e.ID, time.Time{}, at, audit.Event{}); err != nil || n != 1 {
		t.Errorf("recover all: %d, %v; want 1 (the second)", n, err)
	}
	pending, err := b.WebhookDeliveryList(t.Context(), e.ID, webhooks.StatusPending, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Newest first.
	if want := []string{ds[2].ID, ds[1].ID, ds[0].ID}; !slices.Equal(deliveryIDs(pending), want) {
		t.Errorf("pending: %v, want %v", deliveryIDs(pending), want)
	}
	page, err := b.WebhookDeliveryList(t.Context(), e.ID, "", pending[1].Seq, 10)
	if err != nil || !slices.Equal(deliveryIDs(page), []string{ds[0].ID}) {
		t.Errorf("page before the second: %v, %v", deliveryIDs(page), err)
	}
}
