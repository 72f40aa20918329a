package webhooks_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

func TestCreateValidates(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	tests := []struct {
		name   string
		tenant string
		url    string
		types  []string
		field  string
	}{
		{"private address", "ten_a", "http://10.1.2.3/hook", []string{webhooks.ProfileCreated}, "url"},
		{"not a URL", "ten_a", "hook", []string{webhooks.ProfileCreated}, "url"},
		{"ftp", "ten_a", "ftp://127.0.0.1/hook", []string{webhooks.ProfileCreated}, "url"},
		{"no types", "ten_a", rc.URL(), []string{}, "event_types"},
		{"fleet type on a tenant", "ten_a", rc.URL(), []string{webhooks.ProfileCreated, webhooks.TenantDeleted}, "event_types/1"},
		{"tenant type on the fleet", "", rc.URL(), []string{webhooks.SegmentEntered}, "event_types/0"},
		{"unknown type", "ten_a", rc.URL(), []string{"segment.changed"}, "event_types/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := h.svc.Create(t.Context(), audit.Event{}, tc.tenant, webhooks.EndpointInput{URL: &tc.url, EventTypes: &tc.types})
			var ve *webhooks.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("Create: %v, want a validation error of %s", err, tc.field)
			}
		})
	}

	// At most MaxEndpoints per tenant; the fleet and other tenants count
	// apart.
	for i := range webhooks.MaxEndpoints {
		h.endpoint("ten_b", rc.URL()+fmt.Sprint(i), webhooks.ProfileCreated)
	}
	url, types := rc.URL(), []string{webhooks.ProfileCreated}
	if _, _, err := h.svc.Create(t.Context(), audit.Event{}, "ten_b", webhooks.EndpointInput{URL: &url, EventTypes: &types}); !errors.Is(err, webhooks.ErrLimit) {
		t.Errorf("endpoint %d: %v, want ErrLimit", webhooks.MaxEndpoints+1, err)
	}
	h.endpoint("ten_c", url, webhooks.ProfileCreated)
	h.endpoint("", url, webhooks.TenantDeleted)
}

func TestUpdateIfMatch(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	e := h.endpoint("ten_a", rc.URL(), webhooks.ProfileCreated)
	desc := "new"
	stale := e.Version - 1
	if _, err := h.svc.Update(t.Context(), audit.Event{}, "ten_a", e.ID, &stale, webhooks.EndpointInput{Description: &desc}); !errors.Is(err, webhooks.ErrVersionMismatch) {
		t.Errorf("update at a stale version: %v", err)
	}
	got, err := h.svc.Update(t.Context(), audit.Event{}, "ten_a", e.ID, &e.Version, webhooks.EndpointInput{Description: &desc})
	if err != nil || got.Description != "new" || got.Version != e.Version+1 || got.URL != e.URL {
		t.Errorf("update: %+v, %v", got, err)
	}
	if _, err := h.svc.Update(t.Context(), audit.Event{}, "ten_b", e.ID, nil, webhooks.EndpointInput{Description: &desc}); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("update through another tenant: %v", err)
	}
	if err := h.svc.Delete(t.Context(), audit.Event{}, "ten_a", e.ID, &e.Version); !errors.Is(err, webhooks.ErrVersionMismatch) {
		t.Errorf("delete at a stale version: %v", err)
	}
	if err := h.svc.Delete(t.Context(), audit.Event{}, "ten_a", e.ID, &got.Version); err != nil {
		t.Errorf("delete: %v", err)
	}
}

// TestEnqueueRouting: an event reaches the enabled endpoints of its tenant
// subscribed to its type (and segment), once however often it is enqueued,
// with only the traits each asks for.
func TestEnqueueRouting(t *testing.T) {
	h := newHarness(t)
	rc := newReceiver(t)
	rc.set(status(500)) // nothing is delivered: the log shows what was enqueued
	ctx := t.Context()
	url := rc.URL()
	types := []string{webhooks.SegmentEntered, webhooks.ProfileCreated}
	seg1, traits := []string{"seg_1"}, []string{"email", "missing"}
	all, _, _ := h.svc.Create(ctx, audit.Event{}, "ten_a", webhooks.EndpointInput{URL: &url, EventTypes: &types})
	onlySeg1, _, _ := h.svc.Create(ctx, audit.Event{}, "ten_a", webhooks.EndpointInput{URL: &url, EventTypes: &types, SegmentIDs: &seg1, Traits: &traits})
	off := false
	paused, _, _ := h.svc.Create(ctx, audit.Event{}, "ten_a", webhooks.EndpointInput{URL: &url, EventTypes: &types, Enabled: &off})
	other := h.endpoint("ten_b", url, webhooks.SegmentEntered)
	fleet := h.endpoint("", url, webhooks.TenantDeleted)

	if ok, err := h.svc.Subscribed(ctx, "ten_a", webhooks.SegmentEntered); err != nil || !ok {
		t.Errorf("Subscribed(ten_a, segment.entered) = %v, %v", ok, err)
	}
	if ok, _ := h.svc.Subscribed(ctx, "ten_c", webhooks.SegmentEntered); ok {
		t.Error("Subscribed(ten_c) with no endpoints")
	}

	at := time.Date(2025, 1, 2, 3, 4, 5, 600000000, time.UTC)
	seg := func(id, segment string) webhooks.Event {
		return webhooks.Event{ID: id, Type: webhooks.SegmentEntered, TenantID: "ten_a", ProfileID: "prof_1", SegmentID: segment, At: at,
			Data: json.RawMessage(`{"segment_id":"` + segment + `","profile_id":"prof_1"}`), Traits: map[string]any{"email": "a@b.c", "plan": "gold"}}
	}
	events := []webhooks.Event{seg("evt_1", "seg_1"), seg("evt_2", "seg_2"),
		{ID: "evt_3", Type: webhooks.TenantDeleted, Data: json.RawMessage(`{"tenant_id":"ten_a"}`), At: at}}
	h.enqueue(events...)
	h.enqueue(events...) // again: nothing new
	// evt_2 waits behind evt_1 for all: one profile, in order.
	h.wait(3)

	count := func(e webhooks.Endpoint) int { return len(h.deliveries(e, "")) }
	for _, c := range []struct {
		e    webhooks.Endpoint
		want int
	}{{all, 2}, {onlySeg1, 1}, {paused, 0}, {other, 0}, {fleet, 1}} {
		if got := count(c.e); got != c.want {
			t.Errorf("endpoint %s: %d deliveries, want %d", c.e.ID, got, c.want)
		}
	}
	d := h.deliveries(onlySeg1, "")[0]
	want := `{"type":"segment.entered","timestamp":"2025-01-02T03:04:05.6Z","data":{"profile_id":"prof_1","segment_id":"seg_1","traits":{"email":"a@b.c"}}}`
	if string(d.Payload) != want {
		t.Errorf("payload\n%s\nwant\n%s", d.Payload, want)
	}
}
