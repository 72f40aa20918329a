package sqlitestore_test

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/sqlitestore"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// benchProfiles is how many profiles the read benchmarks spread over.
const benchProfiles = 10_000

// benchData is a profile document of a realistic size.
var benchData = []byte(`{"traits":{"email":"someone@example.com","name":"Some One","plan":"pro","country":"FR"},` +
	`"identifiers":[{"type":"email","value":"someone@example.com"},{"type":"user_id","value":"u_0123456789"}],` +
	`"first_seen":"2024-01-01T00:00:00Z","last_seen":"2024-06-01T00:00:00Z","event_count":1234}`)

// seed writes benchProfiles profiles of tenant and returns their keys.
func seed(b *testing.B, s *sqlitestore.Store, tenant string) []profiles.Key {
	b.Helper()
	keys := make([]profiles.Key, benchProfiles)
	items := make([]profiles.Item, 0, 1000)
	for i := range keys {
		keys[i] = profiles.Key{PK: pk(tenant, fmt.Sprintf("PROFILE#%08d", i)), SK: "META"}
		items = append(items, profiles.Item{PK: keys[i].PK, SK: "META", Data: benchData,
			GSI1PK: pk(tenant, fmt.Sprintf("EMAIL#%d@example.com", i)), GSI1SK: keys[i].PK})
		if len(items) == cap(items) {
			if err := s.PutBatch(b.Context(), items); err != nil {
				b.Fatal(err)
			}
			items = items[:0]
		}
	}
	return keys
}

// BenchmarkGet reads random profiles from all CPUs.
func BenchmarkGet(b *testing.B) {
	s := open(b, sqlitestore.Config{})
	keys := seed(b, s, tenants.NewID())
	b.ReportAllocs()
	m := startMeter(b)
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			if _, ok, err := s.Get(b.Context(), keys[r.IntN(len(keys))]); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	m.report("gets/s")
}

// BenchmarkQuery reads one gsi1 partition (an identifier lookup) from all
// CPUs.
func BenchmarkQuery(b *testing.B) {
	s := open(b, sqlitestore.Config{})
	tenant := tenants.NewID()
	seed(b, s, tenant)
	b.ReportAllocs()
	m := startMeter(b)
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			got, err := s.Query(b.Context(), profiles.QueryInput{
				PK: pk(tenant, fmt.Sprintf("EMAIL#%d@example.com", r.IntN(benchProfiles))), Index: "gsi1", Limit: 1,
			})
			if err != nil || len(got) != 1 {
				b.Fatal(len(got), err)
			}
		}
	})
	m.report("queries/s")
}

// BenchmarkTransact commits the transaction of a new visitor's first
// event: claim an identifier and create the profile (IfAbsent), append the
// event, and record its deduplication marker (IfAbsent, with a TTL).
// "serial" is one caller at a time, so each commit is its own fsync;
// "parallel" is 32 callers per CPU (64 with -cpu 2), which group commit
// serves with few fsyncs.
func BenchmarkTransact(b *testing.B) {
	for _, bc := range []struct {
		name        string
		parallelism int
	}{{"serial", 0}, {"parallel", 32}} {
		b.Run(bc.name, func(b *testing.B) {
			s := open(b, sqlitestore.Config{})
			tenant := tenants.NewID()
			var seq atomic.Int64
			b.ReportAllocs()
			m := startMeter(b)
			tx := func() {
				n := seq.Add(1)
				profile := pk(tenant, fmt.Sprintf("PROFILE#%d", n))
				ops := []profiles.Op{
					{Put: &profiles.Item{PK: pk(tenant, fmt.Sprintf("IDENT#email#%d", n)), SK: "IDENT", Data: []byte(`{"profile":"p"}`)}, IfAbsent: true},
					{Put: &profiles.Item{PK: profile, SK: "META", Data: benchData}, IfAbsent: true},
					{Put: &profiles.Item{PK: profile, SK: fmt.Sprintf("EVENT#%d", n), Data: benchData}},
					{Put: &profiles.Item{PK: pk(tenant, fmt.Sprintf("DEDUP#%d", n)), SK: "DEDUP", ExpiresAt: time.Now().Unix() + 86400}, IfAbsent: true},
				}
				if err := s.Transact(b.Context(), ops); err != nil {
					b.Fatal(err)
				}
			}
			if bc.parallelism == 0 {
				for b.Loop() {
					tx()
				}
			} else {
				b.SetParallelism(bc.parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						tx()
					}
				})
			}
			m.report("tx/s")
		})
	}
}

