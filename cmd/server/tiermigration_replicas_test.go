package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// replicaMigrationRegion is TestTierMigrationReplicaKill's (see the Regions in
// awsenv_test.go).
const replicaMigrationRegion = "eu-central-2"

// TestTierMigrationReplicaKill: three replicas on one PostgreSQL database
// (AWS mode, on the emulator: the local engine is single-node, so the
// embedded default runs no replicas) take a steady stream of a pooled
// tenant's events, in turn, while the tenant moves to a dedicated stack;
// the replica whose job holds the migration's lease (its River job's
// attempted_by, matched to the replica by when its River client started)
// is SIGKILLed in the migration's fence. The two others take the
// migration over once its lease lapses and finish it once: the dedicated
// stack created once, tenant.migrated delivered once, every acknowledged
// event in the dedicated raw zone once (at least once for an event whose
// replica died before answering, which is sent again) and once in the
// profiles, nothing of the tenant left in the pool, the tenant active and
// dedicated, and no migration job waiting, retrying or discarded (the dead
// replica's stays running until River rescues it, after the job's
// timeout).
func TestTierMigrationReplicaKill(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	bin := buildServer(t)
	dbURL := testdb.Postgres(t)
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)

	reps := startReplicas(t, bin, 3, func() map[string]string {
		vars := awsVars(t, moto, dbURL, keyFile)
		vars["CAIRN_MIGRATION_DRAIN"] = "2s"
		vars["CAIRN_WEBHOOK_ALLOW_HTTP"], vars["CAIRN_WEBHOOK_ALLOW_CIDRS"] = "true", "127.0.0.0/8"
		return vars
	})
	urls := []string{reps[0].p.URL, reps[1].p.URL, reps[2].p.URL}

	hook := newFleetCounter(t)
	endpoint := jstr(mustAPI(t, "POST", urls[0]+"/v1/webhooks", admin, `{"url":"`+hook.srv.URL+`/fleet","event_types":["tenant.migrated"]}`, http.StatusCreated), "id")
	id := awsOnboard(t, urls[1], admin, "pooled", replicaMigrationRegion)
	awaitTenants(t, urls[2], admin, []string{id}, "active", 3*time.Minute)
	key := jstr(mustAPI(t, "POST", urls[0]+"/v1/tenants/"+id+"/sources", admin, `{"name":"web"}`, http.StatusCreated), "write_key")
	_, pooled := homeOutputs(t, urls[0], admin, id)
	stream := startReplicaStream(urls, key)
	waitFor(t, "events before the migration", func() bool { return stream.count() >= 9 })

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	mig := jstr(mustAPI(t, "POST", urls[1]+"/v1/tenants/"+id+"/migrate", admin, `{"tier":"dedicated"}`, http.StatusAccepted), "id")

	// Kill the replica whose job holds the migration in its fence.
	var victim *jobReplica
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(2 * time.Minute); victim == nil; <-tick.C {
		var (
			state, step, holder string
			fenced              bool
		)
		err := conn.QueryRow(ctx, `SELECT m.state, m.step, m.fenced_at IS NOT NULL, coalesce(j.attempted_by[array_upper(j.attempted_by, 1)], '')
			FROM tier_migrations m LEFT JOIN river_job j ON j.id = m.lease_job AND j.state = 'running' AND m.lease_until > now()
			WHERE m.id = $1`, mig).Scan(&state, &step, &fenced, &holder)
		if err != nil {
			t.Fatal(err)
		}
		if state != "running" || time.Now().After(deadline) {
			t.Fatalf("the migration never reached its fence: %s at %s; jobs:\n%s", state, step, riverJobs(dbURL))
		}
		if step != "fence" || !fenced || holder == "" {
			continue
		}
		victim = replicaOf(t, reps, holder)
		t.Logf("killing %s (River client %s), whose job holds the migration in its fence", victim.name, holder)
	}
	victim.p.Kill(t)
	killedAt := time.Now()
	var survivors []string
	for _, r := range reps {
		if r != victim {
			survivors = append(survivors, r.p.URL)
		}
	}

	done := awaitMigration(t, survivors[0], admin, id, 3*time.Minute)
	took := time.Since(killedAt)
	if jstr(done, "state") != "succeeded" || jstr(done, "step") != "done" || jnum(done, "percent") != 100 || done["fenced"] != false {
		t.Fatalf("migration after the kill: %v", done)
	}
	tn := mustAPI(t, "GET", survivors[1]+"/v1/tenants/"+id, admin, "", http.StatusOK)
	kind, dedicated := homeOutputs(t, survivors[1], admin, id)
	if jstr(tn, "tier") != "dedicated" || jstr(tn, "status") != "active" || kind != "dedicated" || dedicated["raw_bucket"] == pooled["raw_bucket"] {
		t.Fatalf("after the migration: tenant %v, placement %s %v", tn, kind, dedicated)
	}
	// The stream goes on through the survivors, on the dedicated stack.
	before := stream.count()
	waitFor(t, "events after the migration", func() bool { return stream.count() >= before+3 })
	acked, fenced := stream.Stop(t)
	interrupted := stream.Interrupted()
	t.Logf("migration done %s after the kill (load average %s): %d events acknowledged, %d sends fenced, %d interrupted by the kill; counts %v",
		took.Round(time.Millisecond), loadAverage(), len(acked), fenced, len(interrupted), done["counts"])

	if n := len(stackHistory(t, moto, replicaMigrationRegion)[dedicatedStack(id)]); n != 1 {
		t.Errorf("the dedicated stack was created %d times, want once", n)
	}
	raw := s3MessageIDs(t, motoS3(moto, replicaMigrationRegion), dedicated["raw_bucket"], dedicated["s3_prefix"])
	for ev := range interrupted {
		// Stored by the dead replica, perhaps, and by the one that
		// acknowledged it.
		if raw[ev] >= 1 {
			raw[ev] = 1
		}
	}
	checkExactlyOnce(t, "raw zone", acked, raw)
	checkExactlyOnce(t, "profiles", acked, profileMessageIDs(t, survivors[0], admin, id))

	// Nothing of the tenant is left in the pool.
	s3c := motoS3(moto, replicaMigrationRegion)
	for _, b := range []string{"raw_bucket", "clean_bucket", "curated_bucket"} {
		if keys := listRawKeys(ctx, t, s3c, pooled[b], "tenants/"+id+"/"); len(keys) > 0 {
			t.Errorf("left in the pool's %s: %d objects, e.g. %s", pooled[b], len(keys), keys[0])
		}
	}
	if n := len(motoScan(ctx, t, motoDynamo(moto, replicaMigrationRegion), pooled["profile_table"], "TENANT#"+id+"#")); n != 0 {
		t.Errorf("left in the pool's table %s: %d items", pooled["profile_table"], n)
	}
	if _, err := motoGlue(moto, replicaMigrationRegion).GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String(pooled["glue_database"])}); awsErrorCode(err) != "EntityNotFoundException" {
		t.Errorf("the pooled Glue database %s: %v, want it gone", pooled["glue_database"], err)
	}

	// tenant.migrated, once, for this migration.
	hook.await(t, mig)
	deliveries := listItems(mustAPI(t, "GET", survivors[0]+"/v1/webhooks/"+endpoint+"/deliveries", admin, "", http.StatusOK))
	if len(deliveries) != 1 || hook.count(mig) != 1 {
		t.Errorf("tenant.migrated: %d deliveries logged %v, %d distinct received; want one", len(deliveries), deliveries, hook.count(mig))
	}

	// The jobs that worked the migration on the survivors are completed;
	// the dead replica's stays running, as River left it, until it is
	// rescued after the job's timeout, and then ends at once: the
	// migration is finished.
	for deadline := time.Now().Add(time.Minute); ; <-tick.C {
		left := migrationJobs(ctx, t, conn, reps, victim)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration jobs left unfinished: %v\n%s", left, riverJobs(dbURL))
		}
	}
}

