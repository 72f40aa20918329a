package grants

import (
	"context"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
)

// JobArgs is a durable job inserted with a change (same shape as
// tenants.JobArgs).
type JobArgs interface {
	Kind() string
}

// GrantListParams selects and pages a tenant's grants; zero values do not
// filter. Results are in ascending Seq order.
type GrantListParams struct {
	TenantID  string
	Principal string
	Status    Status
	AfterSeq  int64
	Limit     int
}

// Store is the broker's storage port. Implementations must be safe for
// concurrent use by several replicas.
type Store interface {
	// InTx runs fn in one transaction.
	InTx(ctx context.Context, fn func(Tx) error) error
	// PrincipalGet returns the tenant's principal or ErrNotFound.
	PrincipalGet(ctx context.Context, tenantID, principal string) (Principal, error)
	// PrincipalList pages the tenant's principals in registration order.
	PrincipalList(ctx context.Context, tenantID string, afterSeq int64, limit int) ([]Principal, error)
	// GrantGet returns the tenant's grant or ErrNotFound (also when the
	// grant belongs to another tenant).
	GrantGet(ctx context.Context, tenantID, id string) (Grant, error)
	// GrantList pages grants.
	GrantList(ctx context.Context, p GrantListParams) ([]Grant, error)
	// GrantListLive returns every grant of the tenant that is not revoked,
	// in Seq order (for reconcile, suspension and offboarding).
	GrantListLive(ctx context.Context, tenantID string) ([]Grant, error)
}

// Tx is the part of Store that runs inside a transaction.
type Tx interface {
	// PrincipalInsert registers p. Registering a principal the tenant
	// already has returns the existing record and false; one another
	// tenant has returns ErrPrincipalTaken.
	PrincipalInsert(ctx context.Context, p Principal) (Principal, bool, error)
	// PrincipalDelete removes the tenant's principal or returns
	// ErrNotFound.
	PrincipalDelete(ctx context.Context, tenantID, principal string) error
	// GrantInsert stores g unless the tenant has a grant that is not
	// revoked with the same Key(); then it returns that grant and false.
	GrantInsert(ctx context.Context, g Grant) (Grant, bool, error)
	// GrantGet reads a grant inside the transaction (ErrNotFound).
	GrantGet(ctx context.Context, tenantID, id string) (Grant, error)
	// GrantUpdate stores g if the stored Version is g.Version and returns
	// it with Version+1 and UpdatedAt set; ErrConflict if stale.
	GrantUpdate(ctx context.Context, g Grant) (Grant, error)
	// Appender records the audit event of a change in its transaction.
	audit.Appender
	// JobInsert inserts a durable job that commits with the transaction.
	JobInsert(ctx context.Context, args JobArgs) error
}

// Permission is one Lake Formation permission, as granted or as listed. Its
// resource is, by the first field set (Kind names it):
//
//   - CellsFilter: the data cells filter of that name on Resource.Table;
//   - Resource.Tags: every table of the catalog whose LF-tags match the
//     expression (an LF-tag policy on tables; Resource.Database only says
//     whose grant it is);
//   - AllTables: every table of Resource.Database (a table wildcard);
//   - Resource.Columns: those columns of Resource.Table;
//   - Resource.Table: the table;
//   - otherwise the database.
//
// CheckPermission says which permissions Lake Formation takes on each.
type Permission struct {
	Principal   string
	Resource    Resource
	AllTables   bool
	CellsFilter string
	Permissions []string
}

// Table is a table of a tenant's Glue database.
type Table struct {
	Name    string
	Columns []string
	// Shared marks a table over data shared by every pooled tenant of a
	// pool (table parameter "cairn:shared" = "true"); grants on it are
	// scoped to the tenant's rows by a data cells filter.
	Shared bool
}

// CellsFilter is a Lake Formation data cells filter.
type CellsFilter struct {
	Database  string
	Table     string
	Name      string
	RowFilter string
	// Columns limits the columns; empty means all columns.
	Columns []string
}

// Catalog is the governance port: Lake Formation and Glue in AWS mode, a
// local ledger in the embedded default. Every method is safe to repeat.
type Catalog interface {
	// Table returns a table of the database, or ErrNotFound.
	Table(ctx context.Context, region, database, table string) (Table, error)
	// Grant grants p; an existing identical permission is not an error.
	Grant(ctx context.Context, region string, p Permission) error
	// Revoke revokes p; an absent permission is not an error.
	Revoke(ctx context.Context, region string, p Permission) error
	// Permissions lists every permission on the database and its tables,
	// on all its tables (AllTables) included, but not LF-tag policies, which
	// Lake Formation keeps for the whole catalog, not by database.
	Permissions(ctx context.Context, region, database string) ([]Permission, error)
	// TagPolicyPermissions lists the permissions granted on exactly this
	// LF-tag policy (on tables); Resource.Database is the value of
	// TagDatabase in e, if any.
	TagPolicyPermissions(ctx context.Context, region string, e TagExpression) ([]Permission, error)
	// EnsureCellsFilter creates the filter unless it exists.
	EnsureCellsFilter(ctx context.Context, region string, f CellsFilter) error
	// DeleteCellsFilter deletes it; absent is not an error.
	DeleteCellsFilter(ctx context.Context, region, database, table, name string) error
	// CellsFilters lists the data cells filters on the database's tables;
	// a database that does not exist is ErrNotFound.
	CellsFilters(ctx context.Context, region, database string) ([]CellsFilter, error)
	// EnsureTag creates the LF-tag with these values, or adds to an
	// existing one the values it lacks.
	EnsureTag(ctx context.Context, region, key string, values []string) error
	// AssignTags gives a database, a table or columns of a table a value of
	// each LF-tag key in a.Tags, replacing the value they had for that key.
	// The tags must exist (EnsureTag).
	AssignTags(ctx context.Context, region string, a TagAssignment) error
	// ColumnTags returns the LF-tags of each column of a table, with what
	// it inherits from the table and the database: column name → key →
	// value. A missing table is ErrNotFound.
	ColumnTags(ctx context.Context, region, database, table string) (map[string]map[string]string, error)
}

// TagAssignment gives LF-tags to the database (Table empty), to a table
// (Columns empty) or to columns of a table.
type TagAssignment struct {
	Database string
	Table    string
	Columns  []string
	// Tags maps each LF-tag key to the value assigned.
	Tags map[string]string
}

// Credentials are short-lived AWS credentials.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// AssumeRoleInput asks for credentials of a role, confined by a session
// policy.
type AssumeRoleInput struct {
	Region      string
	RoleARN     string
	SessionName string
	ExternalID  string
	Policy      string
	Duration    time.Duration
}

// CredentialIssuer issues tenant-scoped credentials (STS AssumeRole).
type CredentialIssuer interface {
	AssumeRole(ctx context.Context, in AssumeRoleInput) (Credentials, error)
}
