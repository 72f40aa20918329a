package tenants

import (
	"context"
	"sync"
	"testing"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
)

// memStore is a Store of one process's memory that counts reads outside
// transactions.
type memStore struct {
	mu     sync.Mutex
	m      map[string]Tenant
	reads  int
	events []fleet.Event
}

func (s *memStore) InTx(ctx context.Context, fn func(Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(memTx{s})
}

func (s *memStore) TenantGet(_ context.Context, id string) (Tenant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	t, ok := s.m[id]
	if !ok {
		return Tenant{}, ErrNotFound
	}
	return t, nil
}

func (s *memStore) TenantList(context.Context, ListParams) ([]Tenant, error) { return nil, nil }

type memTx struct{ s *memStore }

func (tx memTx) TenantGet(_ context.Context, id string) (Tenant, error) {
	t, ok := tx.s.m[id]
	if !ok {
		return Tenant{}, ErrNotFound
	}
	return t, nil
}
func (tx memTx) TenantInsert(_ context.Context, t Tenant) (Tenant, error) {
	tx.s.m[t.ID] = t
	return t, nil
}
func (tx memTx) TenantUpdate(_ context.Context, t Tenant) error { tx.s.m[t.ID] = t; return nil }
func (tx memTx) JobInsert(context.Context, JobArgs) error       { return nil }
func (tx memTx) AuditAppend(context.Context, audit.Event) error { return nil }
func (tx memTx) FleetEventInsert(_ context.Context, ev fleet.Event) error {
	tx.s.events = append(tx.s.events, ev)
	return nil
}

// TestAdmittedCachesAndForgetsOnChange reads a tenant once for many
// admissions, sees this Service's suspension at once, sees a change made
// behind its back only after AdmissionMaxAge, and never caches a tenant
// that does not exist.
func TestAdmittedCachesAndForgetsOnChange(t *testing.T) {
	ctx := t.Context()
	st := &memStore{m: map[string]Tenant{"ten_a": {ID: "ten_a", Status: StatusActive}}}
	s := NewService(st, nil)
	for range 10 {
		got, err := s.Admitted(ctx, "ten_a")
		if err != nil || got.Status != StatusActive {
			t.Fatalf("Admitted: %v %v", got.Status, err)
		}
	}
	if st.reads != 1 {
		t.Fatalf("%d store reads for 10 admissions, want 1", st.reads)
	}

	if _, err := s.Suspend(ctx, audit.Event{}, "ten_a", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Admitted(ctx, "ten_a"); got.Status != StatusSuspended {
		t.Fatalf("after Suspend: %s, want suspended at once", got.Status)
	}

	// Another replica's change: seen once the entry is older than
	// AdmissionMaxAge (aged here by hand rather than by waiting).
	st.mu.Lock()
	other := st.m["ten_a"]
	other.Status = StatusActive
	st.m["ten_a"] = other
	st.mu.Unlock()
	if got, _ := s.Admitted(ctx, "ten_a"); got.Status != StatusSuspended {
		t.Fatalf("within AdmissionMaxAge: %s, want the cached suspended", got.Status)
	}
	s.admit.mu.Lock()
	a := s.admit.m["ten_a"]
	a.at = a.at.Add(-AdmissionMaxAge)
	s.admit.m["ten_a"] = a
	s.admit.mu.Unlock()
	if got, _ := s.Admitted(ctx, "ten_a"); got.Status != StatusActive {
		t.Fatalf("after AdmissionMaxAge: %s, want active", got.Status)
	}

	for range 2 {
		if _, err := s.Admitted(ctx, "ten_missing"); err != ErrNotFound {
			t.Fatalf("missing tenant: %v", err)
		}
	}
	reads := st.reads
	if _, err := s.Admitted(ctx, "ten_missing"); err != ErrNotFound || st.reads != reads+1 {
		t.Fatalf("a missing tenant is read every time: %v, %d reads", err, st.reads-reads)
	}
}
