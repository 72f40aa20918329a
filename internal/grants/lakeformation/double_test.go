package lakeformation_test

// Tests against lftest, the scripted Lake Formation that holds the
// validation real Lake Formation applies and moto does not: what it
// refuses, that every permission the broker plans is one it accepts, and
// what a principal then reads through tags and data cells filters. They
// run without an emulator.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	lf "github.com/aws/aws-sdk-go-v2/service/lakeformation"
	lftypes "github.com/aws/aws-sdk-go-v2/service/lakeformation/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/grants/lakeformation/lftest"
)

// apiCode returns the AWS error code of err, "" for success.
func apiCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	apiErr, ok := errors.AsType[smithy.APIError](err)
	if !ok {
		t.Fatalf("not an API error: %v", err)
	}
	return apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
}

// TestDoubleRefusesWhatLakeFormationRefuses pins the double's rules with
// raw GrantPermissions calls: each refusal is Lake Formation's documented
// answer, each acceptance a shape Lake Formation takes.
func TestDoubleRefusesWhatLakeFormationRefuses(t *testing.T) {
	t.Parallel()
	double := lftest.New(t)
	double.AddTable("db", "events", []string{"tenant_id", "event", "email"}, nil)
	catalog, _ := newCatalog(t, double.URL)
	if err := catalog.EnsureCellsFilter(t.Context(), regionA, grants.CellsFilter{Database: "db", Table: "events", Name: "f", RowFilter: "tenant_id = 't1'"}); err != nil {
		t.Fatal(err)
	}
	if err := catalog.EnsureTag(t.Context(), regionA, "cairn:pii", []string{"false", "true"}); err != nil {
		t.Fatal(err)
	}
	client := lfClient(double.URL, regionA)
	const invalid = "InvalidInputException: Permissions modification is invalid."
	db := &lftypes.Resource{Database: &lftypes.DatabaseResource{Name: aws.String("db")}}
	table := &lftypes.Resource{Table: &lftypes.TableResource{DatabaseName: aws.String("db"), Name: aws.String("events")}}
	allTables := &lftypes.Resource{Table: &lftypes.TableResource{DatabaseName: aws.String("db"), TableWildcard: &lftypes.TableWildcard{}}}
	columns := &lftypes.Resource{TableWithColumns: &lftypes.TableWithColumnsResource{DatabaseName: aws.String("db"), Name: aws.String("events"), ColumnNames: []string{"event"}}}
	filter := &lftypes.Resource{DataCellsFilter: &lftypes.DataCellsFilterResource{TableCatalogId: aws.String(lftest.Account), DatabaseName: aws.String("db"), TableName: aws.String("events"), Name: aws.String("f")}}
	policy := func(values ...string) *lftypes.Resource {
		return &lftypes.Resource{LFTagPolicy: &lftypes.LFTagPolicyResource{ResourceType: lftypes.ResourceTypeTable,
			Expression: []lftypes.LFTag{{TagKey: aws.String("cairn:pii"), TagValues: values}}}}
	}
	perms := func(p ...string) []lftypes.Permission {
		out := make([]lftypes.Permission, len(p))
		for i, x := range p {
			out[i] = lftypes.Permission(x)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		resource *lftypes.Resource
		perms    []lftypes.Permission
		want     string
	}{
		{"SELECT on a database", db, perms("SELECT"), invalid},
		{"INSERT on a database", db, perms("DESCRIBE", "INSERT"), invalid},
		{"DATA_LOCATION_ACCESS on a database", db, perms("DATA_LOCATION_ACCESS"), invalid},
		{"database permissions", db, perms("ALTER", "CREATE_TABLE", "DESCRIBE", "DROP"), ""},
		{"CREATE_TABLE on a table", table, perms("CREATE_TABLE"), invalid},
		{"table permissions", table, perms("ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"), ""},
		{"SELECT on all tables", allTables, perms("SELECT", "DESCRIBE"), ""},
		{"a table and a wildcard", &lftypes.Resource{Table: &lftypes.TableResource{DatabaseName: aws.String("db"), Name: aws.String("events"), TableWildcard: &lftypes.TableWildcard{}}}, perms("SELECT"),
			"InvalidInputException: Table resource must have exactly one of Name and TableWildcard."},
		{"a missing table", &lftypes.Resource{Table: &lftypes.TableResource{DatabaseName: aws.String("db"), Name: aws.String("nope")}}, perms("SELECT"),
			"EntityNotFoundException: Table nope not found."},
		{"DESCRIBE on columns", columns, perms("SELECT", "DESCRIBE"), invalid},
		{"SELECT on columns", columns, perms("SELECT"), ""},
		{"a missing column", &lftypes.Resource{TableWithColumns: &lftypes.TableWithColumnsResource{DatabaseName: aws.String("db"), Name: aws.String("events"), ColumnNames: []string{"salary"}}}, perms("SELECT"),
			"InvalidInputException: cannot grant/revoke permission on non-existent column: salary"},
		{"INSERT through a filter", filter, perms("INSERT"), invalid},
		{"SELECT and DESCRIBE through a filter", filter, perms("SELECT", "DESCRIBE"), ""},
		{"a missing filter", &lftypes.Resource{DataCellsFilter: &lftypes.DataCellsFilterResource{TableCatalogId: aws.String(lftest.Account), DatabaseName: aws.String("db"), TableName: aws.String("events"), Name: aws.String("g")}}, perms("SELECT"),
			"EntityNotFoundException: Data cells filter g not found."},
		{"CREATE_TABLE on a table tag policy", policy("false"), perms("CREATE_TABLE"), invalid},
		{"SELECT on a table tag policy", policy("false"), perms("SELECT", "DESCRIBE"), ""},
		{"an unknown tag value", policy("maybe"), perms("SELECT"), "EntityNotFoundException: Tag value maybe not found for key cairn:pii."},
		{"two resources", &lftypes.Resource{Database: db.Database, Table: table.Table}, perms("DESCRIBE"),
			"InvalidInputException: Resource must specify exactly one resource type."},
	} {
		_, err := client.GrantPermissions(t.Context(), &lf.GrantPermissionsInput{
			Principal:   &lftypes.DataLakePrincipal{DataLakePrincipalIdentifier: aws.String("111122223333")},
			Resource:    tc.resource,
			Permissions: tc.perms,
		})
		if got := apiCode(t, err); got != tc.want {
			t.Errorf("%s: GrantPermissions = %q, want %q", tc.name, got, tc.want)
		}
	}
	// Revoking what is not granted is Lake Formation's "nothing to revoke".
	_, err := client.RevokePermissions(t.Context(), &lf.RevokePermissionsInput{
		Principal:   &lftypes.DataLakePrincipal{DataLakePrincipalIdentifier: aws.String("444455556666")},
		Resource:    table,
		Permissions: perms("SELECT"),
	})
	if got := apiCode(t, err); got != "InvalidInputException: No permissions revoked. Grantee has no permissions and no grantable permissions on resource." {
		t.Errorf("RevokePermissions of nothing = %q", got)
	}
}

// TestPlannedPermissionsAreValid: every permission the broker plans for a
// grant it accepts is one Lake Formation takes; the grant is listed back as
// what reconcile compares it with, and revoked whole. What the broker
// translates (SELECT on a database) is refused before any call when asked
// as such.
func TestPlannedPermissionsAreValid(t *testing.T) {
	t.Parallel()
	double := lftest.New(t)
	double.AddTable("cairn_ten_a", "tracks", []string{"message_id", "event", "user_id"}, nil)
	double.AddTable("cairn_ten_a", "identifies", []string{"message_id", "traits"}, nil)
	catalog, calls := newCatalog(t, double.URL)
	ctx := t.Context()
	for key, values := range grants.TagValues() {
		if err := catalog.EnsureTag(ctx, regionA, key, values); err != nil {
			t.Fatal(err)
		}
	}
	if err := catalog.EnsureTag(ctx, regionA, grants.TagDatabase, []string{"cairn_ten_a"}); err != nil {
		t.Fatal(err)
	}
	const role = "arn:aws:iam::444455556666:role/analyst"
	res := func(table string, columns ...string) grants.Resource {
		return grants.Resource{Region: regionA, Database: "cairn_ten_a", Table: table, Columns: columns}
	}
	tagged := res("")
	tagged.Tags = grants.TagExpression{grants.TagPII: {"false"}}
	for _, g := range []grants.Grant{
		{Principal: role, Resource: res(""), Permissions: []string{"DESCRIBE", "SELECT"}},
		{Principal: role, Resource: res(""), Permissions: []string{"ALTER", "DELETE", "DROP", "INSERT"}},
		{Principal: role, Resource: res("tracks"), Permissions: []string{"ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"}},
		{Principal: role, Resource: res("identifies", "message_id"), Permissions: []string{"SELECT"}},
		{Principal: role, Resource: tagged, Permissions: []string{"DESCRIBE", "SELECT"}},
	} {
		planned := grants.CatalogPermissions(g)
		for _, p := range planned {
			if err := catalog.Grant(ctx, regionA, p); err != nil {
				t.Fatalf("grant %+v planned for %+v: %v", p, g, err)
			}
		}
		listed, err := catalog.Permissions(ctx, regionA, "cairn_ten_a")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range planned {
			if len(p.Resource.Tags) > 0 {
				more, err := catalog.TagPolicyPermissions(ctx, regionA, p.Resource.Tags)
				if err != nil {
					t.Fatal(err)
				}
				listed = append(listed, more...)
			}
		}
		if diff := cmp.Diff(planned, listed, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%+v: listed (-planned +got):\n%s", g, diff)
		}
		for _, p := range planned {
			if err := catalog.Revoke(ctx, regionA, p); err != nil {
				t.Fatal(err)
			}
		}
		if left, err := catalog.Permissions(ctx, regionA, "cairn_ten_a"); err != nil || len(left) != 0 {
			t.Errorf("%+v: after revoke %v, %v", g, left, err)
		}
	}
	// The translations, as plans: a database-wide SELECT is on all tables.
	got := grants.CatalogPermissions(grants.Grant{Principal: role, Resource: res(""), Permissions: []string{"DESCRIBE", "SELECT"}})
	want := []grants.Permission{
		{Principal: role, Resource: res(""), Permissions: []string{"DESCRIBE"}},
		{Principal: role, Resource: res(""), AllTables: true, Permissions: []string{"SELECT"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan of SELECT, DESCRIBE on the database (-want +got):\n%s", diff)
	}
	got = grants.CatalogPermissions(grants.Grant{Principal: role, Resource: tagged, Permissions: []string{"SELECT"}})
	if e := got[0].Resource.Tags; len(got) != 1 || !e.Equal(grants.TagExpression{grants.TagPII: {"false"}, grants.TagDatabase: {"cairn_ten_a"}}) {
		t.Errorf("plan of a tag grant: %+v; want one policy scoped to the database", got)
	}

	// Asked as they are, they are refused before a call.
	before := double.Calls("GrantPermissions")
	for _, p := range []grants.Permission{
		{Principal: role, Resource: res(""), Permissions: []string{"SELECT"}},
		{Principal: role, Resource: res("tracks", "event"), Permissions: []string{"DESCRIBE"}},
		{Principal: role, Resource: res("tracks"), CellsFilter: "f", Permissions: []string{"INSERT"}},
		{Principal: role, Resource: res(""), Permissions: []string{"DATA_LOCATION_ACCESS"}},
	} {
		if err := catalog.Grant(ctx, regionA, p); !errors.Is(err, grants.ErrInvalidPermission) {
			t.Errorf("Grant(%+v) = %v, want ErrInvalidPermission", p, err)
		}
	}
	if n := double.Calls("GrantPermissions"); n != before {
		t.Errorf("refused grants made %d calls", n-before)
	}
	// Permissions: ListPermissions for the database, all its tables, and
	// each of its two tables.
	calls.Reset()
	if _, err := catalog.Permissions(ctx, regionA, "cairn_ten_a"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"Glue.GetTables": 1, "LakeFormation.ListPermissions": 4}, calls.Snapshot()); diff != "" {
		t.Errorf("Permissions calls (-want +got):\n%s", diff)
	}
}

// TestTagsOnDouble: the vocabulary is created once and extended, tags go on
// databases, tables and columns, and a column's tags are its own, else its
// table's, else its database's.
func TestTagsOnDouble(t *testing.T) {
	t.Parallel()
	double := lftest.New(t)
	double.AddTable("db", "identifies", []string{"message_id", "user_id", "traits", "received_at"}, nil)
	catalog, _ := newCatalog(t, double.URL)
	ctx := t.Context()

	if err := catalog.EnsureTag(ctx, regionA, grants.TagPII, []string{"true", "false"}); err != nil {
		t.Fatal(err)
	}
	if err := catalog.EnsureTag(ctx, regionA, grants.TagPII, []string{"false", "true"}); err != nil {
		t.Fatalf("EnsureTag again: %v", err)
	}
	if n := double.Calls("UpdateLFTag"); n != 0 {
		t.Errorf("EnsureTag of the same values updated the tag %d times", n)
	}
	// More values than one call takes: created with 50, then added.
	many := make([]string, 0, 120)
	for i := range 120 {
		many = append(many, "cairn_db_"+string(rune('a'+i/26))+string(rune('a'+i%26)))
	}
	if err := catalog.EnsureTag(ctx, regionA, grants.TagDatabase, many[:70]); err != nil {
		t.Fatal(err)
	}
	if err := catalog.EnsureTag(ctx, regionA, grants.TagDatabase, many); err != nil {
		t.Fatal(err)
	}
	if got, want := double.Calls("UpdateLFTag"), 2; got != want { // 20 after creation, then 50 in one call
		t.Errorf("UpdateLFTag calls = %d, want %d", got, want)
	}
	got, err := lfClient(double.URL, regionA).GetLFTag(ctx, &lf.GetLFTagInput{TagKey: aws.String(grants.TagDatabase)})
	if err != nil || len(got.TagValues) != 120 {
		t.Fatalf("GetLFTag = %d values, %v; want 120", len(got.TagValues), err)
	}

	for _, a := range []grants.TagAssignment{
		{Database: "db", Tags: map[string]string{grants.TagDatabase: many[0]}},
		{Database: "db", Table: "identifies", Tags: map[string]string{grants.TagPII: "false"}},
		{Database: "db", Table: "identifies", Columns: []string{"traits", "user_id"}, Tags: map[string]string{grants.TagPII: "true"}},
		{Database: "db", Table: "identifies", Columns: []string{"user_id"}, Tags: map[string]string{grants.TagPII: "false"}},
	} {
		if err := catalog.AssignTags(ctx, regionA, a); err != nil {
			t.Fatalf("AssignTags(%+v): %v", a, err)
		}
	}
	tags, err := catalog.ColumnTags(ctx, regionA, "db", "identifies")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"message_id":  {grants.TagDatabase: many[0], grants.TagPII: "false"},
		"user_id":     {grants.TagDatabase: many[0], grants.TagPII: "false"},
		"traits":      {grants.TagDatabase: many[0], grants.TagPII: "true"},
		"received_at": {grants.TagDatabase: many[0], grants.TagPII: "false"},
	}
	if diff := cmp.Diff(want, tags); diff != "" {
		t.Errorf("ColumnTags (-want +got):\n%s", diff)
	}

	// Lake Formation answers a bad assignment in a successful answer.
	err = catalog.AssignTags(ctx, regionA, grants.TagAssignment{Database: "db", Table: "identifies", Tags: map[string]string{grants.TagPII: "maybe"}})
	if !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("AssignTags of an unknown value = %v, want ErrNotFound", err)
	}
	if _, err := catalog.ColumnTags(ctx, regionA, "db", "nope"); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("ColumnTags of a missing table = %v, want ErrNotFound", err)
	}
}

