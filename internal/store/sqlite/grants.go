package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

var (
	_ grants.Store = (*grantsStore)(nil)
	_ grants.Tx    = (*grantsTx)(nil)
)

// Grants implements store.Backend: the grants broker's store on this
// database. It is a type of its own because *DB's InTx is tenants.Store's.
func (d *DB) Grants() grants.Store { return &grantsStore{d: d} }

// grantsStore implements grants.Store. It is safe for concurrent use:
// statements and transactions run one at a time (see the package doc).
//
// Of the list methods, a limit <= 0 means no limit (grants' list
// parameters filter nothing when zero). An empty JSON array or object
// reads back as nil.
type grantsStore struct{ d *DB }

// InTx implements grants.Store. It returns fn's error as is.
func (s *grantsStore) InTx(ctx context.Context, fn func(grants.Tx) error) error {
	return s.d.withTx(ctx, func(sqlTx *sql.Tx) error {
		return fn(&grantsTx{sqlTx: sqlTx, queries: s.d.queries.WithTx(sqlTx), jobs: s.d.jobs})
	})
}

// PrincipalGet implements grants.Store.
func (s *grantsStore) PrincipalGet(ctx context.Context, tenantID, principal string) (grants.Principal, error) {
	row, err := s.d.queries.PrincipalGet(ctx, db.PrincipalGetParams{TenantID: tenantID, Principal: principal})
	if err != nil {
		return grants.Principal{}, fmt.Errorf("get principal: %w", translateGrants(err))
	}
	p, err := principalFromRow(row)
	if err != nil {
		return grants.Principal{}, fmt.Errorf("get principal: %w", err)
	}
	return p, nil
}

