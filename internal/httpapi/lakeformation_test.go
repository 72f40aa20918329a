package httpapi_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslf "github.com/aws/aws-sdk-go-v2/service/lakeformation"
	_ "github.com/duckdb/duckdb-go/v2" // DuckDB runs the row filters
	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/grants/lakeformation"
	"github.com/cairn-cdp/cairn/internal/grants/lakeformation/lftest"
	"github.com/cairn-cdp/cairn/internal/grants/pii"
	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// backendsOnDouble runs fn on each backend (backendsOn) with the grants
// broker on the Lake Formation adapter, on an lftest double of its own.
func backendsOnDouble(t *testing.T, fn func(t *testing.T, e *env, double *lftest.Server)) {
	doubles := &sync.Map{} // *testing.T → its *lftest.Server
	onDouble := func(t *testing.T) grants.Catalog {
		double := lftest.New(t)
		doubles.Store(t, double)
		cfg := awstest.Config("")
		catalog, err := lakeformation.NewCatalog(context.Background(), lakeformation.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: double.URL, MaxAttempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return catalog
	}
	backendsOn(t, onDouble, func(t *testing.T, newEnv func() *env) {
		e := newEnv()
		d, _ := doubles.Load(t)
		fn(t, e, d.(*lftest.Server))
	})
}

// TestGovernanceOnLakeFormation runs the grants broker on the Lake
// Formation adapter against lftest, the scripted Lake Formation that
// refuses what real Lake Formation refuses and answers what a principal
// reads: every grant the API accepts is one Lake Formation takes, a
// database-wide SELECT reads every table, a tag grant reads the columns
// without PII, and a pooled tenant's principal reads its own rows of the
// pool's shared tables and never another tenant's.
func TestGovernanceOnLakeFormation(t *testing.T) {
	backendsOnDouble(t, func(t *testing.T, e *env, double *lftest.Server) {
		ctx := context.Background()

		ded := e.onboard("lf-silo", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		a, b := e.activeTenant("lf-pool-a"), e.activeTenant("lf-pool-b")
		e.waitStatus(ded, "active")
		db := func(id string) string { return outputsOf(stacksOf(t, e, id)["eu-west-1"])["glue_database"].(string) }
		dedDB, dbA, dbB := db(ded), db(a), db(b)

		// The tables the lakehouse registers: a dedicated tenant's own, and
		// in each pooled tenant's database, tables over the pool's data,
		// which holds every pooled tenant's rows.
		double.AddTable(dedDB, "tracks", []string{"message_id", "event", "user_id"}, nil)
		double.AddRows(dedDB, "tracks", map[string]string{"message_id": "m1", "event": "Signed Up", "user_id": "u1"})
		identifies := []string{"tenant_id", "message_id", "user_id", "traits", "context"}
		double.AddTable(dedDB, "identifies", identifies[1:], nil)
		double.AddRows(dedDB, "identifies", map[string]string{"message_id": "m2", "user_id": "u1", "traits": `{"email":"ada@example.com"}`, "context": `{"ip":"192.0.2.1"}`})
		poolRows := []map[string]string{
			{"tenant_id": a, "message_id": "a1", "user_id": "ua", "traits": `{"email":"ada@example.com"}`, "context": `{"ip":"192.0.2.1"}`},
			{"tenant_id": b, "message_id": "b1", "user_id": "ub", "traits": `{"email":"bob@example.org"}`, "context": `{"ip":"192.0.2.2"}`},
			{"tenant_id": a, "message_id": "a2", "user_id": "ua", "traits": `{"email":"ada@example.com"}`, "context": `{"ip":"192.0.2.1"}`},
		}
		for _, pooledDB := range []string{dbA, dbB} {
			double.AddTable(pooledDB, "identifies", identifies, map[string]string{lakeformation.SharedParameter: "true"})
			double.AddRows(pooledDB, "identifies", poolRows...)
		}
		// The lakehouse classifies its tables.
		samples := []map[string]any{{"message_id": "m2", "user_id": "u1", "traits": `{"email":"ada@example.com"}`, "context": `{"ip":"192.0.2.1"}`}}
		schema := make([]pii.Column, len(identifies))
		for i, c := range identifies {
			schema[i] = pii.Column{Name: c, Type: "string"}
		}
		findings := pii.Classify(schema, samples, []string{"user_id", "email", "phone"})
		for _, tc := range []struct{ tenant, table string }{{ded, "identifies"}, {a, "identifies"}, {b, "identifies"}} {
			if err := e.grants.TagColumns(ctx, tc.tenant, "eu-west-1", tc.table, findings); err != nil {
				t.Fatal(err)
			}
		}

		principals := map[string][]string{
			ded: {"arn:aws:iam::210987654321:role/all", "arn:aws:iam::210987654321:role/non-pii"},
			a:   {"arn:aws:iam::310987654321:role/a", "arn:aws:iam::310987654321:role/a-non-pii"},
			b:   {"arn:aws:iam::410987654321:role/b"},
		}
		for id, ps := range principals {
			for _, p := range ps {
				e.do("POST", "/v1/tenants/"+id+"/principals", e.admin, map[string]any{"principal": p}).want(t, 201)
			}
		}
		grant := func(id, principal string, res map[string]any, perms ...string) string {
			t.Helper()
			res["region"], res["database"] = "eu-west-1", db(id)
			g := e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, map[string]any{"principal": principal, "resource": res, "permissions": perms}).want(t, 202)
			e.waitGrant(id, g.str("id"), "active")
			return g.str("id")
		}
		nonPII := map[string]any{"cairn:pii": []string{"false"}}

		// Dedicated: SELECT on the database reads every table.
		grant(ded, principals[ded][0], map[string]any{}, "SELECT", "DESCRIBE")
		if got := double.Query(principals[ded][0], dedDB, "tracks"); len(got) != 1 || got[0]["event"] != "Signed Up" {
			t.Fatalf("database-wide SELECT reads %v", got)
		}
		// By tag: every column without PII of every classified table.
		grant(ded, principals[ded][1], map[string]any{"tag": nonPII}, "SELECT")
		want := []map[string]string{{"message_id": "m2", "user_id": "u1"}}
		if diff := cmp.Diff(want, double.Query(principals[ded][1], dedDB, "identifies")); diff != "" {
			t.Errorf("tag grant reads (-want +got):\n%s", diff)
		}
		if got := double.Query(principals[ded][1], dedDB, "tracks"); len(got) != 0 {
			t.Errorf("tag grant reads an unclassified table: %v", got)
		}
		// The policy is the tenant's alone: another database's non-PII
		// columns are not in it.
		if got := double.Query(principals[ded][1], dbA, "identifies"); len(got) != 0 {
			t.Errorf("a dedicated tenant's tag grant reads a pooled tenant's table: %v", got)
		}

		// Pooled: each tenant's principal reads its own rows, never another's.
		gA := grant(a, principals[a][0], map[string]any{"table": "identifies"}, "SELECT")
		grant(b, principals[b][0], map[string]any{"table": "identifies", "columns": []string{"message_id", "tenant_id"}}, "SELECT")
		grant(a, principals[a][1], map[string]any{"table": "identifies", "tag": nonPII}, "SELECT")
		for _, tc := range []struct {
			tenant, principal, db string
			want                  []map[string]string
		}{
			{a, principals[a][0], dbA, []map[string]string{poolRows[0], poolRows[2]}},
			{a, principals[a][0], dbB, nil},
			{b, principals[b][0], dbB, []map[string]string{{"tenant_id": b, "message_id": "b1"}}},
			{b, principals[b][0], dbA, nil},
			{a, principals[a][1], dbA, []map[string]string{
				{"tenant_id": a, "message_id": "a1", "user_id": "ua"},
				{"tenant_id": a, "message_id": "a2", "user_id": "ua"},
			}},
		} {
			got := double.Query(tc.principal, tc.db, "identifies")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s reads %s.identifies (-want +got):\n%s", tc.principal, tc.db, diff)
			}
			if slices.ContainsFunc(got, func(r map[string]string) bool { return r["tenant_id"] != tc.tenant }) {
				t.Errorf("%s reads another tenant's rows: %v", tc.principal, got)
			}
		}

		// Nothing to repair and nothing unknown, for any of them.
		for _, id := range []string{ded, a, b} {
			r := e.do("POST", "/v1/tenants/"+id+"/grants/reconcile", e.admin, nil).want(t, 200)
			if len(r.body["repaired"].([]any)) != 0 || len(r.body["unmanaged"].([]any)) != 0 {
				t.Errorf("reconcile of %s: %s", id, r.raw)
			}
		}
		// A revoke takes the rows away.
		e.do("DELETE", "/v1/tenants/"+a+"/grants/"+gA, e.admin, nil).want(t, 202)
		e.waitGrant(a, gA, "revoked")
		if got := double.Query(principals[a][0], dbA, "identifies"); len(got) != 0 {
			t.Errorf("after revoke %s reads %v", principals[a][0], got)
		}
	})
}

