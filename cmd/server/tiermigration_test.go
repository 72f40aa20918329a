package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/testdb"
	"github.com/cairn-cdp/cairn/templates"
)

// migrationVars is the embedded default (local engine and zones, embedded
// profile store) on the PostgreSQL database dbURL, with fast polling and
// a one-second drain.
func migrationVars(dir, dbURL string) map[string]string {
	return map[string]string{
		"CAIRN_DATA_DIR": dir, "CAIRN_DATABASE_URL": dbURL, "CAIRN_ADDR": "127.0.0.1:0",
		"CAIRN_STACK_POLL_INTERVAL": "50ms", "CAIRN_MIGRATION_DRAIN": "1s", "CAIRN_LAKE_INTERVAL": "0",
		"CAIRN_LOG_LEVEL": "warn", "CAIRN_RATE_LIMITS": "false", "CAIRN_KEY_ENCRYPTION_KEY": testKEK,
	}
}

// eventStream sends identify events for a tenant through its write key,
// one a request, from a goroutine, until stopped: every event is sent
// again (same messageId) after a 503 and its Retry-After, as Segment's
// libraries do, so every event it sent is acknowledged once it stops.
// Given several replicas, it sends to each in turn, as a load balancer
// does; a replica that cannot be reached is left out from then on and the
// event is sent again to the next one (it is then interrupted: the
// replica may have stored it before it died, so it may be in the raw zone
// twice).
type eventStream struct {
	bases []string
	key   string
	stop  chan struct{}
	done  chan struct{}

	mu          sync.Mutex
	acked       []string
	interrupted map[string]bool
	fenced      int
	problems    []string
}

func startEventStream(base, key string) *eventStream { return startReplicaStream([]string{base}, key) }

// startReplicaStream starts a stream over the replicas bases.
func startReplicaStream(bases []string, key string) *eventStream {
	s := &eventStream{bases: slices.Clone(bases), key: key, stop: make(chan struct{}), done: make(chan struct{}), interrupted: map[string]bool{}}
	go s.run()
	return s
}

func (s *eventStream) run() {
	defer close(s.done)
	client := &http.Client{Timeout: 30 * time.Second}
	next := 0
	for i := 0; ; i++ {
		select {
		case <-s.stop:
			return
		default:
		}
		id := fmt.Sprintf("mig-%05d", i)
		body := fmt.Sprintf(`{"type":"identify","messageId":%q,"userId":"u-%d","traits":{"n":%d}}`, id, i%5, i)
		for {
			next = (next + 1) % len(s.bases)
			req, _ := http.NewRequest("POST", s.bases[next]+"/v1/identify", strings.NewReader(body))
			req.SetBasicAuth(s.key, "")
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil && len(s.bases) > 1 {
				// The replica is gone: the next one takes the event.
				s.mu.Lock()
				s.interrupted[id] = true
				s.mu.Unlock()
				s.bases = slices.Delete(s.bases, next, next+1)
				continue
			}
			if err != nil {
				s.problem("send %s: %v", id, err)
				return
			}
			out, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				s.mu.Lock()
				s.acked = append(s.acked, id)
				s.mu.Unlock()
				break
			}
			if res.StatusCode != http.StatusServiceUnavailable {
				s.problem("send %s: %d %s", id, res.StatusCode, out)
				return
			}
			retry, err := strconv.Atoi(res.Header.Get("Retry-After"))
			if err != nil || retry < 1 {
				s.problem("503 without a Retry-After: %q %s", res.Header.Get("Retry-After"), out)
				return
			}
			s.mu.Lock()
			s.fenced++
			s.mu.Unlock()
			// The client's own back-off, as Retry-After asks.
			select {
			case <-time.After(time.Duration(retry) * time.Second):
			case <-s.stop:
				// Not acknowledged; sent again below until it is.
			}
		}
	}
}

func (s *eventStream) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

// Stop stops the stream and returns the events acknowledged and how many
// sends were fenced.
func (s *eventStream) Stop(t *testing.T) ([]string, int) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.problems {
		t.Error(p)
	}
	return s.acked, s.fenced
}

// Interrupted returns the events whose send reached a replica that died
// before it answered (each acknowledged later by another one).
func (s *eventStream) Interrupted() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.interrupted)
}

