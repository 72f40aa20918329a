package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/duckdb"
)

// lakeTenant is an active tenant of a server whose refinery the test runs.
type lakeTenant struct {
	base, admin, id, writeKey string
	dir                       string
	svc                       *lake.Service
	engine                    *duckdb.Engine
	loc                       lake.Location
}

func (lt *lakeTenant) batch(t *testing.T, events ...string) {
	t.Helper()
	req, _ := http.NewRequest("POST", lt.base+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(events, ",")+`]}`))
	req.SetBasicAuth(lt.writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || bytes.Contains(out, []byte(`"errors":[{`)) {
		t.Fatalf("batch: %d %s", res.StatusCode, out)
	}
}

func (lt *lakeTenant) refine(t *testing.T) lake.RefineResult {
	t.Helper()
	res, err := lt.svc.Refine(t.Context(), lt.id)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// query runs q over the tenant's tables (the local catalog's views).
func (lt *lakeTenant) query(t *testing.T, q string) []string {
	t.Helper()
	rows, err := lt.engine.Query(t.Context(), lt.loc, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var out []string
	for _, vals := range rows {
		parts := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				parts[i] = "-"
			} else {
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func (lt *lakeTenant) expect(t *testing.T, q string, want ...string) {
	t.Helper()
	if got := lt.query(t, q); !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", q, got, want)
	}
}

// rawDir returns the tenant's raw partition directory of the hour at.
func (lt *lakeTenant) rawDir(at time.Time) string {
	at = at.UTC()
	return filepath.Join(lt.dir, "zones", lt.loc.Region, "buckets", lt.loc.RawBucket, filepath.FromSlash(lt.loc.Prefix), "events",
		"dt="+at.Format("2006-01-02"), "hh="+at.Format("15"))
}

func (lt *lakeTenant) profileOf(t *testing.T, identifier string) string {
	t.Helper()
	status, p := call(t, "GET", lt.base+"/v1/tenants/"+lt.id+"/profiles?identifier="+identifier, lt.admin, "")
	if status != http.StatusOK {
		t.Fatalf("lookup %s: %d %v", identifier, status, p)
	}
	return p["id"].(string)
}

// startLake starts a server whose refinery's clock is two hours ahead (so
// every partition written now is closed), its sweep every interval (0:
// never, the test runs the refinery), and onboards a tenant with a source.
func startLake(t *testing.T, interval string) *lakeTenant {
	t.Helper()
	return startLakeVars(t, interval, nil)
}

// startLakeServer starts a server whose refinery's clock is two hours
// ahead, with the server's variables and more, and returns it with no
// tenant yet (lt.id, lt.writeKey and lt.loc unset).
func startLakeServer(t *testing.T, interval string, more map[string]string) *lakeTenant {
	t.Helper()
	dir := t.TempDir()
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	svcs := make(chan *lake.Service, 1)
	vars := activationVars(dir)
	vars["CAIRN_LAKE_INTERVAL"] = interval
	maps.Copy(vars, more)
	base, _ := startServerHooks(t, t.Context(), vars, hooks{
		lakeNow: func() time.Time { return time.Now().Add(2 * time.Hour) },
		lake:    svcs,
	})
	return &lakeTenant{base: base, admin: admin, dir: dir, svc: <-svcs}
}

// startLakeVars is startLake with more of the server's variables.
func startLakeVars(t *testing.T, interval string, more map[string]string) *lakeTenant {
	t.Helper()
	lt := startLakeServer(t, interval, more)
	base, admin, dir := lt.base, lt.admin, lt.dir
	status, tn := call(t, "POST", base+"/v1/tenants", admin, `{"name":"Lake","slug":"lake","tier":"pooled","home_region":"eu-west-1"}`)
	if status != http.StatusAccepted {
		t.Fatalf("onboard: %d %v", status, tn)
	}
	lt.id = tn["id"].(string)
	awaitActive(t, base, admin, lt.id)
	status, src := call(t, "POST", base+"/v1/tenants/"+lt.id+"/sources", admin, `{"name":"web"}`)
	if status != http.StatusCreated {
		t.Fatalf("source: %d %v", status, src)
	}
	lt.writeKey = src["write_key"].(string)
	status, seg := call(t, "POST", base+"/v1/tenants/"+lt.id+"/segments", admin, `{"name":"Pro","definition":{"trait":"plan","operator":"equals","value":"pro"}}`)
	if status != http.StatusCreated {
		t.Fatalf("segment: %d %v", status, seg)
	}
	// The zones are the pool's buckets, the tenant's prefix in them.
	buckets, _ := filepath.Glob(filepath.Join(dir, "zones", "eu-west-1", "buckets", "*"))
	lt.loc = lake.Location{Region: "eu-west-1", Prefix: "tenants/" + lt.id + "/"}
	for _, b := range buckets {
		switch name := filepath.Base(b); {
		case strings.HasSuffix(name, "-raw"):
			lt.loc.RawBucket = name
		case strings.HasSuffix(name, "-clean"):
			lt.loc.CleanBucket = name
		case strings.HasSuffix(name, "-curated"):
			lt.loc.CuratedBucket = name
		}
	}
	if lt.loc.RawBucket == "" || lt.loc.CleanBucket == "" || lt.loc.CuratedBucket == "" {
		t.Fatalf("zones: %v", buckets)
	}
	// A reader of the zones of its own, as an analyst's DuckDB would be.
	var err error
	lt.engine, err = duckdb.New(duckdb.Config{Root: filepath.Join(dir, "zones"), Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lt.engine.Close() })
	return lt
}

// writeRawCopy lands lines in the raw partition of the hour at as a
// streaming producer would (Firehose delivers at least once): an object
// of its own in the raw layout.
func writeRawCopy(t *testing.T, dir string, at time.Time, lines ...string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(strings.Join(lines, "\n") + "\n"))
	zw.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Named as a delivery stream names its objects (the name means
	// nothing to readers), written at at.
	name := fmt.Sprintf("cairn-raw-1-%s-redelivered-%d.ndjson.gz", at.UTC().Format("2006-01-02-15-04-05"), at.UnixNano())
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, name), at, at); err != nil {
		t.Fatal(err)
	}
}

// TestLakeRefinery: events in through the ingestion routes, clean and
// curated tables out: typed, deduplicated (a redelivered copy in the raw
// zone is dropped, the copy received first wins), late data refining its
// partition again, a merge in id_graph_updates with the event that made
// it, traits, memberships and daily counts; the status route; then an
// erasure removing the profile's rows from every zone, and refinery runs
// that never bring them back, though the raw zone still holds a copy the
// erasure did not know of.
func TestLakeRefinery(t *testing.T) {
	lt := startLake(t, "0")
	now := time.Now().UTC()
	ts := now.Add(-time.Minute).Format(time.RFC3339Nano)
	lt.batch(t,
		fmt.Sprintf(`{"type":"identify","messageId":"e1","userId":"u1","anonymousId":"a1","traits":{"plan":"pro","email":"u1@example.com"},"timestamp":%q}`, ts),
		fmt.Sprintf(`{"type":"track","messageId":"e2","userId":"u1","event":"Signed Up","properties":{"plan":"pro"},"timestamp":%q,"context":{"library":{"name":"analytics-go"}}}`, ts),
		fmt.Sprintf(`{"type":"track","messageId":"e3","anonymousId":"a2","event":"Viewed","timestamp":%q}`, ts),
		fmt.Sprintf(`{"type":"page","messageId":"e4","anonymousId":"a2","name":"Home","timestamp":%q}`, ts),
	)
	p1, p2 := lt.profileOf(t, "user_id:u1"), lt.profileOf(t, "anonymous_id:a2")
	if p1 == p2 {
		t.Fatalf("one profile %s for u1 and a2", p1)
	}
	objects, _ := filepath.Glob(filepath.Join(lt.rawDir(now), "*.ndjson.gz"))
	if len(objects) == 0 {
		t.Fatalf("no raw object in %s", lt.rawDir(now))
	}
	// A copy of e2 delivered again, later, with another name: dropped.
	writeRawCopy(t, filepath.Dir(objects[0]), now.Add(time.Second),
		fmt.Sprintf(`{"type":"track","messageId":"e2","userId":"u1","event":"Signed Up (copy)","timestamp":%q}`, ts))

	res := lt.refine(t)
	if len(res.Partitions) == 0 || !res.Curated || res.More {
		t.Fatalf("first run: %+v", res)
	}
	lt.expect(t, `SELECT message_id, type, event, user_id, anonymous_id, profile_id = '`+p1+`', source, properties->>'plan' FROM tracks ORDER BY message_id`,
		"e2 track Signed Up u1 - true analytics-go pro", "e3 track Viewed - a2 false - -")
	lt.expect(t, `SELECT message_id, traits->>'email', profile_id = '`+p1+`' FROM identifies`, "e1 u1@example.com true")
	lt.expect(t, `SELECT message_id, event, profile_id = '`+p2+`' FROM pages`, "e4 Home true")
	lt.expect(t, `SELECT count(*) FROM screens UNION ALL SELECT count(*) FROM groups UNION ALL SELECT count(*) FROM aliases`, "0", "0", "0")
	lt.expect(t, `SELECT count(*) FROM tracks WHERE "timestamp" IS NULL OR received_at IS NULL`, "0")
	lt.expect(t, `SELECT external_id_type, external_id_value, triggering_event_id FROM external_id_mapping_updates WHERE profile_id = '`+p1+`' ORDER BY 1`,
		"anonymous_id a1 e1", "email u1@example.com e1", "user_id u1 e1")
	lt.expect(t, `SELECT count(*) FROM id_graph_updates WHERE profile_id = canonical_profile_id`, "2")

	// Late data: an alias in the same partition merges a2's profile into
	// u1's; the partition is refined again.
	lt.batch(t, fmt.Sprintf(`{"type":"alias","messageId":"e5","userId":"u1","previousId":"a2","timestamp":%q}`, ts))
	if got := lt.profileOf(t, "anonymous_id:a2"); got != p1 {
		t.Fatalf("a2 is in %s after the alias, want %s", got, p1)
	}
	res = lt.refine(t)
	if len(res.Partitions) == 0 || !res.Curated {
		t.Fatalf("late data: %+v", res)
	}
	lt.expect(t, `SELECT message_id, previous_id, profile_id = '`+p1+`' FROM aliases`, "e5 a2 true")
	lt.expect(t, `SELECT message_id, profile_id = '`+p1+`' FROM tracks ORDER BY 1`, "e2 true", "e3 true")
	lt.expect(t, `SELECT profile_id = '`+p2+`', canonical_profile_id = '`+p1+`', triggering_event_id FROM id_graph_updates WHERE profile_id <> canonical_profile_id`,
		"true true e5")
	lt.expect(t, `SELECT canonical_profile_id = '`+p1+`' FROM id_graph WHERE profile_id = '`+p2+`'`, "true")
	lt.expect(t, `SELECT external_id_type, external_id_value FROM external_id_mapping WHERE canonical_profile_id = '`+p1+`' ORDER BY 1, 2`,
		"anonymous_id a1", "anonymous_id a2", "email u1@example.com", "user_id u1")
	lt.expect(t, `SELECT canonical_profile_id = '`+p1+`', traits->>'plan', triggering_event_id FROM profile_traits_updates`, "true pro e1")
	lt.expect(t, `SELECT traits->>'plan', traits->>'email' FROM profile_traits WHERE canonical_profile_id = '`+p1+`'`, "pro u1@example.com")
	lt.expect(t, `SELECT profile_id = '`+p1+`' FROM segment_memberships`, "true")
	lt.expect(t, `SELECT type, coalesce(event, '-'), events FROM daily_event_counts ORDER BY 1, 2`,
		"alias - 1", "identify - 1", "page Home 1", "track Signed Up 1", "track Viewed 1")
	// Nothing changed since: a run refines nothing.
	if res := lt.refine(t); len(res.Partitions) != 0 || res.Curated {
		t.Fatalf("a run with nothing new: %+v", res)
	}

	// The status route, with the tenant's usage:read scope.
	status, tok := call(t, "POST", lt.base+"/v1/tenants/"+lt.id+"/tokens", lt.admin, `{"scopes":["usage:read"]}`)
	if status != http.StatusCreated {
		t.Fatalf("token: %d %v", status, tok)
	}
	status, st := call(t, "GET", lt.base+"/v1/tenants/"+lt.id+"/lake", tok["token"].(string), "")
	if status != http.StatusOK || st["pending_partitions"] != float64(0) || st["raw_latest_partition"] == nil {
		t.Fatalf("lake status: %d %v", status, st)
	}
	tables := map[string]map[string]any{}
	for _, x := range st["tables"].([]any) {
		tables[x.(map[string]any)["name"].(string)] = x.(map[string]any)
	}
	if len(tables) != len(lake.Tables) || tables["tracks"]["rows"] != float64(2) || tables["tracks"]["bytes"].(float64) <= 0 ||
		tables["tracks"]["last_partition"] != st["raw_latest_partition"] || tables["tracks"]["lag_seconds"] != float64(0) ||
		tables["id_graph"]["rows"] != float64(2) || tables["screens"]["rows"] != float64(0) {
		t.Fatalf("lake status tables: %v", tables)
	}

	// Erasure of u1's profile (with a2's, merged into it).
	status, er := call(t, "DELETE", lt.base+"/v1/tenants/"+lt.id+"/profiles/"+p1, lt.admin, "")
	if status != http.StatusAccepted {
		t.Fatalf("erase: %d %v", status, er)
	}
	var done map[string]any
	for deadline := time.Now().Add(time.Minute); ; {
		_, done = call(t, "GET", lt.base+"/v1/tenants/"+lt.id+"/erasures/"+er["id"].(string), lt.admin, "")
		if done["status"] == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("erasure not completed after a minute: %v", done)
		}
		time.Sleep(20 * time.Millisecond) // polling the erasure's job
	}
	zones := map[string]map[string]any{}
	for _, z := range done["zones"].([]any) {
		zones[z.(map[string]any)["zone"].(string)] = z.(map[string]any)
	}
	if zones["clean"]["rows"] != float64(5) || zones["curated"]["rows"].(float64) < 1 {
		t.Fatalf("erasure zones: %v", done["zones"])
	}
	erasedGone := func(when string) {
		t.Helper()
		for _, tb := range lake.Tables {
			q := fmt.Sprintf(`SELECT count(*) FROM %s`, tb.Name)
			want := "0"
			if tb.Name == "daily_event_counts" {
				continue // counts, of nobody
			}
			if got := lt.query(t, q); !slices.Equal(got, []string{want}) {
				t.Errorf("%s: %s holds %v rows", when, tb.Name, got)
			}
		}
	}
	erasedGone("after the erasure")
	lt.expect(t, `SELECT count(*) FROM daily_event_counts`, "0")
	// The raw zone still holds the copy of e2 the erasure did not know
	// of; the refinery's filter keeps it out.
	if copies, _ := filepath.Glob(filepath.Join(lt.rawDir(now), "*redelivered*")); len(copies) != 1 {
		t.Fatalf("the redelivered raw object: %v", copies)
	}
	writeRawCopy(t, filepath.Dir(objects[0]), now.Add(2*time.Second),
		fmt.Sprintf(`{"type":"track","messageId":"e2","userId":"u1","event":"Signed Up (third copy)","timestamp":%q}`, ts))
	if res := lt.refine(t); len(res.Partitions) == 0 {
		t.Fatalf("the partition changed, and was not refined: %+v", res)
	}
	erasedGone("after refining again")

	// Others' events still flow.
	lt.batch(t, fmt.Sprintf(`{"type":"track","messageId":"e6","userId":"u3","event":"Signed Up","timestamp":%q}`, ts))
	lt.refine(t)
	lt.expect(t, `SELECT message_id, user_id FROM tracks`, "e6 u3")
}

