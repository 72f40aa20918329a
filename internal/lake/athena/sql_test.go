package athena_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-cdp/cairn/internal/lake/athena"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestStatements pins each kind of statement the engine sends to
// testdata/statements/<kind>.sql (the lake's transformations, rendered in
// lake.Athena, inside the CTEs and the UNLOAD that Athena needs), and
// parses them all as Trino's when the Python of make test is there.
func TestStatements(t *testing.T) {
	got, err := athena.Statements("cairn_ten_a", "", "", "vrun", "s3://cairn-clean/events/dt=2026-11-26/hh=10/vversion/")
	if err != nil {
		t.Fatal(err)
	}
	// A pooled tenant's: the shared tables of the pool's database, only
	// the tenant's rows of each.
	pooled, err := athena.Statements("cairn_pool_ten_a", "cairn_pool_shared", "ten_a", "vrun",
		"s3://cairn-pool-clean/tenants/ten_a/events/dt=2026-11-26/hh=10/vversion/")
	if err != nil {
		t.Fatal(err)
	}
	shared := regexp.MustCompile(`"cairn_pool_shared"\."[a-z_]+"( WHERE tenant_id = 'ten_a')?`)
	for name, sql := range pooled {
		got["pooled_"+name] = sql
		refs := shared.FindAllStringSubmatch(sql, -1)
		if name != "refine" && len(refs) == 0 {
			t.Errorf("pooled %s reads no shared table:\n%s", name, sql)
		}
		for _, m := range refs {
			if m[1] == "" {
				t.Errorf("pooled %s reads %s without its tenant_id condition:\n%s", name, m[0], sql)
			}
		}
		if strings.Contains(sql, `"cairn_ten_a"`) || strings.Contains(sql, `"cairn_pool_ten_a"."tracks"`) {
			t.Errorf("pooled %s reads a clean table outside the pool's database:\n%s", name, sql)
		}
	}
	var names []string
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	var all []string
	for _, name := range names {
		sql := got[name]
		all = append(all, sql)
		golden := filepath.Join("testdata", "statements", name+".sql")
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(sql+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (go test -update writes it)", err)
		}
		if sql+"\n" != string(want) {
			t.Errorf("%s renders differently from %s:\n%s", name, golden, sql)
		}
		if strings.Contains(sql, "{{") || strings.Contains(sql, "<no value>") {
			t.Errorf("%s: unrendered template left in:\n%s", name, sql)
		}
	}
	checkTrino(t, all)
}
