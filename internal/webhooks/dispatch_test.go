package webhooks_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// retryAll is more than any retry delay of the schedule.
const retryAll = 24 * time.Hour

// TestEveryEventDeliveredThroughFailures: an endpoint that answers 500,
// then hangs past the timeout, then refuses connections, and then
// recovers receives every event, each under its own webhook-id every time.
func TestEveryEventDeliveredThroughFailures(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	rc.set(status(500))
	e := h.endpoint("ten_a", rc.URL(), webhooks.ProfileCreated)
	var events []webhooks.Event
	for i := range 5 {
		events = append(events, event("ten_a", fmt.Sprint("p", i), 0))
	}
	h.enqueue(events...)

	for _, a := range h.wait(5) {
		if a.res.Status != 500 {
			t.Errorf("first round: %+v, want 500", a.res)
		}
	}
	rc.set(hang)
	h.next(retryAll)
	for _, a := range h.wait(5) {
		if a.res.Err == nil {
			t.Errorf("hanging round: %+v, want a timeout", a.res)
		}
	}
	rc.close()
	h.next(retryAll)
	for _, a := range h.wait(5) {
		if a.res.Err == nil || a.res.Status != 0 {
			t.Errorf("closed round: %+v, want a refused connection", a.res)
		}
	}
	rc.set(status(204))
	rc.reopen()
	h.next(retryAll)
	for _, a := range h.wait(5) {
		if !a.res.Delivered() {
			t.Errorf("last round: %+v, want delivered", a.res)
		}
	}

	delivered := h.deliveries(e, webhooks.StatusDelivered)
	if len(delivered) != 5 || len(h.deliveries(e, "")) != 5 {
		t.Fatalf("%d of 5 deliveries delivered", len(delivered))
	}
	for _, d := range delivered {
		if d.Attempts != 4 {
			t.Errorf("%s: %d attempts, want 4", d.EventID, d.Attempts)
		}
	}
	// Every request carried one of the events' IDs as its webhook-id and
	// that event's body; each event was received 3 times (the refused
	// round never arrived).
	byID := map[string][][]byte{}
	for _, r := range rc.received() {
		byID[r.id] = append(byID[r.id], r.body)
	}
	for _, ev := range events {
		bodies := byID[ev.ID]
		if len(bodies) != 3 {
			t.Errorf("%s received %d times, want 3", ev.ID, len(bodies))
			continue
		}
		for _, b := range bodies[1:] {
			if !bytes.Equal(b, bodies[0]) {
				t.Errorf("%s: a retry's body differs:\n%s\n%s", ev.ID, bodies[0], b)
			}
		}
	}
	if len(byID) != len(events) {
		t.Errorf("requests carried %d webhook-ids, want %d", len(byID), len(events))
	}
	// The endpoint answers again: its failure streak is over.
	got, err := h.svc.Get(t.Context(), "ten_a", e.ID)
	if err != nil || got.FailingSince != nil || !got.Enabled {
		t.Errorf("endpoint after recovery: %+v, %v", got, err)
	}

	// A redelivery sends the same payload under the same webhook-id again.
	d, err := h.svc.Redeliver(t.Context(), audit.Event{}, "ten_a", e.ID, delivered[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	h.wait(1)
	last := rc.received()[len(rc.received())-1]
	if last.id != d.EventID || !bytes.Equal(last.body, d.Payload) {
		t.Errorf("redelivery: webhook-id %s body %s, want %s %s", last.id, last.body, d.EventID, d.Payload)
	}
	if _, err := h.svc.Redeliver(t.Context(), audit.Event{}, "ten_b", e.ID, delivered[0].ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("redeliver through another tenant: %v, want ErrNotFound", err)
	}
}

// TestOrderPerProfile: an endpoint receives one profile's events in the
// order they were enqueued, although several deliveries are in flight.
func TestOrderPerProfile(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	rc.set(status(200))
	h.endpoint("ten_a", rc.URL(), webhooks.ProfileCreated)
	var want []string
	for i := range 12 {
		for _, p := range []string{"p1", "p2", "p3"} {
			ev := event("ten_a", p, i)
			h.enqueue(ev) // one call each: the order is the enqueue order
			want = append(want, ev.ID)
		}
	}
	h.wait(len(want))
	got := map[string][]string{}
	for _, r := range rc.received() {
		p := r.data["profile_id"].(string)
		got[p] = append(got[p], r.id)
	}
	for _, p := range []string{"p1", "p2", "p3"} {
		var wantP []string
		for _, id := range want {
			if strings.Contains(id, "_"+p+"_") {
				wantP = append(wantP, id)
			}
		}
		if !slices.Equal(got[p], wantP) {
			t.Errorf("%s received in order %v, want %v", p, got[p], wantP)
		}
	}
}

// TestSlowEndpointDoesNotDelayAnother: while one endpoint holds every
// request, another receives all its events, and the slow one never has
// more than PerEndpoint requests in flight.
func TestSlowEndpointDoesNotDelayAnother(t *testing.T) {
	h := newHarness(t, func(c *webhooks.Config) {
		c.Sender.Timeout = waitTimeout
		c.PerEndpoint = 3
	})
	slow, fast := newReceiver(t), newReceiver(t)
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	slow.set(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		inFlight.Add(-1)
	})
	fast.set(status(200))
	h.endpoint("ten_a", slow.URL(), webhooks.ProfileCreated)
	h.endpoint("ten_a", fast.URL(), webhooks.ProfileCreated)
	var events []webhooks.Event
	for i := range 10 {
		events = append(events, event("ten_a", fmt.Sprint("p", i), 0))
	}
	h.enqueue(events...)

	deadline := time.After(waitTimeout)
	for range events {
		select {
		case <-fast.got:
		case <-deadline:
			t.Fatal("the fast endpoint waited for the slow one")
		}
	}
	// The slow endpoint holds its limit of requests.
	for range 3 {
		select {
		case <-slow.got:
		case <-deadline:
			t.Fatal("the slow endpoint got fewer than 3 requests")
		}
	}
	close(release)
	h.wait(2 * len(events))
	if m := most.Load(); m > 3 {
		t.Errorf("the slow endpoint had %d requests in flight, limit 3", m)
	}
}

// Test410Disables: 410 Gone fails the delivery, disables the endpoint,
// cancels its other deliveries and tells the fleet.
func Test410Disables(t *testing.T) {
	h := newHarness(t)
	gone, fleet := newReceiver(t), newReceiver(t)
	gone.set(status(http.StatusGone))
	fleet.set(status(200))
	e := h.endpoint("ten_a", gone.URL(), webhooks.ProfileCreated)
	h.endpoint("", fleet.URL(), webhooks.EndpointDisabled)
	h.enqueue(event("ten_a", "p1", 1), event("ten_a", "p1", 2), event("ten_a", "p1", 3))
	h.wait(2) // the 410, then the fleet's webhook.disabled

	got, err := h.svc.Get(t.Context(), "ten_a", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Enabled || !strings.Contains(got.DisabledReason, "410") {
		t.Errorf("endpoint after 410: enabled %v reason %q", got.Enabled, got.DisabledReason)
	}
	if n := len(h.deliveries(e, webhooks.StatusFailed)); n != 1 {
		t.Errorf("%d failed deliveries, want 1", n)
	}
	if n := len(h.deliveries(e, webhooks.StatusCancelled)); n != 2 {
		t.Errorf("%d cancelled deliveries, want 2", n)
	}
	r := <-fleet.got
	if r.data["endpoint_id"] != e.ID || r.data["tenant_id"] != "ten_a" {
		t.Errorf("fleet event data %v", r.data)
	}
	// Nothing new is enqueued for a disabled endpoint, and Test refuses.
	h.enqueue(event("ten_a", "p1", 4))
	if n := len(h.deliveries(e, "")); n != 3 {
		t.Errorf("%d deliveries after enqueuing to a disabled endpoint, want 3", n)
	}
	if _, err := h.svc.Test(t.Context(), audit.Event{}, "ten_a", e.ID); !errors.Is(err, webhooks.ErrDisabled) {
		t.Errorf("test a disabled endpoint: %v, want ErrDisabled", err)
	}
}

// TestRetryAfterHonoured: a Retry-After longer than the schedule's delay
// sets the next attempt.
func TestRetryAfterHonoured(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	rc.set(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7200")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	e := h.endpoint("ten_a", rc.URL(), webhooks.ProfileCreated)
	start := h.clock.Now()
	h.enqueue(event("ten_a", "p1", 1))
	a := h.wait(1)[0]
	if a.res.RetryAfter != 2*time.Hour {
		t.Errorf("Result.RetryAfter %s, want 2h", a.res.RetryAfter)
	}
	d := h.deliveries(e, webhooks.StatusPending)[0]
	if d.NextAttemptAt.Before(start.Add(2*time.Hour)) || d.ResponseStatus != 503 || d.Attempts != 1 {
		t.Errorf("after a 503 with Retry-After 2h at %s: next attempt %s, status %d, attempts %d", start, d.NextAttemptAt, d.ResponseStatus, d.Attempts)
	}
	rc.set(status(200))
	h.next(2*time.Hour + time.Second)
	if a := h.wait(1)[0]; !a.res.Delivered() {
		t.Errorf("second attempt: %+v", a.res)
	}
}

// TestFailingFiveDaysDisables: an endpoint with no success for five days
// is disabled and the fleet told; enabling it again ends the streak.
func TestFailingFiveDaysDisables(t *testing.T) {
	h := newHarness(t)
	rc, fleet := newReceiver(t), newReceiver(t)
	rc.set(status(500))
	fleet.set(status(200))
	e := h.endpoint("ten_a", rc.URL(), webhooks.ProfileCreated)
	fe := h.endpoint("", fleet.URL(), webhooks.EndpointDisabled)
	h.enqueue(event("ten_a", "p1", 1))
	h.wait(1)
	h.next(3 * retryAll)
	h.wait(1)
	if got, _ := h.svc.Get(t.Context(), "ten_a", e.ID); !got.Enabled {
		t.Fatal("disabled after 3 days")
	}
	h.next(2*retryAll + time.Minute)
	h.wait(2) // the last failure and the fleet event
	got, err := h.svc.Get(t.Context(), "ten_a", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Enabled || got.DisabledReason == "" || got.FailingSince == nil {
		t.Fatalf("after 5 days of failures: %+v", got)
	}
	fd := h.deliveries(fe, webhooks.StatusDelivered)
	if len(fd) != 1 || fd[0].EventType != webhooks.EndpointDisabled || fd[0].TenantID != "" {
		t.Errorf("fleet deliveries %+v", fd)
	}

	on := true
	got, err = h.svc.Update(t.Context(), audit.Event{}, "ten_a", e.ID, &got.Version, webhooks.EndpointInput{Enabled: &on})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Enabled || got.FailingSince != nil || got.DisabledReason != "" {
		t.Errorf("enabled again: %+v", got)
	}
}

// TestRotationSignsWithBoth: during a rotation's grace the request carries
// a signature by each secret; after it, by the new one only.
func TestRotationSignsWithBoth(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	rc.set(status(200))
	e := h.endpoint("ten_a", rc.URL(), webhooks.ProfileCreated)
	_, secret, err := h.svc.RotateSecret(t.Context(), audit.Event{}, "ten_a", e.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if secret == e.Secret || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("rotated secret %q", secret)
	}
	d, err := h.svc.Test(t.Context(), audit.Event{}, "ten_a", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.wait(1)
	r := <-rc.got
	if r.id != d.EventID || strings.Count(r.signature, "v1,") != 2 {
		t.Errorf("during grace: webhook-id %s signature %q, want two signatures", r.id, r.signature)
	}
	h.clock.Advance(time.Hour)
	if _, err := h.svc.Test(t.Context(), audit.Event{}, "ten_a", e.ID); err != nil {
		t.Fatal(err)
	}
	h.wait(1)
	if r := <-rc.got; strings.Count(r.signature, "v1,") != 1 {
		t.Errorf("after grace: signature %q, want one", r.signature)
	}
}

// TestLeaseRenewedWhileAttemptRuns: an attempt that outlasts its lease
// keeps the delivery, because the dispatcher renews the lease while it
// runs: another dispatcher finds nothing to claim after the first lease
// has passed, and the attempt's result is recorded under the renewed
// lease.
func TestLeaseRenewedWhileAttemptRuns(t *testing.T) {
	const lease = 300 * time.Millisecond
	h := newHarness(t, func(c *webhooks.Config) {
		c.Sender.Timeout = waitTimeout
		c.Lease = lease
	})
	slow := newReceiver(t)
	release := make(chan struct{})
	slow.set(func(w http.ResponseWriter, r *http.Request) { <-release })
	e := h.endpoint("ten_a", slow.URL(), webhooks.ProfileCreated)
	h.enqueue(event("ten_a", "p1", 0))
	select {
	case <-slow.got:
	case <-time.After(waitTimeout):
		t.Fatal("the attempt never reached the endpoint")
	}
	inFlight := func() webhooks.Delivery {
		t.Helper()
		d := onlyDelivery(t, h, e.ID)
		if d.ClaimedUntil == nil {
			t.Fatalf("delivery %+v, want it under a lease", d)
		}
		return d
	}
	first := *inFlight().ClaimedUntil

	// The clock moves past the first lease; the dispatcher renews (every
	// third of the lease, in real time) from the new time.
	h.clock.Advance(2 * lease / 3)
	deadline := time.After(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !inFlight().ClaimedUntil.After(first) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the lease was not renewed in %s", waitTimeout)
		}
	}
	h.clock.Advance(2 * lease / 3)
	if !h.clock.Now().After(first) {
		t.Fatal("the clock is not past the first lease")
	}
	taken, err := h.store.WebhookDeliveryClaim(t.Context(), webhooks.ClaimParams{
		Now: h.clock.Now(), LeaseUntil: h.clock.Now().Add(lease), PerEndpoint: 4, Limit: 10,
	})
	if err != nil || len(taken) != 0 {
		t.Fatalf("another dispatcher claimed %+v, %v past the first lease; want nothing: the lease is renewed", taken, err)
	}

	close(release)
	got := h.wait(1)
	if !got[0].res.Delivered() {
		t.Fatalf("attempt: %+v, want delivered", got[0].res)
	}
	d := onlyDelivery(t, h, e.ID)
	if d.Status != webhooks.StatusDelivered || d.Attempts != 1 || d.ClaimedUntil != nil {
		t.Errorf("delivery after the attempt: %+v, want delivered once, no lease", d)
	}
}

// onlyDelivery returns the endpoint's one delivery.
func onlyDelivery(t *testing.T, h *harness, endpointID string) webhooks.Delivery {
	t.Helper()
	ds, err := h.store.WebhookDeliveryList(t.Context(), endpointID, "", 0, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries: %+v, %v; want one", ds, err)
	}
	return ds[0]
}