// TestLakeTablesOnLakeFormation: the lake's tables as the Athena engine
// catalogs them in a dedicated tenant's Glue database (every clean and
// curated table, the clean ones partitioned by dt and hh), classified
// from samples as Athena answers them (text) and tagged through the Lake
// Formation adapter, on lftest: a tag grant on cairn:pii=false reads
// exactly their columns without personal data, in every table, and a
// later sample without personal data writes no tag and takes none away.
func TestLakeTablesOnLakeFormation(t *testing.T) {
	backendsOnDouble(t, func(t *testing.T, e *env, double *lftest.Server) {
		ctx := context.Background()
		id := e.onboard("lake-pii", map[string]any{"tier": "dedicated"}).want(t, 202).str("id")
		e.waitStatus(id, "active")
		db := outputsOf(stacksOf(t, e, id)["eu-west-1"])["glue_database"].(string)

		rows := map[string]map[string]string{
			"identifies": {"message_id": "m1", "type": "identify", "user_id": "u1", "dt": "2026-11-26", "hh": "10",
				"traits": `{"email":"ada@example.com","crm_id":"C-1001","plan":"pro"}`, "context": `{"ip":"192.0.2.1"}`},
			"tracks": {"message_id": "m2", "type": "track", "event": "Called", "user_id": "u1", "dt": "2026-11-26", "hh": "10",
				"properties": `{"phone":"+14155550123"}`, "context": `{"ip":"192.0.2.1"}`},
			"external_id_mapping": {"canonical_profile_id": "prof_1", "profile_id": "prof_1", "external_id_type": "crm_id", "external_id_value": "C-1001"},
			"id_graph":            {"profile_id": "prof_1", "canonical_profile_id": "prof_1"},
		}
		want := map[string][]string{
			"identifies":          {"context", "traits"},
			"tracks":              {"context", "properties"},
			"external_id_mapping": {"external_id_value"},
			"id_graph":            nil,
		}
		idTypes := []string{"user_id", "email", "crm_id", "anonymous_id"}
		classify := func(table string, row map[string]string) {
			t.Helper()
			tbl, _ := lake.TableNamed(table)
			schema := make([]pii.Column, len(tbl.Columns))
			sample := map[string]any{}
			for i, c := range tbl.Columns {
				schema[i] = pii.Column{Name: c.Name, Type: lake.Athena.Type(c.Type)}
				if v, ok := row[c.Name]; ok {
					sample[c.Name] = v
				}
			}
			if err := e.grants.AddFindings(ctx, id, "eu-west-1", table, pii.Classify(schema, []map[string]any{sample}, idTypes)); err != nil {
				t.Fatalf("classify %s: %v", table, err)
			}
		}
		for _, tbl := range lake.Tables {
			var cols []string
			for _, c := range tbl.Columns {
				cols = append(cols, c.Name)
			}
			if tbl.Partitioned {
				cols = append(cols, "dt", "hh")
			}
			double.AddTable(db, tbl.Name, cols, map[string]string{"classification": "parquet", "cairn:zone": tbl.Zone})
			if row, ok := rows[tbl.Name]; ok {
				double.AddRows(db, tbl.Name, row)
				classify(tbl.Name, row)
			}
		}

		const principal = "arn:aws:iam::210987654321:role/non-pii"
		e.do("POST", "/v1/tenants/"+id+"/principals", e.admin, map[string]any{"principal": principal}).want(t, 201)
		g := e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, map[string]any{"principal": principal, "permissions": []string{"SELECT"},
			"resource": map[string]any{"region": "eu-west-1", "database": db, "tag": map[string]any{"cairn:pii": []string{"false"}}}}).want(t, 202)
		e.waitGrant(id, g.str("id"), "active")
		for table, row := range rows {
			// Every column the grant reads, a missing value as "".
			tbl, _ := lake.TableNamed(table)
			wantRow := map[string]string{}
			for _, c := range tbl.Columns {
				if !slices.Contains(want[table], c.Name) {
					wantRow[c.Name] = row[c.Name]
				}
			}
			if tbl.Partitioned {
				wantRow["dt"], wantRow["hh"] = row["dt"], row["hh"]
			}
			if diff := cmp.Diff([]map[string]string{wantRow}, double.Query(principal, db, table)); diff != "" {
				t.Errorf("the tag grant reads of %s (-want +got):\n%s", table, diff)
			}
		}

		// A sample without personal data: no call changes a tag.
		assigned := double.Calls("AddLFTagsToResource")
		classify("tracks", map[string]string{"message_id": "m3", "properties": `{"plan":"pro"}`, "context": `{"library":{"name":"analytics.js"}}`})
		if n := double.Calls("AddLFTagsToResource"); n != assigned {
			t.Errorf("a sample adding nothing assigned tags %d times", n-assigned)
		}
		if got := double.Query(principal, db, "tracks"); len(got) != 1 || got[0]["properties"] != "" || got[0]["context"] != "" {
			t.Errorf("after a sample without PII the tag grant reads %v", got)
		}
	})
}

