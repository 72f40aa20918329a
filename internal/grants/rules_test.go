package grants

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/tenants"
)

func TestCheckPermission(t *testing.T) {
	const who = "111122223333"
	db := Resource{Database: "d"}
	table := Resource{Database: "d", Table: "t"}
	cols := Resource{Database: "d", Table: "t", Columns: []string{"c"}}
	tags := Resource{Database: "d", Tags: TagExpression{TagPII: {"false"}}}
	for _, tc := range []struct {
		name string
		p    Permission
		ok   bool
	}{
		{"database permissions", Permission{Principal: who, Resource: db, Permissions: []string{"ALTER", "CREATE_TABLE", "DESCRIBE", "DROP"}}, true},
		{"SELECT on a database", Permission{Principal: who, Resource: db, Permissions: []string{"SELECT"}}, false},
		{"INSERT on a database", Permission{Principal: who, Resource: db, Permissions: []string{"DESCRIBE", "INSERT"}}, false},
		{"DATA_LOCATION_ACCESS on a database", Permission{Principal: who, Resource: db, Permissions: []string{"DATA_LOCATION_ACCESS"}}, false},
		{"SELECT on all tables", Permission{Principal: who, Resource: db, AllTables: true, Permissions: []string{"SELECT", "INSERT", "DELETE"}}, true},
		{"CREATE_TABLE on all tables", Permission{Principal: who, Resource: db, AllTables: true, Permissions: []string{"CREATE_TABLE"}}, false},
		{"a table wildcard naming a table", Permission{Principal: who, Resource: table, AllTables: true, Permissions: []string{"SELECT"}}, false},
		{"table permissions", Permission{Principal: who, Resource: table, Permissions: []string{"ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"}}, true},
		{"SELECT on columns", Permission{Principal: who, Resource: cols, Permissions: []string{"SELECT"}}, true},
		{"DESCRIBE on columns", Permission{Principal: who, Resource: cols, Permissions: []string{"SELECT", "DESCRIBE"}}, false},
		{"a filter", Permission{Principal: who, Resource: table, CellsFilter: "f", Permissions: []string{"SELECT", "DESCRIBE", "DROP"}}, true},
		{"INSERT through a filter", Permission{Principal: who, Resource: table, CellsFilter: "f", Permissions: []string{"INSERT"}}, false},
		{"a filter with columns", Permission{Principal: who, Resource: cols, CellsFilter: "f", Permissions: []string{"SELECT"}}, false},
		{"a filter without a table", Permission{Principal: who, Resource: db, CellsFilter: "f", Permissions: []string{"SELECT"}}, false},
		{"a tag policy", Permission{Principal: who, Resource: tags, Permissions: []string{"SELECT", "DESCRIBE"}}, true},
		{"a tag policy on a table", Permission{Principal: who, Resource: Resource{Database: "d", Table: "t", Tags: tags.Tags}, Permissions: []string{"SELECT"}}, false},
		{"CREATE_TABLE on a table tag policy", Permission{Principal: who, Resource: tags, Permissions: []string{"CREATE_TABLE"}}, false},
		{"no principal", Permission{Resource: db, Permissions: []string{"DESCRIBE"}}, false},
		{"no permissions", Permission{Principal: who, Resource: db}, false},
	} {
		err := CheckPermission(tc.p)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidPermission)) {
			t.Errorf("%s: CheckPermission = %v, want ok %t", tc.name, err, tc.ok)
		}
	}
}

func TestCatalogPermissions(t *testing.T) {
	const who = "111122223333"
	res := func(table string, columns ...string) Resource {
		return Resource{Region: "eu-west-1", Database: "d", Table: table, Columns: columns}
	}
	tagged := res("")
	tagged.Tags = TagExpression{TagPII: {"false"}}
	for _, tc := range []struct {
		name string
		g    Grant
		want []Permission
	}{
		{"SELECT and DESCRIBE on a database: DESCRIBE on it, SELECT on all its tables",
			Grant{Principal: who, Resource: res(""), Permissions: []string{"DESCRIBE", "SELECT"}},
			[]Permission{
				{Principal: who, Resource: res(""), Permissions: []string{"DESCRIBE"}},
				{Principal: who, Resource: res(""), AllTables: true, Permissions: []string{"SELECT"}},
			}},
		{"database permissions stay on the database",
			Grant{Principal: who, Resource: res(""), Permissions: []string{"ALTER", "DROP"}},
			[]Permission{{Principal: who, Resource: res(""), Permissions: []string{"ALTER", "DROP"}}}},
		{"INSERT and DELETE on a database: on all its tables",
			Grant{Principal: who, Resource: res(""), Permissions: []string{"DELETE", "INSERT"}},
			[]Permission{{Principal: who, Resource: res(""), AllTables: true, Permissions: []string{"DELETE", "INSERT"}}}},
		{"a table",
			Grant{Principal: who, Resource: res("t"), Permissions: []string{"SELECT"}},
			[]Permission{{Principal: who, Resource: res("t"), Permissions: []string{"SELECT"}}}},
		{"columns through a filter: the filter carries them",
			Grant{Principal: who, Resource: res("t", "a", "b"), CellsFilter: "f", Permissions: []string{"SELECT"}},
			[]Permission{{Principal: who, Resource: res("t"), CellsFilter: "f", Permissions: []string{"SELECT"}}}},
		{"tags: a policy scoped to the database",
			Grant{Principal: who, Resource: tagged, Permissions: []string{"SELECT"}},
			[]Permission{{Principal: who, Resource: Resource{Region: "eu-west-1", Database: "d",
				Tags: TagExpression{TagPII: {"false"}, TagDatabase: {"d"}}}, Permissions: []string{"SELECT"}}}},
	} {
		got := CatalogPermissions(tc.g)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		for _, p := range got {
			if err := CheckPermission(p); err != nil {
				t.Errorf("%s: planned %+v, which Lake Formation refuses: %v", tc.name, p, err)
			}
		}
	}
	// The grant's own expression is left as it was.
	if len(tagged.Tags) != 1 {
		t.Errorf("CatalogPermissions changed the grant's tags: %v", tagged.Tags)
	}
}

