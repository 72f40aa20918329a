package profiles_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/profiles"
)

// benchSegments makes n segments of the tenant, mixed: trait rules, event
// counts within a window, event rules with a property filter, and a few
// built on other segments, then computes them at once, as the server's
// jobs would (each with an event rule new to the tenant waits a second
// before its backfill: one after the other, they would take a minute).
func benchSegments(b *testing.B, f *fixture, n int) {
	ctx := context.Background()
	var made []string
	var jobs []profiles.RecomputeArgs
	for i := range n {
		var def string
		switch i % 4 {
		case 0:
			def = fmt.Sprintf(`{"trait": "plan", "operator": "equals", "value": "p%d"}`, i%7)
		case 1:
			def = fmt.Sprintf(`{"event": "E%d", "count": {"operator": "at_least", "value": 2}, "within": "7d"}`, i%10)
		case 2:
			def = fmt.Sprintf(`{"all": [{"event": "E%d", "where": [{"property": "total", "operator": "gte", "value": %d}]}, {"trait": "plan", "operator": "exists"}]}`, i%10, i)
		default:
			def = fmt.Sprintf(`{"any": [{"segment": %q}, {"trait": "name", "operator": "starts_with", "value": "A"}]}`, made[len(made)-1])
		}
		node, err := profiles.ParseDefinition([]byte(def), "/definition")
		if err != nil {
			b.Fatal(err)
		}
		g, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: fmt.Sprint("s", i), Definition: &node}, func(_ context.Context, a profiles.RecomputeArgs) error {
			jobs = append(jobs, a)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		made = append(made, g.ID)
	}
	// Computed, as the server's jobs would be: the event leaves' backfill
	// is done, so aggregates stop listing the events markers counted.
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Go(func() { errs[i] = f.svc.RunRecompute(ctx, job) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIngestSegments ingests batches of 100 events (4 tracks to 1
// identify, of 1,000 known customers) with no segment, and with 100 mixed
// segments, which each event's evaluation reads through the index of what
// they reference. Compare the events/s figures of one run. An identify
// sends the customer's traits again, as clients do, and changes the plan
// one time in ten; with churn, every identify changes both traits (which
// re-evaluates 75 of the segments), the worst case.
func BenchmarkIngestSegments(b *testing.B) {
	for _, c := range []struct {
		segments int
		churn    bool
	}{{0, false}, {100, false}, {100, true}} {
		n := c.segments
		name := fmt.Sprint("segments=", n)
		if c.churn {
			name += "/churn"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, sqliteStore(b))
			benchSegments(b, f, n)
			ctx := context.Background()
			seq := 0
			batch := func() []profiles.Event {
				evs := make([]profiles.Event, 100)
				for i := range evs {
					seq++
					u := seq % 1000
					raw := fmt.Sprintf(`{"type":"track","event":"E%d","userId":"u%d","messageId":"m%d","properties":{"total":%d},"timestamp":%q}`,
						seq%10, u, seq, seq%200, time.Now().UTC().Format(time.RFC3339Nano))
					if seq%5 == 0 {
						plan, name := u%7, u // as before, most times
						if c.churn || seq%50 == 0 {
							plan, name = seq%7, seq
						}
						raw = fmt.Sprintf(`{"type":"identify","userId":"u%d","messageId":"m%d","traits":{"plan":"p%d","name":"A%d"},"timestamp":%q}`,
							u, seq, plan, name, time.Now().UTC().Format(time.RFC3339Nano))
					}
					e, err := profiles.ParseEvent(0, []byte(raw), "", time.Now())
					if err != nil {
						b.Fatal(err)
					}
					evs[i] = e
				}
				return evs
			}
			for range 10 { // the customers exist
				if _, err := f.svc.Ingest(ctx, f.tenant, batch()); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			cpu := cpuTime(b)
			for b.Loop() {
				b.StopTimer()
				evs := batch()
				b.StartTimer()
				if _, err := f.svc.Ingest(ctx, f.tenant, evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
			// On a shared machine the wall clock depends on the neighbours;
			// the CPU an event costs (the whole process's, the store's
			// writer included) much less.
			b.ReportMetric(float64((cpuTime(b)-cpu).Microseconds())/float64(b.N*100), "cpu-µs/event")
		})
	}
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecompute computes one trait segment over 100,000 profiles on
// the embedded store.
func BenchmarkRecompute(b *testing.B) {
	f := newFixture(b, sqliteStore(b))
	ctx := context.Background()
	const profilesN = 100_000
	for start := 0; start < profilesN; start += 500 {
		evs := make([]profiles.Event, 500)
		for i := range evs {
			raw := fmt.Sprintf(`{"type":"identify","userId":"u%d","messageId":"m%d","traits":{"plan":"p%d"}}`, start+i, start+i, (start+i)%3)
			e, err := profiles.ParseEvent(0, []byte(raw), "", time.Now())
			if err != nil {
				b.Fatal(err)
			}
			evs[i] = e
		}
		if _, err := f.svc.Ingest(ctx, f.tenant, evs); err != nil {
			b.Fatal(err)
		}
	}
	node, _ := profiles.ParseDefinition([]byte(`{"trait": "plan", "operator": "equals", "value": "p1"}`), "/definition")
	g, err := f.svc.CreateSegment(ctx, f.tenant, profiles.Segment{Name: "p1", Definition: &node}, func(context.Context, profiles.RecomputeArgs) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	flip := []string{"p1", "p2"}
	i := 0
	b.ResetTimer()
	for b.Loop() {
		// Each round moves the segment to the other third of the profiles,
		// so every round writes 2 × 33,333 transitions.
		b.StopTimer()
		v := flip[i%2]
		i++
		if _, err := f.svc.UpdateSegment(ctx, f.tenant, g.ID, 0, func(g *profiles.Segment) error {
			n, err := profiles.ParseDefinition(fmt.Appendf(nil, `{"trait": "plan", "operator": "equals", "value": %q}`, v), "/definition")
			g.Definition = &n
			return err
		}, func(context.Context, profiles.RecomputeArgs) error { return nil }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := f.svc.RunRecompute(ctx, profiles.RecomputeArgs{TenantID: f.tenant, SegmentID: g.ID}); err != nil {
			b.Fatal(err)
		}
	}
	n, _ := f.svc.MemberCount(ctx, f.tenant, g.ID)
	b.ReportMetric(float64(n), "members")
}
