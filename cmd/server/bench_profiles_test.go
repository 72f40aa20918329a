package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchTenant starts a server on the embedded default and returns its URL,
// an admin token, an active pooled tenant and a write key for it. The
// tenant's plan allows far more than the machine ingests: its limits are
// checked and charged on every request, and never refuse one.
func benchTenant(b *testing.B) (url, admin, tenant, key string, stop func()) {
	return benchTenantHooks(b, hooks{})
}

// benchPlan is a plan no benchmark reaches.
const benchPlan = `{"limits":{"events_per_second_per_source":1000000000,"events_per_second_per_tenant":1000000000,"requests_per_second_per_token":1000000000}}`

// benchTenantHooks is benchTenant with hooks (hooks{unmetered: true}: a
// server that neither meters nor limits).
func benchTenantHooks(b *testing.B, h hooks) (url, admin, tenant, key string, stop func()) {
	dir := b.TempDir()
	vars := map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_STACK_POLL_INTERVAL": "100ms", "CAIRN_LOG_LEVEL": "error"}
	admin, err := runToken(b, "--admin", "--data-dir", dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	url, done := startServerHooks(b, ctx, vars, h)
	if status, p := call(b, "PUT", url+"/v1/plans/bench", admin, benchPlan); status != http.StatusCreated {
		b.Fatalf("bench plan: %d %v", status, p)
	}
	_, t := call(b, "POST", url+"/v1/tenants", admin, `{"name":"Bench","slug":"bench","tier":"pooled","home_region":"eu-west-1","plan":"bench"}`)
	tenant = t["id"].(string)
	for deadline := time.Now().Add(time.Minute); ; {
		if _, t := call(b, "GET", url+"/v1/tenants/"+tenant, admin, ""); t["status"] == "active" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("tenant not active")
		}
		time.Sleep(20 * time.Millisecond) // benchmark set-up pacing
	}
	_, src := call(b, "POST", url+"/v1/tenants/"+tenant+"/sources", admin, `{"name":"bench"}`)
	return url, admin, tenant, src["write_key"].(string), func() { cancel(); <-done }
}

// batchBody makes a batch of 100 events for users u[base..base+users):
// identifies with traits and tracks, about a third on new identities.
func batchBody(n, users int, seq *atomic.Int64) []byte {
	return batchBodyOf(n, users, []string{"Viewed"}, seq)
}

// benchEvents are the event names of a batch with a mix of events
// (batchBodyOf).
var benchEvents = []string{"Viewed", "Clicked", "Searched", "Added", "Removed", "Shared", "Commented", "Rated", "Subscribed", "Ordered"}

