package lakeformation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	lf "github.com/aws/aws-sdk-go-v2/service/lakeformation"
	lftypes "github.com/aws/aws-sdk-go-v2/service/lakeformation/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/cairn-cdp/cairn/internal/grants"
)

// SharedParameter is the Glue table parameter that marks a table over data
// shared by every pooled tenant of a pool, when its value is "true" (see
// grants.Table.Shared).
const SharedParameter = "cairn:shared"

// getTablesPageSize is the most tables Glue GetTables returns per page.
const getTablesPageSize = 100

// Catalog implements grants.Catalog on Lake Formation (permissions and data
// cells filters) and the Glue Data Catalog (tables). Create it with
// NewCatalog. It is safe for concurrent use.
//
// It works on the Data Catalog of the account its credentials belong to.
// Where Lake Formation wants that account's ID (a data cells filter's
// TableCatalogId), Catalog asks STS GetCallerIdentity once per Region and
// caches the answer.
type Catalog struct {
	c *clients

	mu       sync.Mutex
	accounts map[string]*account
}

// account is the cached catalog ID of one Region. Its mutex is held during
// the lookup, so that concurrent first calls make one STS call, without
// blocking other Regions.
type account struct {
	mu sync.Mutex
	id string
}

var _ grants.Catalog = (*Catalog)(nil)

// NewCatalog returns a Catalog. It loads the SDK's default configuration when
// cfg.AWS is nil, and fails if that fails or if cfg holds a negative
// MaxAttempts or MaxBackoff. No client is created, and no call made, until a
// method needs one.
func NewCatalog(ctx context.Context, cfg Config) (*Catalog, error) {
	c, err := newClients(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Catalog{c: c, accounts: make(map[string]*account)}, nil
}

// catalogID returns the account ID of the Data Catalog in region: one STS
// GetCallerIdentity call per Region for the Catalog's lifetime. Failures are
// not cached.
func (c *Catalog) catalogID(ctx context.Context, region string) (string, error) {
	client, err := c.c.sts.Client(region)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	a, ok := c.accounts[region]
	if !ok {
		a = &account{}
		c.accounts[region] = a
	}
	c.mu.Unlock()

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.id != "" {
		return a.id, nil
	}
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("get caller identity in %s: %w", region, err)
	}
	if aws.ToString(out.Account) == "" {
		return "", fmt.Errorf("get caller identity in %s: no account in the answer", region)
	}
	a.id = aws.ToString(out.Account)
	return a.id, nil
}

// Table returns a table of the database: its columns (the storage
// descriptor's columns, then the partition keys) and whether it is shared
// (SharedParameter). One Glue GetTable call. A missing database or table
// returns an error wrapping grants.ErrNotFound.
func (c *Catalog) Table(ctx context.Context, region, database, table string) (grants.Table, error) {
	client, err := c.c.glue.Client(region)
	if err != nil {
		return grants.Table{}, fmt.Errorf("lakeformation: get table: %w", err)
	}
	if database == "" || table == "" {
		return grants.Table{}, errors.New("lakeformation: get table: database and table are required")
	}
	out, err := client.GetTable(ctx, &glue.GetTableInput{
		DatabaseName: aws.String(database),
		Name:         aws.String(table),
	})
	if err != nil {
		if isGlueNotFound(err) {
			return grants.Table{}, fmt.Errorf("lakeformation: get table %s.%s in %s: %w: %w", database, table, region, grants.ErrNotFound, err)
		}
		return grants.Table{}, fmt.Errorf("lakeformation: get table %s.%s in %s: %w", database, table, region, err)
	}
	if out.Table == nil {
		return grants.Table{}, fmt.Errorf("lakeformation: get table %s.%s in %s: no table in the answer", database, table, region)
	}
	return tableFromGlue(*out.Table), nil
}

func tableFromGlue(t gluetypes.Table) grants.Table {
	out := grants.Table{
		Name:   aws.ToString(t.Name),
		Shared: t.Parameters[SharedParameter] == "true",
	}
	if t.StorageDescriptor != nil {
		for _, col := range t.StorageDescriptor.Columns {
			out.Columns = append(out.Columns, aws.ToString(col.Name))
		}
	}
	for _, col := range t.PartitionKeys {
		out.Columns = append(out.Columns, aws.ToString(col.Name))
	}
	return out
}

