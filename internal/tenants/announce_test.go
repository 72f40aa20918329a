package tenants

import (
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
)

func TestAnnouncement(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		from, to Status
		want     string // "" for no event
	}{
		{StatusProvisioning, StatusActive, fleet.TenantProvisioned},
		{StatusSuspended, StatusActive, ""}, // a resume
		{StatusProvisioning, StatusFailed, fleet.TenantFailed},
		{StatusActive, StatusSuspended, fleet.TenantSuspended},
		{StatusDeprovisioning, StatusDeleted, fleet.TenantDeleted},
		{StatusActive, StatusDeprovisioning, ""},
		{StatusFailed, StatusProvisioning, ""},
		{StatusActive, StatusActive, ""}, // an update
	}
	for _, tt := range tests {
		tn := Tenant{ID: "ten_a", Slug: "acme", Name: "Acme", Tier: TierPooled, Status: tt.to, StatusReason: "eu-west-1: ROLLBACK_COMPLETE",
			Regions: []string{"eu-west-1"}, Version: 3, UpdatedAt: at}
		ev, ok := Announcement(tt.from, tn)
		if got := map[bool]string{true: ev.Type}[ok]; got != tt.want {
			t.Errorf("%s -> %s: announced %q, want %q", tt.from, tt.to, got, tt.want)
			continue
		}
		if !ok {
			continue
		}
		if ev.ID != fleet.NewID("ten_a", string(tt.to), "3") || !ev.At.Equal(at) {
			t.Errorf("%s -> %s: ID %s at %s", tt.from, tt.to, ev.ID, ev.At)
		}
		d := ev.Data
		if d.TenantID != "ten_a" || d.Slug != "acme" || d.Name != "Acme" || d.Status != string(tt.to) || d.Tier != "pooled" ||
			len(d.Regions) != 1 || d.At != "2026-12-03T12:00:00Z" {
			t.Errorf("%s -> %s: data %+v", tt.from, tt.to, d)
		}
		if (d.Reason != "") != (tt.to == StatusFailed) {
			t.Errorf("%s -> %s: reason %q", tt.from, tt.to, d.Reason)
		}
	}
}

type countNotifier struct{ n int }

func (c *countNotifier) Notify() { c.n++ }

// TestChangeAnnounces writes an event with the change that announces
// itself, notifies once it committed, and writes none for a refused change.
func TestChangeAnnounces(t *testing.T) {
	ctx := t.Context()
	st := &memStore{m: map[string]Tenant{"ten_a": {ID: "ten_a", Status: StatusActive, Version: 1}}}
	s := NewService(st, nil)
	n := &countNotifier{}
	s.SetFleetNotifier(n)
	if _, err := s.Suspend(ctx, audit.Event{}, "ten_a", nil); err != nil {
		t.Fatal(err)
	}
	if len(st.events) != 1 || st.events[0].Type != fleet.TenantSuspended || st.events[0].ID != fleet.NewID("ten_a", "suspended", "2") || n.n != 1 {
		t.Fatalf("after suspend: events %+v, notified %d", st.events, n.n)
	}
	if _, err := s.Suspend(ctx, audit.Event{}, "ten_a", nil); err == nil {
		t.Fatal("suspended twice")
	}
	if _, err := s.Resume(ctx, audit.Event{}, "ten_a", nil); err != nil {
		t.Fatal(err)
	}
	if len(st.events) != 1 || n.n != 1 {
		t.Fatalf("a refused change or a resume announced: %+v, notified %d", st.events, n.n)
	}
}