// batchBodyOf is batchBody whose tracks take turns at names.
func batchBodyOf(n, users int, names []string, seq *atomic.Int64) []byte {
	events := make([]map[string]any, 100)
	for i := range events {
		id := seq.Add(1)
		user := fmt.Sprintf("user-%d", id%int64(users))
		ev := map[string]any{"messageId": fmt.Sprintf("m-%d-%d", n, id), "userId": user, "timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
		if id%3 == 0 {
			ev["type"], ev["traits"] = "identify", map[string]any{"email": user + "@example.com", "plan": "pro"}
			ev["anonymousId"] = fmt.Sprintf("anon-%d", id)
		} else {
			ev["type"], ev["event"], ev["properties"] = "track", names[int(id/3)%len(names)], map[string]any{"page": id}
		}
		events[i] = ev
	}
	b, _ := json.Marshal(map[string]any{"batch": events})
	return b
}

// BenchmarkIngestBatches sends batches of 100 Segment events over HTTP to
// the embedded default, identity resolution included, from 16 clients
// (CAIRN_BENCH_CLIENTS to change): enough to keep the server busy, which
// with fewer waits on fsyncs between batches.
//
// It measures two servers in one run (see ingestSideBySide): one as the
// server runs by default, metering every request and checking and
// charging the tenant's plan (one that never refuses), and one that
// neither meters nor limits, the baseline. It reports each one's events/s
// and on/off, their ratio.
//
//	go test -run '^$' -bench IngestBatches -benchtime 400x ./cmd/server
func BenchmarkIngestBatches(b *testing.B) {
	var targets [2]ingestTarget // on, off
	for i, h := range []hooks{{}, {unmetered: true}} {
		url, _, _, key, stop := benchTenantHooks(b, h)
		defer stop()
		targets[i] = ingestTarget{url: url, key: key}
	}
	on, off, _ := ingestSideBySide(b, targets, 0)
	b.ReportMetric(on, "events/s")
	b.ReportMetric(off, "events/s-off")
	b.ReportMetric(on/off, "on/off")
}

// BenchmarkIngestSegmentsHTTP is BenchmarkIngestBatches with and without
// segments: two servers as they run by default, one whose tenant has 100
// segments (a quarter each of trait rules, event counts in a 7-day
// window, event rules with a property filter, and rules on another
// segment or a trait), computed before the clock starts, and one with
// none. Two workloads:
//
//   - events=10: the tracks take turns at ten event names, which the
//     event rules share out, as a tenant's segments are about different
//     things: an event meets a few rules, and the rules built on them;
//   - events=1: every track is "Viewed", which every event rule reads:
//     an event meets 50 rules and the 25 built on them, the worst case.
//
// In each, the servers' 2,500 customers are new at first: 200 batches
// (20 with -short), eight events a customer, make them and enter them in
// their segments; that phase is timed apart (cold-segments/none). Then
// the timed batches are known customers' events: events/s,
// segments/none, their ratio, and the CPU an event cost (see
// ingestSideBySide).
//
//	go test -run '^$' -bench IngestSegmentsHTTP -benchtime 400x ./cmd/server
//
// With -cpuprofile, each server's samples carry its label: pprof's
// -tagfocus server=segments (or server=none) shows one alone.
func BenchmarkIngestSegmentsHTTP(b *testing.B) {
	for _, names := range [][]string{benchEvents, benchEvents[:1]} {
		b.Run(fmt.Sprint("events=", len(names)), func(b *testing.B) {
			var targets [2]ingestTarget // 100 segments, none
			for i := range targets {
				// Each server's goroutines are labelled, so that a CPU
				// profile tells them apart: -tagfocus server=segments.
				var url, admin, tenant, key string
				var stop func()
				pprof.Do(context.Background(), pprof.Labels("server", [...]string{"segments", "none"}[i]), func(context.Context) {
					url, admin, tenant, key, stop = benchTenant(b)
				})
				defer stop()
				targets[i] = ingestTarget{url: url, key: key, names: names}
				if i == 0 {
					benchSegmentsHTTP(b, url, admin, tenant, 100, names)
				}
			}
			warm := 200
			if testing.Short() {
				warm = 20
			}
			with, none, cold := ingestSideBySide(b, targets, warm)
			b.ReportMetric(with, "events/s")
			b.ReportMetric(none, "events/s-none")
			b.ReportMetric(with/none, "segments/none")
			b.ReportMetric(cold[0]/cold[1], "cold-segments/none")
		})
	}
}

// benchSegmentsHTTP makes n segments for the tenant, their event rules on
// names in turn, and waits until every one is computed.
func benchSegmentsHTTP(b *testing.B, url, admin, tenant string, n int, names []string) {
	var ids []string
	for i := range n {
		var def string
		name := names[(i/4)%len(names)]
		switch i % 4 {
		case 0:
			def = fmt.Sprintf(`{"trait": "email", "operator": "contains", "value": "%d@"}`, i%10)
		case 1:
			def = fmt.Sprintf(`{"event": %q, "count": {"operator": "at_least", "value": %d}, "within": "7d"}`, name, 1+i%5)
		case 2:
			def = fmt.Sprintf(`{"all": [{"event": %q, "where": [{"property": "page", "operator": "gte", "value": %d}]}, {"trait": "plan", "operator": "exists"}]}`, name, i*100)
		default:
			def = fmt.Sprintf(`{"any": [{"segment": %q}, {"trait": "plan", "operator": "starts_with", "value": "p"}]}`, ids[len(ids)-1])
		}
		status, seg := call(b, "POST", url+"/v1/tenants/"+tenant+"/segments", admin, fmt.Sprintf(`{"name":"s%d","definition":%s}`, i, def))
		if status != http.StatusCreated {
			b.Fatalf("segment %s: status %d %v", def, status, seg)
		}
		ids = append(ids, seg["id"].(string))
	}
	for _, id := range ids {
		for deadline := time.Now().Add(2 * time.Minute); ; {
			if _, seg := call(b, "GET", url+"/v1/tenants/"+tenant+"/segments/"+id, admin, ""); seg["status"] == "ready" {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("segment %s not computed in 2 minutes", id)
			}
			time.Sleep(20 * time.Millisecond) // benchmark set-up pacing
		}
	}
}

// ingestTarget is a server and a write key to send batches with, and the
// event names of the batches' tracks ("Viewed" if none).
type ingestTarget struct {
	url, key string
	names    []string
}

// ingestSideBySide sends b.N batches of 100 events (batchBody) to each
// of two targets from 16 clients (CAIRN_BENCH_CLIENTS to change) and
// returns each one's events/s. They take rounds of 20 batches in turn
// (which goes first alternates), so that a machine whose load changes
// while it runs charges both alike. Before the clock starts, warm batches
// go the same way, and cold is each one's events/s for them.
func ingestSideBySide(b *testing.B, targets [2]ingestTarget, warm int) (first, second float64, cold [2]float64) {
	clients := 16
	if n, err := strconv.Atoi(os.Getenv("CAIRN_BENCH_CLIENTS")); err == nil && n > 0 {
		clients = n
	}
	type target struct {
		url, auth string
		client    *http.Client
		took      time.Duration
		cpu       float64 // seconds of the process's, while its batches ran
		events    int
	}
	var ts [2]*target
	for i, t := range targets {
		ts[i] = &target{url: t.url, auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(t.key+":")),
			client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}}
	}
	var seq atomic.Int64
	// The bodies are made before the clock starts: the load generator
	// shares the machine's cores with the servers. Each server gets its
	// own, of the same shape.
	bodies := make([][2][]byte, warm+b.N)
	for n := range bodies {
		for i, t := range targets {
			names := t.names
			if len(names) == 0 {
				names = benchEvents[:1]
			}
			bodies[n][i] = batchBodyOf(n, 5000, names, &seq)
		}
	}
	send := func(t *target, batch [][]byte) {
		start, cpu := time.Now(), cpuSeconds()
		var wg sync.WaitGroup
		work := make(chan []byte, clients)
		for range clients {
			wg.Go(func() {
				for body := range work {
					req, _ := http.NewRequest("POST", t.url+"/v1/batch", bytes.NewReader(body))
					req.Header.Set("Authorization", t.auth)
					req.Header.Set("Content-Type", "application/json")
					res, err := t.client.Do(req)
					if err != nil {
						b.Error(err)
						continue
					}
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Errorf("status %d", res.StatusCode)
					}
				}
			})
		}
		for _, body := range batch {
			work <- body
		}
		close(work)
		wg.Wait()
		t.took += time.Since(start)
		t.cpu += cpuSeconds() - cpu
		t.events += 100 * len(batch)
	}
	rounds := func(bodies [][2][]byte) {
		const round = 20
		for r := 0; r*round < len(bodies); r++ {
			var one, two [][]byte
			for _, pair := range bodies[r*round : min((r+1)*round, len(bodies))] {
				one, two = append(one, pair[0]), append(two, pair[1])
			}
			if r%2 == 0 {
				send(ts[0], one)
				send(ts[1], two)
			} else {
				send(ts[1], two)
				send(ts[0], one)
			}
		}
	}
	rate := func(t *target) float64 {
		r := float64(t.events) / t.took.Seconds()
		t.events, t.took, t.cpu = 0, 0, 0
		return r
	}
	if warm > 0 {
		rounds(bodies[:warm])
		cold = [2]float64{rate(ts[0]), rate(ts[1])}
	}
	b.ResetTimer()
	rounds(bodies[warm:])
	b.StopTimer()
	// The CPU an event cost while each one's batches ran, the load
	// generator's included: on a busy machine, steadier than the wall
	// clock.
	b.ReportMetric(ts[0].cpu*1e6/float64(ts[0].events), "cpu-µs/event")
	b.ReportMetric(ts[1].cpu*1e6/float64(ts[1].events), "cpu-µs/event-2")
	return rate(ts[0]), rate(ts[1]), cold
}