// Grant grants p with Lake Formation GrantPermissions (one call, plus one STS
// GetCallerIdentity the first time a Region needs its catalog ID). The
// resource is, by p.Kind():
//
//   - a data cells filter: DataCellsFilter, the filter of that name on
//     p.Resource.Table;
//   - an LF-tag policy: LFTagPolicy with ResourceType TABLE and
//     p.Resource.Tags as its expression;
//   - all tables: Table with DatabaseName and TableWildcard;
//   - columns: TableWithColumns with ColumnNames;
//   - a table: Table with Name;
//   - otherwise the database p.Resource.Database.
//
// A permission Lake Formation would refuse (grants.CheckPermission: SELECT
// on a database, DESCRIBE on columns, ...) is refused before any call, with
// an error wrapping grants.ErrInvalidPermission. In particular a grant
// through a data cells filter gets the filter's columns, whatever
// p.Resource.Columns says, so Grant refuses p.CellsFilter together with
// p.Resource.Columns rather than grant more columns than asked: put the
// columns in the filter (grants.CellsFilter.Columns) instead.
//
// Lake Formation keeps one set of permissions per principal and resource, so
// granting what is already granted is not an error. A database, table or
// filter that does not exist returns an error wrapping grants.ErrNotFound.
// p.Resource.Region, if set, must be region.
func (c *Catalog) Grant(ctx context.Context, region string, p grants.Permission) error {
	if err := grants.CheckPermission(p); err != nil {
		return fmt.Errorf("lakeformation: grant %s: %w", describe(p), err)
	}
	client, res, err := c.permissionRequest(ctx, region, p)
	if err != nil {
		return fmt.Errorf("lakeformation: grant %s: %w", describe(p), err)
	}
	_, err = client.GrantPermissions(ctx, &lf.GrantPermissionsInput{
		Principal:   &lftypes.DataLakePrincipal{DataLakePrincipalIdentifier: aws.String(p.Principal)},
		Resource:    res,
		Permissions: lfPermissions(p.Permissions),
	})
	if err != nil {
		if isLFNotFound(err) {
			return fmt.Errorf("lakeformation: grant %s in %s: %w: %w", describe(p), region, grants.ErrNotFound, err)
		}
		return fmt.Errorf("lakeformation: grant %s in %s: %w", describe(p), region, err)
	}
	return nil
}

// Revoke revokes p with Lake Formation RevokePermissions (one call, plus one
// STS GetCallerIdentity the first time a Region needs its catalog ID); the
// resource is chosen as in Grant, except that p.Resource.Columns is ignored
// when p.CellsFilter is set (the permission on the filter is revoked: a
// revoke is never refused for being too broad). A permission that is not
// granted is not an error: Lake Formation's answers for it are success here,
// namely
// InvalidInputException "No permissions revoked. Grantee has no
// permissions..." (nothing to revoke), InvalidInputException "...
// non-existent column..." (the column is gone) and EntityNotFoundException
// (the database, table or filter is gone, and its permissions with it).
func (c *Catalog) Revoke(ctx context.Context, region string, p grants.Permission) error {
	client, res, err := c.permissionRequest(ctx, region, p)
	if err != nil {
		return fmt.Errorf("lakeformation: revoke %s: %w", describe(p), err)
	}
	_, err = client.RevokePermissions(ctx, &lf.RevokePermissionsInput{
		Principal:   &lftypes.DataLakePrincipal{DataLakePrincipalIdentifier: aws.String(p.Principal)},
		Resource:    res,
		Permissions: lfPermissions(p.Permissions),
	})
	if err != nil && !isRevokeAbsent(err) {
		return fmt.Errorf("lakeformation: revoke %s in %s: %w", describe(p), region, err)
	}
	return nil
}

