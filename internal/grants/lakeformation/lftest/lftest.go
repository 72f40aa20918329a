// Package lftest is a scripted Lake Formation for tests: an HTTP server
// that answers the Lake Formation, Glue and STS calls the lakeformation
// adapter makes, keeps their state in memory, and holds the validation that
// real Lake Formation applies and the AWS emulator (moto) does not. Point an
// SDK client (or lakeformation.Config.EndpointURL) at Server.URL.
//
// # What it encodes
//
// Sources: the AWS Lake Formation Developer Guide ("Lake Formation
// permissions reference": permissions by resource type; "Granting table
// permissions"; "Data filters in Lake Formation"; "Data filtering
// limitations"; "Assigning LF-Tags to Data Catalog resources") and the
// Lake Formation API Reference (GrantPermissions, RevokePermissions,
// ListPermissions, TableResource, TableWithColumnsResource,
// CreateDataCellsFilter, LFTag, AddLFTagsToResource, GetResourceLFTags).
//
// GrantPermissions refuses, as Lake Formation does:
//
//   - a request without a principal or permissions, or whose Resource sets
//     no member or more than one (InvalidInputException);
//   - a permission the resource does not take, with InvalidInputException
//     "Permissions modification is invalid.": Catalog takes ALL, ALTER,
//     CREATE_DATABASE, DESCRIBE, DROP; Database ALL, ALTER, CREATE_TABLE,
//     DESCRIBE, DROP (so no SELECT, INSERT or DELETE on a database); Table
//     (named or TableWildcard) ALL, ALTER, DELETE, DESCRIBE, DROP, INSERT,
//     SELECT; TableWithColumns SELECT only; DataCellsFilter DESCRIBE, DROP,
//     SELECT; an LFTagPolicy the permissions of its ResourceType (DATABASE
//     or TABLE); DataLocation DATA_LOCATION_ACCESS only;
//   - a Table with both or neither of Name and TableWildcard, a
//     TableWithColumns with both or neither of ColumnNames and
//     ColumnWildcard (InvalidInputException);
//   - a database, table or data cells filter that does not exist
//     (EntityNotFoundException), a column that does not exist
//     (InvalidInputException "... non-existent column");
//   - an LF-tag policy on a tag key or value that does not exist
//     (EntityNotFoundException), or with more than 50 values for a key.
//
// RevokePermissions of what is not granted answers InvalidInputException
// "No permissions revoked. Grantee has no permissions and no grantable
// permissions on resource.". ListPermissions filters by resource as Lake
// Formation does: a Database's own permissions; for a named Table its own,
// its columns' and, with IncludeRelated=TRUE, its data cells filters'; for
// a TableWildcard the permissions on all tables of the database; for an
// LFTagPolicy the permissions on exactly that policy. SELECT on a table is
// listed as a TableWithColumns with a ColumnWildcard, and SELECT on a
// TableWildcard as the columns of table "ALL_TABLES", as Lake Formation
// lists them. Deleting a data cells filter takes its permissions with it.
//
// LF-tags: CreateLFTag refuses an existing key (AlreadyExistsException) and
// more than 50 values a call, UpdateLFTag keeps at most 1,000 values,
// AddLFTagsToResource refuses an unknown key or value and more than one
// value of a key on a resource (as Failures in a successful answer, as Lake
// Formation does), and replaces the value a resource had for a key.
// GetResourceLFTags answers the tags assigned to the database, the table
// and each column. Tables inherit their database's tags and columns their
// table's, unless given their own value (Query applies this).
//
// Data cells filters: CreateDataCellsFilter refuses a filter that exists,
// a missing table or column, and a filter without exactly one of
// ColumnNames and ColumnWildcard or of FilterExpression and AllRowsWildcard.
// Row filter expressions are PartiQL in Lake Formation; this double
// evaluates the subset Cairn writes, comparisons column = 'string' joined
// by AND and OR (AND binding tighter), and refuses anything else with
// InvalidInputException.
//
// # Query
//
// Query answers what a principal would read from a table through an engine
// that enforces Lake Formation (Athena): the rows and columns its
// permissions reach. A column is readable in every row through SELECT (or
// ALL) on the table, on all tables of its database, on the column, or
// through an LF-tag policy on tables whose expression matches the column's
// tags (its own, else its table's, else its database's, per key); through a
// data cells filter, it is readable in the rows that match the filter's row
// filter, if it is one of the filter's columns. Permissions combine by
// union, as in Lake Formation; a row with no readable column is not
// returned. Principals are compared as strings (a grant to an account does
// not reach its roles here).
//
// It does not model grant options, cross-account catalogs, resource links,
// named LF-tag expressions, data locations or IAMAllowedPrincipals. A
// Server is safe for concurrent use.
package lftest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Account is the account ID the double's STS answers and its catalog ID.
const Account = "111122223333"

