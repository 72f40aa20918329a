package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/grants/pii"
)

// waitGrant waits, woken by finished jobs, until the grant has status.
func (e *env) waitGrant(tenantID, id, status string) resp {
	e.t.Helper()
	deadline := time.After(waitLimit)
	for {
		r := e.do("GET", "/v1/tenants/"+tenantID+"/grants/"+id, e.admin, nil).want(e.t, 200)
		if r.str("status") == status {
			return r
		}
		select {
		case <-e.jobDone:
		case <-deadline:
			e.t.Fatalf("grant %s is %s; waited for %s", id, r.str("status"), status)
		}
	}
}

// addTable registers a table in the tenant's local catalog, as a Glue
// crawler or ETL job would.
func (e *env) addTable(region, database, table string, shared bool, columns ...string) {
	e.t.Helper()
	dir := filepath.Join(e.dataDir, "zones", region, "catalog", database)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(grants.Table{Columns: columns, Shared: shared})
	if err := os.WriteFile(filepath.Join(dir, table+".json"), b, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) ledger(region, database string) []grants.Permission {
	e.t.Helper()
	perms, err := e.catalog.Permissions(context.Background(), region, database)
	if err != nil {
		e.t.Fatal(err)
	}
	return perms
}

func TestPrincipals(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		a := e.activeTenant("prin-a")
		b := e.activeTenant("prin-b")
		role := map[string]any{"principal": "arn:aws:iam::123456789012:role/analysts"}
		e.do("POST", "/v1/tenants/"+a+"/principals", e.admin, role).want(t, 201)
		e.do("POST", "/v1/tenants/"+a+"/principals", e.admin, role).want(t, 200)
		e.do("POST", "/v1/tenants/"+a+"/principals", e.admin, map[string]any{"principal": "111122223333"}).want(t, 201)
		// One tenant only.
		e.do("POST", "/v1/tenants/"+b+"/principals", e.admin, role).want(t, 409)
		for _, bad := range []string{"12345", "arn:aws:iam::123456789012:user/bob", "arn:aws:iam::12345:role/x"} {
			e.do("POST", "/v1/tenants/"+a+"/principals", e.admin, map[string]any{"principal": bad}).want(t, 400)
		}
		list := e.do("GET", "/v1/tenants/"+a+"/principals?limit=1", e.admin, nil).want(t, 200)
		if len(list.body["items"].([]any)) != 1 || list.body["next_cursor"] == nil {
			t.Fatalf("principals page: %s", list.raw)
		}
		e.do("DELETE", "/v1/tenants/"+a+"/principals", e.admin, map[string]any{"principal": "111122223333"}).want(t, 204)
		e.do("DELETE", "/v1/tenants/"+a+"/principals", e.admin, map[string]any{"principal": "111122223333"}).want(t, 404)
		// Tenants cannot register principals for themselves.
		e.do("POST", "/v1/tenants/"+a+"/principals", e.tenantToken(a, "grants:write"), role).want(t, 403)
	})
}

func TestGrantsLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		for _, tier := range []string{"pooled", "dedicated"} {
			t.Run(tier, func(t *testing.T) {
				e := newEnv()
				id := e.onboard("gr-"+tier, map[string]any{"tier": tier, "regions": []string{"us-east-1"}}).want(t, 202).str("id")
				e.waitStatus(id, "active")
				db := outputsOf(stacksOf(t, e, id)["eu-west-1"])["glue_database"].(string)
				principal := "arn:aws:iam::123456789012:role/" + tier
				e.do("POST", "/v1/tenants/"+id+"/principals", e.admin, map[string]any{"principal": principal}).want(t, 201)
				tok := e.tenantToken(id, "grants:write")
				// SELECT on a whole database is a grant on all its tables;
				// in a pooled tenant's catalog it would reach past the data
				// cells filters, and is refused (TestGrantsFollowLakeFormationRules).
				perms := []string{"SELECT", "DESCRIBE"}
				if tier == "pooled" {
					perms = []string{"DESCRIBE"}
				}
				body := map[string]any{"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db}, "permissions": perms}

				g := e.do("POST", "/v1/tenants/"+id+"/grants", tok, body).want(t, 202)
				if g.str("status") != "pending" && g.str("status") != "active" {
					t.Fatalf("new grant: %s", g.raw)
				}
				gid := g.str("id")
				if got := e.follow(t, g, tok).str("id"); got != gid {
					t.Fatalf("grant: Location is grant %s, want %s", got, gid)
				}
				again := e.do("POST", "/v1/tenants/"+id+"/grants", tok, body).want(t, 202)
				if again.str("id") != gid {
					t.Fatalf("the same grant twice made two grants: %s, %s", gid, again.str("id"))
				}
				e.waitGrant(id, gid, "active")
				want := []grants.Permission{{Principal: principal, Resource: grants.Resource{Region: "eu-west-1", Database: db}, Permissions: []string{"DESCRIBE"}}}
				if tier == "dedicated" {
					want = append(want, grants.Permission{Principal: principal, Resource: grants.Resource{Region: "eu-west-1", Database: db}, AllTables: true, Permissions: []string{"SELECT"}})
				}
				if diff := cmp.Diff(want, e.ledger("eu-west-1", db), cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("catalog after grant (-want +got):\n%s", diff)
				}

				// Refusals: each is a clear problem, changes nothing and is audited.
				refusals := []struct {
					body   map[string]any
					status int
				}{
					{map[string]any{"principal": "arn:aws:iam::123456789012:role/stranger", "resource": map[string]any{"region": "eu-west-1", "database": db}, "permissions": []string{"SELECT"}}, 422},
					{map[string]any{"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": "cairn_other"}, "permissions": []string{"SELECT"}}, 403},
					{map[string]any{"principal": principal, "resource": map[string]any{"region": "ap-south-1", "database": db}, "permissions": []string{"SELECT"}}, 403},
					{map[string]any{"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db}, "permissions": []string{"ALTER"}}, 403},
					{map[string]any{"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db, "table": "nope"}, "permissions": []string{"SELECT"}}, 403},
				}
				for _, r := range refusals {
					e.do("POST", "/v1/tenants/"+id+"/grants", tok, r.body).want(t, r.status)
				}
				if n := len(e.do("GET", "/v1/tenants/"+id+"/grants", tok, nil).body["items"].([]any)); n != 1 {
					t.Fatalf("refusals created grants: %d", n)
				}
				audit := e.do("GET", "/v1/audit-events?action=grant.create&tenant_id="+id, e.admin, nil).want(t, 200)
				refused := 0
				for _, it := range audit.body["items"].([]any) {
					if it.(map[string]any)["outcome"] == "refused" {
						refused++
					}
				}
				if refused != len(refusals)-0 {
					t.Fatalf("%d refusals audited, want %d: %s", refused, len(refusals), audit.raw)
				}
				// An admin may grant what a tenant may not.
				alter := map[string]any{"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db}, "permissions": []string{"ALTER"}}
				e.waitGrant(id, e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, alter).want(t, 202).str("id"), "active")

				// Revoke: gone from the catalog, kept in the ledger.
				if got := e.follow(t, e.do("DELETE", "/v1/tenants/"+id+"/grants/"+gid, tok, nil).want(t, 202), tok).str("id"); got != gid {
					t.Fatalf("revoke: Location is grant %s, want %s", got, gid)
				}
				e.waitGrant(id, gid, "revoked")
				for _, p := range e.ledger("eu-west-1", db) {
					if p.Principal == principal && (p.AllTables || slices.Equal(p.Permissions, []string{"DESCRIBE"})) {
						t.Fatalf("still granted after revoke: %+v", p)
					}
				}
				if r := e.do("GET", "/v1/tenants/"+id+"/grants?status=revoked", tok, nil).want(t, 200); len(r.body["items"].([]any)) != 1 {
					t.Fatalf("revoked grants: %s", r.raw)
				}
			})
		}
	})
}

func TestSharedTableGrantUsesCellsFilter(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("cells-co")
		db := outputsOf(stacksOf(t, e, id)["eu-west-1"])["glue_database"].(string)
		e.addTable("eu-west-1", db, "events", true, "tenant_id", "event", "ts")
		e.addTable("eu-west-1", db, "private", false, "a", "b")
		principal := "210987654321"
		e.do("POST", "/v1/tenants/"+id+"/principals", e.admin, map[string]any{"principal": principal}).want(t, 201)
		shared := e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, map[string]any{
			"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db, "table": "events", "columns": []string{"event", "ts"}},
			"permissions": []string{"SELECT"},
		}).want(t, 202)
		if shared.str("cells_filter") != grants.CellsFilterName(id, []string{"ts", "event"}) {
			t.Fatalf("shared table grant without the tenant's cells filter: %s", shared.raw)
		}
		private := e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, map[string]any{
			"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db, "table": "private"},
			"permissions": []string{"SELECT"},
		}).want(t, 202)
		if private.body["cells_filter"] != nil {
			t.Fatalf("private table grant with a cells filter: %s", private.raw)
		}
		e.waitGrant(id, shared.str("id"), "active")
		b, err := os.ReadFile(filepath.Join(e.dataDir, "zones", "eu-west-1", "lakeformation.json"))
		if err != nil || !strings.Contains(string(b), grants.RowFilter(id)) {
			t.Fatalf("the data cells filter with the tenant's row filter was not created: %s %v", b, err)
		}
		e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, map[string]any{
			"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db, "table": "events", "columns": []string{"salary"}},
			"permissions": []string{"SELECT"},
		}).want(t, 403)
	})
}