// permissionRequest checks p and returns the client and the Lake Formation
// resource of a grant or revoke.
func (c *Catalog) permissionRequest(ctx context.Context, region string, p grants.Permission) (*lf.Client, *lftypes.Resource, error) {
	client, err := c.c.lf.Client(region)
	if err != nil {
		return nil, nil, err
	}
	r := p.Resource
	switch {
	case r.Region != "" && r.Region != region:
		return nil, nil, fmt.Errorf("resource is in %s, not in %s", r.Region, region)
	case p.Principal == "":
		return nil, nil, errors.New("principal is required")
	case len(p.Permissions) == 0:
		return nil, nil, errors.New("permissions are required")
	case r.Database == "":
		return nil, nil, errors.New("database is required")
	case r.Table == "" && (len(r.Columns) > 0 || p.CellsFilter != ""):
		return nil, nil, errors.New("columns and data cells filters need a table")
	}
	switch p.Kind() {
	case grants.OnCellsFilter:
		id, err := c.catalogID(ctx, region)
		if err != nil {
			return nil, nil, err
		}
		return client, &lftypes.Resource{DataCellsFilter: &lftypes.DataCellsFilterResource{
			TableCatalogId: aws.String(id),
			DatabaseName:   aws.String(r.Database),
			TableName:      aws.String(r.Table),
			Name:           aws.String(p.CellsFilter),
		}}, nil
	case grants.OnTagPolicy:
		return client, &lftypes.Resource{LFTagPolicy: &lftypes.LFTagPolicyResource{
			ResourceType: lftypes.ResourceTypeTable,
			Expression:   lfExpression(r.Tags),
		}}, nil
	case grants.OnAllTables:
		return client, &lftypes.Resource{Table: &lftypes.TableResource{
			DatabaseName:  aws.String(r.Database),
			TableWildcard: &lftypes.TableWildcard{},
		}}, nil
	case grants.OnColumns:
		return client, &lftypes.Resource{TableWithColumns: &lftypes.TableWithColumnsResource{
			DatabaseName: aws.String(r.Database),
			Name:         aws.String(r.Table),
			ColumnNames:  sortedCopy(r.Columns),
		}}, nil
	case grants.OnTable:
		return client, &lftypes.Resource{Table: &lftypes.TableResource{
			DatabaseName: aws.String(r.Database),
			Name:         aws.String(r.Table),
		}}, nil
	default:
		return client, &lftypes.Resource{Database: &lftypes.DatabaseResource{
			Name: aws.String(r.Database),
		}}, nil
	}
}

// Permissions lists every permission on the database and its tables, one
// grants.Permission per principal and resource (database, table, set of
// columns, or data cells filter) with the union of its permissions, sorted
// by resource then principal; permission names are sorted too. Resource.Region
// is region. Principals Cairn did not grant to (IAM_ALLOWED_PRINCIPALS, other
// admins' grants) are listed like any other.
//
// Calls, for a database of T tables, when every list fits in one page:
//
//   - Glue GetTables: ceil(T/100), at least 1;
//   - Lake Formation ListPermissions: 2 + T, one for the database, one for
//     all its tables (TableWildcard) and one per table; a table's call
//     returns its column permissions too, and, with IncludeRelated=TRUE, its
//     data cells filters' permissions;
//   - one more call per further page of any of them.
//
// Nothing else: no STS call, no data cells filter listing. The calls are
// sequential, on purpose: Lake Formation's request rate is shared by every
// tenant of the account, and this is a background reconciliation.
//
// What Lake Formation answers is normalised: SELECT on a table comes back
// on the table with a column wildcard and is listed on the table; a column
// wildcard with excluded columns is listed as the table's other columns
// (grants.Resource has no exclusion, so revoking that Permission revokes
// those columns, not the wildcard grant); a grant on a data cells filter is
// listed with CellsFilter set and no Columns; a permission on all tables
// (a TableWildcard, which Lake Formation lists for SELECT as the columns of
// table "ALL_TABLES") is listed with AllTables set. Permissions granted only
// with the grant option, and grants on data locations, LF-tags and LF-tag
// policies (see TagPolicyPermissions) are not listed.
//
// A database that does not exist returns an error wrapping
// grants.ErrNotFound.
func (c *Catalog) Permissions(ctx context.Context, region, database string) ([]grants.Permission, error) {
	glueClient, err := c.c.glue.Client(region)
	if err != nil {
		return nil, fmt.Errorf("lakeformation: list permissions: %w", err)
	}
	lfClient, err := c.c.lf.Client(region)
	if err != nil {
		return nil, fmt.Errorf("lakeformation: list permissions: %w", err)
	}
	if database == "" {
		return nil, errors.New("lakeformation: list permissions: database is required")
	}

	tables, err := listTables(ctx, glueClient, region, database)
	if err != nil {
		return nil, err
	}

	set := newPermissionSet(region, database, tables)
	if err := listPermissions(ctx, lfClient, &lf.ListPermissionsInput{
		Resource: &lftypes.Resource{Database: &lftypes.DatabaseResource{Name: aws.String(database)}},
	}, set); err != nil {
		return nil, fmt.Errorf("lakeformation: list permissions on %s in %s: %w", database, region, err)
	}
	if err := listPermissions(ctx, lfClient, &lf.ListPermissionsInput{
		Resource: &lftypes.Resource{Table: &lftypes.TableResource{
			DatabaseName:  aws.String(database),
			TableWildcard: &lftypes.TableWildcard{},
		}},
	}, set); err != nil {
		return nil, fmt.Errorf("lakeformation: list permissions on all tables of %s in %s: %w", database, region, err)
	}
	for _, t := range tables {
		if err := listPermissions(ctx, lfClient, &lf.ListPermissionsInput{
			Resource: &lftypes.Resource{Table: &lftypes.TableResource{
				DatabaseName: aws.String(database),
				Name:         aws.String(t.Name),
			}},
			IncludeRelated: aws.String("TRUE"),
		}, set); err != nil {
			return nil, fmt.Errorf("lakeformation: list permissions on %s.%s in %s: %w", database, t.Name, region, err)
		}
	}
	return set.list(), nil
}