// count returns how many events were acknowledged so far.
func (s *eventStream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// awaitMigration polls the tenant's migration until it is no longer
// running and returns it.
func awaitMigration(t *testing.T, base, admin, tenant string, timeout time.Duration) map[string]any {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(timeout); ; <-tick.C {
		status, m, err := apiDo("GET", base+"/v1/tenants/"+tenant+"/migration", admin, "")
		if err == nil && status == http.StatusOK && jstr(m, "state") != "running" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the migration is %d %v (%v)", timeout, status, m, err)
		}
	}
}

// moveTier moves the tenant to tier and waits for the migration to
// succeed, checking on the way that the tenant stays active.
func moveTier(t *testing.T, base, admin, tenant, tier string) map[string]any {
	t.Helper()
	startMove(t, base, admin, tenant, tier)
	return awaitMoved(t, base, admin, tenant, tier)
}

// startMove starts moving the tenant to tier.
func startMove(t *testing.T, base, admin, tenant, tier string) {
	t.Helper()
	m := mustAPI(t, "POST", base+"/v1/tenants/"+tenant+"/migrate", admin, `{"tier":"`+tier+`"}`, http.StatusAccepted)
	if jstr(m, "state") != "running" || jstr(m, "to_tier") != tier || jstr(m, "step") != "provision" {
		t.Fatalf("started migration: %v", m)
	}
}

// awaitMoved waits for the tenant's migration to tier to succeed and
// checks that the tenant is active on it.
func awaitMoved(t *testing.T, base, admin, tenant, tier string) map[string]any {
	t.Helper()
	done := awaitMigration(t, base, admin, tenant, 2*time.Minute)
	if jstr(done, "state") != "succeeded" || jstr(done, "step") != "done" || jnum(done, "percent") != 100 || done["fenced"] != false {
		t.Fatalf("migration to %s: %v", tier, done)
	}
	tn := mustAPI(t, "GET", base+"/v1/tenants/"+tenant, admin, "", http.StatusOK)
	if jstr(tn, "tier") != tier || jstr(tn, "status") != "active" {
		t.Fatalf("tenant after the migration to %s: tier %s, status %s", tier, jstr(tn, "tier"), jstr(tn, "status"))
	}
	return done
}

// homeOutputs are the outputs of the tenant's placement in eu-west-1.
func homeOutputs(t *testing.T, base, admin, tenant string) (string, map[string]string) {
	t.Helper()
	stacks := listItems(mustAPI(t, "GET", base+"/v1/tenants/"+tenant+"/stacks", admin, "", http.StatusOK))
	if len(stacks) != 1 || jstr(stacks[0], "status") != "ready" {
		t.Fatalf("stacks: %v", stacks)
	}
	return jstr(stacks[0], "kind"), outputsOf(stacks[0])
}

