package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchTenant starts a server on the embedded default and returns its URL,
// an admin token, an active pooled tenant and a write key for it.
func benchTenant(b *testing.B) (url, admin, tenant, key string, stop func()) {
	dir := b.TempDir()
	vars := map[string]string{"CAIRN_DATA_DIR": dir, "CAIRN_STACK_POLL_INTERVAL": "100ms", "CAIRN_LOG_LEVEL": "error"}
	admin, err := runToken(b, "--admin", "--data-dir", dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	url, done := startServer(b, ctx, vars)
	_, t := call(b, "POST", url+"/v1/tenants", admin, `{"name":"Bench","slug":"bench","tier":"pooled","home_region":"eu-west-1"}`)
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
	events := make([]map[string]any, 100)
	for i := range events {
		id := seq.Add(1)
		user := fmt.Sprintf("user-%d", id%int64(users))
		ev := map[string]any{"messageId": fmt.Sprintf("m-%d-%d", n, id), "userId": user, "timestamp": time.Now().UTC().Format(time.RFC3339Nano)}
		if id%3 == 0 {
			ev["type"], ev["traits"] = "identify", map[string]any{"email": user + "@example.com", "plan": "pro"}
			ev["anonymousId"] = fmt.Sprintf("anon-%d", id)
		} else {
			ev["type"], ev["event"], ev["properties"] = "track", "Viewed", map[string]any{"page": id}
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
//	go test -run '^$' -bench IngestBatches -benchtime 400x ./cmd/server
func BenchmarkIngestBatches(b *testing.B) {
	clients := 16
	if n, err := strconv.Atoi(os.Getenv("CAIRN_BENCH_CLIENTS")); err == nil && n > 0 {
		clients = n
	}
	url, _, _, key, stop := benchTenant(b)
	defer stop()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
	var seq atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	post := func(body []byte) {
		req, _ := http.NewRequest("POST", url+"/v1/batch", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Errorf("status %d", res.StatusCode)
		}
	}
	// The bodies are made before the clock starts: the load generator
	// shares the machine's cores with the server.
	bodies := make([][]byte, b.N)
	for n := range bodies {
		bodies[n] = batchBody(n, 5000, &seq)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan []byte, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range work {
				post(body)
			}
		}()
	}
	for _, body := range bodies {
		work <- body
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "events/s")
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
