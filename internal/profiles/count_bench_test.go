package profiles_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// BenchmarkIngestNewProfiles ingests batches of 100 identifies of new
// customers on the embedded store, every event a new profile (and its
// profile index item): the ingestion the index costs most. It reports
// events/s and the process's CPU time per event, the steadier figure on a
// shared machine.
//
//	go test -run '^$' -bench IngestNewProfiles -benchtime 200x ./internal/profiles
func BenchmarkIngestNewProfiles(b *testing.B) {
	f := newFixture(b, sqliteStore(b))
	ctx := context.Background()
	batches := make([][]profiles.Event, b.N)
	for n := range batches {
		for i := range 100 {
			batches[n] = append(batches[n], f.ev(map[string]any{"userId": fmt.Sprintf("u-%d-%d", n, i), "plan": "free"}))
		}
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	start, used := time.Now(), cpu()
	for _, batch := range batches {
		if _, err := f.svc.Ingest(ctx, f.tenant, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(cpu()-used)/float64(b.N*100), "cpu-ns/event")
}