// TestFilterConfinesRows: through a data cells filter with the tenant's
// row filter, a principal reads its tenant's rows of a shared table and no
// other; a tag-selected filter narrows the columns too.
func TestFilterConfinesRows(t *testing.T) {
	t.Parallel()
	double := lftest.New(t)
	const db = "cairn_pool_ten_a"
	double.AddTable(db, "tracks", []string{"tenant_id", "event", "email", "context_ip"}, map[string]string{"cairn:shared": "true"})
	double.AddRows(db, "tracks",
		map[string]string{"tenant_id": "ten_a", "event": "Signed Up", "email": "ada@example.com", "context_ip": "192.0.2.1"},
		map[string]string{"tenant_id": "ten_b", "event": "Order Completed", "email": "bob@example.org", "context_ip": "192.0.2.2"},
		map[string]string{"tenant_id": "ten_a'", "event": "Sneaky", "email": "eve@example.net", "context_ip": "192.0.2.3"},
		map[string]string{"tenant_id": "ten_a", "event": "Order Completed", "email": "ada@example.com", "context_ip": "192.0.2.1"})
	catalog, _ := newCatalog(t, double.URL)
	ctx := t.Context()
	const roleA, roleB = "arn:aws:iam::444455556666:role/a", "arn:aws:iam::777788889999:role/b"

	rows := grants.CellsFilter{Database: db, Table: "tracks", Name: grants.CellsFilterName("ten_a", nil), RowFilter: grants.RowFilter("ten_a")}
	if err := catalog.EnsureCellsFilter(ctx, regionA, rows); err != nil {
		t.Fatal(err)
	}
	if err := catalog.Grant(ctx, regionA, grants.Permission{Principal: roleA, Resource: grants.Resource{Database: db, Table: "tracks"}, CellsFilter: rows.Name, Permissions: []string{"SELECT"}}); err != nil {
		t.Fatal(err)
	}
	got := double.Query(roleA, db, "tracks")
	if len(got) != 2 || slices.ContainsFunc(got, func(r map[string]string) bool { return r["tenant_id"] != "ten_a" }) {
		t.Fatalf("through the tenant's filter: %v; want its 2 rows only", got)
	}
	if got := double.Query(roleB, db, "tracks"); len(got) != 0 {
		t.Fatalf("a principal without grants reads %v", got)
	}

	// A filter on the columns tagged cairn:pii=false: the same rows, the
	// non-PII columns.
	cols := grants.CellsFilter{Database: db, Table: "tracks", Name: "cols", RowFilter: grants.RowFilter("ten_a"), Columns: []string{"event", "tenant_id"}}
	if err := catalog.EnsureCellsFilter(ctx, regionA, cols); err != nil {
		t.Fatal(err)
	}
	if err := catalog.Grant(ctx, regionA, grants.Permission{Principal: roleB, Resource: grants.Resource{Database: db, Table: "tracks"}, CellsFilter: "cols", Permissions: []string{"SELECT"}}); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{"tenant_id": "ten_a", "event": "Signed Up"}, {"tenant_id": "ten_a", "event": "Order Completed"}}
	if diff := cmp.Diff(want, double.Query(roleB, db, "tracks")); diff != "" {
		t.Errorf("through a column filter (-want +got):\n%s", diff)
	}
	// A filter may not show every row: the double, like the adapter,
	// has no filter without a row filter to offer.
	if err := catalog.EnsureCellsFilter(ctx, regionA, grants.CellsFilter{Database: db, Table: "tracks", Name: "all"}); err == nil {
		t.Error("a filter without a row filter was made")
	}
}