// Server is the scripted Lake Formation. Create it with New.
type Server struct {
	// URL is the endpoint to point SDK clients at.
	URL string

	mu        sync.Mutex
	databases map[string]*database
	perms     []*grant
	filters   map[string]*filter // key: db/table/name
	tags      map[string][]string
	calls     map[string]int
}

type database struct {
	tables map[string]*table
	tags   map[string]string
}

type table struct {
	columns []column
	params  map[string]string
	tags    map[string]string
	colTags map[string]map[string]string
	rows    []map[string]string
}

type column struct{ Name, Type string }

type grant struct {
	principal string
	res       resource
	perms     []string
}

type filter struct {
	db, table, name string
	columns         []string // nil with a wildcard
	excluded        []string
	expr            rowExpr // nil for all rows
	raw             map[string]any
}

// New starts a Server, closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		databases: map[string]*database{},
		filters:   map[string]*filter{},
		tags:      map[string][]string{},
		calls:     map[string]int{},
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// AddTable creates the table (and its database), with columns given as
// "name" or "name:type" (string by default) and Glue table parameters.
func (s *Server) AddTable(db, name string, columns []string, params map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.db(db)
	t := &table{params: params, colTags: map[string]map[string]string{}}
	for _, c := range columns {
		n, typ, ok := strings.Cut(c, ":")
		if !ok {
			typ = "string"
		}
		t.columns = append(t.columns, column{n, typ})
	}
	d.tables[name] = t
}

// AddRows appends rows (column → value) to a table's data, for Query.
func (s *Server) AddRows(db, name string, rows ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.databases[db].tables[name]
	t.rows = append(t.rows, rows...)
}

// Calls returns how many times op was called.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *Server) db(name string) *database {
	d, ok := s.databases[name]
	if !ok {
		d = &database{tables: map[string]*table{}, tags: map[string]string{}}
		s.databases[name] = d
	}
	return d
}

// Query returns the rows of db.table principal can read, each with only
// the columns it can read in that row (see the package documentation), in
// the table's row order.
func (s *Server) Query(principal, db, name string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.databases[db]
	if !ok {
		return nil
	}
	t, ok := d.tables[name]
	if !ok {
		return nil
	}
	everywhere := map[string]bool{}
	var filters []*filter
	for _, g := range s.perms {
		if g.principal != principal || !(slices.Contains(g.perms, "SELECT") || slices.Contains(g.perms, "ALL")) {
			continue
		}
		r := g.res
		switch {
		case r.Table != nil && r.Table.DatabaseName == db && (r.Table.Name == name || r.Table.TableWildcard != nil):
			for _, c := range t.columns {
				everywhere[c.Name] = true
			}
		case r.TableWithColumns != nil && r.TableWithColumns.DatabaseName == db && r.TableWithColumns.Name == name:
			for _, c := range t.columns {
				if r.TableWithColumns.covers(c.Name) {
					everywhere[c.Name] = true
				}
			}
		case r.LFTagPolicy != nil && r.LFTagPolicy.ResourceType == "TABLE":
			for _, c := range t.columns {
				if r.LFTagPolicy.matches(effectiveTags(d, t, c.Name)) {
					everywhere[c.Name] = true
				}
			}
		case r.DataCellsFilter != nil && r.DataCellsFilter.DatabaseName == db && r.DataCellsFilter.TableName == name:
			if f, ok := s.filters[db+"/"+name+"/"+r.DataCellsFilter.Name]; ok {
				filters = append(filters, f)
			}
		}
	}
	var out []map[string]string
	for _, row := range t.rows {
		got := map[string]string{}
		for _, c := range t.columns {
			if everywhere[c.Name] {
				got[c.Name] = row[c.Name]
			}
		}
		for _, f := range filters {
			if f.expr != nil && !f.expr.eval(row) {
				continue
			}
			for _, c := range t.columns {
				if f.covers(c.Name) {
					got[c.Name] = row[c.Name]
				}
			}
		}
		if len(got) > 0 {
			out = append(out, got)
		}
	}
	return out
}