// TestLakeJobs: the sweep's durable jobs refine an active tenant's closed
// partitions with nobody asking, as the status route shows.
func TestLakeJobs(t *testing.T) {
	lt := startLake(t, "1s")
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	lt.batch(t,
		fmt.Sprintf(`{"type":"identify","messageId":"j1","userId":"u1","traits":{"plan":"pro"},"timestamp":%q}`, ts),
		fmt.Sprintf(`{"type":"track","messageId":"j2","userId":"u1","event":"Signed Up","timestamp":%q}`, ts),
		fmt.Sprintf(`{"type":"track","messageId":"j3","userId":"u2","event":"Signed Up","timestamp":%q}`, ts),
	)
	deadline := time.Now().Add(time.Minute)
	for {
		status, st := call(t, "GET", lt.base+"/v1/tenants/"+lt.id+"/lake", lt.admin, "")
		if status != http.StatusOK {
			t.Fatalf("lake status: %d %v", status, st)
		}
		rows := map[string]float64{}
		for _, x := range st["tables"].([]any) {
			rows[x.(map[string]any)["name"].(string)] = x.(map[string]any)["rows"].(float64)
		}
		if rows["tracks"] == 2 && rows["identifies"] == 1 && rows["id_graph"] == 2 && rows["daily_event_counts"] == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not refined a minute after the events: %v", st)
		}
		time.Sleep(50 * time.Millisecond) // polling the jobs' work
	}
	lt.expect(t, `SELECT message_id FROM tracks ORDER BY 1`, "j2", "j3")
}
