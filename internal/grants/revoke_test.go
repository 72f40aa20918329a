package grants_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/backend"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// meetingStore holds the first n reads of a tenant's live grants until all
// n have read, so that n revokes each read while the others are still
// revoking, as revoke jobs running at once can.
type meetingStore struct {
	grants.Store
	mu      sync.Mutex
	waiting int
	met     chan struct{}
}

func (m *meetingStore) GrantListLive(ctx context.Context, tenantID string) ([]grants.Grant, error) {
	live, err := m.Store.GrantListLive(ctx, tenantID)
	m.mu.Lock()
	if m.waiting == 0 {
		m.mu.Unlock()
		return live, err
	}
	m.waiting--
	if m.waiting == 0 {
		close(m.met)
	}
	m.mu.Unlock()
	select {
	case <-m.met:
	case <-time.After(10 * time.Second):
	}
	return live, err
}

// TestConcurrentRevokesDropTheirSharedFilter: two grants of a pooled
// tenant through one data cells filter, revoked at once, leave no filter
// behind on the shared table; nor does a revoke retried after it recorded
// its grant revoked.
func TestConcurrentRevokesDropTheirSharedFilter(t *testing.T) {
	t.Parallel()
	for name, dbURL := range map[string]func(t *testing.T) string{
		"sqlite":   func(*testing.T) string { return "" },
		"postgres": testdb.Postgres,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			b, err := backend.Open(ctx, dbURL(t), t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			if err := b.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			tenant := activeTenant(t, b)
			catalog := &grants.LocalCatalog{Root: t.TempDir()}
			meet := &meetingStore{Store: b.Grants(), waiting: 2, met: make(chan struct{})}
			svc, err := grants.NewService(grants.Config{Store: meet, Catalog: catalog, Credentials: grants.LocalCredentials{},
				Tenants: tenants.NewService(b, nil), Placements: placement.NewLocator(b)})
			if err != nil {
				t.Fatal(err)
			}
			const region, db, table = "eu-west-1", "cairn_pool_eu", "events"
			filter := grants.CellsFilterName(tenant, nil)
			if err := catalog.EnsureCellsFilter(ctx, region, grants.CellsFilter{Database: db, Table: table, Name: filter,
				RowFilter: grants.RowFilter(tenant)}); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, principal := range []string{"111111111111", "222222222222"} {
				g := grants.Grant{ID: "grt_" + principal, TenantID: tenant, Principal: principal,
					Resource:    grants.Resource{Region: region, Database: db, Table: table},
					Permissions: []string{"SELECT"}, CellsFilter: filter, Status: grants.StatusRevoking,
					CreatedBy: "test", Version: 1, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
				if err := b.Grants().InTx(ctx, func(tx grants.Tx) error {
					_, _, err := tx.GrantInsert(ctx, g)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, g.ID)
			}

			var wg sync.WaitGroup
			errs := make([]error, len(ids))
			for i, id := range ids {
				wg.Go(func() { errs[i] = svc.RunRevoke(ctx, tenant, id) })
			}
			wg.Wait()
			for i, id := range ids {
				if errs[i] != nil {
					t.Fatalf("revoke %s: %v", id, errs[i])
				}
				if g, err := b.Grants().GrantGet(ctx, tenant, id); err != nil || g.Status != grants.StatusRevoked {
					t.Fatalf("grant %s after its revoke: %+v, %v", id, g, err)
				}
			}
			if fs := filters(t, catalog, region); len(fs) != 0 {
				t.Fatalf("two revokes at once left the tenant's filter on the shared table: %+v", fs)
			}

			// A revoke retried after it recorded the grant revoked, with the
			// filter still there, drops it.
			if err := catalog.EnsureCellsFilter(ctx, region, grants.CellsFilter{Database: db, Table: table, Name: filter,
				RowFilter: grants.RowFilter(tenant)}); err != nil {
				t.Fatal(err)
			}
			if err := svc.RunRevoke(ctx, tenant, ids[0]); err != nil {
				t.Fatal(err)
			}
			if fs := filters(t, catalog, region); len(fs) != 0 {
				t.Fatalf("a retried revoke left the filter: %+v", fs)
			}
		})
	}
}

func filters(t *testing.T, c *grants.LocalCatalog, region string) []grants.CellsFilter {
	t.Helper()
	fs, err := c.Filters(region)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// activeTenant stores an active pooled tenant.
func activeTenant(t *testing.T, b store.Backend) string {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	tn := tenants.Tenant{ID: tenants.NewID(), Slug: "race-co", Name: "Race Co", Tier: tenants.TierPooled,
		Status: tenants.StatusActive, HomeRegion: "eu-west-1", Regions: []string{"eu-west-1"}, Plan: "growth",
		ContactEmail: "ops@example.com", Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := b.InTx(t.Context(), func(tx tenants.Tx) error {
		_, err := tx.TenantInsert(t.Context(), tn)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return tn.ID
}
