package lake_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cdp/cairn/internal/lake"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Every transformation renders in both dialects, to the SQL in
// testdata/<dialect>/<output>.sql: one definition, the differences
// confined to the dialect's functions and types.
func TestTransformationsRender(t *testing.T) {
	all := append([]lake.Transformation{lake.CleanEvents}, lake.Transformations()...)
	for _, d := range []lake.Dialect{lake.DuckDB, lake.Athena} {
		for _, tr := range all {
			t.Run(d.Name()+"/"+tr.Output, func(t *testing.T) {
				got, err := tr.Render(d)
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", d.Name(), tr.Output+".sql")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (go test -update writes it)", err)
				}
				if got+"\n" != string(want) {
					t.Errorf("%s renders differently from %s:\n%s", tr.Output, golden, got)
				}
				if strings.Contains(got, "{{") || strings.Contains(got, "<no value>") {
					t.Errorf("unrendered template left in:\n%s", got)
				}
			})
		}
	}
}

// The dialects differ where the engines do, and only there.
func TestDialects(t *testing.T) {
	for _, tc := range []struct {
		name         string
		duck, athena string
	}{
		{"timestamp", lake.DuckDB.ParseTimestamp("x"), lake.Athena.ParseTimestamp("x")},
		{"json string", lake.DuckDB.JSONString("c", "$.a.b"), lake.Athena.JSONString("c", "$.a.b")},
		{"json object agg", lake.DuckDB.JSONObjectAgg("k", "v"), lake.Athena.JSONObjectAgg("k", "v")},
		{"json type", lake.DuckDB.Type(lake.JSON), lake.Athena.Type(lake.JSON)},
	} {
		if tc.duck == tc.athena {
			t.Errorf("%s: both dialects render %q", tc.name, tc.duck)
		}
	}
	for name, want := range map[string]string{
		lake.DuckDB.ParseTimestamp("x"):       "make_timestamp(epoch_us(TRY_CAST(x AS TIMESTAMPTZ)))",
		lake.Athena.ParseTimestamp("x"):       "CAST(try(from_iso8601_timestamp(x)) AT TIME ZONE 'UTC' AS timestamp)",
		lake.DuckDB.JSONString("c", "$.it's"): "json_extract_string(c, '$.it''s')",
		lake.Athena.JSONString("c", "$.a"):    "json_extract_scalar(c, '$.a')",
		lake.Athena.Type(lake.Timestamp):      "timestamp",
		lake.DuckDB.Type(lake.BigInt):         "BIGINT",
	} {
		if name != want {
			t.Errorf("rendered %q, want %q", name, want)
		}
	}
}

func TestPartition(t *testing.T) {
	p, err := lake.ParsePartition("2026-11-26T10")
	if err != nil || p.Date != "2026-11-26" || p.Hour != "10" || p.String() != "2026-11-26T10" || p.End().Sub(p.Start()).Hours() != 1 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{"", "2026-11-26", "2026-11-26T25", "2026-13-01T00", "x026-11-26T10"} {
		if _, err := lake.ParsePartition(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	a := []lake.RawObject{{Key: "a", Size: 1}, {Key: "b", Size: 2}}
	if lake.Fingerprint(a) != lake.Fingerprint([]lake.RawObject{a[1], a[0]}) {
		t.Error("fingerprint depends on order")
	}
	if lake.Fingerprint(a) == lake.Fingerprint([]lake.RawObject{{Key: "a", Size: 1}, {Key: "b", Size: 3}}) {
		t.Error("fingerprint ignores a rewritten object's size")
	}
}
