package lftest

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// resource is Lake Formation's Resource union, as it travels.
type resource struct {
	Catalog          *struct{}                     `json:",omitempty"`
	Database         *databaseResource             `json:",omitempty"`
	Table            *tableResource                `json:",omitempty"`
	TableWithColumns *tableColumnsResource         `json:",omitempty"`
	DataCellsFilter  *filterResource               `json:",omitempty"`
	DataLocation     *struct{ ResourceArn string } `json:",omitempty"`
	LFTag            *struct {
		TagKey    string
		TagValues []string
	} `json:",omitempty"`
	LFTagPolicy *tagPolicyResource `json:",omitempty"`
}

type databaseResource struct {
	CatalogId string `json:",omitempty"`
	Name      string
}

type tableResource struct {
	CatalogId     string `json:",omitempty"`
	DatabaseName  string
	Name          string    `json:",omitempty"`
	TableWildcard *struct{} `json:",omitempty"`
}

type tableColumnsResource struct {
	CatalogId      string `json:",omitempty"`
	DatabaseName   string
	Name           string
	ColumnNames    []string `json:",omitempty"`
	ColumnWildcard *struct {
		ExcludedColumnNames []string `json:",omitempty"`
	} `json:",omitempty"`
}

type filterResource struct {
	TableCatalogId string `json:",omitempty"`
	DatabaseName   string
	TableName      string
	Name           string
}

type lfTag struct {
	TagKey    string
	TagValues []string
}

type tagPolicyResource struct {
	CatalogId      string `json:",omitempty"`
	ResourceType   string
	Expression     []lfTag `json:",omitempty"`
	ExpressionName string  `json:",omitempty"`
}

func (r *tableColumnsResource) covers(col string) bool {
	if r.ColumnNames != nil {
		return slices.Contains(r.ColumnNames, col)
	}
	return r.ColumnWildcard != nil && !slices.Contains(r.ColumnWildcard.ExcludedColumnNames, col)
}

func (p *tagPolicyResource) expression() map[string][]string {
	out := map[string][]string{}
	for _, t := range p.Expression {
		out[t.TagKey] = append(out[t.TagKey], t.TagValues...)
	}
	return out
}

