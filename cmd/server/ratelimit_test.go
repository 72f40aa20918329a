package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

// TestRateLimitReplicas: two replicas on one PostgreSQL hold a token to
// its plan's requests a second together. Each counts the live replicas
// through the lease table and takes half of the rate and burst, so a
// client sending to both, far over the rate, gets the plan's rate, not
// twice it. Counted over the window with generous slack; twice the rate
// is far beyond it. (Every limit of a plan is shared alike: events are
// not used here because one accepted event costs seconds on the
// emulator.)
func TestRateLimitReplicas(t *testing.T) {
	moto := awstest.Endpoint(t)
	t.Parallel()
	const (
		// requests a second for the token, across replicas: low, so that
		// a loaded machine still sends several times as many
		rate   = 5
		window = 6 * time.Second
		region = "us-west-1" // no other test provisions here
	)
	dbURL := testdb.Postgres(t)
	keyFile := t.TempDir() + "/signing-key.pem"
	admin := adminToken(t, keyFile)
	urls := make([]string, 2)
	for i := range urls {
		vars := awsVars(t, moto, dbURL, keyFile)
		vars["CAIRN_REPLICA_LEASE"] = "3s" // each counts the replicas every second
		urls[i] = startAWSServer(t, fmt.Sprintf("replica-%d", i), vars)
	}
	for _, url := range urls {
		deadline := time.Now().Add(30 * time.Second)
		for metric(t, url, "cairn_replicas_live") != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("%s counts %v live replicas after 30s, want 2", url, metric(t, url, "cairn_replicas_live"))
			}
			time.Sleep(100 * time.Millisecond) // polling the other replica's renewal, on a clock of its own
		}
	}
	mustAPI(t, "PUT", urls[0]+"/v1/plans/replicated", admin, fmt.Sprintf(`{"limits":{"requests_per_second_per_token":%d}}`, rate), http.StatusCreated)
	slug := "rl-" + awsRandom(12)
	tn := mustAPI(t, "POST", urls[1]+"/v1/tenants", admin, fmt.Sprintf(`{"name":"Replicated","slug":%q,"tier":"pooled","home_region":%q,"plan":"replicated"}`, slug, region), http.StatusAccepted)
	id := jstr(tn, "id")
	awaitTenants(t, urls[0], admin, []string{id}, "active", 2*time.Minute)
	token := jstr(mustAPI(t, "POST", urls[0]+"/v1/tenants/"+id+"/tokens", admin, `{"scopes":["profiles:read"]}`, http.StatusCreated), "token")

	var (
		accepted, refused [2]atomic.Int64
		wg                sync.WaitGroup
	)
	start := time.Now()
	for c := range 6 {
		wg.Go(func() {
			for n := 0; time.Since(start) < window; n++ {
				replica := (c + n) % 2
				status, body, err := apiDo("GET", urls[replica]+"/v1/tenants/"+id, token, "")
				switch {
				case err != nil:
					t.Errorf("replica %d: %v", replica, err)
					return
				case status == http.StatusOK:
					accepted[replica].Add(1)
				case status == http.StatusTooManyRequests:
					refused[replica].Add(1)
				default:
					t.Errorf("replica %d: %d %v", replica, status, body)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := accepted[0].Load() + accepted[1].Load()
	sent := total + refused[0].Load() + refused[1].Load()
	// The rate over the window, each replica's burst (half the plan's)
	// and generous slack: well short of twice the rate, which replicas
	// that did not share would let through.
	bound := rate*elapsed.Seconds() + rate + rate
	t.Logf("%d requests in %s, %d served (%d and %d by the replicas; %.1f/s for a plan of %d/s), %d and %d refused",
		sent, elapsed.Round(time.Millisecond), total, accepted[0].Load(), accepted[1].Load(), float64(total)/elapsed.Seconds(), rate,
		refused[0].Load(), refused[1].Load())
	if float64(sent) < 3*rate*elapsed.Seconds() {
		t.Fatalf("%d requests in %s: not enough over the rate to judge", sent, elapsed)
	}
	if float64(total) > bound {
		t.Fatalf("the replicas served %d requests in %s, over %.0f: they do not share the plan's rate of %d a second", total, elapsed, bound, rate)
	}
	if accepted[0].Load() == 0 || accepted[1].Load() == 0 || refused[0].Load() == 0 || refused[1].Load() == 0 {
		t.Fatalf("each replica serves its share and refuses the rest: served %d/%d, refused %d/%d",
			accepted[0].Load(), accepted[1].Load(), refused[0].Load(), refused[1].Load())
	}
}

// TestAbuseProbe: on the default plan and settings, a client sending one
// write key far more events than the default plan allows, and one sending
// bad tokens, meet 429s with Retry-After.
func TestAbuseProbe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	admin, err := runToken(t, "--admin", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := startServer(t, t.Context(), map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_STACK_POLL_INTERVAL": "100ms", "CAIRN_LOG_LEVEL": "error"})
	_, tn := call(t, "POST", url+"/v1/tenants", admin, `{"name":"Probe","slug":"probe","tier":"pooled","home_region":"eu-west-1"}`)
	id := tn["id"].(string)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) { // waiting on the provisioner's jobs
		if _, got := call(t, "GET", url+"/v1/tenants/"+id, admin, ""); got["status"] == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tenant not active")
		}
	}
	_, src := call(t, "POST", url+"/v1/tenants/"+id+"/sources", admin, `{"name":"probe"}`)
	key := src["write_key"].(string)

	// The default plan allows a source 500 events a second. A batch of
	// 3,000 is admitted and charged before it is ingested, which leaves
	// the source 5 s in debt: small requests sent meanwhile are refused,
	// however long the big batch takes.
	post := func(body string) (int, string, error) {
		req, _ := http.NewRequest("POST", url+"/v1/batch", strings.NewReader(body))
		req.SetBasicAuth(key, "")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After"), nil
	}
	events := make([]string, 3000)
	for j := range events {
		events[j] = `{"type":"track","event":"P","userId":"p"}`
	}
	big := make(chan struct{})
	go func() {
		defer close(big)
		_, _, _ = post(`{"batch":[` + strings.Join(events, ",") + `]}`) // its answer is not the point
	}()
	// Small batches, one every 100 ms, each on its own: one admitted
	// before the big batch's charge may wait for the store behind it, the
	// next are refused at the gate.
	var (
		limited  atomic.Bool
		badState atomic.Int64
		polls    sync.WaitGroup
	)
	for deadline := time.Now().Add(time.Minute); !limited.Load() && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) { // the probe's own pace
		polls.Go(func() {
			s, ra, err := post(`{"batch":[{"type":"track","event":"P","userId":"q"}]}`)
			switch {
			case err == nil && s == http.StatusTooManyRequests && ra != "":
				limited.Store(true)
			case err != nil || s != http.StatusOK:
				badState.Store(int64(s))
			}
		})
	}
	polls.Wait()
	<-big
	if s := badState.Load(); s != 0 {
		t.Fatalf("a small batch beside the big one: %d", s)
	}
	if !limited.Load() {
		t.Fatal("3,000 events at once on one write key, six times the default plan's 500 a second: no 429 for the requests beside them")
	}

	// Bad tokens: refused with 401 until the address's budget (20 by
	// default) is spent, then 429.
	first429 := 0
	for i := range 500 {
		status, _, _ := callHeader(t, "GET", url+"/v1/tenants", fmt.Sprintf("not-a-token-%d", i), "", nil)
		if status == http.StatusTooManyRequests {
			first429 = i + 1
			break
		}
		if status != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %d", i, status)
		}
	}
	if first429 == 0 || first429 > 40 {
		t.Fatalf("500 bad tokens from one address: the first 429 came at %d, want soon after the 20 the default allows", first429)
	}
	t.Logf("bad tokens refused with 429 from number %d on", first429)
}
