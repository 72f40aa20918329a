package grants

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairn-cdp/cairn/internal/grants/pii"
	"github.com/cairn-cdp/cairn/internal/jsonptr"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// Lake Formation's rules, as the broker applies them. Real Lake Formation
// refuses a permission that its resource does not take with
// InvalidInputException "Permissions modification is invalid."; the AWS
// emulator accepts anything. So the broker checks every request against
// the documented rules, translates what has an exact equivalent, refuses
// the rest with a 400 naming the field, and the local catalog refuses
// invalid permissions as Lake Formation does.
//
// Sources (AWS Lake Formation Developer Guide and API Reference):
//
//   - "Lake Formation permissions reference", permissions by resource type
//     (lf-permissions-reference.html): Database takes ALL, ALTER,
//     CREATE_TABLE, DESCRIBE, DROP; Table takes ALL, ALTER, DELETE,
//     DESCRIBE, DROP, INSERT, SELECT; a table with a column filter takes
//     SELECT only; a table with data filters takes DESCRIBE, DROP, SELECT;
//     an LF-tag policy on tables takes the table permissions; an S3
//     location takes DATA_LOCATION_ACCESS only.
//   - TableWithColumnsResource: "only used when granting a SELECT
//     permission".
//   - TableResource: Name or TableWildcard ("every table under a
//     database"); "Granting table permissions": permissions on all tables
//     of a database implicitly give DESCRIBE on the database.
//   - "Data filtering limitations": at most 100 data filter SELECT
//     permissions for a principal on a table.
//   - LFTag: at most 1,000 values per LF-tag (a soft limit), 50 per call.
var (
	databasePermissions    = []string{"ALTER", "CREATE_TABLE", "DESCRIBE", "DROP"}
	tablePermissions       = []string{"ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"}
	columnPermissions      = []string{"SELECT"}
	cellsFilterPermissions = []string{"DESCRIBE", "DROP", "SELECT"}
)

// ResourceKind is the kind of Lake Formation resource a Permission is on.
type ResourceKind string

// Resource kinds, as Lake Formation's Resource structure names them.
const (
	OnDatabase    ResourceKind = "Database"
	OnAllTables   ResourceKind = "Table (TableWildcard)"
	OnTable       ResourceKind = "Table"
	OnColumns     ResourceKind = "TableWithColumns"
	OnCellsFilter ResourceKind = "DataCellsFilter"
	OnTagPolicy   ResourceKind = "LFTagPolicy (TABLE)"
)

// Kind is the kind of p's resource (see Permission).
func (p Permission) Kind() ResourceKind {
	switch {
	case p.CellsFilter != "":
		return OnCellsFilter
	case len(p.Resource.Tags) > 0:
		return OnTagPolicy
	case p.AllTables:
		return OnAllTables
	case len(p.Resource.Columns) > 0:
		return OnColumns
	case p.Resource.Table != "":
		return OnTable
	default:
		return OnDatabase
	}
}

// validPermissions lists what Lake Formation takes on a kind of resource.
func validPermissions(k ResourceKind) []string {
	switch k {
	case OnDatabase:
		return databasePermissions
	case OnColumns:
		return columnPermissions
	case OnCellsFilter:
		return cellsFilterPermissions
	default: // OnTable, OnAllTables, OnTagPolicy
		return tablePermissions
	}
}

// ErrInvalidPermission is returned (wrapped) by CheckPermission.
var ErrInvalidPermission = errors.New("permissions modification is invalid")

// CheckPermission reports whether Lake Formation takes p, as
// GrantPermissions would: a resource of one kind, well formed, and only
// permissions that kind takes. It returns an error wrapping
// ErrInvalidPermission otherwise.
func CheckPermission(p Permission) error {
	r, k := p.Resource, p.Kind()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidPermission, k, fmt.Sprintf(format, args...))
	}
	switch {
	case p.Principal == "":
		return bad("no principal")
	case r.Database == "":
		return bad("no database")
	case len(p.Permissions) == 0:
		return bad("no permissions")
	case k == OnCellsFilter && (r.Table == "" || len(r.Columns) > 0 || p.AllTables || len(r.Tags) > 0):
		return bad("a data cells filter names its table, and carries the columns itself")
	case k == OnTagPolicy && (r.Table != "" || len(r.Columns) > 0 || p.AllTables):
		return bad("an LF-tag policy names no table or columns")
	case k == OnAllTables && (r.Table != "" || len(r.Columns) > 0):
		return bad("a table wildcard names no table or columns")
	}
	for _, perm := range p.Permissions {
		if !slices.Contains(validPermissions(k), perm) {
			return bad("%s is not one of %s", perm, strings.Join(validPermissions(k), ", "))
		}
	}
	return nil
}

// LF-tags the broker creates and grants on.
const (
	// TagPII is "true" on a column holding personal data and "false" on
	// every other column of a classified table (TagColumns).
	TagPII = "cairn:pii"
	// TagPIIKind is the kind of personal data a column holds: a pii.Kind,
	// "mixed" for several, "none" for none.
	TagPIIKind = "cairn:pii-kind"
	// TagDatabase scopes a tag grant to one tenant's database: LF-tag
	// policies apply to the whole Data Catalog, which every tenant of the
	// account shares, so the broker tags each database that has a tag
	// grant with its own name and adds that to the grant's expression. Its
	// values are those databases, at most Lake Formation's LF-tag value
	// quota (1,000 per Region, a soft limit).
	TagDatabase = "cairn:database"
)

