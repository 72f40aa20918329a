package grants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// ApplyArgs applies a pending grant in the Catalog.
type ApplyArgs struct {
	TenantID string `json:"tenant_id"`
	GrantID  string `json:"grant_id"`
}

// Kind implements river.JobArgs.
func (ApplyArgs) Kind() string { return "grant_apply" }

// RevokeArgs revokes a revoking grant in the Catalog.
type RevokeArgs struct {
	TenantID string `json:"tenant_id"`
	GrantID  string `json:"grant_id"`
}

// Kind implements river.JobArgs.
func (RevokeArgs) Kind() string { return "grant_revoke" }

// ReconcileArgs compares the Catalog with the ledger for one tenant.
type ReconcileArgs struct {
	TenantID string `json:"tenant_id"`
}

// Kind implements river.JobArgs.
func (ReconcileArgs) Kind() string { return "grant_reconcile" }

// ReconcileAllArgs is the periodic drift check: it queues a reconcile for
// every active tenant.
type ReconcileAllArgs struct{}

// Kind implements river.JobArgs.
func (ReconcileAllArgs) Kind() string { return "grant_reconcile_all" }

// ReconcileInterval is how often every active tenant's grants are compared
// with Lake Formation.
const ReconcileInterval = time.Hour

// PeriodicJobs returns the drift check.
func (s *Service) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(ReconcileInterval),
		func() (river.JobArgs, *river.InsertOpts) { return ReconcileAllArgs{}, nil }, nil)}
}

// reconcileAll queues a reconcile job per active tenant, a page at a time.
func (s *Service) reconcileAll(ctx context.Context) error {
	var after int64
	for {
		list, err := s.tenants.List(ctx, tenants.ListParams{Status: tenants.StatusActive, AfterSeq: after, Limit: 200})
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		err = s.store.InTx(ctx, func(tx Tx) error {
			for _, t := range list {
				if err := tx.JobInsert(ctx, ReconcileArgs{TenantID: t.ID}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		after = list[len(list)-1].Seq
	}
}

// maxApplyAttempts bounds how often a grant is tried before it is marked
// failed with the Catalog's reason.
const maxApplyAttempts = 5

// Register adds the broker's workers. The tenant lifecycle's access sync
// job (tenants.AccessSyncArgs) is worked here too.
func (s *Service) Register(w *river.Workers) {
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, job *river.Job[ApplyArgs]) error {
		return s.apply(ctx, job.Args.TenantID, job.Args.GrantID, job.Attempt >= maxApplyAttempts)
	}))
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, job *river.Job[RevokeArgs]) error {
		return s.revoke(ctx, job.Args.TenantID, job.Args.GrantID)
	}))
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, job *river.Job[ReconcileArgs]) error {
		_, err := s.Reconcile(ctx, audit.Event{}, job.Args.TenantID)
		if errors.Is(err, tenants.ErrNotFound) {
			return nil
		}
		return err
	}))
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, _ *river.Job[ReconcileAllArgs]) error {
		return s.reconcileAll(ctx)
	}))
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, job *river.Job[tenants.AccessSyncArgs]) error {
		return s.Sync(ctx, job.Args.TenantID)
	}))
}

// put applies g in the Catalog: its data cells filter first (with the
// columns its tags select, for a tag grant), the LF-tags its tag policy
// needs, then each of its permissions (CatalogPermissions).
func (s *Service) put(ctx context.Context, g Grant) error {
	if g.CellsFilter != "" {
		if err := s.ensureFilter(ctx, g); err != nil {
			return err
		}
	} else if len(g.Resource.Tags) > 0 {
		if err := s.tagDatabase(ctx, g.Resource.Region, g.Resource.Database); err != nil {
			return err
		}
	}
	for _, p := range CatalogPermissions(g) {
		if err := s.catalog.Grant(ctx, g.Resource.Region, p); err != nil {
			return err
		}
	}
	return nil
}

// ensureFilter creates g's data cells filter, or brings it back to the
// tenant's rows and g's columns (those its tags select, for a tag grant).
func (s *Service) ensureFilter(ctx context.Context, g Grant) error {
	cols := g.Resource.Columns
	if len(g.Resource.Tags) > 0 {
		var err error
		if cols, err = s.taggedColumns(ctx, g.Resource); err != nil {
			return err
		}
		if len(cols) == 0 {
			return fmt.Errorf("data cells filter %s: %w: no column of %s carries %s", g.CellsFilter, errNoTaggedColumn, g.Resource.Table, g.Resource.Tags)
		}
	}
	f := CellsFilter{
		Database: g.Resource.Database, Table: g.Resource.Table, Name: g.CellsFilter,
		RowFilter: RowFilter(g.TenantID), Columns: cols,
	}
	if err := s.catalog.EnsureCellsFilter(ctx, g.Resource.Region, f); err != nil {
		return fmt.Errorf("data cells filter: %w", err)
	}
	return nil
}