// BenchmarkGetProfile measures GET profile (with 10 segments to evaluate)
// under load from 8 clients, beside /healthz in the same run, with
// requests/s and p99 latency.
//
//	go test -run '^$' -bench GetProfile -benchtime 5s ./cmd/server
func BenchmarkGetProfile(b *testing.B) {
	url, admin, tenant, key, stop := benchTenant(b)
	defer stop()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
	var seq atomic.Int64
	for n := range 10 { // 1,000 events over 200 users
		req, _ := http.NewRequest("POST", url+"/v1/batch", bytes.NewReader(batchBody(n, 200, &seq)))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
	}
	for i := range 10 { // memberships are evaluated on every read
		if status, _ := call(b, "POST", url+"/v1/tenants/"+tenant+"/segments", admin,
			fmt.Sprintf(`{"name":"s%d","match":"any","conditions":[{"trait":"plan","operator":"equals","value":"pro"},{"trait":"email","operator":"contains","value":"-%d@"}]}`, i, i)); status != 201 {
			b.Fatalf("segment: status %d", status)
		}
	}
	_, t := call(b, "POST", url+"/v1/tenants/"+tenant+"/tokens", admin, `{"scopes":["profiles:read"]}`)
	token := t["token"].(string)
	var ids []string
	for i := range 200 {
		_, p := call(b, "GET", fmt.Sprintf("%s/v1/tenants/%s/profiles?identifier=user_id:user-%d", url, tenant, i), token, "")
		if id, ok := p["id"].(string); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		b.Fatal("no profiles")
	}
	run := func(name string, path func(i int) string, bearer string) {
		b.Run(name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			var mu sync.Mutex
			var lat []time.Duration
			var next atomic.Int64
			b.SetParallelism(4)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					i := int(next.Add(1))
					req, _ := http.NewRequest("GET", url+path(i), nil)
					if bearer != "" {
						req.Header.Set("Authorization", "Bearer "+bearer)
					}
					t0 := time.Now()
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					res.Body.Close()
					mine = append(mine, time.Since(t0))
					if res.StatusCode != 200 {
						b.Errorf("status %d", res.StatusCode)
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			slices.Sort(lat)
			b.ReportMetric(float64(len(lat))/time.Since(start).Seconds(), "req/s")
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
	run("profile", func(i int) string { return "/v1/tenants/" + tenant + "/profiles/" + ids[i%len(ids)] }, token)
	run("healthz", func(int) string { return "/healthz" }, "")
}

// mixBody makes a batch of 100 events of the merge-heavy mix drawn from
// users users: a quarter identifies carrying userId, anonymousId and an
// e-mail trait, the rest tracks carrying either the userId or the
// anonymousId of a random user, so anonymous and known activity keep
// merging. It returns the body and the users of its identifies.
func mixBody(rng *rand.Rand, n, users int) ([]byte, []int) {
	events := make([]map[string]any, 100)
	var identified []int
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range events {
		u := rng.IntN(users)
		ev := map[string]any{"messageId": fmt.Sprintf("mix-%d-%d", n, i), "timestamp": ts}
		switch r := rng.IntN(8); {
		case r < 2:
			ev["type"], ev["userId"], ev["anonymousId"] = "identify", fmt.Sprintf("user-%d", u), fmt.Sprintf("anon-%d", u)
			ev["traits"] = map[string]any{"email": fmt.Sprintf("user-%d@example.com", u)}
			identified = append(identified, u)
		case r < 5:
			ev["type"], ev["event"], ev["userId"] = "track", "Viewed", fmt.Sprintf("user-%d", u)
			ev["properties"] = map[string]any{"page": i}
		default:
			ev["type"], ev["event"], ev["anonymousId"] = "track", "Viewed", fmt.Sprintf("anon-%d", u)
			ev["properties"] = map[string]any{"page": i}
		}
		events[i] = ev
	}
	b, _ := json.Marshal(map[string]any{"batch": events})
	return b, identified
}

// cpuSeconds returns the CPU time the process has used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkIngestMix sends the merge-heavy mix (see mixBody; 50,000 users)
// in batches of 100 events over HTTP to the embedded default from 16
// clients (CAIRN_BENCH_CLIENTS to change), one batch per b.N. It reports:
//
//   - events/s: events accepted (the responses' "accepted") per second;
//   - p99-ms: the 99th percentile batch latency;
//   - lag-p99-ms: resolution lag, from a batch's 2xx until the profile API
//     shows the userId of its last identify on the profile of its
//     anonymousId (a sampler polls one batch at a time, so it adds at most
//     one client's worth of reads);
//   - cpu-s/s: the process's CPU seconds (getrusage) per second of wall
//     time while sending: server and load generator together, since they
//     share the process, out of GOMAXPROCS available;
//   - healthz-req/s: /healthz throughput from as many clients just before,
//     the machine's baseline in the same run.
//
// Run it with:
//
//	go test -run '^$' -bench IngestMix -benchtime 300x ./cmd/server
func BenchmarkIngestMix(b *testing.B) {
	clients := 16
	if n, err := strconv.Atoi(os.Getenv("CAIRN_BENCH_CLIENTS")); err == nil && n > 0 {
		clients = n
	}
	const users = 50_000
	url, admin, tenant, key, stop := benchTenant(b)
	defer stop()
	_, t := call(b, "POST", url+"/v1/tenants/"+tenant+"/tokens", admin, `{"scopes":["profiles:read"]}`)
	token := t["token"].(string)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients + 1}}

	// /healthz from as many clients for a second: the baseline.
	var healthz atomic.Int64
	hzStart := time.Now()
	var hwg sync.WaitGroup
	for range clients {
		hwg.Go(func() {
			for time.Since(hzStart) < time.Second {
				res, err := client.Get(url + "/healthz")
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				healthz.Add(1)
			}
		})
	}
	hwg.Wait()
	healthzRate := float64(healthz.Load()) / time.Since(hzStart).Seconds()

	// The bodies are made before the clock starts: the load generator
	// shares the machine's cores with the server.
	rng := rand.New(rand.NewPCG(1, uint64(b.N)))
	bodies := make([][]byte, b.N)
	idents := make([][]int, b.N)
	for n := range bodies {
		bodies[n], idents[n] = mixBody(rng, n, users)
	}

	// The sampler checks one batch at a time: after its 2xx, it polls the
	// profile of the anonymousId of the batch's last identify until the
	// profile holds that identify's userId.
	type sample struct {
		user int
		at   time.Time
	}
	samples := make(chan sample, 1)
	var lags []time.Duration
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		for s := range samples {
			path := fmt.Sprintf("%s/v1/tenants/%s/profiles?identifier=anonymous_id:anon-%d", url, tenant, s.user)
			want := fmt.Sprintf("user-%d", s.user)
			for {
				if resolved(client, path, token, want) {
					lags = append(lags, time.Since(s.at))
					break
				}
				if time.Since(s.at) > time.Minute {
					b.Errorf("anon-%d not resolved to %s after a minute", s.user, want)
					break
				}
				time.Sleep(2 * time.Millisecond) // polling pace
			}
		}
	}()

	var accepted atomic.Int64
	lat := make([]time.Duration, b.N)
	post := func(n int) {
		req, _ := http.NewRequest("POST", url+"/v1/batch", bytes.NewReader(bodies[n]))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		res, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		var out struct {
			Accepted int `json:"accepted"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		done := time.Now()
		lat[n] = done.Sub(t0)
		if res.StatusCode != 200 || err != nil {
			b.Errorf("status %d, %v", res.StatusCode, err)
			return
		}
		accepted.Add(int64(out.Accepted))
		if ids := idents[n]; len(ids) > 0 {
			select {
			case samples <- sample{user: ids[len(ids)-1], at: done}:
			default: // the sampler is busy
			}
		}
	}
	b.ResetTimer()
	cpu0, start := cpuSeconds(), time.Now()
	var wg sync.WaitGroup
	work := make(chan int, clients)
	for range clients {
		wg.Go(func() {
			for n := range work {
				post(n)
			}
		})
	}
	for n := range bodies {
		work <- n
	}
	close(work)
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuSeconds()-cpu0
	b.StopTimer()
	close(samples)
	<-samplerDone

	b.ReportMetric(float64(accepted.Load())/elapsed.Seconds(), "events/s")
	b.ReportMetric(cpu/elapsed.Seconds(), "cpu-s/s")
	b.ReportMetric(healthzRate, "healthz-req/s")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	if len(lags) > 0 {
		slices.Sort(lags)
		b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "lag-p99-ms")
	}
}

// resolved reports whether the profile at path holds the user_id want.
func resolved(client *http.Client, path, token, want string) bool {
	req, _ := http.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		_, _ = io.Copy(io.Discard, res.Body)
		return false
	}
	var p struct {
		Identifiers []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"identifiers"`
	}
	if json.NewDecoder(res.Body).Decode(&p) != nil {
		return false
	}
	return slices.ContainsFunc(p.Identifiers, func(id struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}) bool {
		return id.Type == "user_id" && id.Value == want
	})
}
