package duckdb_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/lake/duckdb"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// rawEvent returns a Segment-shaped event of the kind libraries send (a
// few hundred bytes, context included), of user u.
func rawEvent(r *rand.Rand, i, u int, at time.Time) string {
	ts := at.Add(-time.Duration(r.IntN(3600)) * time.Second).Format(time.RFC3339Nano)
	ctx := fmt.Sprintf(`"context":{"library":{"name":"analytics-go","version":"3.3.0"},"ip":"203.0.113.%d","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","locale":"en-GB","page":{"path":"/p/%d","url":"https://example.com/p/%d"}}`, r.IntN(250), r.IntN(500), r.IntN(500))
	switch k := r.IntN(10); {
	case k < 6:
		return fmt.Sprintf(`{"type":"track","messageId":"msg-%d","userId":"user-%d","event":"Event %d","timestamp":%q,"properties":{"plan":"pro","value":%d,"currency":"EUR","sku":"sku-%d"},%s}`, i, u, r.IntN(20), ts, r.IntN(1000), r.IntN(10000), ctx)
	case k < 8:
		return fmt.Sprintf(`{"type":"page","messageId":"msg-%d","anonymousId":"anon-%d","name":"Page %d","timestamp":%q,"properties":{"title":"Title","referrer":"https://search.example/"},%s}`, i, u, r.IntN(50), ts, ctx)
	case k < 9:
		return fmt.Sprintf(`{"type":"identify","messageId":"msg-%d","userId":"user-%d","anonymousId":"anon-%d","timestamp":%q,"traits":{"email":"user%d@example.com","plan":"pro","age":%d},%s}`, i, u, u, ts, u, 18+r.IntN(60), ctx)
	default:
		return fmt.Sprintf(`{"type":"screen","messageId":"msg-%d","userId":"user-%d","name":"Screen %d","timestamp":%q,%s}`, i, u, r.IntN(30), ts, ctx)
	}
}

// BenchmarkRefine refines one raw partition of 200,000 events (objects of
// 5,000 lines, as the ingestion's coalescer writes them under load, 1% of
// them copies) for 20,000 profiles, and reports the raw events refined per
// second (and per CPU second), the clean zone's bytes per raw byte
// (compressed, as stored) and per uncompressed raw byte, and each step's
// time; beside it, as its baseline, reading the partition's lines alone.
func BenchmarkRefine(b *testing.B) {
	const events, users, perObject = 200_000, 20_000, 5_000
	root := b.TempDir()
	// Where the time goes: the engine's step timings, summed.
	steps := &stepTimes{d: map[string]time.Duration{}}
	e, err := duckdb.New(duckdb.Config{Root: root, Logger: slog.New(steps)})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	r := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)
	var rawText int64
	for o := 0; o*perObject < events; o++ {
		lines := make([]string, 0, perObject+perObject/100)
		for i := o * perObject; i < (o+1)*perObject; i++ {
			lines = append(lines, rawEvent(r, i, r.IntN(users), at))
			if i%100 == 0 { // a redelivered copy
				lines = append(lines, lines[len(lines)-1])
			}
		}
		for _, l := range lines {
			rawText += int64(len(l)) + 1
		}
		writeRaw(b, root, at.Add(time.Duration(o)*time.Millisecond), strings.Join(lines, "\n"))
	}
	var snap profiles.Snapshot
	for u := range users {
		id := fmt.Sprintf("prof_%d", u)
		snap.Members = append(snap.Members, profiles.SnapshotMember{ID: id, Root: id, CreatedAt: at})
		snap.Identifiers = append(snap.Identifiers,
			profiles.SnapshotIdentifier{Member: id, Type: "user_id", Value: fmt.Sprintf("user-%d", u), FirstSeen: at},
			profiles.SnapshotIdentifier{Member: id, Type: "anonymous_id", Value: fmt.Sprintf("anon-%d", u), FirstSeen: at})
	}
	parts, err := e.RawPartitions(b.Context(), loc)
	if err != nil || len(parts) != 1 {
		b.Fatalf("%v %v", parts, err)
	}
	var rawBytes int64
	for _, o := range parts[0].Objects {
		rawBytes += o.Size
	}
	// The baseline, in the same run: reading the raw partition's lines,
	// every field, and nothing more.
	b.Run("baseline=read_raw", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			n, err := e.ScanRaw(b.Context(), loc, parts[0])
			if err != nil || n != events+events/100 {
				b.Fatalf("%d lines, %v", n, err)
			}
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(events)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu_s")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("refine", func(b *testing.B) { benchRefine(b, e, parts[0], snap, steps, events, rawBytes, rawText) })
}

