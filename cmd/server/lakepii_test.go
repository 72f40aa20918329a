package main

import (
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/lake"
)

// TestLakeClassification: the refinery classifies the tables it writes in
// the embedded default. Events with an e-mail address and a CRM ID (an
// identifier type of the tenant's identity configuration) in their traits,
// an IP address in their context and a phone number in their properties
// are refined; the columns holding them carry cairn:pii=true and their
// kinds in the local catalog, every other column cairn:pii=false, and the
// findings' JSON paths are in the audit log. A tag grant on cairn:pii=false
// then reads exactly the columns without personal data. A later hour's
// sample without a column's personal data does not untag it.
func TestLakeClassification(t *testing.T) {
	lt := startLakeServer(t, "0", nil)
	dir, admin, base := lt.dir, lt.admin, lt.base
	status, tn := call(t, "POST", base+"/v1/tenants", admin, `{"name":"PII","slug":"pii","tier":"dedicated","home_region":"eu-west-1"}`)
	if status != http.StatusAccepted {
		t.Fatalf("onboard: %d %v", status, tn)
	}
	id := tn["id"].(string)
	awaitActive(t, base, admin, id)
	tb := base + "/v1/tenants/" + id
	status, src := call(t, "POST", tb+"/sources", admin, `{"name":"web"}`)
	if status != http.StatusCreated {
		t.Fatalf("source: %d %v", status, src)
	}
	if status, body := call(t, "PUT", tb+"/identity-config", admin, `{"identifiers":[
		{"type":"user_id","priority":1,"limit":1},{"type":"email","priority":2,"limit":5},
		{"type":"crm_id","priority":3,"limit":1},{"type":"anonymous_id","priority":4,"limit":5}]}`); status != http.StatusOK {
		t.Fatalf("identity config: %d %v", status, body)
	}
	lt.id, lt.writeKey = id, src["write_key"].(string)
	ts := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)
	lt.batch(t,
		fmt.Sprintf(`{"type":"identify","messageId":"i1","userId":"u1","traits":{"plan":"pro","email":"ada@example.com","crm_id":"C-1001"},"context":{"ip":"192.0.2.1","library":{"name":"analytics-go"}},"timestamp":%q}`, ts),
		fmt.Sprintf(`{"type":"track","messageId":"t1","userId":"u1","event":"Called","properties":{"phone":"+14155550123","plan":"pro"},"context":{"ip":"192.0.2.1"},"timestamp":%q}`, ts),
		fmt.Sprintf(`{"type":"page","messageId":"p1","userId":"u1","name":"Home","properties":{"path":"/"},"timestamp":%q}`, ts),
	)
	lt.refine(t)

	_, stacks := call(t, "GET", tb+"/stacks", admin, "")
	db := outputsOf(listItems(stacks)[0])["glue_database"]
	catalog := &grants.LocalCatalog{Root: filepath.Join(dir, "zones")}
	// pii returns the columns of a table tagged cairn:pii=true, with
	// their kinds, and fails on a column not tagged either way.
	pii := func(table string) map[string]string {
		t.Helper()
		tags, err := catalog.ColumnTags(t.Context(), "eu-west-1", db, table)
		if err != nil {
			t.Fatalf("tags of %s: %v", table, err)
		}
		out := map[string]string{}
		for col, tg := range tags {
			switch tg[grants.TagPII] {
			case "true":
				out[col] = tg[grants.TagPIIKind]
			case "false":
				if tg[grants.TagPIIKind] != grants.KindNone {
					t.Errorf("%s.%s: %v", table, col, tg)
				}
			default:
				t.Errorf("%s.%s is not classified: %v", table, col, tg)
			}
		}
		return out
	}
	want := map[string]map[string]string{
		// An e-mail address and a CRM ID.
		"identifies":          {"traits": "mixed", "context": "ip"},
		"tracks":              {"properties": "phone", "context": "ip"},
		"pages":               {},
		"external_id_mapping": {"external_id_value": "email"},
		"profile_traits":      {"traits": "mixed"},
		"id_graph":            {},
	}
	for table, w := range want {
		if diff := cmp.Diff(w, pii(table)); diff != "" {
			t.Errorf("PII columns of %s (-want +got):\n%s", table, diff)
		}
	}
	_, trail := call(t, "GET", base+"/v1/audit-events?tenant_id="+id+"&action=table.classify&limit=100", admin, "")
	paths := map[string]string{}
	for _, e := range listItems(trail) {
		d, _ := e["detail"].(map[string]any)
		if p, ok := d["paths"].(string); ok {
			paths[e["target_id"].(string)] = p
		}
	}
	if got := paths["eu-west-1/"+db+"/identifies"]; got != "context/ip=ip,traits/crm_id=identifier,traits/email=email" {
		t.Errorf("identifies's paths in the audit log: %q (all: %v)", got, paths)
	}

	// A tag grant on cairn:pii=false reads the columns without PII.
	const principal = "arn:aws:iam::123456789012:role/analyst"
	if status, body := call(t, "POST", tb+"/principals", admin, `{"principal":"`+principal+`"}`); status != http.StatusCreated {
		t.Fatalf("principal: %d %v", status, body)
	}
	status, grant := call(t, "POST", tb+"/grants", admin, `{"principal":"`+principal+`","resource":{"region":"eu-west-1","database":"`+db+`","tag":{"cairn:pii":["false"]}},"permissions":["SELECT"]}`)
	if status != http.StatusAccepted {
		t.Fatalf("grant: %d %v", status, grant)
	}
	for deadline := time.Now().Add(30 * time.Second); grant["status"] != "active"; time.Sleep(20 * time.Millisecond) { // polling the grant's job
		if time.Now().After(deadline) {
			t.Fatalf("grant is %v", grant)
		}
		_, grant = call(t, "GET", tb+"/grants/"+grant["id"].(string), admin, "")
	}
	for table, w := range want {
		tbl, _ := lake.TableNamed(table)
		var nonPII []string
		for _, c := range tbl.Columns {
			if _, ok := w[c.Name]; !ok {
				nonPII = append(nonPII, c.Name)
			}
		}
		if tbl.Partitioned {
			nonPII = append(nonPII, "dt", "hh")
		}
		slices.Sort(nonPII)
		got, err := catalog.Readable(t.Context(), "eu-west-1", principal, db, table)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(nonPII, got); diff != "" {
			t.Errorf("the tag grant reads of %s (-want +got):\n%s", table, diff)
		}
	}

	// A later hour (landed as a delivery stream would) without PII in the
	// columns found before: only it is sampled, and the tags stay; a new
	// JSON path with PII (an e-mail address in a page's properties) tags
	// its column.
	out := outputsOf(listItems(stacks)[0])
	lt.loc = lake.Location{Region: "eu-west-1", RawBucket: out["raw_bucket"]}
	earlier := time.Now().UTC().Add(-time.Hour)
	ets := earlier.Format(time.RFC3339Nano)
	writeRawCopy(t, lt.rawDir(earlier), earlier,
		fmt.Sprintf(`{"type":"track","messageId":"t2","userId":"u1","event":"Viewed","properties":{"plan":"pro"},"context":{"library":{"name":"analytics-go"}},"timestamp":%q}`, ets),
		fmt.Sprintf(`{"type":"page","messageId":"p2","userId":"u1","name":"Contact","properties":{"contact_email":"ada@example.com"},"timestamp":%q}`, ets),
	)
	if res := lt.refine(t); len(res.Partitions) != 1 || res.Partitions[0] != earlier.Format("2006-01-02T15") {
		t.Fatalf("the later hour: %+v", res)
	}
	if diff := cmp.Diff(want["tracks"], pii("tracks")); diff != "" {
		t.Errorf("PII columns of tracks after a sample without PII (-want +got):\n%s", diff)
	}
	if got := pii("pages"); !maps.Equal(got, map[string]string{"properties": "email"}) {
		t.Errorf("PII columns of pages after a page with an e-mail address: %v", got)
	}
}