// TestPooledSharedTablesOnLakeFormation: the pool's lake tables, one per
// name in the pool's database and shared by its tenants (tenant_id), on
// lftest: each pooled tenant's grants there resolve through its own data
// cells filter, whose row filter is exactly tenant_id = '<its id>' (every
// permission its principals hold on a shared table is on such a filter,
// none on the table); what would reach past the filters (the whole
// database, a write) is refused 400, another pool's database 403; its
// principals read its rows only. The filters' row expressions, as Lake
// Formation stores them, are then run by DuckDB over the rows both
// tenants wrote: each selects exactly its tenant's rows.
func TestPooledSharedTablesOnLakeFormation(t *testing.T) {
	backendsOnDouble(t, func(t *testing.T, e *env, double *lftest.Server) {
		ctx := context.Background()
		a, b := e.activeTenant("lf-share-a"), e.activeTenant("lf-share-b")
		pool := provisioner.PoolGlueDatabase()
		cols := []string{"message_id", "user_id", "traits", "tenant_id", "dt", "hh"}
		double.AddTable(pool, "identifies", cols, map[string]string{lakeformation.SharedParameter: "true"})
		rows := []map[string]string{
			{"tenant_id": a, "message_id": "a1", "user_id": "ua", "traits": `{"email":"ada@example.com"}`, "dt": "2026-11-26", "hh": "10"},
			{"tenant_id": b, "message_id": "b1", "user_id": "ub", "traits": `{"email":"bob@example.org"}`, "dt": "2026-11-26", "hh": "10"},
			{"tenant_id": a, "message_id": "a2", "user_id": "ua", "traits": `{"email":"ada@example.com"}`, "dt": "2026-11-26", "hh": "11"},
		}
		double.AddRows(pool, "identifies", rows...)
		// Each tenant's own database holds its raw zone's table.
		for _, id := range []string{a, b} {
			double.AddTable(outputsOf(stacksOf(t, e, id)["eu-west-1"])["glue_database"].(string), "raw_events", []string{"messageid"}, nil)
		}
		// The refinery classifies the shared table from a's sample: the
		// findings are the table's.
		schema := make([]pii.Column, len(cols))
		for i, c := range cols {
			schema[i] = pii.Column{Name: c, Type: "string"}
		}
		sample := []map[string]any{{"message_id": "a1", "user_id": "ua", "traits": `{"email":"ada@example.com"}`, "tenant_id": a}}
		if err := e.grants.AddFindings(ctx, a, "eu-west-1", "identifies", pii.Classify(schema, sample, []string{"user_id", "email"})); err != nil {
			t.Fatal(err)
		}

		pa, paTag, pb := "arn:aws:iam::310987654321:role/a", "arn:aws:iam::310987654321:role/a-non-pii", "arn:aws:iam::410987654321:role/b"
		for id, ps := range map[string][]string{a: {pa, paTag}, b: {pb}} {
			for _, p := range ps {
				e.do("POST", "/v1/tenants/"+id+"/principals", e.admin, map[string]any{"principal": p}).want(t, 201)
			}
		}
		request := func(id, principal string, res map[string]any, perms ...string) resp {
			res["region"] = "eu-west-1"
			if _, ok := res["database"]; !ok {
				res["database"] = pool
			}
			return e.do("POST", "/v1/tenants/"+id+"/grants", e.admin, map[string]any{"principal": principal, "resource": res, "permissions": perms})
		}
		grant := func(id, principal string, res map[string]any, perms ...string) string {
			t.Helper()
			g := request(id, principal, res, perms...).want(t, 202)
			e.waitGrant(id, g.str("id"), "active")
			return g.str("id")
		}
		grant(a, pa, map[string]any{"table": "identifies"}, "SELECT", "DESCRIBE")
		gaTag := grant(a, paTag, map[string]any{"table": "identifies", "tag": map[string]any{"cairn:pii": []string{"false"}}}, "SELECT")
		gb := grant(b, pb, map[string]any{"table": "identifies", "columns": []string{"message_id", "tenant_id"}}, "SELECT")
		// a's own role (its slice's data_access_role_arn) is granted the
		// shared table by the refinery (lake.Config.Readers), through a's
		// filter; asked twice, it is granted once.
		ownRoleA := outputsOf(stacksOf(t, e, a)["eu-west-1"])["data_access_role_arn"].(string)
		ownGrant := func() string {
			t.Helper()
			for range 2 {
				if err := e.grants.GrantOwnRole(ctx, a, "eu-west-1", []string{"identifies"}); err != nil {
					t.Fatal(err)
				}
			}
			var ids []string
			for _, it := range e.do("GET", "/v1/tenants/"+a+"/grants", e.admin, nil).want(t, 200).body["items"].([]any) {
				if g := it.(map[string]any); g["principal"] == ownRoleA && g["status"] != "revoked" {
					ids = append(ids, g["id"].(string))
				}
			}
			if len(ids) != 1 {
				t.Fatalf("grants to a's own role: %v, want one", ids)
			}
			e.waitGrant(a, ids[0], "active")
			return ids[0]
		}
		gOwn := ownGrant()

		// Past the filters: refused.
		request(a, pa, map[string]any{}, "SELECT").want(t, 400)
		request(a, pa, map[string]any{}, "DESCRIBE").want(t, 400)
		request(a, pa, map[string]any{"tag": map[string]any{"cairn:pii": []string{"false"}}}, "SELECT").want(t, 400)
		request(a, pa, map[string]any{"table": "identifies"}, "INSERT").want(t, 400)
		request(a, pa, map[string]any{"table": "identifies"}, "ALTER").want(t, 400)
		request(a, pa, map[string]any{"database": "cairn_elsewhere", "table": "identifies"}, "SELECT").want(t, 403)
		// Nor to the pool's data-access role, which acts for every pooled
		// tenant: its permissions would be theirs. It is not a pooled
		// tenant's principal (cmd/server's TestTierMigration: nor a
		// grant's that moves into the pool).
		outA := outputsOf(stacksOf(t, e, a)["eu-west-1"])
		poolRole := outA["pool_role_arn"].(string)
		if own := outA["data_access_role_arn"].(string); own == poolRole || !strings.HasSuffix(own, "/cairn/pooled/cairn-"+a+"-eu-west-1") {
			t.Errorf("pooled tenant %s's data-access role %s, want its own (the pool's is %s)", a, own, poolRole)
		}
		if r := e.do("POST", "/v1/tenants/"+a+"/principals", e.admin, map[string]any{"principal": poolRole}).want(t, 400); !strings.Contains(string(r.raw), "pool's data-access role") {
			t.Errorf("the pool's role as a principal: %s", r.raw)
		}

		// Every permission on the pool's database is through a filter of
		// its tenant, whose row filter is exactly the tenant's.
		cfg := awstest.Config("eu-west-1")
		catalog, err := lakeformation.NewCatalog(ctx, lakeformation.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: double.URL, MaxAttempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		perms, err := catalog.Permissions(ctx, "eu-west-1", pool)
		if err != nil {
			t.Fatal(err)
		}
		lf := awslf.NewFromConfig(cfg, func(o *awslf.Options) { o.BaseEndpoint = aws.String(double.URL) })
		owner := map[string]string{pa: a, paTag: a, pb: b, ownRoleA: a}
		expressions := map[string][]string{} // tenant → its filters' row expressions
		for _, p := range perms {
			tenant := owner[p.Principal]
			if p.CellsFilter == "" || tenant == "" {
				t.Errorf("permission %+v on the pool's database is not through a tenant's filter", p)
				continue
			}
			got, err := lf.GetDataCellsFilter(ctx, &awslf.GetDataCellsFilterInput{DatabaseName: aws.String(pool), TableName: aws.String("identifies"),
				Name: aws.String(p.CellsFilter), TableCatalogId: aws.String(lftest.Account)})
			if err != nil {
				t.Fatal(err)
			}
			f := got.DataCellsFilter
			expr := ""
			if f.RowFilter != nil {
				expr = aws.ToString(f.RowFilter.FilterExpression)
			}
			if expr != "tenant_id = '"+tenant+"'" || !strings.HasPrefix(p.CellsFilter, grants.CellsFilterName(tenant, nil)) {
				t.Errorf("%s holds %v through filter %s whose row filter is %q, want tenant_id = '%s'", p.Principal, p.Permissions, p.CellsFilter, expr, tenant)
			}
			expressions[tenant] = append(expressions[tenant], expr)
		}
		if len(expressions[a]) != 3 || len(expressions[b]) != 1 {
			t.Errorf("filters' row expressions by tenant: %v, want a's 3 permissions through its 2 filters and b's 1", expressions)
		}

		// What each principal reads: its tenant's rows only.
		for _, tc := range []struct {
			principal string
			want      []map[string]string
		}{
			{pa, []map[string]string{rows[0], rows[2]}},
			{ownRoleA, []map[string]string{rows[0], rows[2]}},
			{paTag, []map[string]string{
				{"tenant_id": a, "message_id": "a1", "user_id": "ua", "dt": "2026-11-26", "hh": "10"},
				{"tenant_id": a, "message_id": "a2", "user_id": "ua", "dt": "2026-11-26", "hh": "11"},
			}},
			{pb, []map[string]string{{"tenant_id": b, "message_id": "b1"}}},
		} {
			if diff := cmp.Diff(tc.want, double.Query(tc.principal, pool, "identifies")); diff != "" {
				t.Errorf("%s reads (-want +got):\n%s", tc.principal, diff)
			}
		}

		// DuckDB runs each stored row expression over both tenants' rows.
		db, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "CREATE TABLE identifies (tenant_id VARCHAR, message_id VARCHAR)"); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if _, err := db.ExecContext(ctx, "INSERT INTO identifies VALUES (?, ?)", r["tenant_id"], r["message_id"]); err != nil {
				t.Fatal(err)
			}
		}
		for tenant, exprs := range expressions {
			for _, expr := range exprs {
				got, err := db.QueryContext(ctx, "SELECT DISTINCT tenant_id FROM identifies WHERE "+expr)
				if err != nil {
					t.Fatalf("DuckDB runs %q: %v", expr, err)
				}
				var seen []string
				for got.Next() {
					var id string
					if err := got.Scan(&id); err != nil {
						t.Fatal(err)
					}
					seen = append(seen, id)
				}
				got.Close()
				if !slices.Equal(seen, []string{tenant}) {
					t.Errorf("row filter %q selects the rows of %v, want %s's only", expr, seen, tenant)
				}
			}
		}

		// Reconciles find each tenant's permissions and none of the other's.
		for _, id := range []string{a, b} {
			r := e.do("POST", "/v1/tenants/"+id+"/grants/reconcile", e.admin, nil).want(t, 200)
			if len(r.body["repaired"].([]any)) != 0 || len(r.body["unmanaged"].([]any)) != 0 {
				t.Errorf("reconcile of %s: %s", id, r.raw)
			}
		}

		// a moves to a dedicated database (its tables copied there): its
		// grants and filters leave the pool; b's stay.
		ownA := outputsOf(stacksOf(t, e, a)["eu-west-1"])["glue_database"].(string)
		dedA := "cairn_" + a
		double.AddTable(dedA, "identifies", cols, nil)
		double.AddRows(dedA, "identifies", rows[0], rows[2])
		if n, err := e.grants.Rehome(ctx, a, "eu-west-1", ownA, dedA, false); err != nil || n != 2 {
			t.Fatalf("rehome to dedicated: %d, %v", n, err)
		}
		perms, err = catalog.Permissions(ctx, "eu-west-1", pool)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range perms {
			if owner[p.Principal] != b {
				t.Errorf("after a left the pool, %s holds %v on the pool's database", p.Principal, p)
			}
		}
		for _, name := range []string{grants.CellsFilterName(a, nil)} {
			if _, err := lf.GetDataCellsFilter(ctx, &awslf.GetDataCellsFilterInput{DatabaseName: aws.String(pool), TableName: aws.String("identifies"),
				Name: aws.String(name), TableCatalogId: aws.String(lftest.Account)}); err == nil {
				t.Errorf("a's filter %s is left in the pool", name)
			}
		}
		if got := double.Query(pa, dedA, "identifies"); len(got) != 2 {
			t.Errorf("on its dedicated database, %s reads %v", pa, got)
		}
		// a's own pooled role went with its slice: its grant is revoked,
		// not moved, and it reads nothing anywhere.
		if g := e.do("GET", "/v1/tenants/"+a+"/grants/"+gOwn, e.admin, nil).want(t, 200); g.body["status"] != "revoked" {
			t.Errorf("a's own role's grant after a left the pool: %s", g.raw)
		}
		for _, db := range []string{pool, dedA} {
			if got := double.Query(ownRoleA, db, "identifies"); len(got) != 0 {
				t.Errorf("a's own pooled role reads %v in %s after a left the pool", got, db)
			}
		}
		// And back: through its filters on the pool's shared table again.
		if n, err := e.grants.Rehome(ctx, a, "eu-west-1", dedA, ownA, true); err != nil || n != 2 {
			t.Fatalf("rehome to the pool: %d, %v", n, err)
		}
		if diff := cmp.Diff([]map[string]string{rows[0], rows[2]}, double.Query(pa, pool, "identifies")); diff != "" {
			t.Errorf("back in the pool, %s reads (-want +got):\n%s", pa, diff)
		}
		// The refinery's next run grants a's own role again.
		if gOwn2 := ownGrant(); gOwn2 == gOwn {
			t.Errorf("a's own role's grant back in the pool is the revoked one, %s", gOwn)
		}
		if diff := cmp.Diff([]map[string]string{rows[0], rows[2]}, double.Query(ownRoleA, pool, "identifies")); diff != "" {
			t.Errorf("back in the pool, a's own role reads (-want +got):\n%s", diff)
		}
		for _, id := range []string{a, b} {
			r := e.do("POST", "/v1/tenants/"+id+"/grants/reconcile", e.admin, nil).want(t, 200)
			if len(r.body["repaired"].([]any)) != 0 || len(r.body["unmanaged"].([]any)) != 0 {
				t.Errorf("reconcile of %s after the moves: %s", id, r.raw)
			}
		}

		// A revoke takes the grant's filter out of the pool once no other
		// grant of the tenant goes through it.
		filterOf := func(id string) map[string]bool {
			t.Helper()
			out := map[string]bool{}
			for _, name := range []string{grants.CellsFilterName(id, nil), grants.CellsFilterName(id, []string{"message_id", "tenant_id"}),
				grants.TagCellsFilterName(id, grants.TagExpression{"cairn:pii": {"false"}})} {
				_, err := lf.GetDataCellsFilter(ctx, &awslf.GetDataCellsFilterInput{DatabaseName: aws.String(pool), TableName: aws.String("identifies"),
					Name: aws.String(name), TableCatalogId: aws.String(lftest.Account)})
				out[name] = err == nil
			}
			return out
		}
		if got := filterOf(b); !got[grants.CellsFilterName(b, []string{"message_id", "tenant_id"})] {
			t.Fatalf("b's filters before the revoke: %v", got)
		}
		for id, g := range map[string]string{a: gaTag, b: gb} {
			e.do("DELETE", "/v1/tenants/"+id+"/grants/"+g, e.admin, nil).want(t, 202)
			e.waitGrant(id, g, "revoked")
		}
		if got := filterOf(b); got[grants.CellsFilterName(b, []string{"message_id", "tenant_id"})] {
			t.Errorf("b's filter is left in the pool after its grant's revoke: %v", got)
		}
		if got := filterOf(a); got[grants.TagCellsFilterName(a, grants.TagExpression{"cairn:pii": {"false"}})] || !got[grants.CellsFilterName(a, nil)] {
			t.Errorf("a's filters after the revoke of its tag grant: %v, want its other grant's only", got)
		}
		if diff := cmp.Diff([]map[string]string{rows[0], rows[2]}, double.Query(pa, pool, "identifies")); diff != "" {
			t.Errorf("after the revokes, %s reads (-want +got):\n%s", pa, diff)
		}

		// A table a still has in its own database (from before the pool
		// shared its tables), granted there, is taken in by the pool's
		// shared table: the grant follows (as the lake's adoption asks),
		// through a's filter, and leaves a's own table.
		double.AddTable(ownA, "tracks", cols, nil)
		double.AddRows(ownA, "tracks", rows[0])
		gt := grant(a, pa, map[string]any{"database": ownA, "table": "tracks"}, "SELECT")
		double.AddTable(pool, "tracks", cols, map[string]string{lakeformation.SharedParameter: "true"})
		double.AddRows(pool, "tracks", rows...)
		if _, err := e.grants.Rehome(ctx, a, "eu-west-1", ownA, ownA, true); err != nil {
			t.Fatal(err)
		}
		if g := e.do("GET", "/v1/tenants/"+a+"/grants/"+gt, e.admin, nil).want(t, 200); g.body["status"] != "active" || g.body["resource"].(map[string]any)["database"] != pool {
			t.Errorf("the grant on a's own table after its adoption: %s", g.raw)
		}
		if diff := cmp.Diff([]map[string]string{rows[0], rows[2]}, double.Query(pa, pool, "tracks")); diff != "" {
			t.Errorf("the adopted table's grant reads (-want +got):\n%s", diff)
		}
		if got := double.Query(pa, ownA, "tracks"); len(got) != 0 {
			t.Errorf("the grant is left on a's own table: %v", got)
		}
		r := e.do("POST", "/v1/tenants/"+a+"/grants/reconcile", e.admin, nil).want(t, 200)
		if len(r.body["repaired"].([]any)) != 0 || len(r.body["unmanaged"].([]any)) != 0 {
			t.Errorf("reconcile of a after the adoption: %s", r.raw)
		}
	})
}