func TestReconcileRepairsAndReportsDrift(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("drift-co")
		db := outputsOf(stacksOf(t, e, id)["eu-west-1"])["glue_database"].(string)
		principal := "arn:aws:iam::123456789012:role/drift"
		e.do("POST", "/v1/tenants/"+id+"/principals", e.admin, map[string]any{"principal": principal}).want(t, 201)
		gid := e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, map[string]any{
			"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db}, "permissions": []string{"DESCRIBE"},
		}).want(t, 202).str("id")
		e.waitGrant(id, gid, "active")
		ctx := context.Background()
		// Behind the broker's back: the grant is deleted, another is added.
		if err := e.catalog.Revoke(ctx, "eu-west-1", grants.Permission{Principal: principal, Resource: grants.Resource{Database: db}, Permissions: []string{"DESCRIBE"}}); err != nil {
			t.Fatal(err)
		}
		rogue := grants.Permission{Principal: "999999999999", Resource: grants.Resource{Database: db}, AllTables: true, Permissions: []string{"SELECT"}}
		if err := e.catalog.Grant(ctx, "eu-west-1", rogue); err != nil {
			t.Fatal(err)
		}
		r := e.do("POST", "/v1/tenants/"+id+"/grants/reconcile", e.admin, nil).want(t, 200)
		if repaired := r.body["repaired"].([]any); len(repaired) != 1 || repaired[0] != gid {
			t.Fatalf("repaired: %s", r.raw)
		}
		unmanaged := r.body["unmanaged"].([]any)
		if len(unmanaged) != 1 || unmanaged[0].(map[string]any)["principal"] != "999999999999" ||
			unmanaged[0].(map[string]any)["resource"].(map[string]any)["all_tables"] != true {
			t.Fatalf("unmanaged: %s", r.raw)
		}
		if perms := e.ledger("eu-west-1", db); len(perms) != 2 {
			t.Fatalf("catalog after reconcile: %+v", perms)
		}
		// A second reconcile has nothing to repair.
		if r := e.do("POST", "/v1/tenants/"+id+"/grants/reconcile", e.admin, nil).want(t, 200); len(r.body["repaired"].([]any)) != 0 {
			t.Fatalf("second reconcile repaired again: %s", r.raw)
		}
	})
}

func TestSuspensionAndOffboardingTakeGrantsAway(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("susp-co")
		db := outputsOf(stacksOf(t, e, id)["eu-west-1"])["glue_database"].(string)
		principal := "arn:aws:iam::123456789012:role/susp"
		e.do("POST", "/v1/tenants/"+id+"/principals", e.admin, map[string]any{"principal": principal}).want(t, 201)
		gid := e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, map[string]any{
			"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": db}, "permissions": []string{"DESCRIBE"},
		}).want(t, 202).str("id")
		e.waitGrant(id, gid, "active")

		e.do("POST", "/v1/tenants/"+id+"/suspend", e.admin, nil).want(t, 200)
		e.waitGrant(id, gid, "suspended")
		if perms := e.ledger("eu-west-1", db); len(perms) != 0 {
			t.Fatalf("a suspended tenant keeps grants: %+v", perms)
		}
		e.do("POST", "/v1/tenants/"+id+"/resume", e.admin, nil).want(t, 200)
		e.waitGrant(id, gid, "active")
		if perms := e.ledger("eu-west-1", db); len(perms) != 1 {
			t.Fatalf("grants not restored on resume: %+v", perms)
		}

		e.do("DELETE", "/v1/tenants/"+id, e.admin, nil).want(t, 202)
		e.waitStatus(id, "deleted")
		e.waitGrant(id, gid, "revoked")
		if perms := e.ledger("eu-west-1", db); len(perms) != 0 {
			t.Fatalf("an offboarded tenant keeps grants: %+v", perms)
		}
	})
}

