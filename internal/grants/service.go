package grants

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// TenantReader reads tenants.
type TenantReader interface {
	Get(ctx context.Context, id string) (tenants.Tenant, error)
	List(ctx context.Context, p tenants.ListParams) ([]tenants.Tenant, error)
}

// Config wires a Service. Every field but Logger and Now is required.
type Config struct {
	Store       Store
	Catalog     Catalog
	Credentials CredentialIssuer
	Tenants     TenantReader
	// Placements reads where the tenant's catalogs and data are.
	Placements placement.Reader
	Logger     *slog.Logger
	Now        func() time.Time
}

// Service is the grants broker. It is safe for concurrent use; replicas
// coordinate through the Store only.
type Service struct {
	store      Store
	catalog    Catalog
	creds      CredentialIssuer
	tenants    TenantReader
	placements placement.Reader
	log        *slog.Logger
	now        func() time.Time
}

// NewService validates cfg and returns a Service.
func NewService(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Catalog == nil || cfg.Credentials == nil || cfg.Tenants == nil || cfg.Placements == nil {
		return nil, errors.New("grants: Store, Catalog, Credentials, Tenants and Placements are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		store: cfg.Store, catalog: cfg.Catalog, creds: cfg.Credentials, tenants: cfg.Tenants, placements: cfg.Placements,
		log: cfg.Logger, now: func() time.Time { return cfg.Now().UTC().Truncate(time.Microsecond) },
	}, nil
}

// Refusal is returned (wrapping a sentinel) when a request is refused; the
// refusal has been written to the audit log.
type Refusal struct {
	Err    error
	Detail string
}

func (r *Refusal) Error() string { return r.Err.Error() + ": " + r.Detail }
func (r *Refusal) Unwrap() error { return r.Err }

// record writes an event in its own transaction, for an act that changes
// nothing else in the database (a refusal, credentials issued by STS).
func (s *Service) record(ctx context.Context, e audit.Event) error {
	e.Time = s.now()
	return s.store.InTx(ctx, func(tx Tx) error { return tx.AuditAppend(ctx, e) })
}

// refuse records the request rec as refused (outcome "refused", the
// reason in its detail) and returns the Refusal. A refusal that cannot be
// recorded is logged: the request is refused all the same.
func (s *Service) refuse(ctx context.Context, rec audit.Event, target string, err error, detail string) error {
	rec.Outcome = outcomeRefused
	if e := s.record(ctx, rec.On(target).With("reason", detail)); e != nil {
		s.log.ErrorContext(ctx, "audit", "action", rec.Action, "tenant_id", rec.TenantID, "err", e)
	}
	return &Refusal{Err: err, Detail: detail}
}

// outcomeRefused is the outcome of a refused request's audit event.
const outcomeRefused = "refused"

// activeTenant returns the tenant if it may be granted access now.
func (s *Service) activeTenant(ctx context.Context, id string) (tenants.Tenant, error) {
	t, err := s.tenants.Get(ctx, id)
	if err != nil {
		return t, err
	}
	if t.Status != tenants.StatusActive {
		return t, &tenants.TransitionError{From: t.Status, Event: "grant access to"}
	}
	return t, nil
}

// RegisterPrincipal registers an AWS principal (account ID or role ARN)
// for the tenant. It returns the principal and whether it is new;
// ErrPrincipalTaken when another tenant has it.
func (s *Service) RegisterPrincipal(ctx context.Context, rec audit.Event, tenantID, principal string) (Principal, bool, error) {
	if _, err := s.tenants.Get(ctx, tenantID); err != nil {
		return Principal{}, false, err
	}
	if !ValidPrincipal(principal) {
		return Principal{}, false, &tenants.ValidationError{Field: "principal", Reason: "must be a 12-digit account ID or an IAM role ARN"}
	}
	if where, err := s.placements.TenantPlacements(ctx, tenantID); err != nil {
		return Principal{}, false, err
	} else if slices.ContainsFunc(where.Placements, func(p placement.Placement) bool {
		return p.PoolRole() == principal
	}) {
		return Principal{}, false, &tenants.ValidationError{Field: "principal", Reason: poolRoleReason(principal)}
	}
	if other := cairnRoleTenant(principal); other != "" && other != tenantID {
		// A principal belongs to one tenant: registered first by another,
		// the tenant's own role could not be (GrantOwnRole).
		return Principal{}, false, &tenants.ValidationError{Field: "principal",
			Reason: principal + " is a role Cairn manages for another tenant"}
	}
	var (
		out     Principal
		created bool
	)
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		out, created, err = tx.PrincipalInsert(ctx, Principal{TenantID: tenantID, Principal: principal, CreatedAt: s.now()})
		if err != nil || !created {
			return err
		}
		rec.Time = s.now()
		return tx.AuditAppend(ctx, rec.On(principal))
	})
	if errors.Is(err, ErrPrincipalTaken) {
		return Principal{}, false, s.refuse(ctx, rec, principal, ErrPrincipalTaken, "the principal is registered to another tenant")
	}
	return out, created, err
}