// listTables lists the tables of a database with Glue GetTables, a page of
// getTablesPageSize at a time. A database that does not exist is an error
// wrapping grants.ErrNotFound.
func listTables(ctx context.Context, client *glue.Client, region, database string) ([]grants.Table, error) {
	var tables []grants.Table
	pages := glue.NewGetTablesPaginator(client, &glue.GetTablesInput{
		DatabaseName: aws.String(database),
		MaxResults:   aws.Int32(getTablesPageSize),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			if isGlueNotFound(err) {
				return nil, fmt.Errorf("lakeformation: list tables of %s in %s: %w: %w", database, region, grants.ErrNotFound, err)
			}
			return nil, fmt.Errorf("lakeformation: list tables of %s in %s: %w", database, region, err)
		}
		for _, t := range page.TableList {
			tables = append(tables, tableFromGlue(t))
		}
	}
	return tables, nil
}

// CellsFilters lists the data cells filters on the tables of a database:
// Glue GetTables (ceil(T/100) calls), then Lake Formation
// ListDataCellsFilter for each table (one call per page of 100 filters),
// sequentially, as Permissions does. A filter whose row filter is every row
// is listed with an empty RowFilter, a column wildcard with no Columns.
// A database that does not exist is an error wrapping grants.ErrNotFound.
func (c *Catalog) CellsFilters(ctx context.Context, region, database string) ([]grants.CellsFilter, error) {
	glueClient, err := c.c.glue.Client(region)
	if err != nil {
		return nil, fmt.Errorf("lakeformation: list data cells filters: %w", err)
	}
	lfClient, err := c.c.lf.Client(region)
	if err != nil {
		return nil, fmt.Errorf("lakeformation: list data cells filters: %w", err)
	}
	if database == "" {
		return nil, errors.New("lakeformation: list data cells filters: database is required")
	}
	tables, err := listTables(ctx, glueClient, region, database)
	if err != nil {
		return nil, err
	}
	var out []grants.CellsFilter
	for _, t := range tables {
		pages := lf.NewListDataCellsFilterPaginator(lfClient, &lf.ListDataCellsFilterInput{
			Table:      &lftypes.TableResource{DatabaseName: aws.String(database), Name: aws.String(t.Name)},
			MaxResults: aws.Int32(100),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				if isLFNotFound(err) {
					break // the table is gone since GetTables: so are its filters
				}
				return nil, fmt.Errorf("lakeformation: list data cells filters of %s.%s in %s: %w", database, t.Name, region, err)
			}
			for _, f := range page.DataCellsFilters {
				cf := grants.CellsFilter{
					Database: aws.ToString(f.DatabaseName), Table: aws.ToString(f.TableName), Name: aws.ToString(f.Name),
					Columns: f.ColumnNames,
				}
				if f.RowFilter != nil {
					cf.RowFilter = aws.ToString(f.RowFilter.FilterExpression)
				}
				out = append(out, cf)
			}
		}
	}
	return out, nil
}