func TestCredentialsAreIssuedAndAudited(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		id := e.activeTenant("cred-co")
		r := e.do("POST", "/v1/tenants/"+id+"/credentials", e.tenantToken(id, "grants:write"), nil).want(t, 201)
		if r.str("access_key_id") == "" || r.str("session_token") == "" || r.str("region") != "eu-west-1" {
			t.Fatalf("credentials: %s", r.raw)
		}
		out := r.body["outputs"].(map[string]any)
		if out["s3_prefix"] != "tenants/"+id+"/" {
			t.Fatalf("credentials do not name the tenant's slice: %v", out)
		}
		exp, err := time.Parse(time.RFC3339, r.str("expires_at"))
		if err != nil || time.Until(exp) > time.Hour+time.Minute || time.Until(exp) < 50*time.Minute {
			t.Fatalf("expiry %v", r.str("expires_at"))
		}
		e.do("POST", "/v1/tenants/"+id+"/credentials", e.tenantToken(id, "profiles:read"), nil).want(t, 403)
		a := e.do("GET", "/v1/audit-events?action=credentials.issue", e.admin, nil).want(t, 200)
		if items := a.body["items"].([]any); len(items) != 1 || items[0].(map[string]any)["tenant_id"] != id {
			t.Fatalf("credential issue not audited: %s", a.raw)
		}
		e.do("GET", "/v1/audit-events", e.tenantToken(id, "grants:write"), nil).want(t, 403)
	})
}

// TestOffboardingReleasesPrincipals: a customer's AWS account registered to
// a tenant that is offboarded can be registered again by the customer's next
// tenant, and the release is audited.
func TestOffboardingReleasesPrincipals(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		const account = "123456789012"
		role := "arn:aws:iam::210987654321:role/analyst"
		old := e.activeTenant("first-life")
		for _, p := range []string{account, role} {
			e.do("POST", "/v1/tenants/"+old+"/principals", e.admin, map[string]any{"principal": p}).want(t, 201)
		}
		e.do("DELETE", "/v1/tenants/"+old, e.admin, nil).want(t, 202)
		e.waitStatus(old, "deleted")
		if items := e.do("GET", "/v1/tenants/"+old+"/principals", e.admin, nil).want(t, 200).body["items"].([]any); len(items) != 0 {
			t.Fatalf("the offboarded tenant keeps principals: %v", items)
		}

		again := e.activeTenant("second-life")
		for _, p := range []string{account, role} {
			e.do("POST", "/v1/tenants/"+again+"/principals", e.admin, map[string]any{"principal": p}).want(t, 201)
		}
		a := e.do("GET", "/v1/audit-events?action=principal.release&tenant_id="+old, e.admin, nil).want(t, 200)
		if items := a.body["items"].([]any); len(items) != 2 {
			t.Fatalf("release not audited: %s", a.raw)
		}
	})
}

// fieldOf returns the JSON Pointer of a 400's only field error.
func fieldOf(t *testing.T, r resp) string {
	t.Helper()
	errs, _ := r.body["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("want one field error: %s", r.raw)
	}
	return errs[0].(map[string]any)["field"].(string)
}