// cairnRoleTenant returns the tenant a role Cairn manages is for: the
// tenant ID in the name of a role under the path /cairn/ (a pooled
// tenant's own role, cairn-<tenant id>-<region>, or the data-access role
// of its dedicated stack, cairn-<tenant id>-...), "" for any other
// principal.
func cairnRoleTenant(principal string) string {
	_, name, ok := strings.Cut(principal, ":role/cairn/")
	if !ok {
		return ""
	}
	if m := tenantInRoleName.FindStringSubmatch(name[strings.LastIndex(name, "/")+1:]); m != nil {
		return m[1]
	}
	return ""
}

// tenantInRoleName finds a tenant ID at the start of a Cairn role's name,
// after "cairn-".
var tenantInRoleName = regexp.MustCompile(`^cairn-(ten_[a-z2-7]{26})`)

// poolRoleReason says why a pool's data-access role is refused as a
// tenant's principal: it acts for every pooled tenant of the pool, and
// Lake Formation would give each of them what it is granted.
func poolRoleReason(role string) string {
	return role + " is the pool's data-access role, which acts for every tenant of the pool: grant to a role of the tenant's own"
}

// Principals pages the tenant's principals.
func (s *Service) Principals(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]Principal, error) {
	if _, err := s.tenants.Get(ctx, tenantID); err != nil {
		return nil, err
	}
	return s.store.PrincipalList(ctx, tenantID, afterSeq, limit)
}

// ErrPrincipalInUse is returned by RemovePrincipal while grants to the
// principal are live.
var ErrPrincipalInUse = errors.New("principal has live grants")

// RemovePrincipal unregisters a principal that holds no live grant.
func (s *Service) RemovePrincipal(ctx context.Context, rec audit.Event, tenantID, principal string) error {
	live, err := s.store.GrantListLive(ctx, tenantID)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(live, func(g Grant) bool { return g.Principal == principal }) {
		return ErrPrincipalInUse
	}
	return s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.PrincipalDelete(ctx, tenantID, principal); err != nil {
			return err
		}
		rec.Time = s.now()
		return tx.AuditAppend(ctx, rec.On(principal))
	})
}

// GrantRequest asks for a grant.
type GrantRequest struct {
	TenantID    string
	Principal   string
	Resource    Resource
	Permissions []string
	// Audit is the request's audit event (its Actor is the token
	// subject); Admin whether the actor holds the admin scope.
	Audit audit.Event
	Admin bool
}

func (r GrantRequest) describe() string {
	parts := []string{r.Resource.Region, r.Resource.Database}
	if r.Resource.Table != "" {
		parts = append(parts, r.Resource.Table)
	}
	out := strings.Join(parts, "/")
	if len(r.Resource.Tags) > 0 {
		out += "[" + r.Resource.Tags.String() + "]"
	}
	return out
}

