// Package grants is Cairn's Lake Formation grants broker: it registers the
// AWS principals that may receive a tenant's grants, records each grant in
// a ledger, applies it through a Catalog (Lake Formation in AWS mode, a
// local ledger in the embedded default) from a durable job, repairs drift,
// revokes everything when a tenant is suspended or offboarded, and issues
// short-lived credentials confined to one tenant's data.
//
// Every grant, revoke, refusal and credential issue is written to the audit
// log.
//
// # Lake Formation's rules
//
// Real Lake Formation takes only some permissions on each kind of resource
// (rules.go has the list and its sources), and the emulator takes any. The
// broker checks every request against those rules and answers what Lake
// Formation would refuse with a *tenants.ValidationError naming the field
// by its JSON Pointer ("/permissions/1", "/resource/tag/cairn:pii/0"); the
// one request with an exact equivalent is translated: SELECT (or INSERT,
// DELETE) on a whole database is granted on every table of it, a table
// wildcard (CatalogPermissions). The local catalog refuses invalid
// permissions too (CheckPermission), and the lakeformation adapter before
// any call. lakeformation/lftest is a scripted Lake Formation that encodes
// the documented validation, for tests.
//
// # Pooled tenants
//
// A table marked shared ("cairn:shared") holds the rows of every pooled
// tenant of the pool, in a tenant_id column: the lake's clean and curated
// tables of a pool are such tables, one per name in the pool's database
// (provisioner.PoolGlueDatabase, partitioned by tenant_id), which is a
// pooled tenant's catalog too, beside its own database. Every grant on a
// shared table goes through the tenant's data cells filter, whose row
// filter is tenant_id = '<tenant id>' (RowFilter) and whose columns are the
// grant's (CellsFilterName, TagCellsFilterName), so that no principal of
// the tenant reads another tenant's rows. Grants that would reach past the
// filters, on every table of a pooled tenant's database, by tag on the
// whole database, or on the pool's database itself, are refused. A shared
// table's classification (its columns' LF-tags) is the table's, for every
// tenant of the pool: a tenant's findings add to it (AddFindings), so a
// column holding personal data for one tenant is tagged so for all.
// The pool's data-access role acts for every pooled tenant of the pool
// (ScopedCredentials assume it under each tenant's session policy, which
// Lake Formation does not read): a grant to it would be every pooled
// tenant's, and is refused.
//
// # PII tags
//
// The lakehouse classifies each table it registers (package pii) and hands
// the findings to TagColumns, which records them as LF-tags: TagPII
// ("true"/"false") and TagPIIKind (the kind, "mixed" or "none") on every
// column. A grant may then select by tag instead of by name:
// {"cairn:pii": ["false"]} is every column without personal data. In a
// dedicated tenant's database it is an LF-tag policy, which Lake Formation
// enforces as tables come and are classified, scoped to the tenant by
// TagDatabase (LF-tag policies cover the whole catalog, which tenants
// share); in a pooled tenant's, it names a shared table and is the columns
// of the tenant's data cells filter, resolved when applied and at every
// reconcile. EnsureTagVocabulary creates the tags; every method that needs
// them calls it.
//
// The lake's refinery classifies each table it writes (package lake,
// Classifier), once it exists in the tenant's catalog, from samples of its
// rows; findings only add to what the table's tags say (AddFindings):
//
//	findings := pii.Classify(schema, samples, identifierTypes)
//	err := grantsService.AddFindings(ctx, tenantID, region, table, findings)
//
// TagColumns replaces a table's classification whole. In the embedded
// default, LocalCatalog.Readable answers which columns a principal reads,
// as Lake Formation would enforce them.
package grants

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Sentinel errors.
var (
	// ErrNotFound: no such principal or grant for this tenant.
	ErrNotFound = errors.New("not found")
	// ErrPrincipalTaken: the principal is registered to another tenant.
	ErrPrincipalTaken = errors.New("principal belongs to another tenant")
	// ErrUnregistered: the grant names a principal the tenant has not
	// registered.
	ErrUnregistered = errors.New("principal not registered for this tenant")
	// ErrOutsideCatalog: the resource is not in the tenant's own catalog,
	// or is in a Region the tenant does not use.
	ErrOutsideCatalog = errors.New("resource outside the tenant's catalog")
	// ErrAdminOnly: a permission only an admin may grant.
	ErrAdminOnly = errors.New("permission needs an admin")
	// ErrConflict: a concurrent change; the caller may retry.
	ErrConflict = errors.New("grant changed concurrently")
)