// TestGrantsFollowLakeFormationRules: a grant Lake Formation would refuse
// is a 400 naming the field by JSON Pointer, and changes nothing; SELECT on
// a whole database is translated into a grant on all its tables.
func TestGrantsFollowLakeFormationRules(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		ded := e.onboard("lf-silo", map[string]any{"tier": "dedicated", "regions": []string{"us-east-1"}}).want(t, 202).str("id")
		pooled := e.activeTenant("lf-pool")
		e.waitStatus(ded, "active")
		dedDB := outputsOf(stacksOf(t, e, ded)["eu-west-1"])["glue_database"].(string)
		poolDB := outputsOf(stacksOf(t, e, pooled)["eu-west-1"])["glue_database"].(string)
		e.addTable("eu-west-1", dedDB, "tracks", false, "message_id", "event", "email")
		e.addTable("eu-west-1", poolDB, "tracks", true, "tenant_id", "message_id", "event", "email")
		principals := map[string]string{ded: "210987654321", pooled: "210987654322"}
		for id, p := range principals {
			e.do("POST", "/v1/tenants/"+id+"/principals", e.admin, map[string]any{"principal": p}).want(t, 201)
		}
		principal := principals[ded]
		grant := func(id, db string, res map[string]any, perms ...string) map[string]any {
			res["region"], res["database"] = "eu-west-1", db
			return map[string]any{"principal": principals[id], "resource": res, "permissions": perms}
		}
		for _, tc := range []struct {
			name   string
			tenant string
			body   map[string]any
			field  string
		}{
			{"DESCRIBE on columns", ded, grant(ded, dedDB, map[string]any{"table": "tracks", "columns": []string{"event"}}, "SELECT", "DESCRIBE"), "/permissions/1"},
			{"DATA_LOCATION_ACCESS", ded, grant(ded, dedDB, map[string]any{}, "DATA_LOCATION_ACCESS"), "/permissions/0"},
			{"an unknown tag", ded, grant(ded, dedDB, map[string]any{"tag": map[string]any{"cairn:secret": []string{"yes"}}}, "SELECT"), "/resource/tag/cairn:secret"},
			{"the scoping tag", ded, grant(ded, dedDB, map[string]any{"tag": map[string]any{grants.TagDatabase: []string{"cairn_other"}}}, "SELECT"), "/resource/tag/cairn:database"},
			{"an unknown tag value", ded, grant(ded, dedDB, map[string]any{"tag": map[string]any{"cairn:pii": []string{"false", "maybe"}}}, "SELECT"), "/resource/tag/cairn:pii/1"},
			{"INSERT by tag", ded, grant(ded, dedDB, map[string]any{"tag": map[string]any{"cairn:pii": []string{"false"}}}, "INSERT"), "/permissions/0"},
			{"a tag and columns", ded, grant(ded, dedDB, map[string]any{"table": "tracks", "columns": []string{"event"}, "tag": map[string]any{"cairn:pii": []string{"false"}}}, "SELECT"), "/resource/columns"},
			{"a tag on a dedicated table", ded, grant(ded, dedDB, map[string]any{"table": "tracks", "tag": map[string]any{"cairn:pii": []string{"false"}}}, "SELECT"), "/resource/table"},
			{"SELECT on a pooled database", pooled, grant(pooled, poolDB, map[string]any{}, "DESCRIBE", "SELECT"), "/permissions/1"},
			{"a tag on a pooled database", pooled, grant(pooled, poolDB, map[string]any{"tag": map[string]any{"cairn:pii": []string{"false"}}}, "SELECT"), "/resource/table"},
			{"INSERT through a filter", pooled, grant(pooled, poolDB, map[string]any{"table": "tracks"}, "SELECT", "INSERT"), "/permissions/1"},
			{"an unclassified table by tag", pooled, grant(pooled, poolDB, map[string]any{"table": "tracks", "tag": map[string]any{"cairn:pii": []string{"false"}}}, "SELECT"), "/resource/tag"},
		} {
			r := e.do("POST", "/v1/tenants/"+tc.tenant+"/grants", e.admin, tc.body).want(t, 400)
			if got := fieldOf(t, r); got != tc.field {
				t.Errorf("%s: field %q, want %q: %s", tc.name, got, tc.field, r.raw)
			}
		}
		for _, id := range []string{ded, pooled} {
			if n := len(e.do("GET", "/v1/tenants/"+id+"/grants", e.admin, nil).want(t, 200).body["items"].([]any)); n != 0 {
				t.Fatalf("refused grants were recorded: %d", n)
			}
		}
		if perms := append(e.ledger("eu-west-1", dedDB), e.ledger("eu-west-1", poolDB)...); len(perms) != 0 {
			t.Fatalf("refused grants reached the catalog: %+v", perms)
		}

		// Translated: SELECT on the database is SELECT on all its tables.
		g := e.do("POST", "/v1/tenants/"+ded+"/grants", e.admin, grant(ded, dedDB, map[string]any{}, "SELECT")).want(t, 202)
		e.waitGrant(ded, g.str("id"), "active")
		want := []grants.Permission{{Principal: principal, Resource: grants.Resource{Region: "eu-west-1", Database: dedDB}, AllTables: true, Permissions: []string{"SELECT"}}}
		if diff := cmp.Diff(want, e.ledger("eu-west-1", dedDB), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("catalog (-want +got):\n%s", diff)
		}
		// The local catalog refuses what Lake Formation refuses, too.
		err := e.catalog.Grant(context.Background(), "eu-west-1", grants.Permission{Principal: principal, Resource: grants.Resource{Database: dedDB}, Permissions: []string{"SELECT"}})
		if !errors.Is(err, grants.ErrInvalidPermission) {
			t.Fatalf("local catalog took SELECT on a database: %v", err)
		}
	})
}