func benchRefine(b *testing.B, e *duckdb.Engine, rp lake.RawPartition, snap profiles.Snapshot, steps *stepTimes, events, rawBytes, rawText int64) {
	var stats []lake.TableStats
	var err error
	clear(steps.d)
	cpu0 := cpuTime()
	for b.Loop() {
		stats, err = e.Refine(b.Context(), lake.RefineInput{Location: loc, Partition: rp, Snapshot: snap})
		if err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	var rows, clean int64
	for _, s := range stats {
		rows += s.Rows
		clean += s.Bytes
	}
	if rows != events {
		b.Fatalf("%d rows refined, want %d", rows, events)
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// On a shared machine wall time says as much about the neighbours:
	// events per second of this process's CPU time says what it costs.
	b.ReportMetric(float64(events)*float64(b.N)/cpu.Seconds(), "events/cpu_s")
	b.ReportMetric(float64(clean)/float64(rawBytes), "clean_B/raw_B")
	b.ReportMetric(float64(clean)/float64(rawText), "clean_B/raw_text_B")
	b.ReportMetric(0, "ns/op")
	for _, k := range slices.Sorted(maps.Keys(steps.d)) {
		b.ReportMetric(steps.d[k].Seconds()/float64(b.N), k+"_s/op")
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stepTimes is a slog handler adding up the durations logged.
type stepTimes struct {
	mu sync.Mutex
	d  map[string]time.Duration
}

func (h *stepTimes) Enabled(context.Context, slog.Level) bool { return true }
func (h *stepTimes) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *stepTimes) WithGroup(string) slog.Handler            { return h }
func (h *stepTimes) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindDuration {
			h.d[a.Key] += a.Value.Duration()
		}
		return true
	})
	return nil
}

// BenchmarkQuery runs a tenant's query over 10 million clean-zone events
// (count by event name per day) in the sandbox, as the query API runs it:
// the tracks table of 30 days of 24 hourly partitions, written as the
// refinery writes them (zstd Parquet, the clean columns). Under -short it
// runs over 100,000 events. It reports the events read per second and the
// query's time, beside the CPU time it took.
func BenchmarkQuery(b *testing.B) {
	events := 10_000_000
	if testing.Short() {
		events = 100_000
	}
	const days, hours = 30, 24
	e, err := duckdb.New(duckdb.Config{Root: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	perPartition := events / (days * hours)
	writeTracks(b, e, days, hours, perPartition)
	querier := duckdb.NewQuerier(e, duckdb.QuerierConfig{})
	sql := `SELECT CAST("timestamp" AS DATE) AS day, event, count(*) AS events FROM tracks GROUP BY ALL ORDER BY day, event`
	var st lake.QueryStats
	cpu0 := cpuTime()
	for b.Loop() {
		var res countRows
		st, err = querier.RunQuery(b.Context(), lake.QueryInput{Location: loc, SQL: sql}, &res)
		if err != nil {
			b.Fatal(err)
		}
		if res.sum != int64(perPartition*days*hours) || st.Rows != days*40 {
			b.Fatalf("%d events in %d rows", res.sum, st.Rows)
		}
	}
	cpu := cpuTime() - cpu0
	n := float64(perPartition * days * hours)
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/query")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu_s/query")
	b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(st.BytesScanned), "bytes_scanned")
	b.ReportMetric(0, "ns/op")
}

// countRows sums a result's events column.
type countRows struct{ sum int64 }

func (c *countRows) Columns([]lake.ResultColumn) error { return nil }
func (c *countRows) Row(vals []any) error {
	c.sum += vals[2].(int64)
	return nil
}

// writeTracks writes the tracks table of days of hourly partitions of
// perPartition events each, as the refinery writes it: its columns and
// types, zstd Parquet, a file per partition.
func writeTracks(t testing.TB, e *duckdb.Engine, days, hours, perPartition int) {
	tracks, _ := lake.TableNamed("tracks")
	dir := e.TableDir(loc, tracks)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for d := range days {
		for h := range hours {
			at := start.Add(time.Duration(d*24+h) * time.Hour)
			file := filepath.Join(dir, "dt="+at.Format("2006-01-02"), "hh="+at.Format("15"), "data.parquet")
			if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
				t.Fatal(err)
			}
			q := fmt.Sprintf(`COPY (SELECT 'msg-%[1]d-' || i AS message_id, 'track' AS type, 'Event ' || ((i * 7 + %[1]d) %% 40) AS event,
  'user-' || (i %% 20000) AS user_id, NULL::VARCHAR AS anonymous_id, 'prof_' || (i %% 20000) AS profile_id,
  TIMESTAMP '%[2]s' + to_microseconds(i * 3600000000 // %[3]d) AS "timestamp", TIMESTAMP '%[2]s' + to_microseconds(i * 3600000000 // %[3]d) AS received_at,
  'analytics-go' AS source, NULL::VARCHAR AS group_id, NULL::VARCHAR AS previous_id,
  ('{"plan":"pro","value":' || (i %% 1000) || '}')::JSON AS properties, NULL::JSON AS traits, '{"library":{"name":"analytics-go"}}'::JSON AS context
FROM range(%[3]d) t(i)) TO '%[4]s' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)`, d*24+h, at.Format("2006-01-02 15:04:05"), perPartition, file)
			if _, err := e.DB().ExecContext(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
	}
}