// jobReplica is a server process whose River client started between from
// and started.
type jobReplica struct {
	name          string
	p             *serverProcess
	from, started time.Time
}

// startReplicas starts n server processes with vars(), one after another,
// so that each River client's start time (in its ID) falls in the start
// of one replica only.
func startReplicas(t *testing.T, bin string, n int, vars func() map[string]string) []*jobReplica {
	t.Helper()
	reps := make([]*jobReplica, n)
	for i := range reps {
		r := &jobReplica{name: fmt.Sprintf("replica-%d", i), from: time.Now().UTC()}
		r.p = startServerProcess(t, r.name, bin, vars())
		r.started = time.Now().UTC()
		reps[i] = r
	}
	return reps
}

// replicaOf returns the replica of the River client ID (a job's
// attempted_by).
func replicaOf(t *testing.T, reps []*jobReplica, clientID string) *jobReplica {
	t.Helper()
	at := riverClientStart(t, clientID)
	for _, r := range reps {
		if !at.Before(r.from) && !at.After(r.started) {
			return r
		}
	}
	t.Fatalf("River client %s started at %s, in none of the replicas' starts", clientID, at)
	return nil
}

// riverClientPattern is the time a River client started, at the end of
// its default ID (host_2006_01_02T15_04_05_000000, UTC).
var riverClientPattern = regexp.MustCompile(`(\d{4}_\d{2}_\d{2}T\d{2}_\d{2}_\d{2})_(\d{6})$`)

