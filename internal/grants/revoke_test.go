package grants_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
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
			b := openBackend(t, dbURL(t))
			tenant := activeTenant(t, b)
			catalog := &grants.LocalCatalog{Root: t.TempDir()}
			meet := &meetingStore{Store: b.Grants(), waiting: 2, met: make(chan struct{})}
			svc := localService(t, b, grants.Config{Store: meet, Catalog: catalog, Placements: placement.NewLocator(b)})
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

// openBackend opens and migrates a control-plane backend on dbURL (the
// embedded SQLite for "").
func openBackend(t *testing.T, dbURL string) store.Backend {
	t.Helper()
	b, err := backend.Open(t.Context(), dbURL, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

// localService is a grants service on b with the embedded default's
// credentials and b's tenants; cfg's Store is b's unless set, its Catalog
// a local one in a temporary directory unless set.
func localService(t *testing.T, b store.Backend, cfg grants.Config) *grants.Service {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = b.Grants()
	}
	if cfg.Catalog == nil {
		cfg.Catalog = &grants.LocalCatalog{Root: t.TempDir()}
	}
	cfg.Credentials, cfg.Tenants = grants.LocalCredentials{}, tenants.NewService(b, nil)
	svc, err := grants.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
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

// TestOrphanFiltersAreSwept: a data cells filter of a pooled tenant on
// the pool's shared tables that none of its grants goes through (a revoke
// cut short after it recorded its grant revoked, while another revoke
// through the filter ran) is deleted by the tenant's reconcile, which
// reports it; a filter a live grant goes through, and another tenant's,
// stay. Offboarding deletes every filter of the tenant.
func TestOrphanFiltersAreSwept(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := openBackend(t, "")
	const region = "eu-west-1"
	tenant := activeTenant(t, b)
	other := "ten_" + strings.Repeat("o", 26)
	catalog := &grants.LocalCatalog{Root: t.TempDir()}
	svc := localService(t, b, grants.Config{Catalog: catalog, Placements: slicesOf{region, map[string]string{"glue_database": "cairn_pool_" + tenant}}})
	pool := provisioner.PoolGlueDatabase()
	kept := grants.CellsFilterName(tenant, []string{"email"})
	for _, f := range []grants.CellsFilter{
		{Database: pool, Table: "tracks", Name: grants.CellsFilterName(tenant, nil), RowFilter: grants.RowFilter(tenant)}, // orphan
		{Database: pool, Table: "identifies", Name: kept, RowFilter: grants.RowFilter(tenant), Columns: []string{"email"}},
		{Database: pool, Table: "pages", Name: grants.TagCellsFilterName(tenant, grants.TagExpression{"cairn:pii": {"false"}}), RowFilter: grants.RowFilter(tenant)}, // orphan
		{Database: pool, Table: "tracks", Name: grants.CellsFilterName(other, nil), RowFilter: grants.RowFilter(other)},
	} {
		if err := catalog.EnsureCellsFilter(ctx, region, f); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	for _, g := range []grants.Grant{
		// The grant the orphan was made for, revoked.
		{ID: "grt_revoked", TenantID: tenant, Principal: "111111111111", Resource: grants.Resource{Region: region, Database: pool, Table: "tracks"},
			Permissions: []string{"SELECT"}, CellsFilter: grants.CellsFilterName(tenant, nil), Status: grants.StatusRevoked},
		// A live grant through the kept filter.
		{ID: "grt_live", TenantID: tenant, Principal: "111111111111", Resource: grants.Resource{Region: region, Database: pool, Table: "identifies", Columns: []string{"email"}},
			Permissions: []string{"SELECT"}, CellsFilter: kept, Status: grants.StatusPending},
	} {
		g.CreatedBy, g.Version, g.CreatedAt, g.UpdatedAt = "test", 1, now, now
		if err := b.Grants().InTx(ctx, func(tx grants.Tx) error {
			_, _, err := tx.GrantInsert(ctx, g)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}

	report, err := svc.Reconcile(ctx, audit.Event{}, tenant)
	if err != nil {
		t.Fatal(err)
	}
	var dropped []string
	for _, f := range report.Dropped {
		dropped = append(dropped, f.Table+"/"+f.Name)
	}
	slices.Sort(dropped)
	want := []string{"pages/" + grants.TagCellsFilterName(tenant, grants.TagExpression{"cairn:pii": {"false"}}), "tracks/" + grants.CellsFilterName(tenant, nil)}
	if !slices.Equal(dropped, want) {
		t.Fatalf("reconcile dropped %v, want %v", dropped, want)
	}
	if got := filterNames(t, catalog, region); !slices.Equal(got, slices.Sorted(slices.Values([]string{"cairn_rows_" + other, kept}))) {
		t.Fatalf("filters after the reconcile: %v", got)
	}
	// Nothing is left to sweep: a second reconcile drops nothing.
	if report, err := svc.Reconcile(ctx, audit.Event{}, tenant); err != nil || len(report.Dropped) != 0 {
		t.Fatalf("second reconcile: %+v, %v", report.Dropped, err)
	}

	// Offboarded, the tenant keeps no filter; the other tenant's stays.
	if err := b.InTx(ctx, func(tx tenants.Tx) error {
		tn, err := tx.TenantGet(ctx, tenant)
		if err != nil {
			return err
		}
		tn.Status, tn.Version = tenants.StatusDeprovisioning, tn.Version+1
		return tx.TenantUpdate(ctx, tn)
	}); err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeAll(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if got := filterNames(t, catalog, region); !slices.Equal(got, []string{"cairn_rows_" + other}) {
		t.Fatalf("filters after offboarding: %v", got)
	}
}

func filterNames(t *testing.T, c *grants.LocalCatalog, region string) []string {
	t.Helper()
	var names []string
	for _, f := range filters(t, c, region) {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return names
}

// slicesOf is a placement.Reader with one ready pooled placement of each
// tenant in region, with these outputs.
type slicesOf struct {
	region  string
	outputs map[string]string
}

func (p slicesOf) TenantPlacements(_ context.Context, id string) (placement.Tenant, error) {
	return placement.Tenant{ID: id, Tier: placement.Pooled, HomeRegion: p.region, Regions: []string{p.region},
		Placements: []placement.Placement{{Region: p.region, Kind: placement.Pooled, Ready: true, Outputs: p.outputs}}}, nil
}

// TestGrantOwnRoleLeavesWhatItCannotGrant: the refinery's call grants
// nothing, registers nothing and does not fail for a table the pool's
// catalog does not have yet, nor for a slice cut before pooled tenants had
// roles of their own (its data-access role is the pool's).
func TestGrantOwnRoleLeavesWhatItCannotGrant(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := openBackend(t, "")
	const region = "eu-west-1"
	tenant := activeTenant(t, b)
	poolRole := "arn:aws:iam::123456789012:role/cairn/cairn-pool-data-access"
	for name, out := range map[string]map[string]string{
		"own role, table not there": {"glue_database": "cairn_pool_" + tenant, "pool_role_arn": poolRole,
			"data_access_role_arn": "arn:aws:iam::123456789012:role/cairn/pooled/" + provisioner.TenantRoleName(tenant, region)},
		"older slice": {"glue_database": "cairn_pool_" + tenant, "data_access_role_arn": poolRole},
	} {
		svc := localService(t, b, grants.Config{Placements: slicesOf{region, out}})
		if err := svc.GrantOwnRole(ctx, tenant, region, []string{"tracks"}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if live, err := b.Grants().GrantListLive(ctx, tenant); err != nil || len(live) != 0 {
			t.Errorf("%s: grants %+v, %v", name, live, err)
		}
		if ps, err := b.Grants().PrincipalList(ctx, tenant, 0, 10); err != nil || len(ps) != 0 {
			t.Errorf("%s: principals %+v, %v", name, ps, err)
		}
	}
}

// TestCairnRolesOfOtherTenantsAreRefused: a principal belongs to one
// tenant, so a tenant cannot register a role Cairn manages for another
// (its own pooled role, its dedicated stack's data-access role), which
// would keep that tenant's own role from being registered; its own are
// registered.
func TestCairnRolesOfOtherTenantsAreRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := openBackend(t, "")
	tenant := activeTenant(t, b)
	other := "ten_" + strings.Repeat("b", 26)
	svc := localService(t, b, grants.Config{Placements: slicesOf{"eu-west-1", map[string]string{"glue_database": "cairn_pool_" + tenant}}})
	const account = "arn:aws:iam::123456789012:role"
	for _, tc := range []struct {
		principal string
		ok        bool
	}{
		{account + provisioner.TenantRolePath + provisioner.TenantRoleName(other, "eu-west-1"), false},
		{account + provisioner.TenantRolePath + provisioner.TenantRoleName(other, "us-east-1"), false},
		{account + "/cairn/cairn-" + other + "-DataAccessRole-1A2B3C", false},
		{account + provisioner.TenantRolePath + provisioner.TenantRoleName(tenant, "eu-west-1"), true},
		{account + "/cairn/cairn-" + tenant + "-DataAccessRole-1A2B3C", true},
		{account + "/analysts/cairn-" + other, true}, // not under /cairn/: the customer's own
	} {
		_, _, err := svc.RegisterPrincipal(ctx, audit.Event{Actor: "test"}, tenant, tc.principal)
		if verr, ok := errors.AsType[*tenants.ValidationError](err); tc.ok && err != nil || !tc.ok && (!ok || !strings.Contains(verr.Reason, "another tenant")) {
			t.Errorf("register %s: %v, want ok %t", tc.principal, err, tc.ok)
		}
	}
}

// TestGrantOwnRoleGrantsAndRetries: the refinery's call registers the
// tenant's own role and grants it SELECT on a table of the pool's shared
// database, through the tenant's filter, once however often it is made;
// a grant Lake Formation refused is applied again once it has been failed
// for an hour, not before.
func TestGrantOwnRoleGrantsAndRetries(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := openBackend(t, "")
	const region = "eu-west-1"
	tenant := activeTenant(t, b)
	role := "arn:aws:iam::123456789012:role/cairn/pooled/" + provisioner.TenantRoleName(tenant, region)
	catalog := &grants.LocalCatalog{Root: t.TempDir()}
	table := filepath.Join(catalog.Root, region, "catalog", provisioner.PoolGlueDatabase(), "tracks.json")
	if err := os.MkdirAll(filepath.Dir(table), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(table, []byte(`{"Name":"tracks","Columns":["tenant_id","event"],"Shared":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	svc := localService(t, b, grants.Config{Catalog: catalog, Now: func() time.Time { return now },
		Placements: slicesOf{region, map[string]string{"glue_database": "cairn_pool_" + tenant, "data_access_role_arn": role,
			"pool_role_arn": "arn:aws:iam::123456789012:role/cairn/cairn-pool-data-access"}}})
	own := func() grants.Grant {
		t.Helper()
		live, err := b.Grants().GrantListLive(ctx, tenant)
		if err != nil || len(live) != 1 {
			t.Fatalf("grants: %+v, %v; want the own role's one", live, err)
		}
		return live[0]
	}
	for range 2 {
		if err := svc.GrantOwnRole(ctx, tenant, region, []string{"tracks"}); err != nil {
			t.Fatal(err)
		}
	}
	g := own()
	if g.Principal != role || g.Status != grants.StatusPending || g.CellsFilter != grants.CellsFilterName(tenant, nil) || g.CreatedBy != "cairn" {
		t.Fatalf("the own role's grant: %+v", g)
	}
	// Refused by Lake Formation: failed, and left so for an hour.
	g.Status, g.Reason = grants.StatusFailed, "AccessDeniedException"
	if err := b.Grants().InTx(ctx, func(tx grants.Tx) error { _, err := tx.GrantUpdate(ctx, g); return err }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after time.Duration
		want  grants.Status
	}{{59 * time.Minute, grants.StatusFailed}, {61 * time.Minute, grants.StatusPending}} {
		now = own().UpdatedAt.Add(tc.after)
		if err := svc.GrantOwnRole(ctx, tenant, region, []string{"tracks"}); err != nil {
			t.Fatal(err)
		}
		if got := own(); got.Status != tc.want {
			t.Fatalf("%s after it failed: %s, want %s", tc.after, got.Status, tc.want)
		}
	}
}