// rawMessageIDs reads every raw zone object under the placement's raw
// bucket and prefix in the data directory and counts the messageIds.
func rawMessageIDs(t *testing.T, dir string, out map[string]string) map[string]int {
	t.Helper()
	root := filepath.Join(dir, "zones", "eu-west-1", "buckets", out["raw_bucket"], filepath.FromSlash(out["s3_prefix"]), "events")
	ids := map[string]int{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev struct {
				MessageID string `json:"messageId"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			ids[ev.MessageID]++
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// profileMessageIDs lists the events of the profiles of users u-0..u-4
// and counts the messageIds.
func profileMessageIDs(t *testing.T, base, admin, tenant string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for u := range 5 {
		p := mustAPI(t, "GET", base+"/v1/tenants/"+tenant+"/profiles?identifier="+url.QueryEscape(fmt.Sprintf("user_id:u-%d", u)), admin, "", http.StatusOK)
		cursor := ""
		for {
			q := url.Values{"limit": {"100"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			list := mustAPI(t, "GET", base+"/v1/tenants/"+tenant+"/profiles/"+jstr(p, "id")+"/events?"+q.Encode(), admin, "", http.StatusOK)
			for _, ev := range listItems(list) {
				ids[jstr(ev, "message_id")]++
			}
			if cursor = jstr(list, "next_cursor"); cursor == "" {
				break
			}
		}
	}
	return ids
}

// checkExactlyOnce fails unless got holds each acknowledged ID exactly
// once and nothing else.
func checkExactlyOnce(t *testing.T, what string, acked []string, got map[string]int) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range acked {
		want[id] = true
		if n := got[id]; n != 1 {
			t.Errorf("%s: acknowledged event %s is there %d times, want once", what, id, n)
		}
	}
	for id := range got {
		if !want[id] {
			t.Errorf("%s: event %s was never acknowledged", what, id)
		}
	}
}

// exists reports whether the path exists.
func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// awaitGrant polls the grant until it is active on database.
func awaitGrant(t *testing.T, base, admin, tenant, id, database string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); ; <-tick.C {
		g := mustAPI(t, "GET", base+"/v1/tenants/"+tenant+"/grants/"+id, admin, "", http.StatusOK)
		res, _ := g["resource"].(map[string]any)
		if jstr(g, "status") == "active" && jstr(res, "database") == database {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grant %s is %v, want active on %s", id, g, database)
		}
	}
}

// ledgerDatabases returns the databases the local Lake Formation ledger
// holds permissions on for principal.
func ledgerDatabases(t *testing.T, dir, principal string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "zones", "eu-west-1", "lakeformation.json"))
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Permissions []struct {
			Principal string `json:"Principal"`
			Resource  struct {
				Database string `json:"Database"`
			} `json:"Resource"`
		} `json:"permissions"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range l.Permissions {
		if p.Principal == principal {
			out[p.Resource.Database] = true
		}
	}
	return out
}

// TestTierMigration moves a pooled tenant to a dedicated stack and back to
// the pool on the embedded default (local engine and zones, PostgreSQL),
// while a goroutine sends it a steady stream of events: every
// acknowledged event is readable afterwards exactly once, in its profile
// and in the raw zone; its grant is active on the target's catalog each
// time; nothing of it is left where it moved from; a pooled neighbour is
// untouched; and the tenant is active throughout.
func TestTierMigration(t *testing.T) {
	dbURL := testdb.Postgres(t)
	dir := t.TempDir()
	vars := migrationVars(dir, dbURL)
	base, _ := startServer(t, t.Context(), vars)
	admin, err := runToken(t, "--admin", "--data-dir", dir, "--database-url", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	id := jstr(mustAPI(t, "POST", base+"/v1/tenants", admin, `{"name":"Mover","slug":"mover","tier":"pooled","home_region":"eu-west-1"}`, http.StatusAccepted), "id")
	neighbour := jstr(mustAPI(t, "POST", base+"/v1/tenants", admin, `{"name":"Stayer","slug":"stayer","tier":"pooled","home_region":"eu-west-1"}`, http.StatusAccepted), "id")
	awaitTenants(t, base, admin, []string{id, neighbour}, "active", time.Minute)
	key := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/sources", admin, `{"name":"web"}`, http.StatusCreated), "write_key")
	nkey := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+neighbour+"/sources", admin, `{"name":"web"}`, http.StatusCreated), "write_key")

	_, pooled := homeOutputs(t, base, admin, id)
	_, nout := homeOutputs(t, base, admin, neighbour)
	// A pooled tenant has a role of its own, the pool's beside it.
	roleFile := filepath.Join(dir, "zones", "iam", "roles", provisioner.TenantRoleName(id, "eu-west-1")+".json")
	if pooled["data_access_role_arn"] == pooled["pool_role_arn"] || !strings.HasSuffix(pooled["data_access_role_arn"], "/"+provisioner.TenantRoleName(id, "eu-west-1")) || !exists(t, roleFile) {
		t.Fatalf("pooled tenant's roles: %s (own), %s (pool's)", pooled["data_access_role_arn"], pooled["pool_role_arn"])
	}
	const principal = "arn:aws:iam::123456789012:role/mover"
	mustAPI(t, "POST", base+"/v1/tenants/"+id+"/principals", admin, `{"principal":"`+principal+`"}`, http.StatusCreated)
	grant := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/grants", admin,
		`{"principal":"`+principal+`","resource":{"region":"eu-west-1","database":"`+pooled["glue_database"]+`"},"permissions":["DESCRIBE"]}`, http.StatusAccepted), "id")
	awaitGrant(t, base, admin, id, grant, pooled["glue_database"])

	// The neighbour's events, sent before, stay where they are.
	nstream := startEventStream(base, nkey)
	stream := startEventStream(base, key)
	waitFor(t, "events before the migration", func() bool { return stream.count() >= 20 && nstream.count() >= 5 })
	nacked, _ := nstream.Stop(t)

	first := moveTier(t, base, admin, id, "dedicated")
	kind, dedicated := homeOutputs(t, base, admin, id)
	if kind != "dedicated" || dedicated["raw_bucket"] != provisioner.DedicatedStackName(id)+"-raw" || dedicated["s3_prefix"] != "" {
		t.Fatalf("placement after the move to dedicated: %s %v", kind, dedicated)
	}
	counts, _ := first["counts"].(map[string]any)
	if jnum(counts, "objects_copied") == 0 || jnum(counts, "grants_rehomed") != 1 {
		t.Errorf("counts of the move to dedicated: %v", counts)
	}
	awaitGrant(t, base, admin, id, grant, dedicated["glue_database"])
	if dbs := ledgerDatabases(t, dir, principal); !dbs[dedicated["glue_database"]] || dbs[pooled["glue_database"]] {
		t.Errorf("the ledger's databases for the grant after the move to dedicated: %v", dbs)
	}
	// Nothing of the tenant is left in the pool.
	zones := filepath.Join(dir, "zones", "eu-west-1")
	for _, b := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
		if p := filepath.Join(zones, "buckets", pooled[b], "tenants", id); exists(t, p) {
			t.Errorf("left in the pool after the move to dedicated: %s", p)
		}
	}
	if p := filepath.Join(zones, "catalog", pooled["glue_database"]+".json"); exists(t, p) {
		t.Errorf("the pooled catalog database is left: %s", p)
	}
	if exists(t, roleFile) {
		t.Errorf("the pooled tenant's role is left: %s", roleFile)
	}
	before := stream.count()
	waitFor(t, "events on the dedicated stack", func() bool { return stream.count() >= before+20 })

	// The pool's data-access role acts for every pooled tenant: a pooled
	// tenant cannot register it, and a grant to it made while dedicated
	// fails on the way back into the pool instead of following.
	poolRole := pooled["pool_role_arn"]
	mustAPI(t, "POST", base+"/v1/tenants/"+neighbour+"/principals", admin, `{"principal":"`+poolRole+`"}`, http.StatusBadRequest)
	mustAPI(t, "POST", base+"/v1/tenants/"+id+"/principals", admin, `{"principal":"`+poolRole+`"}`, http.StatusCreated)
	toPoolRole := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/grants", admin,
		`{"principal":"`+poolRole+`","resource":{"region":"eu-west-1","database":"`+dedicated["glue_database"]+`"},"permissions":["DESCRIBE"]}`, http.StatusAccepted), "id")
	awaitGrant(t, base, admin, id, toPoolRole, dedicated["glue_database"])

	second := moveTier(t, base, admin, id, "pooled")
	if counts, _ := second["counts"].(map[string]any); jnum(counts, "grants_rehomed") != 2 {
		t.Errorf("counts of the move back: %v", counts)
	}
	if g := mustAPI(t, "GET", base+"/v1/tenants/"+id+"/grants/"+toPoolRole, admin, "", http.StatusOK); g["status"] != "failed" || !strings.Contains(jstr(g, "reason"), "pool's data-access role") {
		t.Errorf("the grant to the pool's role after the move into the pool: %v", g)
	}
	if dbs := ledgerDatabases(t, dir, poolRole); len(dbs) != 0 {
		t.Errorf("the pool's role holds permissions on %v", dbs)
	}
	acked, fenced := stream.Stop(t)
	t.Logf("%d events acknowledged, %d sends fenced (503); moves: %v / %v", len(acked), fenced, first["counts"], second["counts"])
	kind, back := homeOutputs(t, base, admin, id)
	if kind != "pooled" || back["raw_bucket"] != pooled["raw_bucket"] || back["s3_prefix"] != "tenants/"+id+"/" ||
		back["data_access_role_arn"] != pooled["data_access_role_arn"] || !exists(t, roleFile) {
		t.Fatalf("placement after the move back: %s %v", kind, back)
	}
	awaitGrant(t, base, admin, id, grant, pooled["glue_database"])
	if dbs := ledgerDatabases(t, dir, principal); !dbs[pooled["glue_database"]] || dbs[dedicated["glue_database"]] {
		t.Errorf("the ledger's databases for the grant after the move back: %v", dbs)
	}
	// Nothing of the dedicated stack is left.
	if p := filepath.Join(zones, "stacks", provisioner.DedicatedStackName(id)+".json"); exists(t, p) {
		t.Errorf("the dedicated stack is left: %s", p)
	}
	for _, b := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
		if p := filepath.Join(zones, "buckets", dedicated[b]); exists(t, p) {
			t.Errorf("the dedicated stack's bucket is left: %s", p)
		}
	}
	if p := filepath.Join(zones, "catalog", templates.DedicatedGlueDatabase(id)+".json"); exists(t, p) {
		t.Errorf("the dedicated catalog database is left: %s", p)
	}

	checkExactlyOnce(t, "raw zone", acked, rawMessageIDs(t, dir, back))
	checkExactlyOnce(t, "profiles", acked, profileMessageIDs(t, base, admin, id))
	checkExactlyOnce(t, "the neighbour's raw zone", nacked, rawMessageIDs(t, dir, nout))
}

