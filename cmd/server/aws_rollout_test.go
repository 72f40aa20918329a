package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/enginetest"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/testdb"
	"github.com/cairn-cdp/cairn/templates"
)

// rolloutRegion is TestAWSRolloutReplicaKill's (see the Regions in awsenv_test.go).
const rolloutRegion = "eu-south-2"

// TestAWSRolloutReplicaKill rolls a new version of the dedicated template
// (the replicas' --rollout-templates) out to eight tenants' stacks on the
// AWS emulator, in a canary and two waves, from the first of three
// replicas on one PostgreSQL database, and SIGKILLs it mid-rollout, with
// stacks updated and others not started; the two others, started then,
// finish it. Every stack's change set is executed once (the ExecuteChangeSet
// requests that reached the emulator, counted per stack across the
// replicas' proxies), every stack is at the new version, and no rollout
// job is left unfinished.
func TestAWSRolloutReplicaKill(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	const tenants = 8
	bin := buildServer(t)
	dbURL := testdb.Postgres(t)
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	next := enginetest.WithMarker(templates.Dedicated(), "Rollout")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, templates.DedicatedFile), []byte(next.Body), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := func(endpoint string) map[string]string {
		v := awsVars(t, endpoint, dbURL, keyFile)
		v["CAIRN_ROLLOUT_TEMPLATES"] = dir
		return v
	}
	victimAWS, survivorAWS := newFaultEndpoint(t, moto), newFaultEndpoint(t, moto)
	victim := startServerProcess(t, "victim", bin, vars(victimAWS.URL))

	ids := make([]string, tenants)
	errs := concurrently(tenants, 4, func(i int) error {
		status, tn, err := apiDo("POST", victim.URL+"/v1/tenants", admin, awsOnboardBody("dedicated", rolloutRegion))
		if err != nil {
			return err
		}
		if status != http.StatusAccepted {
			return fmt.Errorf("onboard %d: %d %v", i, status, tn)
		}
		ids[i] = jstr(tn, "id")
		return nil
	})
	if len(errs) > 0 {
		t.Fatalf("onboarding: %v", errs[0])
	}
	awaitTenants(t, victim.URL, admin, ids, "active", 3*time.Minute)

	ro := mustAPI(t, "POST", victim.URL+"/v1/rollouts", admin, fmt.Sprintf(
		`{"selector":{"regions":[%q],"tenant_ids":["%s"]},"waves":[50,100],"max_in_flight":2,"template_versions":{"dedicated":%q}}`,
		rolloutRegion, strings.Join(ids, `","`), next.Version), http.StatusCreated)
	id := jstr(ro, "id")
	if jnum(ro, "wave_count") != 3 {
		t.Fatalf("rollout: %v", ro)
	}
	// Kill the victim mid-rollout: some stacks updated, others not started.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := mustAPI(t, "GET", victim.URL+"/v1/rollouts/"+id, admin, "", http.StatusOK)
		counts, _ := got["counts"].(map[string]any)
		if n, _ := counts["succeeded"].(float64); n >= 2 {
			if pending, _ := counts["pending"].(float64); pending == 0 {
				t.Fatalf("the rollout ran to its end before the kill: %v", counts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes the rollout is %v; jobs:\n%s", got["counts"], riverJobs(dbURL))
		}
		<-tick.C
	}
	victim.Kill(t)
	killedAt := time.Now()
	survivors := []*serverProcess{
		startServerProcess(t, "survivor-1", bin, vars(survivorAWS.URL)),
		startServerProcess(t, "survivor-2", bin, vars(survivorAWS.URL)),
	}
	// The sweep takes over the dead replica's rollout once its job's
	// lease lapses (rollouts.LeaseTTL); a snoozed job runs again at once.
	deadline = time.Now().Add(5 * time.Minute)
	var done map[string]any
	for {
		done = mustAPI(t, "GET", survivors[0].URL+"/v1/rollouts/"+id, admin, "", http.StatusOK)
		if jstr(done, "state") == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 minutes after the kill the rollout is %s %v; jobs:\n%s", jstr(done, "state"), done["counts"], riverJobs(dbURL))
		}
		<-tick.C
	}
	t.Logf("rollout of %d stacks completed %s after the replica was killed; load average %s",
		tenants, time.Since(killedAt).Round(time.Millisecond), loadAverage())
	if n := jnum(done["counts"].(map[string]any), "succeeded"); n != tenants {
		t.Fatalf("completed rollout: %v", done["counts"])
	}
	live := liveStacks(t, moto, rolloutRegion)
	for _, tid := range ids {
		name := provisioner.DedicatedStackName(tid)
		if n := victimAWS.Ledger.Executes(rolloutRegion, name) + survivorAWS.Ledger.Executes(rolloutRegion, name); n != 1 {
			t.Errorf("%s: %d ExecuteChangeSet requests, want 1", name, n)
		}
		if st := live[name]; len(st) != 1 || st[0].StackStatus != "UPDATE_COMPLETE" {
			t.Errorf("%s in moto: %v", name, st)
		}
		if v := jstr(tenantStacks(t, survivors[1].URL, admin, tid)[rolloutRegion], "template_version"); v != next.Version {
			t.Errorf("%s at version %s, want %s", tid, v, next.Version)
		}
	}
	// The job that completed the rollout ends right after it, and the dead
	// replica's, once River rescues it (store.RescueAfter and the
	// rescuer's 30 s round), finds the rollout finished and ends too: none
	// is left waiting or running.
	for deadline = killedAt.Add(store.RescueAfter + 90*time.Second); strings.Contains(riverJobs(dbURL), "rollout_step"); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("rollout jobs left unfinished:\n%s", riverJobs(dbURL))
		}
	}
}
