package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// built is the server binary the tests run as a child process: built once
// for the test binary (each link of it takes seconds of CPU), in a
// directory TestMain removes.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildServer builds this command, once for all the tests, and returns
// the binary's path. Tests only run it: none writes to it.
func buildServer(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "cairn-server-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "cairn")
		if out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// serverProcess is the server binary running as a child process.
type serverProcess struct {
	cmd  *exec.Cmd
	URL  string
	logs *tailBuffer
	done chan struct{}
}

// startServerProcess runs the binary with vars on top of the test's own
// environment and waits until it serves. It is killed when the test ends
// if it still runs; its log is printed if the test fails.
func startServerProcess(t *testing.T, name, bin string, vars map[string]string) *serverProcess {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v) // the last one of a name wins
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, logs: &tailBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "Cairn is serving on "); ok {
				select {
				case urls <- strings.TrimSpace(u):
				default:
				}
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill(t)
		if t.Failed() {
			t.Logf("server process %s log (tail):\n%s", name, p.logs.String())
		}
	})
	select {
	case p.URL = <-urls:
		return p
	case <-p.done:
		t.Fatalf("server process %s exited before serving: %v\n%s", name, cmd.ProcessState, p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("server process %s not serving after 60s\n%s", name, p.logs.String())
	}
	return nil
}

// Kill sends SIGKILL, the crash that runs no deferred code, and waits for
// the process to be gone.
func (p *serverProcess) Kill(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Logf("kill server process: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("server process %d still running 30s after SIGKILL", p.cmd.Process.Pid)
	}
}

// riverJobs describes the database's unfinished jobs, for failure
// messages: after a crash, a job the dead process was running stays
// "running" until River rescues it.
func riverJobs(dbURL string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "(cannot read river_job: " + err.Error() + ")"
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, kind, state, attempt, args::text, coalesce(attempted_by[array_upper(attempted_by, 1)], ''),
			coalesce(extract(epoch FROM now() - attempted_at)::float8, 0), coalesce(errors[array_upper(errors, 1)]->>'error', '')
		FROM river_job WHERE state NOT IN ('completed', 'discarded', 'cancelled') ORDER BY id`)
	if err != nil {
		return "(cannot read river_job: " + err.Error() + ")"
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var (
			id, attempt                    int64
			kind, state, args, by, lastErr string
			since                          float64
		)
		if err := rows.Scan(&id, &kind, &state, &attempt, &args, &by, &since, &lastErr); err != nil {
			return b.String() + "(scan: " + err.Error() + ")"
		}
		fmt.Fprintf(&b, "  job %d %s %s attempt %d by %s %.1fs ago %s %s\n", id, kind, state, attempt, by, since, args, lastErr)
	}
	return b.String()
}

// awaitJobsEnded waits until no job of the kind for the tenant is left to
// run (every one completed, discarded or cancelled).
func awaitJobsEnded(t *testing.T, dbURL, kind, tenantID string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM river_job
			WHERE kind = $1 AND args->>'tenant_id' = $2 AND state NOT IN ('completed', 'discarded', 'cancelled')`, kind, tenantID).Scan(&n)
		if err == nil && n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s jobs for %s still to run after %s (%v):\n%s", kind, tenantID, timeout, err, riverJobs(dbURL))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestAWSCrashRecovery kills the server binary (SIGKILL) in the middle of