// effectiveTags is a column's LF-tags: its own, else its table's, else its
// database's value of each key.
func effectiveTags(d *database, t *table, col string) map[string]string {
	out := maps.Clone(d.tags)
	maps.Copy(out, t.tags)
	maps.Copy(out, t.colTags[col])
	return out
}

func (f *filter) covers(col string) bool {
	if f.columns != nil {
		return slices.Contains(f.columns, col)
	}
	return !slices.Contains(f.excluded, col)
}

// awsError is an error answer.
type awsError struct {
	status        int
	code, message string
}

func (e *awsError) Error() string { return e.code + ": " + e.message }

func invalidInput(format string, args ...any) *awsError {
	return &awsError{http.StatusBadRequest, "InvalidInputException", fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *awsError {
	return &awsError{http.StatusBadRequest, "EntityNotFoundException", fmt.Sprintf(format, args...)}
}

func alreadyExists(format string, args ...any) *awsError {
	return &awsError{http.StatusBadRequest, "AlreadyExistsException", fmt.Sprintf(format, args...)}
}

// errInvalidModification is Lake Formation's answer to a permission its
// resource does not take.
var errInvalidModification = invalidInput("Permissions modification is invalid.")

// ServeHTTP answers STS (awsQuery), Glue (awsJson, X-Amz-Target) and Lake
// Formation (REST-JSON, POST /<Operation>).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, _ := url.ParseQuery(string(raw))
		if form.Get("Action") != "GetCallerIdentity" {
			http.Error(w, "lftest: unsupported STS action "+form.Get("Action"), http.StatusBadRequest)
			return
		}
		s.count("GetCallerIdentity")
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
			`<Arn>arn:aws:iam::%[1]s:role/cairn</Arn><UserId>AROALFTEST</UserId><Account>%[1]s</Account>`+
			`</GetCallerIdentityResult><ResponseMetadata><RequestId>lftest</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, Account)
		return
	}
	glue := r.Header.Get("X-Amz-Target") != ""
	op := strings.TrimPrefix(r.URL.Path, "/")
	if glue {
		_, op, _ = strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	}
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	s.count(op)
	var out any
	var aerr *awsError
	func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		h, ok := handlers[op]
		if !ok {
			aerr = &awsError{http.StatusNotFound, "UnknownOperationException", "lftest does not answer " + op}
			return
		}
		out, aerr = h(s, raw)
	}()
	ct := "application/json"
	if glue {
		ct = "application/x-amz-json-1.1"
	}
	w.Header().Set("Content-Type", ct)
	if aerr != nil {
		w.Header().Set("X-Amzn-ErrorType", aerr.code)
		w.WriteHeader(aerr.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": aerr.code, "message": aerr.message})
		return
	}
	if out == nil {
		out = map[string]any{}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) count(op string) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

var handlers map[string]func(*Server, []byte) (any, *awsError)

func init() {
	handlers = map[string]func(*Server, []byte) (any, *awsError){
		// Glue.
		"CreateDatabase": decoded((*Server).createDatabase),
		"GetDatabase":    decoded((*Server).getDatabase),
		"CreateTable":    decoded((*Server).createTable),
		"GetTable":       decoded((*Server).getTable),
		"GetTables":      decoded((*Server).getTables),
		// Lake Formation.
		"GrantPermissions":      decoded((*Server).grantPermissions),
		"RevokePermissions":     decoded((*Server).revokePermissions),
		"ListPermissions":       decoded((*Server).listPermissions),
		"CreateDataCellsFilter": decoded((*Server).createDataCellsFilter),
		"GetDataCellsFilter":    decoded((*Server).getDataCellsFilter),
		"UpdateDataCellsFilter": decoded((*Server).updateDataCellsFilter),
		"DeleteDataCellsFilter": decoded((*Server).deleteDataCellsFilter),
		"ListDataCellsFilter":   decoded((*Server).listDataCellsFilter),
		"CreateLFTag":           decoded((*Server).createLFTag),
		"GetLFTag":              decoded((*Server).getLFTag),
		"UpdateLFTag":           decoded((*Server).updateLFTag),
		"AddLFTagsToResource":   decoded((*Server).addLFTagsToResource),
		"GetResourceLFTags":     decoded((*Server).getResourceLFTags),
	}
}

// decoded adapts a handler taking its decoded request.
func decoded[In any](h func(*Server, In) (any, *awsError)) func(*Server, []byte) (any, *awsError) {
	return func(s *Server, raw []byte) (any, *awsError) {
		var in In
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, &awsError{http.StatusBadRequest, "SerializationException", err.Error()}
			}
		}
		return h(s, in)
	}
}

// Glue.

type glueColumn struct{ Name, Type string }

type glueTableInput struct {
	Name              string
	Parameters        map[string]string
	PartitionKeys     []glueColumn
	StorageDescriptor *struct{ Columns []glueColumn }
}

func (s *Server) createDatabase(in struct{ DatabaseInput struct{ Name string } }) (any, *awsError) {
	if _, ok := s.databases[in.DatabaseInput.Name]; ok {
		return nil, alreadyExists("Database already exists.")
	}
	s.db(in.DatabaseInput.Name)
	return nil, nil
}

func (s *Server) getDatabase(in struct{ Name string }) (any, *awsError) {
	if _, ok := s.databases[in.Name]; !ok {
		return nil, notFound("Database %s not found.", in.Name)
	}
	return map[string]any{"Database": map[string]any{"Name": in.Name, "CatalogId": Account}}, nil
}

func (s *Server) createTable(in struct {
	DatabaseName string
	TableInput   glueTableInput
}) (any, *awsError) {
	d, ok := s.databases[in.DatabaseName]
	if !ok {
		return nil, notFound("Database %s not found.", in.DatabaseName)
	}
	if _, ok := d.tables[in.TableInput.Name]; ok {
		return nil, alreadyExists("Table already exists.")
	}
	t := &table{params: in.TableInput.Parameters, colTags: map[string]map[string]string{}}
	if sd := in.TableInput.StorageDescriptor; sd != nil {
		for _, c := range sd.Columns {
			t.columns = append(t.columns, column(c))
		}
	}
	for _, c := range in.TableInput.PartitionKeys {
		t.columns = append(t.columns, column(c))
	}
	d.tables[in.TableInput.Name] = t
	return nil, nil
}

func glueTable(db, name string, t *table) map[string]any {
	var cols, parts []map[string]string
	for _, c := range t.columns {
		cols = append(cols, map[string]string{"Name": c.Name, "Type": c.Type})
	}
	return map[string]any{"Name": name, "DatabaseName": db, "Parameters": t.params,
		"StorageDescriptor": map[string]any{"Columns": cols}, "PartitionKeys": parts}
}

func (s *Server) getTable(in struct{ DatabaseName, Name string }) (any, *awsError) {
	t, aerr := s.table(in.DatabaseName, in.Name)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"Table": glueTable(in.DatabaseName, in.Name, t)}, nil
}

func (s *Server) getTables(in struct {
	DatabaseName string
	MaxResults   int
	NextToken    string
}) (any, *awsError) {
	d, ok := s.databases[in.DatabaseName]
	if !ok {
		return nil, notFound("Database %s not found.", in.DatabaseName)
	}
	names := slices.Sorted(maps.Keys(d.tables))
	page, next := paginate(names, in.MaxResults, in.NextToken)
	var list []map[string]any
	for _, n := range page {
		list = append(list, glueTable(in.DatabaseName, n, d.tables[n]))
	}
	out := map[string]any{"TableList": list}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

// paginate returns the page of items at token (an offset) and the next
// token, "" at the end.
func paginate[T any](items []T, max int, token string) ([]T, string) {
	if max <= 0 {
		max = 100
	}
	from, _ := strconv.Atoi(token)
	from = min(from, len(items))
	to := min(from+max, len(items))
	next := ""
	if to < len(items) {
		next = strconv.Itoa(to)
	}
	return items[from:to], next
}

func (s *Server) table(db, name string) (*table, *awsError) {
	d, ok := s.databases[db]
	if !ok {
		return nil, notFound("Database %s not found.", db)
	}
	t, ok := d.tables[name]
	if !ok {
		return nil, notFound("Table %s not found.", name)
	}
	return t, nil
}

func (t *table) hasColumn(name string) bool {
	return slices.ContainsFunc(t.columns, func(c column) bool { return c.Name == name })
}