func listPermissions(ctx context.Context, client *lf.Client, in *lf.ListPermissionsInput, set *permissionSet) error {
	pages := lf.NewListPermissionsPaginator(client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, p := range page.PrincipalResourcePermissions {
			set.add(p)
		}
	}
	return nil
}

// permissionSet flattens Lake Formation's answers into grants.Permission,
// merging the entries of one principal and resource.
type permissionSet struct {
	region   string
	database string
	columns  map[string][]string // table name → its columns
	byKey    map[string]*grants.Permission
}

func newPermissionSet(region, database string, tables []grants.Table) *permissionSet {
	s := &permissionSet{
		region:   region,
		database: database,
		columns:  make(map[string][]string, len(tables)),
		byKey:    make(map[string]*grants.Permission),
	}
	for _, t := range tables {
		s.columns[t.Name] = t.Columns
	}
	return s
}

func (s *permissionSet) add(prp lftypes.PrincipalResourcePermissions) {
	if prp.Principal == nil || prp.Resource == nil || len(prp.Permissions) == 0 {
		return
	}
	res, filter, ok := s.resource(*prp.Resource)
	if !ok {
		return
	}
	principal := aws.ToString(prp.Principal.DataLakePrincipalIdentifier)
	allTables := res.Table == allTablesName
	if allTables {
		res.Table = ""
	}
	key := strings.Join([]string{principal, res.Table, strings.Join(res.Columns, ","), filter, fmt.Sprint(allTables)}, "\x00")
	p, ok := s.byKey[key]
	if !ok {
		p = &grants.Permission{Principal: principal, Resource: res, AllTables: allTables, CellsFilter: filter}
		s.byKey[key] = p
	}
	for _, perm := range prp.Permissions {
		if !slices.Contains(p.Permissions, string(perm)) {
			p.Permissions = append(p.Permissions, string(perm))
		}
	}
}

// resource maps a Lake Formation resource of the database to a grants
// resource and data cells filter name; ok is false for anything else.
func (s *permissionSet) resource(r lftypes.Resource) (res grants.Resource, filter string, ok bool) {
	res = grants.Resource{Region: s.region, Database: s.database}
	switch {
	case r.Database != nil:
		return res, "", aws.ToString(r.Database.Name) == s.database
	case r.Table != nil:
		if aws.ToString(r.Table.DatabaseName) != s.database {
			return res, "", false
		}
		if r.Table.TableWildcard != nil {
			res.Table = allTablesName
			return res, "", true
		}
		res.Table = aws.ToString(r.Table.Name)
		return res, "", res.Table != ""
	case r.TableWithColumns != nil:
		t := r.TableWithColumns
		if aws.ToString(t.DatabaseName) != s.database {
			return res, "", false
		}
		res.Table = aws.ToString(t.Name)
		if res.Table == allTablesName && t.ColumnWildcard != nil && len(t.ColumnWildcard.ExcludedColumnNames) == 0 {
			// SELECT on a table wildcard, as Lake Formation lists it.
			return res, "", true
		}
		if _, known := s.columns[res.Table]; !known {
			// A table gone since GetTables.
			return res, "", false
		}
		switch {
		case len(t.ColumnNames) > 0:
			res.Columns = sortedCopy(t.ColumnNames)
		case t.ColumnWildcard != nil && len(t.ColumnWildcard.ExcludedColumnNames) > 0:
			for _, col := range s.columns[res.Table] {
				if !slices.Contains(t.ColumnWildcard.ExcludedColumnNames, col) {
					res.Columns = append(res.Columns, col)
				}
			}
			slices.Sort(res.Columns)
		}
		return res, "", true
	case r.DataCellsFilter != nil:
		f := r.DataCellsFilter
		if aws.ToString(f.DatabaseName) != s.database {
			return res, "", false
		}
		res.Table = aws.ToString(f.TableName)
		return res, aws.ToString(f.Name), res.Table != "" && aws.ToString(f.Name) != ""
	default:
		return res, "", false
	}
}

// allTablesName is the table name under which Lake Formation lists SELECT on
// a table wildcard; permissionSet uses it for every grant on all tables.
const allTablesName = "ALL_TABLES"