// provisioning, with the dedicated stacks and the pool held in progress by
// the proxy and one job blocked inside a CreateStack call that moto has
// already acted on, then starts a new process on the same database. Every
// tenant must converge, each stack must have been asked for and created
// exactly once, and the stacks moto had before the crash must be the ones
// after it.
//
// River leaves the jobs the dead process was running "running" until it
// rescues them (store.RescueAfter, over a minute), so the new process must get there
// without them: through the poller, which finds the stacks and wakes the
// tenants' jobs.
func TestAWSCrashRecovery(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	bin := buildServer(t)
	regions := []string{"ap-northeast-1", "ap-southeast-1"} // see the Regions in awsenv_test.go
	f := newFaultEndpoint(t, moto)
	dbURL := testdb.Postgres(t)
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	vars := awsVars(t, f.URL, dbURL, keyFile)

	// Held in progress for as long as the test wants: the pool (known by
	// name), and every dedicated stack once its name is known.
	const forever = 1 << 30
	holds := []interface{ Remove() }{f.HoldInProgress(provisioner.PoolStackName(), forever)}
	gate := closeCreates(f)
	first := startServerProcess(t, "first", bin, vars)

	var dedicated, pooled []string
	for range 3 {
		dedicated = append(dedicated, awsOnboard(t, first.URL, admin, "dedicated", regions...))
		pooled = append(pooled, awsOnboard(t, first.URL, admin, "pooled", regions...))
	}
	all := append(append([]string{}, dedicated...), pooled...)
	for _, id := range dedicated {
		holds = append(holds, f.HoldInProgress(dedicatedStack(id), forever))
	}
	// blocked's job never gets the answer to its first CreateStack: it is
	// inside the call when the process dies, and its other Region is not
	// asked for yet.
	blocked := dedicated[2]
	gate.Open(dedicatedStack(blocked))

	// Wait for the moment to crash: every stack the server asked for is
	// CREATE_IN_PROGRESS as far as it knows, so is the pool, and moto has
	// made the blocked job's stack.
	blockedRegion := ""
	deadline := time.Now().Add(60 * time.Second)
	for tick := time.NewTicker(50 * time.Millisecond); ; <-tick.C {
		for _, region := range regions {
			if len(f.Ledger.Created(region, dedicatedStack(blocked))) > 0 {
				blockedRegion = region
			}
		}
		ready := blockedRegion != ""
		for _, id := range dedicated {
			for region, st := range tenantStacks(t, first.URL, admin, id) {
				if id == blocked && region != blockedRegion {
					continue // not asked for
				}
				ready = ready && jstr(st, "status") == "creating" && jstr(st, "stack_status") == "CREATE_IN_PROGRESS"
			}
		}
		pools := poolsByRegion(t, first.URL, admin)
		for _, region := range regions {
			ready = ready && jstr(pools[region], "status") == "creating" && jstr(pools[region], "stack_status") == "CREATE_IN_PROGRESS"
		}
		if ready {
			tick.Stop()
			break
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, id := range all {
				b.WriteString(describeTenant(first.URL, admin, id))
			}
			t.Fatalf("provisioning did not reach the crash point in 60s (blocked stack created in %q, pools %v):\n%s",
				blockedRegion, poolsByRegion(t, first.URL, admin), b.String())
		}
	}
	for _, id := range all {
		if tn := mustAPI(t, "GET", first.URL+"/v1/tenants/"+id, admin, "", http.StatusOK); jstr(tn, "status") != "provisioning" {
			t.Fatalf("tenant %s is %s before the crash, want provisioning", id, jstr(tn, "status"))
		}
	}
	for region, st := range tenantStacks(t, first.URL, admin, blocked) {
		if region != blockedRegion && jstr(st, "status") != "pending" {
			t.Fatalf("the blocked job's tenant has %v in %s, want pending: its job is stuck in %s", st, region, blockedRegion)
		}
	}
	// The stacks as moto has them at the crash.
	before := map[string]string{} // region/name -> stack ID
	for _, region := range regions {
		live := liveStacks(t, moto, region)
		for _, id := range dedicated {
			switch s := live[dedicatedStack(id)]; {
			case len(s) == 1:
				before[region+"/"+dedicatedStack(id)] = aws.ToString(s[0].StackId)
			case len(s) > 1:
				t.Fatalf("moto has %d stacks named %s in %s before the crash", len(s), dedicatedStack(id), region)
			}
		}
	}
	if len(before) != 2*len(dedicated)-1 {
		t.Fatalf("moto has %d dedicated stacks at the crash, want %d: %v", len(before), 2*len(dedicated)-1, before)
	}

	first.Kill(t)
	orphans := riverJobs(dbURL)
	for _, h := range holds {
		h.Remove()
	}
	gate.Open() // the held answer goes to a dead connection

	restart := time.Now()
	second := startServerProcess(t, "second", bin, vars)
	for _, group := range []struct {
		tier string
		ids  []string
	}{{"dedicated", dedicated}, {"pooled", pooled}} {
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("jobs the first process left unfinished when it was killed (River rescues a "+
						"\"running\" one only after store.RescueAfter):\n%s"+
						"unfinished jobs now:\n%s", orphans, riverJobs(dbURL))
					t.Logf("pools as the server has them: %v\nstacks as moto has them:\n%s",
						poolsByRegion(t, second.URL, admin), motoStatuses(t, moto, regions))
				}
			}()
			awaitTenants(t, second.URL, admin, group.ids, "active", 45*time.Second)
		}()
		t.Logf("%s tenants active %s after the restart", group.tier, time.Since(restart).Round(time.Millisecond))
	}

	for _, region := range regions {
		live := liveStacks(t, moto, region)
		history := stackHistory(t, moto, region)
		for _, id := range dedicated {
			name := dedicatedStack(id)
			req, created := f.Ledger.Requests(region, name), f.Ledger.Created(region, name)
			if req != 1 || len(created) != 1 || len(live[name]) != 1 || len(history[name]) != 1 {
				t.Errorf("%s in %s: %d CreateStack requests, moto created %v, lists %d live and %d ever; want each exactly 1",
					name, region, req, created, len(live[name]), len(history[name]))
				continue
			}
			if was, ok := before[region+"/"+name]; ok && aws.ToString(live[name][0].StackId) != was {
				t.Errorf("%s in %s is %s after the restart, %s before: created twice", name, region, aws.ToString(live[name][0].StackId), was)
			}
			st := tenantStacks(t, second.URL, admin, id)[region]
			if jstr(st, "status") != "ready" || jnum(st, "attempt") != 1 {
				t.Errorf("%s in %s: %v, want ready on attempt 1", id, region, st)
			}
		}
		if n := len(live[provisioner.PoolStackName()]); n != 1 {
			t.Errorf("moto has %d pool stacks in %s, want 1", n, region)
		}
	}
}

