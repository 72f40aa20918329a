package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWebhookDelivery measures activation through the real server on
// the embedded default: identifies of new users with plan pro, each making
// a profile (profile.created) that enters the segment (segment.entered),
// from 8 clients (CAIRN_BENCH_CLIENTS to change), to a healthy local
// receiver. The tenants' plan (benchPlan) has no limit the benchmark
// reaches: the default plan's rates (100 requests a second per token)
// would measure the limiter. Beside it, in the same run and on the same
// server:
//
//   - no-endpoint: the same identifies for a tenant with the segment but
//     no webhook endpoint (ingestion and evaluation without activation);
//   - healthz: GET /healthz from the same clients (the server's floor).
//
// webhooks reports deliveries/s (2xx requests the receiver got, over the
// time from the first identify to the last delivery) and the latency from
// an identify's acknowledgement to the receiver getting its
// segment.entered, p50-ms and p99-ms; a delivery that arrives before its
// acknowledgement counts as 0 (early/op says how often).
//
//	go test -run '^$' -bench WebhookDelivery -benchtime 2000x ./cmd/server
func BenchmarkWebhookDelivery(b *testing.B) {
	clients := 8
	if n, err := strconv.Atoi(os.Getenv("CAIRN_BENCH_CLIENTS")); err == nil && n > 0 {
		clients = n
	}
	dir := b.TempDir()
	admin, err := runToken(b, "--admin", "--data-dir", dir)
	if err != nil {
		b.Fatal(err)
	}
	rcv := newBenchReceiver()
	hooks := &http.Server{Handler: rcv}
	ln := benchListen(b)
	go func() { _ = hooks.Serve(ln) }()
	defer hooks.Close()
	base, _ := startServer(b, b.Context(), activationVars(dir))
	if status, p := call(b, "PUT", base+"/v1/plans/bench", admin, benchPlan); status != http.StatusCreated {
		b.Fatalf("bench plan: %d %v", status, p)
	}
	withHook := setUpActivationPlan(b, base, admin, "bench-hooks", "http://"+ln.Addr().String()+"/hook", "bench")
	noHook := setUpActivationPlan(b, base, admin, "bench-plain", "http://"+ln.Addr().String()+"/hook", "bench")
	if status, _ := call(b, "DELETE", base+"/v1/tenants/"+noHook.ID+"/webhooks/"+noHook.Endpoint, noHook.Token, ""); status != http.StatusNoContent {
		b.Fatalf("delete endpoint: %d", status)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var seq atomic.Int64

	// run calls op(i) for i in [0, b.N) from the clients. A failed op
	// fails the benchmark (b.Error: b.Fatal may only be called from the
	// benchmark's goroutine) and the clients skip the rest, so that run
	// returns; it reports whether every op succeeded.
	run := func(b *testing.B, op func(i int) error) bool {
		var wg sync.WaitGroup
		var failed atomic.Bool
		work := make(chan int, clients)
		for range clients {
			wg.Go(func() {
				for i := range work {
					if failed.Load() {
						continue
					}
					if err := op(i); err != nil {
						failed.Store(true)
						b.Error(err)
					}
				}
			})
		}
		for i := range b.N {
			work <- i
		}
		close(work)
		wg.Wait()
		return !failed.Load()
	}

	b.Run("healthz", func(b *testing.B) {
		start := time.Now()
		run(b, func(int) error {
			res, err := client.Get(base + "/healthz")
			if err != nil {
				return fmt.Errorf("healthz: %w", err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("healthz: %d", res.StatusCode)
			}
			return nil
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
	})

	b.Run("no-endpoint", func(b *testing.B) {
		lat := make([]time.Duration, b.N)
		start := time.Now()
		if !run(b, func(i int) error {
			t0 := time.Now()
			err := postIdentify(client, base, noHook, fmt.Sprintf("plain-%d", seq.Add(1)), "pro")
			lat[i] = time.Since(t0)
			return err
		}) {
			return
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		b.ReportMetric(pct(lat, 50), "ack-p50-ms")
		b.ReportMetric(pct(lat, 99), "ack-p99-ms")
	})

	b.Run("webhooks", func(b *testing.B) {
		users := make([]string, b.N)
		acked := make([]time.Time, b.N)
		ack := make([]time.Duration, b.N)
		for i := range users {
			users[i] = fmt.Sprintf("hook-%d", seq.Add(1))
		}
		got0 := rcv.count.Load()
		start := time.Now()
		if !run(b, func(i int) error {
			t0 := time.Now()
			err := postIdentify(client, base, withHook, users[i], "pro")
			acked[i] = time.Now()
			ack[i] = acked[i].Sub(t0)
			return err
		}) {
			return // the deliveries of refused identifies never come
		}
		sent := time.Since(start)
		// Every segment.entered arrives, or the benchmark fails.
		deadline := time.Now().Add(2 * time.Minute)
		var arrived []time.Time
		for {
			var missing int
			arrived, missing = rcv.entered(users)
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d segment.entered not delivered after 2 minutes", missing, len(users))
			}
			rcv.wait(100 * time.Millisecond)
		}
		last := slices.MaxFunc(arrived, func(a, b time.Time) int { return a.Compare(b) })
		lat := make([]time.Duration, b.N)
		early := 0
		for i := range lat {
			if lat[i] = arrived[i].Sub(acked[i]); lat[i] < 0 {
				lat[i], early = 0, early+1
			}
		}
		b.ReportMetric(float64(rcv.count.Load()-got0)/last.Sub(start).Seconds(), "deliveries/s")
		b.ReportMetric(float64(b.N)/sent.Seconds(), "events/s")
		b.ReportMetric(pct(lat, 50), "p50-ms")
		b.ReportMetric(pct(lat, 99), "p99-ms")
		b.ReportMetric(pct(lat, 100), "max-ms")
		b.ReportMetric(pct(ack, 99), "ack-p99-ms")
		b.ReportMetric(float64(early)/float64(b.N), "early/op")
	})
}

// pct returns the p-th percentile of ds in milliseconds.
func pct(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, int(float64(len(s))*p/100))
	return float64(s[i].Microseconds()) / 1000
}

// benchReceiver answers 204 to every request and notes when each user's
// segment.entered arrived.
type benchReceiver struct {
	count  atomic.Int64
	mu     sync.Mutex
	at     map[string]time.Time
	notify chan struct{}
}

func newBenchReceiver() *benchReceiver {
	return &benchReceiver{at: map[string]time.Time{}, notify: make(chan struct{}, 1)}
}

func (r *benchReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	var p struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	_ = jsonDecode(req, &p)
	r.count.Add(1)
	if p.Type == "segment.entered" {
		r.mu.Lock()
		user := identifierValue(p.Data, "user_id")
		if _, ok := r.at[user]; !ok {
			r.at[user] = now
		}
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// entered returns when each user's segment.entered arrived, and how many
// have not.
func (r *benchReceiver) entered(users []string) ([]time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Time, len(users))
	missing := 0
	for i, u := range users {
		t, ok := r.at[u]
		if !ok {
			missing++
		}
		out[i] = t
	}
	return out, missing
}

// wait returns when a segment.entered arrives, or after d.
func (r *benchReceiver) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.notify:
	case <-t.C:
	}
}

func jsonDecode(req *http.Request, v any) error { return json.NewDecoder(req.Body).Decode(v) }

func benchListen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}