// riverClientStart returns when the River client of the ID started.
func riverClientStart(t *testing.T, clientID string) time.Time {
	t.Helper()
	m := riverClientPattern.FindStringSubmatch(clientID)
	if m == nil {
		t.Fatalf("River client ID %q names no start time", clientID)
	}
	at, err := time.Parse("2006_01_02T15_04_05.000000", m[1]+"."+m[2])
	if err != nil {
		t.Fatalf("River client ID %q: %v", clientID, err)
	}
	return at
}

// migrationJobs describes the tier migration jobs that are not completed,
// a discarded one included, leaving out the one running on the dead
// replica.
func migrationJobs(ctx context.Context, t *testing.T, conn *pgx.Conn, reps []*jobReplica, dead *jobReplica) []string {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT id, state, coalesce(attempted_by[array_upper(attempted_by, 1)], ''), args::text
		FROM river_job WHERE kind = 'tier_migration' AND state <> 'completed' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for rows.Next() {
		var (
			id              int64
			state, by, args string
		)
		if err := rows.Scan(&id, &state, &by, &args); err != nil {
			t.Fatal(err)
		}
		if state == "running" && by != "" && replicaOf(t, reps, by) == dead {
			continue
		}
		left = append(left, fmt.Sprintf("job %d %s by %s %s", id, state, by, args))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return left
}

// fleetCounter receives fleet webhooks and counts the distinct events
// (webhook-id) of each migration.
type fleetCounter struct {
	srv *httptest.Server

	mu  sync.Mutex
	ids map[string]map[string]bool // migration ID → webhook-ids
}

func newFleetCounter(t *testing.T) *fleetCounter {
	c := &fleetCounter{ids: map[string]map[string]bool{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string `json:"type"`
			Data struct {
				MigrationID string `json:"migration_id"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &ev) == nil && ev.Type == "tenant.migrated" {
			c.mu.Lock()
			if c.ids[ev.Data.MigrationID] == nil {
				c.ids[ev.Data.MigrationID] = map[string]bool{}
			}
			c.ids[ev.Data.MigrationID][r.Header.Get("webhook-id")] = true
			c.mu.Unlock()
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *fleetCounter) count(migration string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids[migration])
}

// await waits for the migration's tenant.migrated.
func (c *fleetCounter) await(t *testing.T, migration string) {
	t.Helper()
	waitFor(t, "tenant.migrated of "+migration, func() bool { return c.count(migration) > 0 })
}