// catalogOf returns the tenant's Glue database in region and its kind, or
// placement.ErrNotReady when the tenant has no ready catalog there.
func (s *Service) catalogOf(ctx context.Context, t tenants.Tenant, region string) (placement.Placement, error) {
	if !slices.Contains(t.Regions, region) {
		return placement.Placement{}, ErrOutsideCatalog
	}
	where, err := s.placements.TenantPlacements(ctx, t.ID)
	if err != nil {
		return placement.Placement{}, err
	}
	if pl, err := where.In(region); err == nil && pl.GlueDatabase() != "" {
		return pl, nil
	}
	return placement.Placement{}, fmt.Errorf("catalog in %s: %w", region, placement.ErrNotReady)
}

// Grant records a grant as pending and queues the job that applies it, in
// one transaction. The same grant asked twice is one grant: it returns the
// existing one and false.
//
// The request is checked against Lake Formation's rules (rules.go) before
// anything is recorded: what Lake Formation would refuse is refused with a
// *tenants.ValidationError naming the field by its JSON Pointer, except a
// database-wide SELECT (or INSERT, DELETE), which Lake Formation has no
// database permission for and which is granted on every table of the
// database instead (a table wildcard). In a pooled tenant's catalog every
// grant on a table shared by the pool goes through the tenant's data cells
// filter, so grants that would reach past it (on all tables, or by tag
// policy) are refused. Refusals of another kind are audited and returned
// as *Refusal wrapping ErrUnregistered, ErrOutsideCatalog or ErrAdminOnly.
func (s *Service) Grant(ctx context.Context, req GrantRequest) (Grant, bool, error) {
	t, err := s.activeTenant(ctx, req.TenantID)
	if err != nil {
		return Grant{}, false, err
	}
	if len(req.Permissions) == 0 {
		return Grant{}, false, invalid("/permissions", "at least one permission")
	}
	for i, p := range req.Permissions {
		if !slices.Contains(AdminPermissions, p) {
			return Grant{}, false, invalid(fmt.Sprintf("/permissions/%d", i), "unknown permission %q", p)
		}
		if !req.Admin && !slices.Contains(TenantPermissions, p) {
			return Grant{}, false, s.refuse(ctx, req.Audit, req.describe(), ErrAdminOnly, p+" can only be granted by an admin")
		}
	}
	if _, err := s.store.PrincipalGet(ctx, t.ID, req.Principal); errors.Is(err, ErrNotFound) {
		return Grant{}, false, s.refuse(ctx, req.Audit, req.describe(), ErrUnregistered, "principal "+req.Principal+" is not registered for this tenant")
	} else if err != nil {
		return Grant{}, false, err
	}
	pl, err := s.catalogOf(ctx, t, req.Resource.Region)
	switch {
	case errors.Is(err, ErrOutsideCatalog):
		return Grant{}, false, s.refuse(ctx, req.Audit, req.describe(), ErrOutsideCatalog, "the tenant does not use Region "+req.Resource.Region)
	case err != nil:
		return Grant{}, false, err
	}
	pooled := pl.Kind == placement.Pooled
	// A pooled tenant's catalogs are its database and the pool's of the
	// lake tables its tenants share, which it reaches through its data
	// cells filters only.
	inPool := pooled && req.Resource.Database == provisioner.PoolGlueDatabase()
	if req.Resource.Database != pl.GlueDatabase() && !inPool {
		return Grant{}, false, s.refuse(ctx, req.Audit, req.describe(), ErrOutsideCatalog, "database "+req.Resource.Database+" is not the tenant's catalog")
	}
	if pooled && req.Principal == pl.PoolRole() {
		return Grant{}, false, invalid("/principal", "%s", poolRoleReason(req.Principal))
	}
	if err := checkShape(req); err != nil {
		return Grant{}, false, err
	}
	g := Grant{
		ID: ids.New("grt_"), TenantID: t.ID, Principal: req.Principal, Resource: req.Resource,
		Permissions: slices.Sorted(slices.Values(req.Permissions)), Status: StatusPending,
		CreatedBy: req.Audit.Actor, Version: 1, CreatedAt: s.now(), UpdatedAt: s.now(),
	}
	g.Permissions = slices.Compact(g.Permissions)
	if req.Resource.Table == "" && inPool {
		return Grant{}, false, invalid("/resource/table", "database %s holds every pooled tenant's lake tables: name a table, which is granted through the tenant's data cells filter", req.Resource.Database)
	}
	if req.Resource.Table == "" {
		if err := checkDatabaseWide(req, pooled); err != nil {
			return Grant{}, false, err
		}
	} else {
		tbl, err := s.catalog.Table(ctx, req.Resource.Region, req.Resource.Database, req.Resource.Table)
		if errors.Is(err, ErrNotFound) {
			return Grant{}, false, s.refuse(ctx, req.Audit, req.describe(), ErrOutsideCatalog, "no table "+req.Resource.Table+" in the tenant's catalog")
		}
		if err != nil {
			return Grant{}, false, fmt.Errorf("read table: %w", err)
		}
		for _, c := range req.Resource.Columns {
			if !slices.Contains(tbl.Columns, c) {
				return Grant{}, false, s.refuse(ctx, req.Audit, req.describe(), ErrOutsideCatalog, "no column "+c+" in table "+tbl.Name)
			}
		}
		if inPool && !tbl.Shared {
			return Grant{}, false, s.refuse(ctx, req.Audit, req.describe(), ErrOutsideCatalog, "table "+tbl.Name+" of the pool's database is not shared by the pool's tenants")
		}
		throughFilter := tbl.Shared && pooled
		if err := checkTable(req, tbl, pooled, throughFilter); err != nil {
			return Grant{}, false, err
		}
		if throughFilter {
			g.CellsFilter = CellsFilterName(t.ID, req.Resource.Columns)
			if len(req.Resource.Tags) > 0 {
				g.CellsFilter = TagCellsFilterName(t.ID, req.Resource.Tags)
				cols, err := s.taggedColumns(ctx, req.Resource)
				if err != nil {
					return Grant{}, false, err
				}
				if len(cols) == 0 {
					return Grant{}, false, invalid("/resource/tag", "no column of table %s carries these LF-tags (is the table classified?)", tbl.Name)
				}
			}
		}
	}

	var created bool
	err = s.store.InTx(ctx, func(tx Tx) error {
		var err error
		if g, created, err = tx.GrantInsert(ctx, g); err != nil || !created {
			return err
		}
		if err := tx.JobInsert(ctx, ApplyArgs{TenantID: g.TenantID, GrantID: g.ID}); err != nil {
			return err
		}
		rec := req.Audit.On(g.ID).With("principal", g.Principal).With("resource", req.describe()).With("permissions", strings.Join(g.Permissions, ","))
		if len(g.Resource.Tags) > 0 {
			rec = rec.With("tags", g.Resource.Tags.String())
		}
		rec.Time = s.now()
		return tx.AuditAppend(ctx, rec)
	})
	return g, created, err
}

