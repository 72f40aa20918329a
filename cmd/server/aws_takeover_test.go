package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// takeoverRegions are the Regions of TestAWSReplicaTakeover (see
// the Regions in awsenv_test.go).
var takeoverRegions = []string{"sa-east-1", "ap-south-1"}

// TestAWSReplicaTakeover runs three replicas of the server binary in AWS
// mode on one PostgreSQL database, onboards tenants through all three, and
// SIGKILLs one of them mid-onboarding while it holds stack creates (some
// dedicated tenants' and, as a rule, a pool's): its CreateStack calls go
// through a proxy of their own that holds them, so that it dies inside
// them, renewing the leases of its claims until the kill. The other two
// must take every claim over once its lease lapses (15 s), not after a
// fixed grace: every tenant becomes active, each stack is created once.
// Then one customer's events go alternately to the two survivors, the third
// replica is started again, and the customer's unified profile is read
// through it. Last, a survivor is SIGKILLed mid-ingestion, while a client
// streams events to it, and every event it acknowledged is read through
// the third.
//
// It measures and logs, with the machine's load, the time from the kill to
// every tenant the dead replica had claimed being active (the figure of
// issue #16, whose goal is under 30 s), and asserts only a generous bound
// (90 s) for slow, shared machines. The suite runs it over 20 tenants;
// CAIRN_TAKEOVER_TENANTS sets another number, e.g. the benchmark's 60:
//
//	CAIRN_TAKEOVER_TENANTS=60 scripts/testenv.sh run go test -count=1 -run TestAWSReplicaTakeover -v ./cmd/server/
func TestAWSReplicaTakeover(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	total := 20
	if v := os.Getenv("CAIRN_TAKEOVER_TENANTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 3 {
			t.Fatalf("CAIRN_TAKEOVER_TENANTS=%q: want a number of tenants, at least 3", v)
		}
		total = n
	}
	const takeoverBound = 90 * time.Second
	regions := takeoverRegions
	bin := buildServer(t)
	dbURL := testdb.Postgres(t)
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)

	// The victim's AWS calls go through a proxy of their own whose
	// CreateStack requests never reach moto; the survivors' through
	// another that lets everything through and counts.
	victimAWS, survivorAWS := newFaultEndpoint(t, moto), newFaultEndpoint(t, moto)
	closeCreates(victimAWS)
	// A third of the tenants are dedicated, in one Region each; the others
	// pooled, in both.
	ids := make([]string, total)
	tiers := make([]string, total)
	tenantRegions := make([][]string, total)
	for i := range total {
		tiers[i], tenantRegions[i] = "pooled", regions
		if i%3 == 0 {
			tiers[i], tenantRegions[i] = "dedicated", []string{regions[(i/3)%2]}
		}
	}
	onboard := func(from, to int, urls ...string) {
		t.Helper()
		errs := concurrently(to-from, 12, func(n int) error {
			i := from + n
			status, tn, err := apiDo("POST", urls[i%len(urls)]+"/v1/tenants", admin, awsOnboardBody(tiers[i], tenantRegions[i]...))
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
			t.Fatalf("%d onboardings failed, first: %v", len(errs), errs[0])
		}
	}
	heldBy := func(l *createLedger, from, to int) (n int) {
		for i := from; i < to; i++ {
			if tiers[i] == "dedicated" && l.Requests(tenantRegions[i][0], dedicatedStack(ids[i])) > 0 {
				n++
			}
		}
		return n
	}

	// The victim starts alone (so it is River's leader too: the survivors
	// must elect a new one to run the poller) and takes the first tenants,
	// a few dedicated ones, into creates that it holds, leaving it workers
	// for more.
	victim := startServerProcess(t, "victim", bin, awsVars(t, victimAWS.URL, dbURL, keyFile))
	first := 3 * max(2, total/12) // every third of them dedicated
	onboard(0, first, victim.URL)
	deadline := time.Now().Add(60 * time.Second)
	for tick := time.NewTicker(20 * time.Millisecond); heldBy(victimAWS.Ledger, 0, first) < (first+2)/3; <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the victim holds %d of its first %d dedicated creates; unfinished jobs:\n%s",
				heldBy(victimAWS.Ledger, 0, first), (first+2)/3, riverJobs(dbURL))
		}
	}
	// Then the survivors start, and the other tenants onboard through all
	// three; the victim is killed as soon as they are accepted, while the
	// survivors provision them.
	survivors := []*serverProcess{
		startServerProcess(t, "survivor-1", bin, awsVars(t, survivorAWS.URL, dbURL, keyFile)),
		startServerProcess(t, "survivor-2", bin, awsVars(t, survivorAWS.URL, dbURL, keyFile)),
	}
	onboard(first, total, victim.URL, survivors[0].URL, survivors[1].URL)
	var dedicated, pooled []string
	for i, id := range ids {
		if tiers[i] == "dedicated" {
			dedicated = append(dedicated, id)
		} else {
			pooled = append(pooled, id)
		}
	}

	// held returns the dedicated tenants whose stack creates the victim
	// holds claimed: its CreateStack requests, stuck at its proxy.
	held := func() (claimed []string) {
		for i, id := range ids {
			if tiers[i] == "dedicated" && victimAWS.Ledger.Requests(tenantRegions[i][0], dedicatedStack(id)) > 0 {
				claimed = append(claimed, id)
			}
		}
		return claimed
	}
	// poolsClaimed returns the Regions whose pool is claimed for creation
	// with no stack in moto: the victim's claim, whose request may not
	// have reached its proxy yet (or, for an instant, a survivor's).
	poolsClaimed := func() []string {
		var out []string
		pools := poolsByRegion(t, survivors[0].URL, admin)
		for _, region := range regions {
			if jstr(pools[region], "status") == "creating" && len(liveStacks(t, moto, region)[provisioner.PoolStackName()]) == 0 {
				out = append(out, region)
			}
		}
		return out
	}
	victim.Kill(t)
	killedAt := time.Now()
	claimedDedicated := held()
	claimedPools := poolsClaimed()
	orphans := riverJobs(dbURL)
	claimed := slices.Clone(claimedDedicated)
	if len(claimedPools) > 0 {
		claimed = append(claimed, pooled...) // every pooled tenant waits on the pool in each Region
	}
	t.Logf("killed the victim holding %d dedicated creates, with the pool claimed and not created in %v: %d of %d tenants (%d dedicated) wait on those claims",
		len(claimedDedicated), claimedPools, len(claimed), total, len(dedicated))

	defer func() {
		if t.Failed() {
			t.Logf("jobs unfinished when the victim was killed:\n%sunfinished jobs now:\n%s", orphans, riverJobs(dbURL))
			var b strings.Builder
			for _, id := range claimed {
				b.WriteString(describeTenant(survivors[0].URL, admin, id))
			}
			t.Logf("tenants the victim had claimed:\n%s", b.String())
		}
	}()
	awaitTenants(t, survivors[0].URL, admin, claimed, "active", takeoverBound)
	claimedActive := time.Since(killedAt)
	awaitTenants(t, survivors[1].URL, admin, ids, "active", max(takeoverBound-time.Since(killedAt), time.Second))
	allActive := time.Since(killedAt)
	t.Logf("takeover: %d tenants the killed replica had claimed active %s after the kill; all %d active after %s; load average %s",
		len(claimed), claimedActive.Round(time.Millisecond), total, allActive.Round(time.Millisecond), loadAverage())

	// Each stack was created once: the taken-over ones by a survivor.
	for _, region := range regions {
		live, history := liveStacks(t, moto, region), stackHistory(t, moto, region)
		for i, id := range ids {
			if tiers[i] != "dedicated" || tenantRegions[i][0] != region {
				continue
			}
			name := dedicatedStack(id)
			if len(live[name]) != 1 || len(history[name]) != 1 {
				t.Errorf("%s in %s: moto lists %d live and %d ever; want 1 and 1", name, region, len(live[name]), len(history[name]))
			}
			if slices.Contains(claimedDedicated, id) && survivorAWS.Ledger.Requests(region, name) == 0 {
				t.Errorf("%s in %s was claimed by the victim, yet no survivor asked for it", name, region)
			}
			if st := tenantStacks(t, survivors[0].URL, admin, id)[region]; jstr(st, "status") != "ready" || jnum(st, "attempt") != 1 {
				t.Errorf("%s in %s: %v, want ready on attempt 1", id, region, st)
			}
		}
		if n := len(live[provisioner.PoolStackName()]); n != 1 {
			t.Errorf("moto has %d pool stacks in %s, want 1", n, region)
		}
	}

	// One customer's events alternately through the two survivors, to a
	// tenant whose stack was taken over, then its unified profile through
	// the third replica, started again.
	p := &profileTenant{id: claimedDedicated[0], tier: "dedicated"}
	tok, err := runToken(t, "--tenant", p.id, "--data-dir", filepath.Dir(keyFile), "--signing-key-file", keyFile, "--database-url", dbURL)
	if err != nil {
		t.Fatalf("tenant token: %v", err)
	}
	p.token = tok
	src := mustAPI(t, "POST", survivors[0].URL+"/v1/tenants/"+p.id+"/sources", p.token, `{"name":"web"}`, http.StatusCreated)
	key := jstr(src, "write_key")
	sc := newProfileScenario()
	for i, batch := range sc.batches {
		wantAccepted, wantDup := len(batch), 0
		if i == 2 { // a client's retry of the second batch, to the other survivor
			wantAccepted, wantDup = 0, len(batch)
		}
		r := postSegment(t, survivors[i%2].URL, key, batch)
		if r["success"] != true || jnum(r, "accepted") != wantAccepted || jnum(r, "duplicates") != wantDup {
			t.Fatalf("batch %d through survivor %d: %v; want %d accepted, %d duplicates", i, i%2+1, r, wantAccepted, wantDup)
		}
	}
	third := startServerProcess(t, "restarted", bin, awsVars(t, survivorAWS.URL, dbURL, keyFile))
	checkProfileAPI(t, third.URL, p, sc)

	// Mid-ingestion: a client streams one customer's events to a survivor,
	// which is SIGKILLed between batches or inside one; every event it
	// acknowledged is then read through the third replica, none lost.
	acked := streamUntilKilled(t, survivors[1], key, "stream-user")
	checkAcknowledged(t, third.URL, p, "stream-user", acked)
}