func (s *permissionSet) list() []grants.Permission {
	out := make([]grants.Permission, 0, len(s.byKey))
	for _, p := range s.byKey {
		slices.Sort(p.Permissions)
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b grants.Permission) int {
		return cmp.Or(
			cmp.Compare(fmt.Sprint(a.AllTables), fmt.Sprint(b.AllTables)),
			cmp.Compare(a.Resource.Table, b.Resource.Table),
			slices.Compare(a.Resource.Columns, b.Resource.Columns),
			cmp.Compare(a.CellsFilter, b.CellsFilter),
			cmp.Compare(a.Principal, b.Principal),
		)
	})
	return out
}

// EnsureCellsFilter creates the data cells filter unless it exists, and
// brings an existing filter of that name back to f when its row filter or
// columns differ: the filter is what confines a pooled tenant to its own
// rows, so a stale one must not stay. Calls: CreateDataCellsFilter; when it
// answers AlreadyExistsException, GetDataCellsFilter, and
// UpdateDataCellsFilter only if the filter differs; plus one STS
// GetCallerIdentity the first time a Region needs its catalog ID.
//
// Empty f.Columns means every column (a column wildcard). An empty
// f.RowFilter is refused: a filter of every row would expose every tenant's
// rows of a shared table.
func (c *Catalog) EnsureCellsFilter(ctx context.Context, region string, f grants.CellsFilter) error {
	client, err := c.c.lf.Client(region)
	if err != nil {
		return fmt.Errorf("lakeformation: create data cells filter: %w", err)
	}
	if f.Database == "" || f.Table == "" || f.Name == "" {
		return errors.New("lakeformation: create data cells filter: database, table and name are required")
	}
	if strings.TrimSpace(f.RowFilter) == "" {
		return fmt.Errorf("lakeformation: create data cells filter %s: a row filter is required", f.Name)
	}
	id, err := c.catalogID(ctx, region)
	if err != nil {
		return fmt.Errorf("lakeformation: create data cells filter %s: %w", f.Name, err)
	}
	want := &lftypes.DataCellsFilter{
		TableCatalogId: aws.String(id),
		DatabaseName:   aws.String(f.Database),
		TableName:      aws.String(f.Table),
		Name:           aws.String(f.Name),
		RowFilter:      &lftypes.RowFilter{FilterExpression: aws.String(f.RowFilter)},
	}
	if len(f.Columns) > 0 {
		want.ColumnNames = sortedCopy(f.Columns)
	} else {
		want.ColumnWildcard = &lftypes.ColumnWildcard{}
	}

	_, err = client.CreateDataCellsFilter(ctx, &lf.CreateDataCellsFilterInput{TableData: want})
	if err == nil {
		return nil
	}
	if !isAlreadyExists(err) {
		if isLFNotFound(err) {
			return fmt.Errorf("lakeformation: create data cells filter %s on %s.%s in %s: %w: %w", f.Name, f.Database, f.Table, region, grants.ErrNotFound, err)
		}
		return fmt.Errorf("lakeformation: create data cells filter %s on %s.%s in %s: %w", f.Name, f.Database, f.Table, region, err)
	}
	got, err := client.GetDataCellsFilter(ctx, &lf.GetDataCellsFilterInput{
		TableCatalogId: want.TableCatalogId,
		DatabaseName:   want.DatabaseName,
		TableName:      want.TableName,
		Name:           want.Name,
	})
	if err != nil {
		return fmt.Errorf("lakeformation: get data cells filter %s on %s.%s in %s: %w", f.Name, f.Database, f.Table, region, err)
	}
	if got.DataCellsFilter != nil && sameFilter(*got.DataCellsFilter, *want) {
		return nil
	}
	// No VersionId: the desired filter is fully determined by f, so the last
	// writer winning is what every writer wants.
	if _, err := client.UpdateDataCellsFilter(ctx, &lf.UpdateDataCellsFilterInput{TableData: want}); err != nil {
		return fmt.Errorf("lakeformation: update data cells filter %s on %s.%s in %s: %w", f.Name, f.Database, f.Table, region, err)
	}
	return nil
}

// sameFilter reports whether got filters the same rows and columns as want.
func sameFilter(got, want lftypes.DataCellsFilter) bool {
	if got.RowFilter == nil || got.RowFilter.AllRowsWildcard != nil ||
		aws.ToString(got.RowFilter.FilterExpression) != aws.ToString(want.RowFilter.FilterExpression) {
		return false
	}
	if want.ColumnWildcard != nil {
		return len(got.ColumnNames) == 0 && got.ColumnWildcard != nil && len(got.ColumnWildcard.ExcludedColumnNames) == 0
	}
	return got.ColumnWildcard == nil && slices.Equal(sortedCopy(got.ColumnNames), want.ColumnNames)
}