// PrincipalList implements grants.Store.
func (s *grantsStore) PrincipalList(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]grants.Principal, error) {
	rows, err := s.d.queries.PrincipalList(ctx, db.PrincipalListParams{
		TenantID: tenantID,
		AfterSeq: afterSeq,
		MaxRows:  maxRows(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list principals: %w", translateGrants(err))
	}
	out := make([]grants.Principal, 0, len(rows))
	for _, r := range rows {
		p, err := principalFromRow(r)
		if err != nil {
			return nil, fmt.Errorf("list principals: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// GrantGet implements grants.Store.
func (s *grantsStore) GrantGet(ctx context.Context, tenantID, id string) (grants.Grant, error) {
	return grantGet(ctx, s.d.queries, tenantID, id)
}

// GrantList implements grants.Store. An empty TenantID lists every
// tenant's grants.
func (s *grantsStore) GrantList(ctx context.Context, p grants.GrantListParams) ([]grants.Grant, error) {
	rows, err := s.d.queries.GrantList(ctx, db.GrantListParams{
		AfterSeq:  p.AfterSeq,
		TenantID:  p.TenantID,
		Principal: p.Principal,
		Status:    string(p.Status),
		MaxRows:   maxRows(p.Limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", translateGrants(err))
	}
	out, err := grantsFromRows(rows)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	return out, nil
}

// GrantListLive implements grants.Store.
func (s *grantsStore) GrantListLive(ctx context.Context, tenantID string) ([]grants.Grant, error) {
	rows, err := s.d.queries.GrantListLive(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list live grants: %w", translateGrants(err))
	}
	out, err := grantsFromRows(rows)
	if err != nil {
		return nil, fmt.Errorf("list live grants: %w", err)
	}
	return out, nil
}

// grantsTx is the grants.Tx of one InTx call.
type grantsTx struct {
	sqlTx   *sql.Tx
	queries *db.Queries
	jobs    *river.Client[*sql.Tx]
}

// PrincipalInsert implements grants.Tx. A zero CreatedAt means now. The
// transaction holds the database's write lock, so the principal read after
// an insert that found it registered is the one the insert found.
func (t *grantsTx) PrincipalInsert(ctx context.Context, p grants.Principal) (grants.Principal, bool, error) {
	createdAt, _ := insertTimes(p.CreatedAt, time.Time{})
	row, err := t.queries.PrincipalInsert(ctx, db.PrincipalInsertParams{
		TenantID:  p.TenantID,
		Principal: p.Principal,
		CreatedAt: createdAt,
	})
	inserted := err == nil
	if errors.Is(err, sql.ErrNoRows) {
		row, err = t.queries.PrincipalGetAnyTenant(ctx, p.Principal)
		if err == nil && row.TenantID != p.TenantID {
			return grants.Principal{}, false, fmt.Errorf("insert principal: %w", grants.ErrPrincipalTaken)
		}
	}
	if err != nil {
		return grants.Principal{}, false, fmt.Errorf("insert principal: %w", translateGrants(err))
	}
	stored, err := principalFromRow(row)
	if err != nil {
		return grants.Principal{}, false, fmt.Errorf("insert principal: %w", err)
	}
	return stored, inserted, nil
}

// PrincipalDelete implements grants.Tx. It leaves the principal's grants
// alone.
func (t *grantsTx) PrincipalDelete(ctx context.Context, tenantID, principal string) error {
	n, err := t.queries.PrincipalDelete(ctx, db.PrincipalDeleteParams{TenantID: tenantID, Principal: principal})
	if err != nil {
		return fmt.Errorf("delete principal: %w", translateGrants(err))
	}
	if n == 0 {
		return fmt.Errorf("delete principal: %w", grants.ErrNotFound)
	}
	return nil
}

// GrantInsert implements grants.Tx. The key stored is g.Key(); a new grant
// is stored at Version 1, whatever g.Version, and a zero CreatedAt means
// now and a zero UpdatedAt means CreatedAt. Transactions run one at a
// time, so of concurrent inserts of one grant the first inserts and the
// others read its row.
func (t *grantsTx) GrantInsert(ctx context.Context, g grants.Grant) (grants.Grant, bool, error) {
	columns, err := stringsColumn(g.Resource.Columns)
	if err != nil {
		return grants.Grant{}, false, fmt.Errorf("insert grant: %w", err)
	}
	permissions, err := stringsColumn(g.Permissions)
	if err != nil {
		return grants.Grant{}, false, fmt.Errorf("insert grant: %w", err)
	}
	tags, err := tagsColumn(g.Resource.Tags)
	if err != nil {
		return grants.Grant{}, false, fmt.Errorf("insert grant: %w", err)
	}
	createdAt, updatedAt := insertTimes(g.CreatedAt, g.UpdatedAt)
	key := g.Key()
	row, err := t.queries.GrantInsert(ctx, db.GrantInsertParams{
		ID:          g.ID,
		TenantID:    g.TenantID,
		Principal:   g.Principal,
		Region:      g.Resource.Region,
		Database:    g.Resource.Database,
		TableName:   g.Resource.Table,
		Columns:     columns,
		Permissions: permissions,
		Tags:        tags,
		GrantKey:    key,
		CellsFilter: g.CellsFilter,
		Status:      string(g.Status),
		Reason:      g.Reason,
		CreatedBy:   g.CreatedBy,
		Version:     1,
		CreatedAt:   createdAt,
		UpdatedAt:   updatedAt,
	})
	inserted := err == nil
	if errors.Is(err, sql.ErrNoRows) {
		row, err = t.queries.GrantGetLiveByKey(ctx, db.GrantGetLiveByKeyParams{TenantID: g.TenantID, GrantKey: key})
	}
	if err != nil {
		return grants.Grant{}, false, fmt.Errorf("insert grant: %w", translateGrants(err))
	}
	stored, err := grantFromRow(row)
	if err != nil {
		return grants.Grant{}, false, fmt.Errorf("insert grant: %w", err)
	}
	return stored, inserted, nil
}

// GrantGet implements grants.Tx. SQLite has no row locks; the immediate
// transaction already holds the database's write lock.
func (t *grantsTx) GrantGet(ctx context.Context, tenantID, id string) (grants.Grant, error) {
	return grantGet(ctx, t.queries, tenantID, id)
}

// GrantUpdate implements grants.Tx. It stores Permissions, CellsFilter,
// Status and Reason, increases Version and sets UpdatedAt to now; the
// other fields are as stored. It returns ErrNotFound when the tenant has
// no such grant, and ErrConflict when the stored Version is not g.Version
// or when the change would make the grant alike (same Key) to another of
// the tenant's grants that is not revoked.
//
// It reads the stored grant first because the key is the stored principal
// and resource with the new permissions.
func (t *grantsTx) GrantUpdate(ctx context.Context, g grants.Grant) (grants.Grant, error) {
	row, err := t.queries.GrantGet(ctx, db.GrantGetParams{TenantID: g.TenantID, ID: g.ID})
	if err != nil {
		return grants.Grant{}, fmt.Errorf("update grant: %w", translateGrants(err))
	}
	if row.Version != g.Version {
		return grants.Grant{}, fmt.Errorf("update grant: %w", grants.ErrConflict)
	}
	stored, err := grantFromRow(row)
	if err != nil {
		return grants.Grant{}, fmt.Errorf("update grant: %w", err)
	}
	stored.Permissions = g.Permissions
	if g.Resource.Database != "" {
		stored.Resource.Database = g.Resource.Database // a tenant's catalog moves with its tier
	}
	permissions, err := stringsColumn(g.Permissions)
	if err != nil {
		return grants.Grant{}, fmt.Errorf("update grant: %w", err)
	}
	row, err = t.queries.GrantUpdate(ctx, db.GrantUpdateParams{
		Database:    stored.Resource.Database,
		Permissions: permissions,
		GrantKey:    stored.Key(),
		CellsFilter: g.CellsFilter,
		Status:      string(g.Status),
		Reason:      g.Reason,
		UpdatedAt:   formatTime(time.Now()),
		TenantID:    g.TenantID,
		ID:          g.ID,
		PrevVersion: g.Version,
	})
	if errors.Is(err, sql.ErrNoRows) {
		// Not while the transaction holds the write lock; kept so that
		// losing it shows as a conflict rather than a lost update.
		return grants.Grant{}, fmt.Errorf("update grant: %w", grants.ErrConflict)
	}
	if err != nil {
		return grants.Grant{}, fmt.Errorf("update grant: %w", translateGrants(err))
	}
	updated, err := grantFromRow(row)
	if err != nil {
		return grants.Grant{}, fmt.Errorf("update grant: %w", err)
	}
	return updated, nil
}

// AuditAppend implements grants.Tx (audit.Appender).
func (t *grantsTx) AuditAppend(ctx context.Context, e audit.Event) error {
	return auditAppend(ctx, t.queries, e)
}

// JobInsert implements grants.Tx, as tx.JobInsert does for tenants.
func (t *grantsTx) JobInsert(ctx context.Context, args grants.JobArgs) error {
	if _, err := t.jobs.InsertTx(ctx, t.sqlTx, args, nil); err != nil {
		return fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return nil
}

func grantGet(ctx context.Context, q *db.Queries, tenantID, id string) (grants.Grant, error) {
	row, err := q.GrantGet(ctx, db.GrantGetParams{TenantID: tenantID, ID: id})
	if err != nil {
		return grants.Grant{}, fmt.Errorf("get grant: %w", translateGrants(err))
	}
	g, err := grantFromRow(row)
	if err != nil {
		return grants.Grant{}, fmt.Errorf("get grant: %w", err)
	}
	return g, nil
}

// translateGrants maps driver errors to the grants package's sentinel
// errors, as translate does for tenants. Every principal, grant and audit
// query error passes through it exactly once.
func translateGrants(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return grants.ErrNotFound
	}
	// The partial unique index grants_tenant_key_live_key is the only
	// unique constraint on grant_key; SQLite names the columns, not the
	// index.
	var serr *sqlite.Error
	if errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE &&
		strings.Contains(serr.Error(), "grants.grant_key") {
		return grants.ErrConflict
	}
	return err
}

// maxRows is the LIMIT of a list: limit, or every row when limit <= 0.
func maxRows(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt64
	}
	return int64(limit)
}

// timeBound is the stored form of a list's time bound: "" for the zero
// time (no bound), else t rounded up to the microsecond. Stored times are
// whole microseconds, so rounding up keeps both an inclusive lower and an
// exclusive upper bound exact.
func timeBound(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	b := t.Truncate(time.Microsecond)
	if b.Before(t) {
		b = b.Add(time.Microsecond)
	}
	return formatTime(b)
}

// stringsColumn is the stored form of a list of strings: a JSON array, []
// for nil.
func stringsColumn(s []string) (string, error) {
	if s == nil {
		s = []string{}
	}
	b, err := json.Marshal(s)
	return string(b), err
}

// stringsFromColumn parses a stored JSON array; empty reads back as nil.
func stringsFromColumn(c string) ([]string, error) {
	var s []string
	if err := json.Unmarshal([]byte(c), &s); err != nil {
		return nil, err
	}
	if len(s) == 0 {
		return nil, nil
	}
	return s, nil
}

// tagsColumn is the stored form of a tag expression: a JSON object of
// keys and their values, {} for nil.
func tagsColumn(e grants.TagExpression) (string, error) {
	if e == nil {
		e = grants.TagExpression{}
	}
	b, err := json.Marshal(e)
	return string(b), err
}

// tagsFromColumn parses a stored tag expression; empty reads back as nil.
func tagsFromColumn(c string) (grants.TagExpression, error) {
	var e grants.TagExpression
	if err := json.Unmarshal([]byte(c), &e); err != nil {
		return nil, err
	}
	if len(e) == 0 {
		return nil, nil
	}
	return e, nil
}

// detailColumn is the stored form of an audit event's detail: a JSON
// object, {} for nil.
func detailColumn(detail map[string]string) (string, error) {
	if detail == nil {
		detail = map[string]string{}
	}
	b, err := json.Marshal(detail)
	return string(b), err
}

// detailFromColumn parses a stored detail object; empty reads back as nil.
func detailFromColumn(c string) (map[string]string, error) {
	var detail map[string]string
	if err := json.Unmarshal([]byte(c), &detail); err != nil {
		return nil, err
	}
	if len(detail) == 0 {
		return nil, nil
	}
	return detail, nil
}

// principalFromRow converts a stored row to a grants.Principal.
func principalFromRow(r db.Principal) (grants.Principal, error) {
	createdAt, err := parseTime(r.CreatedAt)
	if err != nil {
		return grants.Principal{}, fmt.Errorf("principal %s: %w", r.Principal, err)
	}
	return grants.Principal{
		TenantID:  r.TenantID,
		Principal: r.Principal,
		CreatedAt: createdAt,
		Seq:       r.Seq,
	}, nil
}

// grantFromRow converts a stored row to a grants.Grant.
func grantFromRow(r db.Grant) (grants.Grant, error) {
	columns, err := stringsFromColumn(r.Columns)
	if err != nil {
		return grants.Grant{}, fmt.Errorf("grant %s columns: %w", r.ID, err)
	}
	permissions, err := stringsFromColumn(r.Permissions)
	if err != nil {
		return grants.Grant{}, fmt.Errorf("grant %s permissions: %w", r.ID, err)
	}
	tags, err := tagsFromColumn(r.Tags)
	if err != nil {
		return grants.Grant{}, fmt.Errorf("grant %s tags: %w", r.ID, err)
	}
	createdAt, updatedAt, err := parseTimes(r.CreatedAt, r.UpdatedAt)
	if err != nil {
		return grants.Grant{}, fmt.Errorf("grant %s: %w", r.ID, err)
	}
	return grants.Grant{
		ID:        r.ID,
		TenantID:  r.TenantID,
		Principal: r.Principal,
		Resource: grants.Resource{
			Region:   r.Region,
			Database: r.Database,
			Table:    r.TableName,
			Columns:  columns,
			Tags:     tags,
		},
		Permissions: permissions,
		CellsFilter: r.CellsFilter,
		Status:      grants.Status(r.Status),
		Reason:      r.Reason,
		CreatedBy:   r.CreatedBy,
		Version:     r.Version,
		CreatedAt:   createdAt,
		UpdatedAt:   updatedAt,
		Seq:         r.Seq,
	}, nil
}

func grantsFromRows(rows []db.Grant) ([]grants.Grant, error) {
	out := make([]grants.Grant, 0, len(rows))
	for _, r := range rows {
		g, err := grantFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}