// streamUntilKilled posts batches of 20 track events of user to server's
// /v1/batch, SIGKILLs the server once five batches are acknowledged, and
// returns the message IDs of every event acknowledged before the kill.
func streamUntilKilled(t *testing.T, server *serverProcess, writeKey, user string) []string {
	t.Helper()
	type ack struct{ ids []string }
	acks := make(chan ack, 1024)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for b := 0; ; b++ {
			var events, ids []string
			for i := range 20 {
				id := fmt.Sprintf("%s-%d-%d", user, b, i)
				ids = append(ids, id)
				events = append(events, fmt.Sprintf(`{"type":"track","event":"Streamed","userId":%q,"messageId":%q,"timestamp":%q}`,
					user, id, time.Now().UTC().Format(time.RFC3339Nano)))
			}
			req, _ := http.NewRequest("POST", server.URL+"/v1/batch", strings.NewReader(`{"batch":[`+strings.Join(events, ",")+`]}`))
			req.SetBasicAuth(writeKey, "")
			req.Header.Set("Content-Type", "application/json")
			res, err := apiClient.Do(req)
			if err != nil {
				return // killed: this batch was not acknowledged
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return
			}
			acks <- ack{ids}
		}
	}()
	var acked []string
	for n := 0; n < 5; n++ {
		select {
		case a := <-acks:
			acked = append(acked, a.ids...)
		case <-stopped:
			t.Fatalf("the stream stopped after %d batches, before the kill", n)
		case <-time.After(60 * time.Second):
			t.Fatalf("no acknowledgement in 60s after %d batches", n)
		}
	}
	server.Kill(t)
	select {
	case <-stopped:
	case <-time.After(60 * time.Second):
		t.Fatal("the stream did not stop 60s after the kill")
	}
	close(acks)
	for a := range acks {
		acked = append(acked, a.ids...)
	}
	t.Logf("killed a replica mid-ingestion after %d acknowledged events", len(acked))
	return acked
}

// checkAcknowledged reads user's profile events through base and fails
// unless every acknowledged message ID is among them.
func checkAcknowledged(t *testing.T, base string, p *profileTenant, user string, acked []string) {
	t.Helper()
	prof := mustAPI(t, "GET", base+"/v1/tenants/"+p.id+"/profiles?identifier=user_id:"+user, p.token, "", http.StatusOK)
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		path := base + "/v1/tenants/" + p.id + "/profiles/" + jstr(prof, "id") + "/events?limit=200"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		list := mustAPI(t, "GET", path, p.token, "", http.StatusOK)
		for _, ev := range listItems(list) {
			seen[jstr(ev, "message_id")] = true
		}
		cursor = jstr(list, "next_cursor")
		if cursor == "" || page > 100 {
			break
		}
	}
	var lost []string
	for _, id := range acked {
		if !seen[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged events are lost after the kill, e.g. %v", len(lost), len(acked), lost[:min(5, len(lost))])
	}
}

// loadAverage is the machine's load (/proc/loadavg), for logs beside
// measured times; "unknown" where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
