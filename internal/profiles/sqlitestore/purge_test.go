package sqlitestore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/sqlitestore"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// TestPurgeRemovesExpiredItems checks in the file itself that
// DeleteTenant takes the tenant's expired items too, which the sweep would
// otherwise leave until its next round, and no other tenant's row.
func TestPurgeRemovesExpiredItems(t *testing.T) {
	t.Parallel()
	c := &clock{}
	c.unix.Store(time.Now().Unix())
	path := filepath.Join(t.TempDir(), sqlitestore.FileName)
	s := open(t, sqlitestore.Config{Path: path, Now: c.now, SweepInterval: -1})
	ctx := t.Context()
	gone, kept := tenants.NewID(), tenants.NewID()
	var items []profiles.Item
	for _, tenant := range []string{gone, kept} {
		for i := range 5 {
			items = append(items,
				profiles.Item{PK: pk(tenant, "D#"+fmt.Sprint(i)), SK: "D", ExpiresAt: c.unix.Load() - 1},
				profiles.Item{PK: pk(tenant, "M#m"), SK: fmt.Sprintf("E#%d", i)})
		}
	}
	if err := s.PutBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteTenant(ctx, gone); err != nil || n != 10 {
		t.Fatalf("DeleteTenant: %d, %v; want 10, the 5 expired items included", n, err)
	}
	if got := countRows(t, path); got != 10 {
		t.Fatalf("%d rows left, want the other tenant's 10", got)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 5 {
		t.Fatalf("Sweep after DeleteTenant: %d, %v; want the other tenant's 5 expired items", n, err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTenant(ctx, kept); !errors.Is(err, sqlitestore.ErrClosed) {
		t.Errorf("DeleteTenant after Close: %v", err)
	}
}