// DeleteCellsFilter deletes the data cells filter with DeleteDataCellsFilter
// (one call, plus one STS GetCallerIdentity the first time a Region needs its
// catalog ID). A filter that does not exist (EntityNotFoundException, also
// answered when its table or database is gone) is not an error.
func (c *Catalog) DeleteCellsFilter(ctx context.Context, region, database, table, name string) error {
	client, err := c.c.lf.Client(region)
	if err != nil {
		return fmt.Errorf("lakeformation: delete data cells filter: %w", err)
	}
	if database == "" || table == "" || name == "" {
		return errors.New("lakeformation: delete data cells filter: database, table and name are required")
	}
	id, err := c.catalogID(ctx, region)
	if err != nil {
		return fmt.Errorf("lakeformation: delete data cells filter %s: %w", name, err)
	}
	_, err = client.DeleteDataCellsFilter(ctx, &lf.DeleteDataCellsFilterInput{
		TableCatalogId: aws.String(id),
		DatabaseName:   aws.String(database),
		TableName:      aws.String(table),
		Name:           aws.String(name),
	})
	if err != nil && !isLFNotFound(err) {
		return fmt.Errorf("lakeformation: delete data cells filter %s on %s.%s in %s: %w", name, database, table, region, err)
	}
	return nil
}

// Error translation, in one place. It goes by error code rather than by
// the SDK's typed errors, which exist only for the errors an operation's
// model lists.

func errorCode(err error) string {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return apiErr.ErrorCode()
	}
	return ""
}

// isGlueNotFound: Glue's "no such database or table".
func isGlueNotFound(err error) bool {
	return errorCode(err) == "EntityNotFoundException"
}

// isLFNotFound: Lake Formation's "no such database, table or data cells
// filter".
func isLFNotFound(err error) bool {
	return errorCode(err) == "EntityNotFoundException"
}

func isAlreadyExists(err error) bool {
	return errorCode(err) == "AlreadyExistsException"
}

// isRevokeAbsent reports whether a RevokePermissions error means there was
// nothing to revoke. Lake Formation says so with InvalidInputException and
// these messages (the only way to tell them from a malformed request).
func isRevokeAbsent(err error) bool {
	if isLFNotFound(err) {
		return true
	}
	apiErr, ok := errors.AsType[smithy.APIError](err)
	if !ok || apiErr.ErrorCode() != "InvalidInputException" {
		return false
	}
	msg := apiErr.ErrorMessage()
	return strings.Contains(msg, "No permissions revoked") || strings.Contains(msg, "non-existent column")
}

// Small helpers.

// lfExpression is an LF-tag expression in Lake Formation's form, sorted.
func lfExpression(e grants.TagExpression) []lftypes.LFTag {
	out := make([]lftypes.LFTag, 0, len(e))
	for _, k := range slices.Sorted(maps.Keys(e)) {
		out = append(out, lftypes.LFTag{TagKey: aws.String(k), TagValues: sortedCopy(e[k])})
	}
	return out
}

func lfPermissions(perms []string) []lftypes.Permission {
	out := make([]lftypes.Permission, 0, len(perms))
	for _, p := range sortedCopy(perms) {
		if !slices.Contains(out, lftypes.Permission(p)) {
			out = append(out, lftypes.Permission(p))
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// describe names a permission in error messages.
func describe(p grants.Permission) string {
	var b strings.Builder
	b.WriteString(strings.Join(p.Permissions, ","))
	b.WriteString(" on ")
	b.WriteString(p.Resource.Database)
	if p.Resource.Table != "" {
		b.WriteString("." + p.Resource.Table)
	}
	if len(p.Resource.Columns) > 0 {
		b.WriteString("(" + strings.Join(p.Resource.Columns, ",") + ")")
	}
	if p.CellsFilter != "" {
		b.WriteString(" filter " + p.CellsFilter)
	}
	if p.AllTables {
		b.WriteString(".*")
	}
	if len(p.Resource.Tags) > 0 {
		b.WriteString(" tables tagged " + p.Resource.Tags.String())
	}
	b.WriteString(" to " + p.Principal)
	return b.String()
}