// errNoTaggedColumn: no column of a tag grant's table carries its tags
// (any more), and a data cells filter cannot have no column.
var errNoTaggedColumn = errors.New("no column carries the tags")

// take revokes every permission of g from the Catalog.
func (s *Service) take(ctx context.Context, g Grant) error {
	for _, p := range CatalogPermissions(g) {
		if err := s.catalog.Revoke(ctx, g.Resource.Region, p); err != nil {
			return err
		}
	}
	return nil
}

// setStatus records a grant's new status with an audit event, unless a
// concurrent change got there first.
func (s *Service) setStatus(ctx context.Context, g Grant, status Status, reason, action string) error {
	err := s.store.InTx(ctx, func(tx Tx) error {
		g.Status, g.Reason = status, reason
		if _, err := tx.GrantUpdate(ctx, g); err != nil {
			return err
		}
		detail := map[string]string{}
		if reason != "" {
			detail["reason"] = reason
		}
		return tx.AuditAppend(ctx, audit.Event{Time: s.now(), TenantID: g.TenantID, Actor: audit.ActorCairn, Action: action,
			TargetType: "grant", TargetID: g.ID, Outcome: string(status), Detail: detail})
	})
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

func (s *Service) apply(ctx context.Context, tenantID, id string, last bool) error {
	g, err := s.store.GrantGet(ctx, tenantID, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil || g.Status != StatusPending {
		return err
	}
	t, err := s.tenants.Get(ctx, tenantID)
	if err != nil {
		return err
	}
	if t.Status == tenants.StatusSuspended {
		return s.setStatus(ctx, g, StatusSuspended, "", "grant.suspend")
	}
	if err := s.put(ctx, g); err != nil {
		if last {
			return s.setStatus(ctx, g, StatusFailed, err.Error(), "grant.apply")
		}
		return fmt.Errorf("grant %s: %w", id, err)
	}
	return s.setStatus(ctx, g, StatusActive, "", "grant.apply")
}

func (s *Service) revoke(ctx context.Context, tenantID, id string) error {
	g, err := s.store.GrantGet(ctx, tenantID, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if g.Status == StatusRevoked {
		// Retried after the grant was recorded revoked: the filter may
		// still be there if another revoke through it ran alongside.
		return s.dropFilters(ctx, tenantID, []Grant{g})
	}
	if g.Status != StatusRevoking {
		return nil
	}
	if err := s.take(ctx, g); err != nil {
		return fmt.Errorf("revoke %s: %w", id, err)
	}
	// The filters first: a revoke retried after a crash finds the grant
	// still revoking, never revoked with its filter left.
	if err := s.dropFilters(ctx, tenantID, []Grant{g}); err != nil {
		return err
	}
	if err := s.setStatus(ctx, g, StatusRevoked, "", "grant.revoked"); err != nil {
		return err
	}
	return s.dropFilters(ctx, tenantID, []Grant{g})
}

// dropFilters deletes the data cells filters of grants being revoked that
// no other grant of the tenant still goes through (one revoking counts as
// going through it: its own revoke drops it). A filter lives on its
// shared table, which outlives the tenant's grants (the pool's database
// stays), so a filter left would name the tenant there for good.
//
// A revoke calls it before and again after it records the grant revoked.
// Two revokes through one filter at once can each see the other still
// revoking before either is recorded, and leave the filter to the other;
// after, the one recorded last sees the other revoked and drops it.
func (s *Service) dropFilters(ctx context.Context, tenantID string, revoked []Grant) error {
	if !slices.ContainsFunc(revoked, func(g Grant) bool { return g.CellsFilter != "" }) {
		return nil
	}
	live, err := s.store.GrantListLive(ctx, tenantID)
	if err != nil {
		return fmt.Errorf("drop data cells filters: %w", err)
	}
	done := map[string]bool{}
	for _, g := range revoked {
		key := g.Resource.Region + "/" + g.Resource.Database + "/" + g.Resource.Table + "/" + g.CellsFilter
		if g.CellsFilter == "" || done[key] {
			continue
		}
		done[key] = true
		if slices.ContainsFunc(live, func(o Grant) bool {
			return o.ID != g.ID && o.Status != StatusRevoked && o.CellsFilter == g.CellsFilter &&
				o.Resource.Region == g.Resource.Region && o.Resource.Database == g.Resource.Database && o.Resource.Table == g.Resource.Table
		}) {
			continue
		}
		if err := s.catalog.DeleteCellsFilter(ctx, g.Resource.Region, g.Resource.Database, g.Resource.Table, g.CellsFilter); err != nil {
			return fmt.Errorf("drop data cells filter %s: %w", g.CellsFilter, err)
		}
	}
	return nil
}

// Sync brings the Catalog in line with the tenant's lifecycle: a suspended
// tenant's grants are taken out of the Catalog (kept in the ledger as
// suspended), a resumed tenant's are restored, and an offboarded tenant's
// are revoked for good.
func (s *Service) Sync(ctx context.Context, tenantID string) error {
	t, err := s.tenants.Get(ctx, tenantID)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	live, err := s.store.GrantListLive(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, g := range live {
		switch {
		case !t.Status.Live() && g.Status != StatusRevoked:
			if err := s.take(ctx, g); err != nil {
				return fmt.Errorf("revoke %s: %w", g.ID, err)
			}
			// The last of the tenant's grants through a filter drops it,
			// before it counts as revoked (see revoke).
			if err := s.dropFilters(ctx, tenantID, []Grant{g}); err != nil {
				return err
			}
			if err := s.setStatus(ctx, g, StatusRevoked, "tenant offboarded", "grant.revoked"); err != nil {
				return err
			}
			if err := s.dropFilters(ctx, tenantID, []Grant{g}); err != nil {
				return err
			}
		case t.Status == tenants.StatusSuspended && (g.Status == StatusActive || g.Status == StatusPending):
			if err := s.take(ctx, g); err != nil {
				return fmt.Errorf("suspend %s: %w", g.ID, err)
			}
			if err := s.setStatus(ctx, g, StatusSuspended, "tenant suspended", "grant.suspend"); err != nil {
				return err
			}
		case t.Status == tenants.StatusActive && g.Status == StatusSuspended:
			if err := s.put(ctx, g); err != nil {
				return fmt.Errorf("restore %s: %w", g.ID, err)
			}
			if err := s.setStatus(ctx, g, StatusActive, "", "grant.restore"); err != nil {
				return err
			}
		}
	}
	return nil
}

// RevokeAll takes every grant of an offboarded tenant out of the Catalog,
// then releases its principals, so that the customer's AWS accounts and
// roles can be registered to another tenant (a tenant onboarded again for
// the same customer). Offboarding calls it before the tenant's resources
// go, on every run of its job: both steps are idempotent. A tenant that is
// live again keeps its principals.
func (s *Service) RevokeAll(ctx context.Context, tenantID string) error {
	if err := s.Sync(ctx, tenantID); err != nil {
		return err
	}
	t, err := s.tenants.Get(ctx, tenantID)
	if errors.Is(err, tenants.ErrNotFound) {
		return nil
	}
	if err != nil || t.Status.Live() {
		return err
	}
	for _, region := range t.Regions {
		if _, err := s.sweepFilters(ctx, tenantID, region); err != nil {
			return err
		}
	}
	return s.releasePrincipals(ctx, tenantID)
}

// sweepFilters drops the tenant's data cells filters on the pool's shared
// tables in region that none of its grants goes through, and returns them:
// one left behind when a revoke was cut short between recording its grant
// revoked and its second drop while another revoke through the filter ran
// (see dropFilters), or, for an offboarded tenant, every one. A filter
// names the tenant on a table that outlives it, so one left would stay for
// good. The filters are listed before the grants are read: a filter is made
// only for a grant already recorded, so one that a grant recorded before
// the listing goes through is never taken for an orphan. A grant recorded
// since, through a filter of the same name left behind, can see it
// deleted under it; the next reconcile puts it back (Repaired).
func (s *Service) sweepFilters(ctx context.Context, tenantID, region string) ([]CellsFilter, error) {
	filters, err := s.catalog.CellsFilters(ctx, region, provisioner.PoolGlueDatabase())
	if errors.Is(err, ErrNotFound) { // no pool in the Region, or before its first lake run
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list data cells filters in %s: %w", region, err)
	}
	prefix := CellsFilterName(tenantID, nil)
	filters = slices.DeleteFunc(filters, func(f CellsFilter) bool {
		return f.Name != prefix && !strings.HasPrefix(f.Name, prefix+"_")
	})
	if len(filters) == 0 {
		return nil, nil
	}
	live, err := s.store.GrantListLive(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("sweep data cells filters: %w", err)
	}
	var dropped []CellsFilter
	for _, f := range filters {
		if slices.ContainsFunc(live, func(g Grant) bool {
			return g.Status != StatusRevoked && g.CellsFilter == f.Name &&
				g.Resource.Region == region && g.Resource.Database == f.Database && g.Resource.Table == f.Table
		}) {
			continue
		}
		if err := s.catalog.DeleteCellsFilter(ctx, region, f.Database, f.Table, f.Name); err != nil {
			return dropped, fmt.Errorf("drop data cells filter %s: %w", f.Name, err)
		}
		dropped = append(dropped, f)
	}
	return dropped, nil
}

// releasePrincipals unregisters every principal of an offboarded tenant,
// each with an audit event, a page at a time.
func (s *Service) releasePrincipals(ctx context.Context, tenantID string) error {
	for {
		list, err := s.store.PrincipalList(ctx, tenantID, 0, 100)
		if err != nil || len(list) == 0 {
			return err
		}
		for _, p := range list {
			err := s.store.InTx(ctx, func(tx Tx) error {
				if err := tx.PrincipalDelete(ctx, tenantID, p.Principal); err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				return tx.AuditAppend(ctx, audit.Event{Time: s.now(), TenantID: tenantID, Actor: audit.ActorCairn, Action: "principal.release",
					TargetType: "principal", TargetID: p.Principal, Outcome: audit.OutcomeOK, Detail: map[string]string{"reason": "tenant offboarded"}})
			})
			if err != nil {
				return fmt.Errorf("release principal %s: %w", p.Principal, err)
			}
		}
	}
}

// ReconcileReport is what a reconcile found and did.
type ReconcileReport struct {
	// Repaired are active grants missing from the Catalog, applied again.
	Repaired []string
	// Unmanaged are permissions on the tenant's resources that no grant of
	// the broker accounts for; they are reported, not removed.
	Unmanaged []Permission
	// Regions are the Regions checked.
	Regions []string
	// Dropped are data cells filters of the tenant on the pool's shared
	// tables that none of its grants went through, deleted (sweepFilters).
	Dropped []DroppedFilter
}

// DroppedFilter is a data cells filter a reconcile deleted.
type DroppedFilter struct {
	Region, Database, Table, Name string
}

// sameResource reports whether two permissions are on the same Lake
// Formation resource.
func sameResource(a, b Permission) bool {
	return a.Resource.Database == b.Resource.Database && a.Resource.Table == b.Resource.Table &&
		a.AllTables == b.AllTables && a.CellsFilter == b.CellsFilter &&
		sameSet(a.Resource.Columns, b.Resource.Columns) && a.Resource.Tags.Equal(b.Resource.Tags)
}

// covers reports whether the Catalog's permission p carries want: on the
// same resource, with every permission of want.
func covers(p Permission, want Permission) bool {
	if p.Principal != want.Principal || !sameResource(p, want) {
		return false
	}
	for _, perm := range want.Permissions {
		if !slices.Contains(p.Permissions, perm) {
			return false
		}
	}
	return true
}

// inCatalog reports whether every permission of g is in perms.
func inCatalog(perms []Permission, g Grant) bool {
	for _, want := range CatalogPermissions(g) {
		if !slices.ContainsFunc(perms, func(p Permission) bool { return covers(p, want) }) {
			return false
		}
	}
	return true
}

// managed reports whether the Catalog's permission p carries a permission
// of one of the grants.
func managed(p Permission, grants []Grant) bool {
	return slices.ContainsFunc(grants, func(g Grant) bool {
		return g.Status != StatusRevoked && slices.ContainsFunc(CatalogPermissions(g), func(want Permission) bool { return covers(p, want) })
	})
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// Reconcile compares the Catalog's permissions on the tenant's databases
// with the ledger: active grants that are missing are applied again, and
// permissions that exist outside the broker are reported.
func (s *Service) Reconcile(ctx context.Context, rec audit.Event, tenantID string) (ReconcileReport, error) {
	t, err := s.tenants.Get(ctx, tenantID)
	if err != nil {
		return ReconcileReport{}, err
	}
	live, err := s.store.GrantListLive(ctx, tenantID)
	if err != nil {
		return ReconcileReport{}, err
	}
	var report ReconcileReport
	for _, region := range t.Regions {
		pl, err := s.catalogOf(ctx, t, region)
		if errors.Is(err, placement.ErrNotReady) {
			continue
		}
		if err != nil {
			return report, err
		}
		if pl.Kind == placement.Pooled {
			// Before the permissions are listed: deleting a filter takes
			// the permissions on it along.
			dropped, err := s.sweepFilters(ctx, tenantID, region)
			for _, f := range dropped {
				report.Dropped = append(report.Dropped, DroppedFilter{Region: region, Database: f.Database, Table: f.Table, Name: f.Name})
			}
			if err != nil {
				return report, err
			}
		}
		db := pl.GlueDatabase()
		perms, err := s.catalog.Permissions(ctx, region, db)
		if err != nil {
			return report, fmt.Errorf("list permissions in %s: %w", region, err)
		}
		if pl.Kind == placement.Pooled {
			// The pool's shared tables: the tenant's permissions there are
			// those through its data cells filters; the other tenants'
			// are theirs.
			shared, err := s.catalog.Permissions(ctx, region, provisioner.PoolGlueDatabase())
			if err != nil && !errors.Is(err, ErrNotFound) { // none before the pool's first lake run
				return report, fmt.Errorf("list permissions in %s: %w", region, err)
			}
			for _, p := range shared {
				if strings.HasPrefix(p.CellsFilter, CellsFilterName(tenantID, nil)) {
					perms = append(perms, p)
				}
			}
		}
		report.Regions = append(report.Regions, region)
		var mine []Grant
		for _, g := range live {
			if g.Resource.Region == region {
				mine = append(mine, g)
			}
		}
		// LF-tag policies are listed one by one: Lake Formation keeps them
		// for the whole catalog, so only those of the tenant's grants are
		// checked, and one made outside the broker is not seen.
		seen := map[string]bool{}
		for _, g := range mine {
			for _, want := range CatalogPermissions(g) {
				e := want.Resource.Tags
				if len(e) == 0 || want.CellsFilter != "" || seen[e.String()] {
					continue
				}
				seen[e.String()] = true
				more, err := s.catalog.TagPolicyPermissions(ctx, region, e)
				if err != nil {
					return report, fmt.Errorf("list permissions on LF-tag policy %s in %s: %w", e, region, err)
				}
				perms = append(perms, more...)
			}
		}
		for _, g := range mine {
			if g.Status != StatusActive {
				continue
			}
			if g.CellsFilter != "" && len(g.Resource.Tags) > 0 {
				// The columns a tag grant selects follow the table's
				// classification. When none is left, the filter, which
				// cannot be emptied, would keep showing columns the tags no
				// longer select: the grant is taken away instead.
				err := s.ensureFilter(ctx, g)
				if errors.Is(err, errNoTaggedColumn) {
					if err := s.take(ctx, g); err != nil {
						return report, fmt.Errorf("take %s: %w", g.ID, err)
					}
					if err := s.setStatus(ctx, g, StatusFailed, err.Error(), "grant.apply"); err != nil {
						return report, err
					}
					continue
				}
				if err != nil {
					return report, fmt.Errorf("refresh %s: %w", g.ID, err)
				}
			}
			if inCatalog(perms, g) {
				continue
			}
			if err := s.put(ctx, g); err != nil {
				return report, fmt.Errorf("repair %s: %w", g.ID, err)
			}
			report.Repaired = append(report.Repaired, g.ID)
		}
		for _, p := range perms {
			if !managed(p, mine) {
				report.Unmanaged = append(report.Unmanaged, p)
			}
		}
	}
	// The repairs were made in the Catalog (Lake Formation), outside the
	// database; the reconcile is recorded once it is done. A periodic
	// reconcile (a zero rec) records nothing.
	rec = rec.On(tenantID).With("repaired", strings.Join(report.Repaired, ",")).With("unmanaged", fmt.Sprint(len(report.Unmanaged)))
	if len(report.Dropped) > 0 {
		var names []string
		for _, f := range report.Dropped {
			names = append(names, f.Region+"/"+f.Database+"."+f.Table+"/"+f.Name)
		}
		rec = rec.With("dropped_filters", strings.Join(names, ","))
	}
	if err := s.record(ctx, rec); err != nil {
		return report, fmt.Errorf("record reconcile: %w", err)
	}
	return report, nil
}
