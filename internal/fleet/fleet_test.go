package fleet

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	a := NewID("ten_a", "active", "2")
	if a != NewID("ten_a", "active", "2") {
		t.Fatal("NewID is not stable")
	}
	if !strings.HasPrefix(a, "evt_") || len(a) != 30 {
		t.Fatalf("NewID = %q", a)
	}
	// Parts are separated: moving a boundary is another ID.
	for _, other := range []string{NewID("ten_a", "active", "3"), NewID("ten_aa", "ctive", "2"), NewID("ten_a", "suspended", "2")} {
		if other == a {
			t.Fatalf("%q collides", other)
		}
	}
}

// memStore is an outbox in memory.
type memStore struct {
	mu     sync.Mutex
	events []Event
}

func (s *memStore) FleetEventList(_ context.Context, limit int) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events[:min(limit, len(s.events))]), nil
}

func (s *memStore) FleetEventDelete(_ context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = slices.DeleteFunc(s.events, func(ev Event) bool { return slices.Contains(ids, ev.ID) })
	return nil
}

type chanPublisher chan []Event

func (c chanPublisher) Publish(_ context.Context, evs []Event) error {
	c <- evs
	return nil
}

// TestRunRelaysOnNotify relays when notified, and stops with its context.
func TestRunRelaysOnNotify(t *testing.T) {
	st := &memStore{}
	pub := make(chanPublisher, 10)
	r, err := NewRelay(Config{Store: st, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	st.mu.Lock()
	st.events = append(st.events, Event{ID: "evt_1", Type: TenantSuspended})
	st.mu.Unlock()
	r.Notify()
	r.Notify() // a second wake-up while one is pending never blocks
	select {
	case evs := <-pub:
		if len(evs) != 1 || evs[0].ID != "evt_1" {
			t.Fatalf("published %+v", evs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Notify relayed nothing")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestNewRelayRequires(t *testing.T) {
	if _, err := NewRelay(Config{Store: &memStore{}}); err == nil {
		t.Fatal("NewRelay without a Publisher")
	}
}