// checkDatabaseWide checks a grant on the database. Its table permissions
// become a grant on every table (CatalogPermissions), and a tag grant an
// LF-tag policy: in a pooled tenant's catalog either would reach the rows
// of every pooled tenant in the tables the pool shares, past the tenant's
// data cells filters, so both are refused there.
func checkDatabaseWide(req GrantRequest, pooled bool) error {
	if !pooled {
		return nil
	}
	if len(req.Resource.Tags) > 0 {
		return invalid("/resource/table", "a tag grant on a pooled tenant's whole database would reach past its data cells filters to other tenants' rows: name a table")
	}
	for i, p := range req.Permissions {
		if !slices.Contains(databasePermissions, p) {
			return invalid(fmt.Sprintf("/permissions/%d", i), "%s on every table of a pooled tenant's database would reach past its data cells filters to other tenants' rows: grant it table by table", p)
		}
	}
	return nil
}

// checkTable checks a grant on table tbl (or its columns). Through the
// tenant's data cells filter (a table shared by the pool, in a pooled
// tenant's catalog) Lake Formation takes DESCRIBE, DROP and SELECT; the
// broker grants SELECT and DESCRIBE, as DROP on a filter would drop the
// filter. A tag grant on a table exists only through such a filter: Lake
// Formation's LF-tag policies name no table.
func checkTable(req GrantRequest, tbl Table, pooled, throughFilter bool) error {
	if throughFilter {
		for i, p := range req.Permissions {
			if p != "SELECT" && p != "DESCRIBE" {
				return invalid(fmt.Sprintf("/permissions/%d", i), "table %s holds every pooled tenant's rows: it is granted through the tenant's data cells filter, which takes SELECT and DESCRIBE only", tbl.Name)
			}
		}
		return nil
	}
	if len(req.Resource.Tags) > 0 {
		if pooled {
			// Nor on the whole database (checkDatabaseWide): a pooled
			// tenant's tag grants exist on shared tables only.
			return invalid("/resource/table", "table %s is not shared by the pool: name its columns (a pooled tenant's tag grants select the columns of a shared table)", tbl.Name)
		}
		return invalid("/resource/table", "a tag grant covers the tenant's whole database (Lake Formation's LF-tag policies name no table): leave the table out")
	}
	return nil
}