// BenchmarkResolve is identity resolution's load on the store, one
// benchmark op per event: look the identifier up (Query gsi1), read the
// profile and the dedup record (Get), then one Transact writing the
// event, the dedup record and the profile (IfVersion). Reported as
// events/s across 32 concurrent callers per CPU (as concurrent ingest
// requests would be).
func BenchmarkResolve(b *testing.B) {
	s := open(b, sqlitestore.Config{})
	tenant := tenants.NewID()
	keys := seed(b, s, tenant)
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	m := startMeter(b)
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		ctx := b.Context()
		for pb.Next() {
			n := seq.Add(1)
			i := r.IntN(len(keys))
			if _, err := s.Query(ctx, profiles.QueryInput{PK: pk(tenant, fmt.Sprintf("EMAIL#%d@example.com", i)), Index: "gsi1", Limit: 1}); err != nil {
				b.Fatal(err)
			}
			dedup := profiles.Key{PK: pk(tenant, fmt.Sprintf("DEDUP#%d", n)), SK: "DEDUP"}
			if _, _, err := s.Get(ctx, dedup); err != nil {
				b.Fatal(err)
			}
			for {
				p, ok, err := s.Get(ctx, keys[i])
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
				err = s.Transact(ctx, []profiles.Op{
					{Put: &profiles.Item{PK: dedup.PK, SK: dedup.SK, ExpiresAt: time.Now().Unix() + 86400}, IfAbsent: true},
					{Put: &profiles.Item{PK: keys[i].PK, SK: fmt.Sprintf("EVENT#%d", n), Data: benchData}},
					{Put: &p, IfVersion: p.Version},
				})
				if err == nil {
					break
				}
				if err != profiles.ErrConditionFailed {
					b.Fatal(err)
				}
			}
		}
	})
	m.report("events/s")
}

// meter measures a benchmark's rate and the CPU time (user + system, of
// the whole process, the writer goroutine included) per op. On a shared
// machine the CPU time is the steadier figure: 2e9 divided by it bounds the
// ops/s that 2 idle cores sustain.
type meter struct {
	b   *testing.B
	cpu time.Duration
}

// startMeter resets the benchmark timer and starts measuring.
func startMeter(b *testing.B) *meter {
	b.ResetTimer()
	return &meter{b: b, cpu: cpuTime(b)}
}

func (m *meter) report(unit string) {
	m.b.ReportMetric(float64(m.b.N)/m.b.Elapsed().Seconds(), unit)
	m.b.ReportMetric(float64(cpuTime(m.b)-m.cpu)/float64(m.b.N), "cpu-ns/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBatchGet reads batches of 300 keys, two thirds present, from 16
// goroutines: an ingestion batch's read.
func BenchmarkBatchGet(b *testing.B) {
	s := open(b, sqlitestore.Config{})
	tenant := tenants.NewID()
	keys := seed(b, s, tenant)
	b.ReportAllocs()
	b.SetParallelism(8)
	m := startMeter(b)
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		batch := make([]profiles.Key, 300)
		for pb.Next() {
			for i := range batch {
				if i%3 == 2 {
					batch[i] = profiles.Key{PK: pk(tenant, fmt.Sprintf("MISSING#%d", r.IntN(1e9))), SK: "META"}
				} else {
					batch[i] = keys[r.IntN(len(keys))]
				}
			}
			if got, err := s.BatchGet(b.Context(), batch); err != nil || len(got) < 150 {
				b.Fatal(len(got), err)
			}
		}
	})
	m.report("batches/s")
}
