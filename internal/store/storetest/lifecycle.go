package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/tenants"
)

// testRestart closes the backend and opens the database again: what was
// committed is still there.
func testRestart(t *testing.T, h Harness) {
	addr := h.NewDatabase(t)
	first := h.Open(t, addr)
	if err := first.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	tn := insert(t, first, newTenant(1))[0]
	err := first.InTx(t.Context(), func(tx tenants.Tx) error {
		return tx.JobInsert(t.Context(), tenants.ProvisionArgs{TenantID: tn.ID})
	})
	if err != nil {
		t.Fatalf("insert job: %v", err)
	}
	rec := claimRecord("p", "k", "h", base)
	mustClaim(t, first, rec, base, true, rec)
	if err := first.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	second := open(t, h, addr)
	if diff := cmp.Diff(tn, get(t, second, tn.ID)); diff != "" {
		t.Errorf("tenant after restart (-want +got):\n%s", diff)
	}
	if counts := jobCounts(t, second); counts["available"] != 1 {
		t.Errorf("JobCounts after restart = %v, want one available", counts)
	}
	mustClaim(t, second, claimRecord("p", "k", "h", base), base, false, rec)
}

func testMigrateTwice(t *testing.T, h Harness) {
	b := newBackend(t, h) // migrated once
	if err := b.Migrate(t.Context()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if err := b.Ping(t.Context()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	insert(t, b, newTenant(1))
}