// TestTagGrants: a table's PII classification is recorded as LF-tags, and
// a grant on {"cairn:pii": ["false"]} reaches every column without PII: by
// an LF-tag policy scoped to a dedicated tenant's database, or by the
// columns of a pooled tenant's data cells filter.
func TestTagGrants(t *testing.T) {
	backends(t, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		ctx := context.Background()
		ded := e.onboard("tag-silo", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		pooled := e.activeTenant("tag-pool")
		e.waitStatus(ded, "active")
		dedDB := outputsOf(stacksOf(t, e, ded)["eu-west-1"])["glue_database"].(string)
		poolDB := outputsOf(stacksOf(t, e, pooled)["eu-west-1"])["glue_database"].(string)
		e.addTable("eu-west-1", dedDB, "identifies", false, "message_id", "user_id", "traits", "context")
		e.addTable("eu-west-1", poolDB, "identifies", true, "tenant_id", "message_id", "user_id", "traits", "context")
		findings := pii.Classify(
			[]pii.Column{{Name: "tenant_id"}, {Name: "message_id"}, {Name: "user_id"}, {Name: "traits"}, {Name: "context"}},
			[]map[string]any{{"message_id": "m1", "user_id": "u1", "traits": map[string]any{"email": "ada@example.com"}, "context": map[string]any{"ip": "192.0.2.1"}}},
			[]string{"user_id", "email"})
		if err := e.grants.TagColumns(ctx, pooled, "eu-west-1", "identifies", findings); err != nil {
			t.Fatal(err)
		}
		if err := e.grants.TagColumns(ctx, ded, "eu-west-1", "identifies", findings); err != nil {
			t.Fatal(err)
		}
		if err := e.grants.TagColumns(ctx, ded, "eu-west-1", "nope", findings); !errors.Is(err, grants.ErrNotFound) {
			t.Fatalf("TagColumns of a missing table = %v", err)
		}
		tags, err := e.catalog.ColumnTags(ctx, "eu-west-1", dedDB, "identifies")
		if err != nil {
			t.Fatal(err)
		}
		if tags["traits"][grants.TagPIIKind] != "email" || tags["context"][grants.TagPIIKind] != "ip" || tags["user_id"][grants.TagPII] != "false" {
			t.Fatalf("column tags: %v", tags)
		}
		audit := e.do("GET", "/v1/audit-events?action=table.classify&tenant_id="+ded, e.admin, nil).want(t, 200)
		if items := audit.body["items"].([]any); len(items) != 1 {
			t.Fatalf("classification not audited: %s", audit.raw)
		}

		const principal, poolPrincipal = "210987654321", "210987654322"
		nonPII := map[string]any{"cairn:pii": []string{"false"}}
		e.do("POST", "/v1/tenants/"+ded+"/principals", e.admin, map[string]any{"principal": principal}).want(t, 201)
		e.do("POST", "/v1/tenants/"+pooled+"/principals", e.admin, map[string]any{"principal": poolPrincipal}).want(t, 201)
		g := e.do("POST", "/v1/tenants/"+ded+"/grants", e.tenantToken(ded, "grants:write"), map[string]any{
			"principal": principal, "resource": map[string]any{"region": "eu-west-1", "database": dedDB, "tag": nonPII}, "permissions": []string{"SELECT"},
		}).want(t, 202)
		if tag := g.body["resource"].(map[string]any)["tag"]; !cmp.Equal(tag, map[string]any{"cairn:pii": []any{"false"}}) {
			t.Fatalf("grant resource tag: %v", tag)
		}
		e.waitGrant(ded, g.str("id"), "active")
		policy := grants.TagExpression{grants.TagPII: {"false"}, grants.TagDatabase: {dedDB}}
		perms, err := e.catalog.TagPolicyPermissions(ctx, "eu-west-1", policy)
		if err != nil || len(perms) != 1 || perms[0].Principal != principal {
			t.Fatalf("LF-tag policy permissions: %+v, %v", perms, err)
		}
		if got, _ := e.catalog.ColumnTags(ctx, "eu-west-1", dedDB, "identifies"); got["message_id"][grants.TagDatabase] != dedDB {
			t.Fatalf("the database is not tagged with its name: %v", got)
		}
		if r := e.do("POST", "/v1/tenants/"+ded+"/grants/reconcile", e.admin, nil).want(t, 200); len(r.body["repaired"].([]any)) != 0 || len(r.body["unmanaged"].([]any)) != 0 {
			t.Fatalf("reconcile of a tag grant: %s", r.raw)
		}
		// Behind the broker's back the policy grant goes; reconcile puts it back.
		if err := e.catalog.Revoke(ctx, "eu-west-1", perms[0]); err != nil {
			t.Fatal(err)
		}
		if r := e.do("POST", "/v1/tenants/"+ded+"/grants/reconcile", e.admin, nil).want(t, 200); len(r.body["repaired"].([]any)) != 1 {
			t.Fatalf("reconcile did not repair the tag grant: %s", r.raw)
		}

		pg := e.do("POST", "/v1/tenants/"+pooled+"/grants", e.admin, map[string]any{
			"principal": poolPrincipal, "resource": map[string]any{"region": "eu-west-1", "database": poolDB, "table": "identifies", "tag": nonPII}, "permissions": []string{"SELECT"},
		}).want(t, 202)
		if pg.str("cells_filter") != grants.TagCellsFilterName(pooled, grants.TagExpression{grants.TagPII: {"false"}}) {
			t.Fatalf("pooled tag grant without its filter: %s", pg.raw)
		}
		e.waitGrant(pooled, pg.str("id"), "active")
		b, err := os.ReadFile(filepath.Join(e.dataDir, "zones", "eu-west-1", "lakeformation.json"))
		if err != nil {
			t.Fatal(err)
		}
		var ledger struct{ Filters []grants.CellsFilter }
		if err := json.Unmarshal(b, &ledger); err != nil {
			t.Fatal(err)
		}
		want := grants.CellsFilter{Database: poolDB, Table: "identifies", Name: pg.str("cells_filter"), RowFilter: grants.RowFilter(pooled),
			Columns: []string{"message_id", "tenant_id", "user_id"}}
		if !slices.ContainsFunc(ledger.Filters, func(f grants.CellsFilter) bool { return cmp.Equal(f, want) }) {
			t.Fatalf("filters %+v, want %+v", ledger.Filters, want)
		}

		// Classified again with PII in every column, the filter could show
		// only columns the tag no longer selects: reconcile takes the grant
		// away.
		var everywhere []pii.Finding
		for _, c := range []string{"tenant_id", "message_id", "user_id", "traits", "context"} {
			everywhere = append(everywhere, pii.Finding{Column: c, Kind: pii.KindIdentifier, By: pii.ByName})
		}
		if err := e.grants.TagColumns(ctx, pooled, "eu-west-1", "identifies", everywhere); err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/v1/tenants/"+pooled+"/grants/reconcile", e.admin, nil).want(t, 200)
		if g := e.do("GET", "/v1/tenants/"+pooled+"/grants/"+pg.str("id"), e.admin, nil).want(t, 200); g.str("status") != "failed" || !strings.Contains(g.str("reason"), "no column") {
			t.Fatalf("tag grant with no column left: %s", g.raw)
		}
		for _, p := range e.ledger("eu-west-1", poolDB) {
			if p.Principal == poolPrincipal {
				t.Fatalf("the grant is still in the catalog: %+v", p)
			}
		}
	})
}