// TestCellsFiltersLists: the adapter lists the data cells filters on
// every table of a database, past a page of 100, with their row filters
// and columns, and none of another database's; a missing database is
// grants.ErrNotFound.
func TestCellsFiltersLists(t *testing.T) {
	t.Parallel()
	double := lftest.New(t)
	double.AddTable("pool", "tracks", []string{"tenant_id", "event", "email"}, nil)
	double.AddTable("pool", "pages", []string{"tenant_id", "url"}, nil)
	double.AddTable("other", "tracks", []string{"tenant_id", "event"}, nil)
	catalog, _ := newCatalog(t, double.URL)
	var want []grants.CellsFilter
	ensure := func(f grants.CellsFilter) {
		t.Helper()
		if err := catalog.EnsureCellsFilter(t.Context(), regionA, f); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 101 {
		f := grants.CellsFilter{Database: "pool", Table: "tracks", Name: fmt.Sprintf("f%03d", i), RowFilter: fmt.Sprintf("tenant_id = 't%d'", i)}
		ensure(f)
		want = append(want, f)
	}
	cols := grants.CellsFilter{Database: "pool", Table: "pages", Name: "cols", RowFilter: "tenant_id = 't1'", Columns: []string{"url"}}
	ensure(cols)
	want = append(want, cols)
	ensure(grants.CellsFilter{Database: "other", Table: "tracks", Name: "elsewhere", RowFilter: "tenant_id = 't1'"})

	got, err := catalog.CellsFilters(t.Context(), regionA, "pool")
	if err != nil {
		t.Fatal(err)
	}
	byName := func(a, b grants.CellsFilter) int { return strings.Compare(a.Table+"/"+a.Name, b.Table+"/"+b.Name) }
	slices.SortFunc(got, byName)
	slices.SortFunc(want, byName)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("CellsFilters (-want +got):\n%s", diff)
	}
	if _, err := catalog.CellsFilters(t.Context(), regionA, "missing"); !errors.Is(err, grants.ErrNotFound) {
		t.Fatalf("CellsFilters of a missing database = %v, want grants.ErrNotFound", err)
	}
}