// motoStatuses lists the emulator's stacks in regions with their real
// status, which the proxy's rules do not rewrite: a stack whose create
// raised half-way in the emulator stays CREATE_IN_PROGRESS there for good.
func motoStatuses(t *testing.T, moto string, regions []string) string {
	var b strings.Builder
	for _, region := range regions {
		for name, stacks := range liveStacks(t, moto, region) {
			for _, s := range stacks {
				fmt.Fprintf(&b, "  %s %s: %s %s\n", region, name, s.StackStatus, aws.ToString(s.StackStatusReason))
			}
		}
	}
	return b.String()
}

// TestAWSThreeReplicas runs three replicas on one database, onboards 100
// tenants through all three APIs at once, and expects every dedicated stack
// to be asked for and created exactly once, and one pool stack per Region.
//
// 30 tenants are dedicated (one stack each, in one of two Regions) and 70
// pooled (in both Regions); all settle in 5 to 10 seconds on 2 cores. With
// 100 dedicated stacks at once moto's CloudFormation is the limit: it left
// a stack CREATE_IN_PROGRESS for good (it neither finishes nor rolls back a
// create that fails half-way).
func TestAWSThreeReplicas(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	const (
		total     = 100
		dedicated = 30
	)
	regions := []string{"us-west-2", "eu-central-1"}
	f := newFaultEndpoint(t, moto)
	dbURL := testdb.Postgres(t)
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	urls := make([]string, 3)
	for i := range urls {
		vars := awsVars(t, f.URL, dbURL, keyFile)
		vars["CAIRN_MAX_WORKERS"] = "10"
		urls[i] = startAWSServer(t, fmt.Sprintf("replica-%d", i), vars)
	}

	start := time.Now()
	ids := make([]string, total)
	tiers := make([]string, total)
	tenantRegions := make([][]string, total)
	errs := concurrently(total, 24, func(i int) error {
		tiers[i], tenantRegions[i] = "pooled", regions
		if i%10 < 3 {
			tiers[i], tenantRegions[i] = "dedicated", []string{regions[i%2]}
		}
		url := urls[i%len(urls)]
		status, tn, err := apiDo("POST", url+"/v1/tenants", admin, awsOnboardBody(tiers[i], tenantRegions[i]...))
		if err != nil {
			return err
		}
		if status != http.StatusAccepted {
			return fmt.Errorf("onboard %d on %s: %d %v", i, url, status, tn)
		}
		ids[i] = jstr(tn, "id")
		return nil
	})
	if len(errs) > 0 {
		t.Fatalf("%d onboardings failed, first: %v", len(errs), errs[0])
	}
	accepted := time.Since(start)
	// Any replica answers for every tenant: they share the database.
	awaitTenants(t, urls[2], admin, ids, "active", 150*time.Second)
	t.Logf("%d tenants (%d dedicated) accepted in %s, all active after %s", total, dedicated, accepted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	live := map[string]map[string][]string{} // region -> name -> IDs
	history := map[string]map[string]int{}
	for _, region := range regions {
		live[region], history[region] = map[string][]string{}, map[string]int{}
		for name, stacks := range liveStacks(t, moto, region) {
			for _, s := range stacks {
				live[region][name] = append(live[region][name], aws.ToString(s.StackId))
			}
		}
		for name, stacks := range stackHistory(t, moto, region) {
			history[region][name] = len(stacks)
		}
	}
	n := 0
	pooledIn := map[string]int{}
	for i, id := range ids {
		if tiers[i] != "dedicated" {
			for _, region := range tenantRegions[i] {
				pooledIn[region]++
			}
			continue
		}
		n++
		region, name := tenantRegions[i][0], dedicatedStack(id)
		// Each stack is created exactly once. The replicas claim a create
		// before making it, so a second request can only be the SDK
		// retrying a call the loaded emulator was slow to answer, with the
		// same token; it must not create anything.
		req, created := f.Ledger.Requests(region, name), f.Ledger.Created(region, name)
		if req < 1 || len(created) != 1 || len(live[region][name]) != 1 || history[region][name] != 1 {
			t.Errorf("%s in %s: %d CreateStack requests, moto created %v, lists %d live and %d ever; want one stack created, live and ever",
				name, region, req, created, len(live[region][name]), history[region][name])
		}
		if req > 1 {
			t.Logf("%s in %s: %d CreateStack requests (SDK retries), one stack", name, region, req)
		}
		for _, other := range regions {
			if other != region && len(live[other][name]) != 0 {
				t.Errorf("%s has a stack in %s, a Region it did not choose", id, other)
			}
		}
	}
	if n != dedicated {
		t.Fatalf("%d dedicated tenants, want %d", n, dedicated)
	}
	pools := poolsByRegion(t, urls[0], admin)
	for _, region := range regions {
		if got := len(live[region][provisioner.PoolStackName()]); got != 1 {
			t.Errorf("moto has %d pool stacks in %s, want 1", got, region)
		}
		if p := pools[region]; jstr(p, "status") != "ready" || jnum(p, "tenant_count") != pooledIn[region] {
			t.Errorf("GET /v1/pools in %s: %v, want ready with %d tenants", region, p, pooledIn[region])
		}
		t.Logf("pool in %s: %d CreateStack requests from the replicas, %d stacks created by them",
			region, f.Ledger.Requests(region, provisioner.PoolStackName()), len(f.Ledger.Created(region, provisioner.PoolStackName())))
	}
}