func (p *tagPolicyResource) matches(tags map[string]string) bool {
	for k, values := range p.expression() {
		if v, ok := tags[k]; !ok || !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

// key is the resource's identity: its members with catalog IDs dropped,
// columns and tag values sorted.
func (r resource) key() string {
	c := r
	if c.Database != nil {
		d := *c.Database
		d.CatalogId = ""
		c.Database = &d
	}
	if c.Table != nil {
		t := *c.Table
		t.CatalogId = ""
		c.Table = &t
	}
	if c.TableWithColumns != nil {
		t := *c.TableWithColumns
		t.CatalogId = ""
		t.ColumnNames = slices.Sorted(slices.Values(t.ColumnNames))
		c.TableWithColumns = &t
	}
	if c.DataCellsFilter != nil {
		f := *c.DataCellsFilter
		f.TableCatalogId = ""
		c.DataCellsFilter = &f
	}
	if c.LFTagPolicy != nil {
		p := *c.LFTagPolicy
		p.CatalogId = ""
		e := p.expression()
		p.Expression = nil
		for _, k := range slices.Sorted(maps.Keys(e)) {
			p.Expression = append(p.Expression, lfTag{k, slices.Sorted(slices.Values(e[k]))})
		}
		c.LFTagPolicy = &p
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// members counts the resource's set members.
func (r resource) members() int {
	n := 0
	for _, set := range []bool{r.Catalog != nil, r.Database != nil, r.Table != nil, r.TableWithColumns != nil,
		r.DataCellsFilter != nil, r.DataLocation != nil, r.LFTag != nil, r.LFTagPolicy != nil} {
		if set {
			n++
		}
	}
	return n
}

// Permissions by resource type ("Lake Formation permissions reference").
var (
	catalogPerms   = []string{"ALL", "ALTER", "CREATE_DATABASE", "DESCRIBE", "DROP"}
	databasePerms  = []string{"ALL", "ALTER", "CREATE_TABLE", "DESCRIBE", "DROP"}
	tablePerms     = []string{"ALL", "ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"}
	columnPerms    = []string{"SELECT"}
	filterPerms    = []string{"DESCRIBE", "DROP", "SELECT"}
	locationPerms  = []string{"DATA_LOCATION_ACCESS"}
	lfTagPerms     = []string{"ALTER", "ASSOCIATE", "DESCRIBE", "DROP", "GRANT_WITH_LF_TAG_EXPRESSION"}
	maxValuesACall = 50
)

type permissionsRequest struct {
	Principal *struct {
		DataLakePrincipalIdentifier string
	}
	Resource    resource
	Permissions []string
}

// check validates a grant's or revoke's principal, resource and
// permissions as Lake Formation does (see the package documentation); a
// revoke skips the checks of what is granted (columns, tag values).
func (s *Server) check(in permissionsRequest, revoke bool) *awsError {
	if in.Principal == nil || in.Principal.DataLakePrincipalIdentifier == "" {
		return invalidInput("Principal is required.")
	}
	if len(in.Permissions) == 0 {
		return invalidInput("Permissions are required.")
	}
	r := in.Resource
	if r.members() != 1 {
		return invalidInput("Resource must specify exactly one resource type.")
	}
	var valid []string
	switch {
	case r.Catalog != nil:
		valid = catalogPerms
	case r.Database != nil:
		if _, ok := s.databases[r.Database.Name]; !ok {
			return notFound("Database %s not found.", r.Database.Name)
		}
		valid = databasePerms
	case r.Table != nil:
		t := r.Table
		if (t.Name == "") == (t.TableWildcard == nil) {
			return invalidInput("Table resource must have exactly one of Name and TableWildcard.")
		}
		if _, ok := s.databases[t.DatabaseName]; !ok {
			return notFound("Database %s not found.", t.DatabaseName)
		}
		if t.Name != "" {
			if _, aerr := s.table(t.DatabaseName, t.Name); aerr != nil {
				return aerr
			}
		}
		valid = tablePerms
	case r.TableWithColumns != nil:
		t := r.TableWithColumns
		if (t.ColumnNames == nil) == (t.ColumnWildcard == nil) {
			return invalidInput("TableWithColumns must have exactly one of ColumnNames and ColumnWildcard.")
		}
		tbl, aerr := s.table(t.DatabaseName, t.Name)
		if aerr != nil {
			return aerr
		}
		if !revoke {
			for _, c := range t.ColumnNames {
				if !tbl.hasColumn(c) {
					return invalidInput("cannot grant/revoke permission on non-existent column: %s", c)
				}
			}
		}
		valid = columnPerms
	case r.DataCellsFilter != nil:
		f := r.DataCellsFilter
		if _, ok := s.filters[f.DatabaseName+"/"+f.TableName+"/"+f.Name]; !ok {
			return notFound("Data cells filter %s not found.", f.Name)
		}
		valid = filterPerms
	case r.DataLocation != nil:
		valid = locationPerms
	case r.LFTag != nil:
		valid = lfTagPerms
	case r.LFTagPolicy != nil:
		p := r.LFTagPolicy
		switch p.ResourceType {
		case "DATABASE":
			valid = databasePerms
		case "TABLE":
			valid = tablePerms
		default:
			return invalidInput("LFTagPolicy ResourceType must be DATABASE or TABLE.")
		}
		if p.ExpressionName != "" || len(p.Expression) == 0 {
			return invalidInput("lftest: an LF-tag policy needs an Expression (named expressions are not modelled).")
		}
		if !revoke {
			for _, t := range p.Expression {
				if len(t.TagValues) == 0 || len(t.TagValues) > maxValuesACall {
					return invalidInput("An LF-tag expression takes 1 to %d values per key.", maxValuesACall)
				}
				values, ok := s.tags[t.TagKey]
				if !ok {
					return notFound("Tag key %s not found.", t.TagKey)
				}
				for _, v := range t.TagValues {
					if !slices.Contains(values, v) {
						return notFound("Tag value %s not found for key %s.", v, t.TagKey)
					}
				}
			}
		}
	}
	for _, p := range in.Permissions {
		if !slices.Contains(valid, p) {
			return errInvalidModification
		}
	}
	return nil
}

func (s *Server) grantPermissions(in permissionsRequest) (any, *awsError) {
	if aerr := s.check(in, false); aerr != nil {
		return nil, aerr
	}
	principal, key := in.Principal.DataLakePrincipalIdentifier, in.Resource.key()
	for _, g := range s.perms {
		if g.principal == principal && g.res.key() == key {
			for _, p := range in.Permissions {
				if !slices.Contains(g.perms, p) {
					g.perms = append(g.perms, p)
				}
			}
			return nil, nil
		}
	}
	s.perms = append(s.perms, &grant{principal: principal, res: in.Resource, perms: slices.Clone(in.Permissions)})
	return nil, nil
}

func (s *Server) revokePermissions(in permissionsRequest) (any, *awsError) {
	if aerr := s.check(in, true); aerr != nil {
		return nil, aerr
	}
	principal, key := in.Principal.DataLakePrincipalIdentifier, in.Resource.key()
	for i, g := range s.perms {
		if g.principal != principal || g.res.key() != key {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(g.perms), func(p string) bool { return slices.Contains(in.Permissions, p) })
		if len(kept) == len(g.perms) {
			break
		}
		if len(kept) == 0 {
			s.perms = slices.Delete(s.perms, i, i+1)
		} else {
			g.perms = kept
		}
		return nil, nil
	}
	return nil, invalidInput("No permissions revoked. Grantee has no permissions and no grantable permissions on resource.")
}

// listed is one ListPermissions entry.
type listed struct {
	Principal                  map[string]string
	Resource                   resource
	Permissions                []string
	PermissionsWithGrantOption []string
}

func (s *Server) listPermissions(in struct {
	Resource       *resource
	IncludeRelated string
	MaxResults     int
	NextToken      string
}) (any, *awsError) {
	var out []listed
	entry := func(g *grant, res resource, perms []string) {
		out = append(out, listed{Principal: map[string]string{"DataLakePrincipalIdentifier": g.principal},
			Resource: res, Permissions: perms, PermissionsWithGrantOption: []string{}})
	}
	// asListed splits SELECT off a Table grant, which Lake Formation lists
	// on the table's columns (a column wildcard; "ALL_TABLES" for a table
	// wildcard).
	asListed := func(g *grant) {
		t := g.res.Table
		if t == nil || !slices.Contains(g.perms, "SELECT") {
			entry(g, g.res, g.perms)
			return
		}
		name := t.Name
		if t.TableWildcard != nil {
			name = "ALL_TABLES"
		}
		cols := resource{TableWithColumns: &tableColumnsResource{CatalogId: Account, DatabaseName: t.DatabaseName, Name: name,
			ColumnWildcard: &struct {
				ExcludedColumnNames []string `json:",omitempty"`
			}{}}}
		entry(g, cols, []string{"SELECT"})
		if rest := slices.DeleteFunc(slices.Clone(g.perms), func(p string) bool { return p == "SELECT" }); len(rest) > 0 {
			entry(g, g.res, rest)
		}
	}
	r := in.Resource
	if r != nil && r.members() != 1 {
		return nil, invalidInput("Resource must specify exactly one resource type.")
	}
	for _, g := range s.perms {
		switch {
		case r == nil:
			asListed(g)
		case r.Database != nil:
			if g.res.Database != nil && g.res.Database.Name == r.Database.Name {
				asListed(g)
			}
		case r.Table != nil && r.Table.TableWildcard != nil:
			if g.res.Table != nil && g.res.Table.TableWildcard != nil && g.res.Table.DatabaseName == r.Table.DatabaseName {
				asListed(g)
			}
		case r.Table != nil:
			db, name := r.Table.DatabaseName, r.Table.Name
			switch {
			case g.res.Table != nil && g.res.Table.DatabaseName == db && g.res.Table.Name == name:
				asListed(g)
			case g.res.TableWithColumns != nil && g.res.TableWithColumns.DatabaseName == db && g.res.TableWithColumns.Name == name:
				asListed(g)
			case in.IncludeRelated == "TRUE" && g.res.DataCellsFilter != nil && g.res.DataCellsFilter.DatabaseName == db && g.res.DataCellsFilter.TableName == name:
				asListed(g)
			}
		case r.LFTagPolicy != nil:
			if g.res.LFTagPolicy != nil && g.res.key() == (resource{LFTagPolicy: r.LFTagPolicy}).key() {
				asListed(g)
			}
		case r.DataCellsFilter != nil:
			return nil, invalidInput("lftest: list a data cells filter's permissions through its table (IncludeRelated).")
		}
	}
	page, next := paginate(out, in.MaxResults, in.NextToken)
	resp := map[string]any{"PrincipalResourcePermissions": page}
	if next != "" {
		resp["NextToken"] = next
	}
	return resp, nil
}

// Data cells filters.

type filterData struct {
	TableCatalogId string
	DatabaseName   string
	TableName      string
	Name           string
	RowFilter      *struct {
		FilterExpression string    `json:",omitempty"`
		AllRowsWildcard  *struct{} `json:",omitempty"`
	} `json:",omitempty"`
	ColumnNames    []string `json:",omitempty"`
	ColumnWildcard *struct {
		ExcludedColumnNames []string `json:",omitempty"`
	} `json:",omitempty"`
	VersionId string `json:",omitempty"`
}

// newFilter validates a filter's definition.
func (s *Server) newFilter(d filterData) (*filter, *awsError) {
	if d.DatabaseName == "" || d.TableName == "" || d.Name == "" {
		return nil, invalidInput("DatabaseName, TableName and Name are required.")
	}
	t, aerr := s.table(d.DatabaseName, d.TableName)
	if aerr != nil {
		return nil, aerr
	}
	if (d.ColumnNames == nil) == (d.ColumnWildcard == nil) {
		return nil, invalidInput("A data cells filter has exactly one of ColumnNames and ColumnWildcard.")
	}
	if d.RowFilter == nil || (d.RowFilter.FilterExpression == "") == (d.RowFilter.AllRowsWildcard == nil) {
		return nil, invalidInput("A data cells filter has exactly one of FilterExpression and AllRowsWildcard.")
	}
	f := &filter{db: d.DatabaseName, table: d.TableName, name: d.Name, columns: d.ColumnNames}
	if d.ColumnWildcard != nil {
		f.excluded = d.ColumnWildcard.ExcludedColumnNames
	}
	for _, c := range slices.Concat(f.columns, f.excluded) {
		if !t.hasColumn(c) {
			return nil, invalidInput("Column %s does not exist in table %s.", c, d.TableName)
		}
	}
	if e := d.RowFilter.FilterExpression; e != "" {
		expr, err := parseRowFilter(e)
		if err != nil {
			return nil, invalidInput("Invalid row filter expression %q: %v", e, err)
		}
		for _, c := range expr.columns() {
			if !t.hasColumn(c) {
				return nil, invalidInput("Row filter expression references column %s, which table %s does not have.", c, d.TableName)
			}
		}
		f.expr = expr
	}
	d.TableCatalogId = Account
	raw, _ := json.Marshal(d)
	_ = json.Unmarshal(raw, &f.raw)
	return f, nil
}

func (s *Server) createDataCellsFilter(in struct{ TableData filterData }) (any, *awsError) {
	f, aerr := s.newFilter(in.TableData)
	if aerr != nil {
		return nil, aerr
	}
	key := f.db + "/" + f.table + "/" + f.name
	if _, ok := s.filters[key]; ok {
		return nil, alreadyExists("Data cells filter %s already exists.", f.name)
	}
	s.filters[key] = f
	return nil, nil
}

func (s *Server) getDataCellsFilter(in filterResource) (any, *awsError) {
	f, ok := s.filters[in.DatabaseName+"/"+in.TableName+"/"+in.Name]
	if !ok {
		return nil, notFound("Data cells filter %s not found.", in.Name)
	}
	return map[string]any{"DataCellsFilter": f.raw}, nil
}

func (s *Server) updateDataCellsFilter(in struct{ TableData filterData }) (any, *awsError) {
	key := in.TableData.DatabaseName + "/" + in.TableData.TableName + "/" + in.TableData.Name
	if _, ok := s.filters[key]; !ok {
		return nil, notFound("Data cells filter %s not found.", in.TableData.Name)
	}
	f, aerr := s.newFilter(in.TableData)
	if aerr != nil {
		return nil, aerr
	}
	s.filters[key] = f
	return nil, nil
}

func (s *Server) deleteDataCellsFilter(in filterResource) (any, *awsError) {
	key := in.DatabaseName + "/" + in.TableName + "/" + in.Name
	if _, ok := s.filters[key]; !ok {
		return nil, notFound("Data cells filter %s not found.", in.Name)
	}
	delete(s.filters, key)
	s.perms = slices.DeleteFunc(s.perms, func(g *grant) bool {
		f := g.res.DataCellsFilter
		return f != nil && f.DatabaseName == in.DatabaseName && f.TableName == in.TableName && f.Name == in.Name
	})
	return nil, nil
}

// listDataCellsFilter lists the filters of one table, sorted by name, a
// page at a time. The double takes only a Table naming a database and a
// table, the form Cairn sends: no Table (the whole catalog's filters) and a
// TableWildcard are refused, not guessed at.
func (s *Server) listDataCellsFilter(in struct {
	Table      *tableResource
	MaxResults int
	NextToken  string
}) (any, *awsError) {
	if in.Table == nil || in.Table.DatabaseName == "" || in.Table.Name == "" || in.Table.TableWildcard != nil {
		return nil, invalidInput("Table must name a database and a table.")
	}
	var keys []string
	for key, f := range s.filters {
		if f.db == in.Table.DatabaseName && f.table == in.Table.Name {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	page, next := paginate(keys, in.MaxResults, in.NextToken)
	list := []map[string]any{}
	for _, key := range page {
		list = append(list, s.filters[key].raw)
	}
	out := map[string]any{"DataCellsFilters": list}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

// LF-tags.

// maxTagValues is Lake Formation's (soft) limit of values per LF-tag.
const maxTagValues = 1000

var tagPattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@%]{1,128}$`)

func (s *Server) createLFTag(in lfTag) (any, *awsError) {
	if !tagPattern.MatchString(in.TagKey) {
		return nil, invalidInput("Invalid tag key %q.", in.TagKey)
	}
	if len(in.TagValues) == 0 || len(in.TagValues) > maxValuesACall {
		return nil, invalidInput("CreateLFTag takes 1 to %d values.", maxValuesACall)
	}
	if _, ok := s.tags[in.TagKey]; ok {
		return nil, alreadyExists("Tag key %s already exists.", in.TagKey)
	}
	s.tags[in.TagKey] = slices.Compact(slices.Sorted(slices.Values(in.TagValues)))
	return nil, nil
}

func (s *Server) getLFTag(in struct{ TagKey string }) (any, *awsError) {
	values, ok := s.tags[in.TagKey]
	if !ok {
		return nil, notFound("Tag key %s not found.", in.TagKey)
	}
	return map[string]any{"CatalogId": Account, "TagKey": in.TagKey, "TagValues": values}, nil
}

func (s *Server) updateLFTag(in struct {
	TagKey                            string
	TagValuesToAdd, TagValuesToDelete []string
}) (any, *awsError) {
	values, ok := s.tags[in.TagKey]
	if !ok {
		return nil, notFound("Tag key %s not found.", in.TagKey)
	}
	if len(in.TagValuesToAdd) > maxValuesACall || len(in.TagValuesToDelete) > maxValuesACall {
		return nil, invalidInput("UpdateLFTag takes at most %d values to add and to delete.", maxValuesACall)
	}
	values = slices.DeleteFunc(slices.Clone(values), func(v string) bool { return slices.Contains(in.TagValuesToDelete, v) })
	values = slices.Compact(slices.Sorted(slices.Values(append(values, in.TagValuesToAdd...))))
	if len(values) > maxTagValues {
		return nil, &awsError{400, "ResourceNumberLimitExceededException", fmt.Sprintf("An LF-tag has at most %d values.", maxTagValues)}
	}
	s.tags[in.TagKey] = values
	return nil, nil
}

type tagFailure struct {
	LFTag lfTag
	Error map[string]string
}

func (s *Server) addLFTagsToResource(in struct {
	Resource resource
	LFTags   []lfTag
}) (any, *awsError) {
	r := in.Resource
	if r.members() != 1 || (r.Database == nil && r.Table == nil && r.TableWithColumns == nil) {
		return nil, invalidInput("LF-tags are assigned to a database, a table or columns.")
	}
	var failures []tagFailure
	for _, t := range in.LFTags {
		values, ok := s.tags[t.TagKey]
		switch {
		case len(t.TagValues) != 1:
			failures = append(failures, tagFailure{t, map[string]string{"ErrorCode": "InvalidInputException", "ErrorMessage": "A resource takes one value of an LF-tag."}})
		case !ok || !slices.Contains(values, t.TagValues[0]):
			failures = append(failures, tagFailure{t, map[string]string{"ErrorCode": "EntityNotFoundException", "ErrorMessage": "Tag or tag value does not exist."}})
		}
	}
	if len(failures) > 0 {
		return map[string]any{"Failures": failures}, nil
	}
	set := func(m map[string]string) {
		for _, t := range in.LFTags {
			m[t.TagKey] = t.TagValues[0]
		}
	}
	switch {
	case r.Database != nil:
		d, ok := s.databases[r.Database.Name]
		if !ok {
			return nil, notFound("Database %s not found.", r.Database.Name)
		}
		set(d.tags)
	case r.Table != nil:
		if r.Table.TableWildcard != nil {
			return nil, invalidInput("lftest: LF-tags are assigned to named tables.")
		}
		t, aerr := s.table(r.Table.DatabaseName, r.Table.Name)
		if aerr != nil {
			return nil, aerr
		}
		if t.tags == nil {
			t.tags = map[string]string{}
		}
		set(t.tags)
	default:
		c := r.TableWithColumns
		t, aerr := s.table(c.DatabaseName, c.Name)
		if aerr != nil {
			return nil, aerr
		}
		for _, col := range c.ColumnNames {
			if !t.hasColumn(col) {
				return nil, invalidInput("Column %s does not exist in table %s.", col, c.Name)
			}
		}
		for _, col := range c.ColumnNames {
			if t.colTags[col] == nil {
				t.colTags[col] = map[string]string{}
			}
			set(t.colTags[col])
		}
	}
	return map[string]any{"Failures": []tagFailure{}}, nil
}

func pairs(m map[string]string) []map[string]any {
	out := []map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, map[string]any{"CatalogId": Account, "TagKey": k, "TagValues": []string{m[k]}})
	}
	return out
}

func (s *Server) getResourceLFTags(in struct{ Resource resource }) (any, *awsError) {
	r := in.Resource
	switch {
	case r.Database != nil:
		d, ok := s.databases[r.Database.Name]
		if !ok {
			return nil, notFound("Database %s not found.", r.Database.Name)
		}
		return map[string]any{"LFTagOnDatabase": pairs(d.tags)}, nil
	case r.Table != nil && r.Table.Name != "":
		t, aerr := s.table(r.Table.DatabaseName, r.Table.Name)
		if aerr != nil {
			return nil, aerr
		}
		var cols []map[string]any
		for _, c := range t.columns {
			if len(t.colTags[c.Name]) > 0 {
				cols = append(cols, map[string]any{"Name": c.Name, "LFTags": pairs(t.colTags[c.Name])})
			}
		}
		return map[string]any{"LFTagOnDatabase": pairs(s.databases[r.Table.DatabaseName].tags),
			"LFTagsOnTable": pairs(t.tags), "LFTagsOnColumns": cols}, nil
	}
	return nil, invalidInput("lftest: GetResourceLFTags answers for a database or a named table.")
}

// Row filter expressions: a disjunction of conjunctions of column =
// 'string' comparisons.

type comparison struct{ column, value string }

// rowExpr is OR over AND groups.
type rowExpr [][]comparison

func (e rowExpr) eval(row map[string]string) bool {
	for _, group := range e {
		all := true
		for _, c := range group {
			if row[c.column] != c.value {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (e rowExpr) columns() []string {
	var out []string
	for _, g := range e {
		for _, c := range g {
			out = append(out, c.column)
		}
	}
	return out
}

var comparisonPattern = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'((?:[^']|'')*)'\s*`)

// parseRowFilter parses the subset the double evaluates.
func parseRowFilter(s string) (rowExpr, error) {
	var out rowExpr
	var group []comparison
	rest := s
	for {
		m := comparisonPattern.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("lftest evaluates only column = 'string' comparisons joined by AND and OR, at %q", rest)
		}
		group = append(group, comparison{m[1], strings.ReplaceAll(m[2], "''", "'")})
		rest = rest[len(m[0]):]
		upper := strings.ToUpper(rest)
		switch {
		case rest == "":
			return append(out, group), nil
		case strings.HasPrefix(upper, "AND "):
			rest = rest[4:]
		case strings.HasPrefix(upper, "OR "):
			out, group = append(out, group), nil
			rest = rest[3:]
		default:
			return nil, fmt.Errorf("unexpected %q", rest)
		}
	}
}