// waitFor polls cond until it holds, failing after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(time.Minute); !cond(); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestTierMigrationRefused: a tenant already on the tier, an unknown tier,
// a body with more, a tenant that is not there, a tenant's own token and a
// second migration while one runs are refused with a problem and change
// nothing; while the running migration fences the tenant's writes,
// ingestion answers 503 with Retry-After and the migration shows fenced.
func TestTierMigrationRefused(t *testing.T) {
	dbURL := testdb.Postgres(t)
	dir := t.TempDir()
	vars := migrationVars(dir, dbURL)
	vars["CAIRN_MIGRATION_DRAIN"] = "10m" // the migration holds its fence for the test
	base, _ := startServer(t, t.Context(), vars)
	admin, err := runToken(t, "--admin", "--data-dir", dir, "--database-url", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	id := jstr(mustAPI(t, "POST", base+"/v1/tenants", admin, `{"name":"Refused","slug":"refused","tier":"pooled","home_region":"eu-west-1"}`, http.StatusAccepted), "id")
	awaitTenants(t, base, admin, []string{id}, "active", time.Minute)
	key := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/sources", admin, `{"name":"web"}`, http.StatusCreated), "write_key")
	tok := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/tokens", admin, `{"scopes":["events:write","profiles:read"]}`, http.StatusCreated), "token")
	path := base + "/v1/tenants/" + id + "/migrate"

	refused := func(token, url, body string, status int, kind string) {
		t.Helper()
		got, out, err := apiDo("POST", url, token, body)
		if err != nil {
			t.Fatal(err)
		}
		if got != status || (kind != "" && jstr(out, "type") != "urn:cairn:problem:"+kind) {
			t.Errorf("POST %s %s: %d %v, want %d %s", url, body, got, out, status, kind)
		}
	}
	mustAPI(t, "GET", base+"/v1/tenants/"+id+"/migration", admin, "", http.StatusNotFound)
	refused(admin, path, `{"tier":"pooled"}`, http.StatusConflict, "same-tier")
	refused(admin, path, `{"tier":"silo"}`, http.StatusBadRequest, "invalid-request")
	refused(admin, path, `{"tier":"dedicated","region":"us-east-1"}`, http.StatusBadRequest, "invalid-request")
	refused(admin, path, `{}`, http.StatusBadRequest, "invalid-request")
	refused(admin, base+"/v1/tenants/ten_aaaaaaaaaaaaaaaaaaaaaaaaaa/migrate", `{"tier":"dedicated"}`, http.StatusNotFound, "not-found")
	refused(tok, path, `{"tier":"dedicated"}`, http.StatusForbidden, "")
	mustAPI(t, "GET", base+"/v1/tenants/"+id+"/migration", admin, "", http.StatusNotFound)
	if tn := mustAPI(t, "GET", base+"/v1/tenants/"+id, admin, "", http.StatusOK); jstr(tn, "tier") != "pooled" {
		t.Fatalf("a refused migration changed the tier: %v", tn)
	}

	m := mustAPI(t, "POST", path, admin, `{"tier":"dedicated"}`, http.StatusAccepted)
	refused(admin, path, `{"tier":"dedicated"}`, http.StatusConflict, "migration-running")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(time.Minute); ; <-tick.C {
		m = mustAPI(t, "GET", base+"/v1/tenants/"+id+"/migration", admin, "", http.StatusOK)
		if m["fenced"] == true {
			break
		}
		if time.Now().After(deadline) || jstr(m, "state") != "running" {
			t.Fatalf("the migration never fenced the tenant: %v", m)
		}
	}
	if jstr(m, "step") != "fence" || jnum(m, "percent") <= 0 {
		t.Errorf("fenced migration: %v", m)
	}
	req, _ := http.NewRequest("POST", base+"/v1/track", strings.NewReader(`{"userId":"u1","event":"Fenced"}`))
	req.SetBasicAuth(key, "")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "urn:cairn:problem:tenant-migrating") {
		t.Errorf("an event while fenced: %d Retry-After %q %s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if tn := mustAPI(t, "GET", base+"/v1/tenants/"+id, admin, "", http.StatusOK); jstr(tn, "status") != "active" || jstr(tn, "tier") != "pooled" {
		t.Errorf("tenant while fenced: %v", tn)
	}
}

// TestTierMigrationSurvivesSIGKILL: the server process is killed while a
// tenant's migration to a dedicated stack holds its write fence; started
// again on the same data directory and database, it takes the migration
// over once the dead job's lease lapses and finishes it once: one stack
// created, every event acknowledged before the kill in the new raw zone
// exactly once, nothing left in the pool.
func TestTierMigrationSurvivesSIGKILL(t *testing.T) {
	dbURL := testdb.Postgres(t)
	bin := buildServer(t)
	dir := t.TempDir()
	vars := migrationVars(dir, dbURL)
	vars["CAIRN_MIGRATION_DRAIN"] = "5s" // long enough to kill it in its fence
	p := startServerProcess(t, "first", bin, vars)
	admin, err := runToken(t, "--admin", "--data-dir", dir, "--database-url", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	id := jstr(mustAPI(t, "POST", p.URL+"/v1/tenants", admin, `{"name":"Killed","slug":"killed","tier":"pooled","home_region":"eu-west-1"}`, http.StatusAccepted), "id")
	awaitTenants(t, p.URL, admin, []string{id}, "active", time.Minute)
	key := jstr(mustAPI(t, "POST", p.URL+"/v1/tenants/"+id+"/sources", admin, `{"name":"web"}`, http.StatusCreated), "write_key")
	_, pooled := homeOutputs(t, p.URL, admin, id)
	stream := startEventStream(p.URL, key)
	waitFor(t, "events before the migration", func() bool { return stream.count() >= 20 })
	acked, _ := stream.Stop(t)

	mustAPI(t, "POST", p.URL+"/v1/tenants/"+id+"/migrate", admin, `{"tier":"dedicated"}`, http.StatusAccepted)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(time.Minute); ; <-tick.C {
		m := mustAPI(t, "GET", p.URL+"/v1/tenants/"+id+"/migration", admin, "", http.StatusOK)
		if m["fenced"] == true {
			t.Logf("killed at step %s", jstr(m, "step"))
			break
		}
		if time.Now().After(deadline) || jstr(m, "state") != "running" {
			t.Fatalf("the migration never reached its fence: %v", m)
		}
	}
	p.Kill(t)

	p = startServerProcess(t, "restarted", bin, vars)
	done := awaitMigration(t, p.URL, admin, id, 2*time.Minute)
	if jstr(done, "state") != "succeeded" {
		t.Fatalf("migration after the restart: %v", done)
	}
	kind, dedicated := homeOutputs(t, p.URL, admin, id)
	if tn := mustAPI(t, "GET", p.URL+"/v1/tenants/"+id, admin, "", http.StatusOK); kind != "dedicated" || jstr(tn, "tier") != "dedicated" || jstr(tn, "status") != "active" {
		t.Fatalf("after the restart: placement %s, tenant %v", kind, tn)
	}
	checkExactlyOnce(t, "raw zone", acked, rawMessageIDs(t, dir, dedicated))
	zones := filepath.Join(dir, "zones", "eu-west-1")
	if p := filepath.Join(zones, "buckets", pooled["raw_bucket"], "tenants", id); exists(t, p) {
		t.Errorf("left in the pool: %s", p)
	}
	b, err := os.ReadFile(filepath.Join(zones, "stacks", provisioner.DedicatedStackName(id)+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Events []struct {
			LogicalID string `json:"LogicalID"`
			Status    string `json:"Status"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	created := 0
	for _, ev := range st.Events {
		if ev.LogicalID == provisioner.DedicatedStackName(id) && ev.Status == provisioner.StackCreateComplete {
			created++
		}
	}
	if created != 1 {
		t.Errorf("the dedicated stack was created %d times, want once", created)
	}
	// The fence is gone with the migration: the tenant takes events again.
	after := startEventStream(p.URL, key)
	waitFor(t, "events after the restart", func() bool { return after.count() >= 5 })
	if more, fenced := after.Stop(t); fenced != 0 {
		t.Errorf("%d of %d events after the migration were fenced", fenced, len(more))
	}
}

// TestTierMigrationFailureLeavesTenant: a target stack that fails (its raw
// bucket cannot be made) fails the migration with the reason; the tenant
// stays pooled and active, its events keep landing in the pool and stay
// readable, and the fleet hears of it. Once the cause is gone, the tenant
// moves.
func TestTierMigrationFailureLeavesTenant(t *testing.T) {
	dbURL := testdb.Postgres(t)
	dir := t.TempDir()
	base, _ := startServer(t, t.Context(), migrationVars(dir, dbURL))
	admin, err := runToken(t, "--admin", "--data-dir", dir, "--database-url", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	id := jstr(mustAPI(t, "POST", base+"/v1/tenants", admin, `{"name":"Stuck","slug":"stuck","tier":"pooled","home_region":"eu-west-1"}`, http.StatusAccepted), "id")
	awaitTenants(t, base, admin, []string{id}, "active", time.Minute)
	key := jstr(mustAPI(t, "POST", base+"/v1/tenants/"+id+"/sources", admin, `{"name":"web"}`, http.StatusCreated), "write_key")
	_, pooled := homeOutputs(t, base, admin, id)
	stream := startEventStream(base, key)
	waitFor(t, "events before the migration", func() bool { return stream.count() >= 10 })

	// A file where the target's raw bucket goes: the local engine's create
	// of the stack fails and rolls back, as CloudFormation's would.
	buckets := filepath.Join(dir, "zones", "eu-west-1", "buckets")
	if err := os.MkdirAll(buckets, 0o700); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(buckets, provisioner.DedicatedStackName(id)+"-raw")
	if err := os.WriteFile(blocker, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustAPI(t, "POST", base+"/v1/tenants/"+id+"/migrate", admin, `{"tier":"dedicated"}`, http.StatusAccepted)
	failed := awaitMigration(t, base, admin, id, time.Minute)
	if jstr(failed, "state") != "failed" || jstr(failed, "step") != "provision" || !strings.Contains(jstr(failed, "error"), "RawBucket") || failed["fenced"] != false {
		t.Fatalf("migration onto a failing stack: %v", failed)
	}
	kind, out := homeOutputs(t, base, admin, id)
	if tn := mustAPI(t, "GET", base+"/v1/tenants/"+id, admin, "", http.StatusOK); kind != "pooled" || jstr(tn, "tier") != "pooled" || jstr(tn, "status") != "active" {
		t.Fatalf("after the failed migration: placement %s, tenant %v", kind, tn)
	}
	before := stream.count()
	waitFor(t, "events after the failure", func() bool { return stream.count() >= before+10 })
	acked, fenced := stream.Stop(t)
	if fenced != 0 {
		t.Errorf("%d sends fenced by a migration that failed in provisioning", fenced)
	}
	checkExactlyOnce(t, "raw zone", acked, rawMessageIDs(t, dir, out))
	if out["raw_bucket"] != pooled["raw_bucket"] {
		t.Errorf("raw bucket %s, want the pool's %s", out["raw_bucket"], pooled["raw_bucket"])
	}
	// The failed stack was taken away; what was in its way is the
	// operator's to remove, and then the tenant moves.
	if p := filepath.Join(dir, "zones", "eu-west-1", "stacks", provisioner.DedicatedStackName(id)+".json"); exists(t, p) {
		t.Errorf("the failed target stack is left: %s", p)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	moveTier(t, base, admin, id, "dedicated")
}
