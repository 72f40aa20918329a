// Package grants is Cairn's Lake Formation grants broker: it registers the
// AWS principals that may receive a tenant's grants, records each grant in
// a ledger, applies it through a Catalog (Lake Formation in AWS mode, a
// local ledger in the embedded default) from a durable job, repairs drift,
// revokes everything when a tenant is suspended or offboarded, and issues
// short-lived credentials confined to one tenant's data.
//
// Every grant, revoke, refusal and credential issue is written to the audit
// log.
package grants

import (
	"errors"
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
// table in it, or columns of a table.
type Resource struct {
	Region   string
	Database string
	Table    string
	Columns  []string
}

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
	return strings.Join([]string{g.Principal, g.Resource.Region, g.Resource.Database, g.Resource.Table,
		strings.Join(cols, ","), strings.Join(perms, ",")}, "|")
}