// Permissions a tenant may grant itself; everything else is admin-only.
var (
	TenantPermissions = []string{"SELECT", "DESCRIBE"}
	AdminPermissions  = []string{"SELECT", "DESCRIBE", "INSERT", "DELETE", "ALTER", "DROP", "DATA_LOCATION_ACCESS"}
)

// Principal is an AWS principal registered to receive a tenant's grants.
type Principal struct {
	TenantID  string
	Principal string
	CreatedAt time.Time
	Seq       int64
}

var (
	accountPattern = regexp.MustCompile(`^\d{12}$`)
	rolePattern    = regexp.MustCompile(`^arn:aws:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)
)

// ValidPrincipal reports whether p is a 12-digit account ID or an IAM role
// ARN.
func ValidPrincipal(p string) bool {
	return accountPattern.MatchString(p) || rolePattern.MatchString(p)
}

// Resource is what a grant covers: a database of the tenant's catalog, a
// table in it, columns of a table, or the columns whose LF-tags match Tags
// (in the database, or in the table).
type Resource struct {
	Region   string
	Database string
	Table    string
	Columns  []string
	// Tags, if set, selects by LF-tag instead of by name (see TagExpression).
	Tags TagExpression
}

// TagExpression selects catalog resources by their LF-tags, as Lake
// Formation's LF-tag expressions do: a resource matches when, for every
// key, its value of that key is one of the values listed. Tables inherit
// their database's tags and columns their table's, unless they are given a
// value of their own for the key.
type TagExpression map[string][]string

// String is the expression in a canonical form: keys sorted, each with its
// sorted values, as "k1=v1|v2;k2=v3".
func (e TagExpression) String() string {
	keys := slices.Sorted(maps.Keys(e))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strings.Join(slices.Sorted(slices.Values(e[k])), "|")
	}
	return strings.Join(parts, ";")
}

// Matches reports whether a resource with these (effective) tags matches
// the expression.
func (e TagExpression) Matches(tags map[string]string) bool {
	for k, values := range e {
		v, ok := tags[k]
		if !ok || !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

// Equal reports whether the two expressions select the same resources.
func (e TagExpression) Equal(o TagExpression) bool { return e.String() == o.String() }

// Status is where a grant is.
type Status string

// Grant statuses.
const (
	StatusPending  Status = "pending"  // recorded; the job applies it
	StatusActive   Status = "active"   // in Lake Formation
	StatusFailed   Status = "failed"   // Lake Formation refused; Reason says why
	StatusRevoking Status = "revoking" // the job takes it away
	StatusRevoked  Status = "revoked"  // gone; the record stays
	// StatusSuspended: taken away while the tenant is suspended; restored
	// when it resumes.
	StatusSuspended Status = "suspended"
)

// Grant is one permission grant in the ledger.
type Grant struct {
	ID          string
	TenantID    string
	Principal   string
	Resource    Resource
	Permissions []string
	// CellsFilter names the data cells filter the grant is scoped by, for
	// a table shared across pooled tenants.
	CellsFilter string
	Status      Status
	Reason      string
	CreatedBy   string
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Seq         int64
}

// Key identifies a grant's content: the same grant asked twice is one
// grant. Columns and permissions are compared as sorted sets.
func (g Grant) Key() string {
	cols := slices.Clone(g.Resource.Columns)
	perms := slices.Clone(g.Permissions)
	sort.Strings(cols)
	sort.Strings(perms)
	parts := []string{g.Principal, g.Resource.Region, g.Resource.Database, g.Resource.Table,
		strings.Join(cols, ","), strings.Join(perms, ",")}
	if len(g.Resource.Tags) > 0 {
		// Appended only when set, so that the keys of grants stored before
		// tag grants existed stay what they were.
		parts = append(parts, "tags:"+g.Resource.Tags.String())
	}
	return strings.Join(parts, "|")
}