// KindNone is the TagPIIKind value of a column holding no personal data.
const KindNone = "none"

// TagValues returns the values each LF-tag of the broker's vocabulary
// takes, but TagDatabase (whose values are database names).
func TagValues() map[string][]string {
	kinds := []string{KindNone, string(pii.KindMixed)}
	for _, k := range pii.Kinds {
		kinds = append(kinds, string(k))
	}
	slices.Sort(kinds)
	return map[string][]string{TagPII: {"false", "true"}, TagPIIKind: kinds}
}

// invalid is the 400 of a request field, named by its JSON Pointer in the
// request body.
func invalid(pointer, format string, args ...any) error {
	return &tenants.ValidationError{Field: pointer, Reason: fmt.Sprintf(format, args...)}
}

// checkShape checks what needs no catalog: permissions known and valid for
// the kind of resource asked for, columns and tags well formed. A
// database-wide request may mix database and table permissions: the table
// permissions become a grant on every table (CatalogPermissions).
func checkShape(r GrantRequest) error {
	res := r.Resource
	for i, p := range r.Permissions {
		at := fmt.Sprintf("/permissions/%d", i)
		switch {
		case p == "DATA_LOCATION_ACCESS":
			return invalid(at, "DATA_LOCATION_ACCESS is granted on an S3 location, not on a database, table or columns; Lake Formation refuses it here")
		case len(res.Columns) > 0 && !slices.Contains(columnPermissions, p):
			return invalid(at, "%s cannot be granted on columns: Lake Formation grants columns SELECT only; grant %s on the table instead", p, p)
		case len(res.Tags) > 0 && p != "SELECT" && p != "DESCRIBE":
			return invalid(at, "a tag grant takes SELECT and DESCRIBE only")
		}
	}
	switch {
	case res.Table == "" && len(res.Columns) > 0:
		return invalid("/resource/columns", "columns need a table")
	case len(res.Tags) > 0 && len(res.Columns) > 0:
		return invalid("/resource/columns", "name columns or select them by tag, not both")
	}
	return checkTags(res.Tags)
}

// checkTags checks a tag expression against the broker's vocabulary.
func checkTags(e TagExpression) error {
	if e == nil {
		return nil
	}
	if len(e) == 0 {
		return invalid("/resource/tag", "at least one LF-tag")
	}
	vocabulary := TagValues()
	for _, k := range slices.Sorted(maps.Keys(e)) {
		allowed, ok := vocabulary[k]
		at := jsonptr.Append("/resource/tag", k)
		if !ok {
			return invalid(at, "unknown LF-tag %q: grants select on %s and %s", k, TagPII, TagPIIKind)
		}
		if len(e[k]) == 0 {
			return invalid(at, "at least one value")
		}
		for i, v := range e[k] {
			if !slices.Contains(allowed, v) {
				return invalid(fmt.Sprintf("%s/%d", at, i), "%q is not a value of %s (%s)", v, k, strings.Join(allowed, ", "))
			}
		}
	}
	return nil
}

// CatalogPermissions returns the Lake Formation permissions that carry g,
// in a fixed order, each valid (CheckPermission) for a grant the Service
// accepted:
//
//   - through its data cells filter (a shared table of a pool), the
//     permission on the filter, which carries the columns;
//   - selected by tags, an LF-tag policy on tables whose expression is g's
//     plus TagDatabase = g's database, so that it reaches no other tenant;
//   - on columns or a table, the permission on them;
//   - on the database, the database permissions on the database and the
//     table permissions (SELECT, INSERT, DELETE: Lake Formation has none of
//     them on a database) on every table of it, through a table wildcard.
func CatalogPermissions(g Grant) []Permission {
	base := Permission{Principal: g.Principal, Resource: g.Resource, CellsFilter: g.CellsFilter, Permissions: g.Permissions}
	switch {
	case g.CellsFilter != "":
		base.Resource.Columns, base.Resource.Tags = nil, nil
		return []Permission{base}
	case len(g.Resource.Tags) > 0:
		base.Resource.Tags = maps.Clone(g.Resource.Tags)
		base.Resource.Tags[TagDatabase] = []string{g.Resource.Database}
		return []Permission{base}
	case g.Resource.Table != "":
		return []Permission{base}
	}
	var onDatabase, onTables []string
	for _, p := range g.Permissions {
		if slices.Contains(databasePermissions, p) {
			onDatabase = append(onDatabase, p)
		} else {
			onTables = append(onTables, p)
		}
	}
	var out []Permission
	if len(onDatabase) > 0 {
		p := base
		p.Permissions = onDatabase
		out = append(out, p)
	}
	if len(onTables) > 0 {
		p := base
		p.AllTables, p.Permissions = true, onTables
		out = append(out, p)
	}
	return out
}