func TestCheckShape(t *testing.T) {
	for _, tc := range []struct {
		name  string
		res   Resource
		perms []string
		field string
	}{
		{"columns SELECT", Resource{Table: "t", Columns: []string{"c"}}, []string{"SELECT"}, ""},
		{"columns DESCRIBE", Resource{Table: "t", Columns: []string{"c"}}, []string{"SELECT", "DESCRIBE"}, "/permissions/1"},
		{"DATA_LOCATION_ACCESS", Resource{}, []string{"DATA_LOCATION_ACCESS"}, "/permissions/0"},
		{"columns without a table", Resource{Columns: []string{"c"}}, []string{"SELECT"}, "/resource/columns"},
		{"tags and columns", Resource{Table: "t", Columns: []string{"c"}, Tags: TagExpression{TagPII: {"false"}}}, []string{"SELECT"}, "/resource/columns"},
		{"tag INSERT", Resource{Tags: TagExpression{TagPII: {"false"}}}, []string{"INSERT"}, "/permissions/0"},
		{"tag values", Resource{Tags: TagExpression{TagPII: {"false"}, TagPIIKind: {"email", "phone", "none"}}}, []string{"SELECT"}, ""},
		{"an empty expression", Resource{Tags: TagExpression{}}, []string{"SELECT"}, "/resource/tag"},
		{"an unknown key", Resource{Tags: TagExpression{"team": {"a"}}}, []string{"SELECT"}, "/resource/tag/team"},
		{"a key needing escapes", Resource{Tags: TagExpression{"a/b~c": {"x"}}}, []string{"SELECT"}, "/resource/tag/a~1b~0c"},
		{"a key without values", Resource{Tags: TagExpression{TagPII: {}}}, []string{"SELECT"}, "/resource/tag/cairn:pii"},
		{"an unknown value", Resource{Tags: TagExpression{TagPIIKind: {"email", "ssn"}}}, []string{"SELECT"}, "/resource/tag/cairn:pii-kind/1"},
	} {
		err := checkShape(GrantRequest{Resource: tc.res, Permissions: tc.perms})
		var ve *tenants.ValidationError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
			t.Errorf("%s: %v, want a validation error at %s", tc.name, err, tc.field)
		}
	}
}

func TestTagExpression(t *testing.T) {
	e := TagExpression{TagPIIKind: {"phone", "email"}, TagPII: {"true"}}
	if got, want := e.String(), "cairn:pii=true;cairn:pii-kind=email|phone"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if !e.Equal(TagExpression{TagPII: {"true"}, TagPIIKind: {"email", "phone"}}) || e.Equal(TagExpression{TagPII: {"true"}}) {
		t.Error("Equal compares sets of keys and values")
	}
	for _, tc := range []struct {
		tags map[string]string
		want bool
	}{
		{map[string]string{TagPII: "true", TagPIIKind: "email"}, true},
		{map[string]string{TagPII: "true", TagPIIKind: "email", TagDatabase: "d"}, true},
		{map[string]string{TagPII: "true", TagPIIKind: "ip"}, false},
		{map[string]string{TagPIIKind: "email"}, false},
		{nil, false},
	} {
		if got := e.Matches(tc.tags); got != tc.want {
			t.Errorf("Matches(%v) = %t, want %t", tc.tags, got, tc.want)
		}
	}
	g := Grant{Principal: "p", Resource: Resource{Region: "r", Database: "d"}, Permissions: []string{"SELECT"}}
	before := g.Key()
	g.Resource.Tags = TagExpression{}
	if g.Key() != before {
		t.Error("an empty expression changed the key of a grant on named resources")
	}
	g.Resource.Tags = e
	if g.Key() == before {
		t.Error("a tag grant has the key of the grant on the database")
	}
}