// CellsFilterName names the data cells filter that scopes a pooled
// tenant's grants on a shared table to its rows (and to columns, if any: a
// grant on a filter reaches exactly the filter's columns, so each column
// set has a filter of its own).
func CellsFilterName(tenantID string, columns []string) string {
	name := "cairn_rows_" + tenantID
	if len(columns) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(strings.Join(slices.Sorted(slices.Values(columns)), ",")))
	return name + "_" + hex.EncodeToString(sum[:4])
}

// TagCellsFilterName names the data cells filter of a pooled tenant's tag
// grant on a shared table: the tenant's rows, and the columns whose LF-tags
// match e (resolved when the grant is applied and at every reconcile, so
// the filter follows the table's classification).
func TagCellsFilterName(tenantID string, e TagExpression) string {
	sum := sha256.Sum256([]byte(e.String()))
	return "cairn_rows_" + tenantID + "_t" + hex.EncodeToString(sum[:4])
}

// RowFilter is the filter expression of that data cells filter: a PartiQL
// predicate on the shared table's tenant_id column. Tenant IDs are
// "ten_" and base32 characters; a quote is doubled all the same, so that
// no ID could ever end the string literal.
func RowFilter(tenantID string) string {
	return "tenant_id = '" + strings.ReplaceAll(tenantID, "'", "''") + "'"
}

// GetGrant returns the tenant's grant or ErrNotFound.
func (s *Service) GetGrant(ctx context.Context, tenantID, id string) (Grant, error) {
	return s.store.GrantGet(ctx, tenantID, id)
}

// Grants pages the tenant's grants.
func (s *Service) Grants(ctx context.Context, p GrantListParams) ([]Grant, error) {
	if _, err := s.tenants.Get(ctx, p.TenantID); err != nil {
		return nil, err
	}
	return s.store.GrantList(ctx, p)
}

// Revoke moves a grant to revoking and queues the job that revokes it in
// Lake Formation; the record stays as revoked. Revoking a revoked grant is
// a no-op.
func (s *Service) Revoke(ctx context.Context, rec audit.Event, tenantID, id string) (Grant, error) {
	var out Grant
	err := s.store.InTx(ctx, func(tx Tx) error {
		g, err := tx.GrantGet(ctx, tenantID, id)
		if err != nil {
			return err
		}
		if g.Status == StatusRevoked || g.Status == StatusRevoking {
			out = g
			return nil
		}
		g.Status, g.Reason = StatusRevoking, ""
		if out, err = tx.GrantUpdate(ctx, g); err != nil {
			return err
		}
		if err := tx.JobInsert(ctx, RevokeArgs{TenantID: tenantID, GrantID: id}); err != nil {
			return err
		}
		rec.Time = s.now()
		return tx.AuditAppend(ctx, rec.On(id))
	})
	return out, err
}
