package usage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)

func TestSpan(t *testing.T) {
	for _, tc := range []struct {
		from, to time.Time
		g        Granularity
		max      int
		want     string // aligned from..to, or the error
	}{
		{t0, t0.Add(time.Hour), Hour, 744, "10:00..12:00"},
		{t0, t0.Add(time.Minute), Day, 366, "2026-12-02T00:00..2026-12-03T00:00"},
		{t0, t0, Hour, 744, "to must be after from"},
		{t0, t0.Add(-time.Minute), Day, 366, "to must be after from"},
		{t0, t0.Add(745 * time.Hour), Hour, 744, "746 hours from"},
		{t0, t0.Add(time.Hour), "week", 744, `granularity "week"`},
	} {
		from, to, err := Span(tc.from, tc.to, tc.g, tc.max)
		got := ""
		switch {
		case err != nil:
			var re *RangeError
			if !errors.As(err, &re) {
				t.Errorf("%v: not a RangeError: %v", tc, err)
			}
			got = err.Error()
		case tc.g == Hour:
			got = from.Format("15:04") + ".." + to.Format("15:04")
		default:
			got = from.Format("2006-01-02T15:04") + ".." + to.Format("2006-01-02T15:04")
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("Span(%s, %s, %s) = %q, want %q", tc.from.Format(time.RFC3339), tc.to.Format(time.RFC3339), tc.g, got, tc.want)
		}
	}
}

// TestSeries: every bucket is present, zeros included; hours sum into
// their day; events are split by source; counts outside are ignored.
func TestSeries(t *testing.T) {
	day := t0.Truncate(24 * time.Hour)
	counts := []Count{
		{Hour: day.Add(time.Hour), Metric: EventsAccepted, Dimension: "src_a", Value: 2},
		{Hour: day.Add(5 * time.Hour), Metric: EventsAccepted, Dimension: "api", Value: 3},
		{Hour: day.Add(5 * time.Hour), Metric: APIRequests, Value: 7},
		{Hour: day.Add(50 * time.Hour), Metric: APIRequests, Value: 100},
	}
	got := Series(counts, day, day.Add(48*time.Hour), Day)
	if len(got) != 2 {
		t.Fatalf("%d buckets, want 2", len(got))
	}
	if got[0].Values[EventsAccepted] != 5 || got[0].Values[APIRequests] != 7 || got[0].Values[RawBytes] != 0 ||
		fmt.Sprint(got[0].BySource) != "map[api:3 src_a:2]" {
		t.Errorf("first day %+v", got[0])
	}
	if got[1].Values[APIRequests] != 0 || len(got[1].Values) != len(Metrics) {
		t.Errorf("second day %+v, want zeros for every metric", got[1])
	}
}

type memStore struct {
	Store
	added []Count
	fail  error
}

func (m *memStore) UsageAdd(_ context.Context, _ string, c []Count, _ time.Time) (bool, error) {
	if m.fail != nil {
		return false, m.fail
	}
	m.added = append(m.added, c...)
	return true, nil
}

// TestMeterFlush: counts of one hour, tenant, metric and dimension are
// summed; a nil meter, an empty tenant and a non-positive count count
// nothing; a failed flush is kept and sent again before newer counts.
func TestMeterFlush(t *testing.T) {
	var nilMeter *Meter
	nilMeter.Add("ten_a", APIRequests, "", 1) // no panic
	s := &memStore{}
	now := t0
	m := NewMeter(s, func() time.Time { return now }, nil)
	m.Add("ten_a", APIRequests, "", 1)
	m.Add("ten_a", APIRequests, "", 2)
	m.Add("", APIRequests, "", 5)
	m.Add("ten_a", APIRequests, "", 0)
	now = t0.Add(time.Hour)
	m.Add("ten_a", APIRequests, "", 4)
	unflushed := func(want int64) {
		t.Helper()
		if got := m.Unflushed("ten_a", APIRequests); got != want {
			t.Fatalf("Unflushed = %d, want %d", got, want)
		}
	}
	unflushed(7)
	s.fail = errors.New("down")
	if err := m.Flush(t.Context()); err == nil {
		t.Fatal("a failing store's flush succeeded")
	}
	// What a failed flush holds is not in the store yet.
	unflushed(7)
	if m.Flushes() != 0 {
		t.Fatalf("Flushes = %d after a failed flush", m.Flushes())
	}
	m.Add("ten_b", RawBytes, "", 9)
	s.fail = nil
	if err := m.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	unflushed(0)
	if m.Flushes() != 1 || m.Unflushed("ten_b", RawBytes) != 0 {
		t.Fatalf("after a flush: Flushes = %d, ten_b unflushed %d", m.Flushes(), m.Unflushed("ten_b", RawBytes))
	}
	m.Add("ten_a", APIRequests, "", 2)
	unflushed(2)
	var got []string
	for _, c := range s.added {
		got = append(got, fmt.Sprintf("%s %s %s %d", c.TenantID, c.Metric, c.Hour.Format("15:04"), c.Value))
	}
	want := "ten_a api_requests 10:00 3|ten_a api_requests 11:00 4|ten_b raw_bytes 11:00 9"
	if strings.Join(got, "|") != want {
		t.Errorf("flushed %q, want %q", strings.Join(got, "|"), want)
	}
}

// BenchmarkMeterAdd is the cost metering adds to a request: one Add, from
// many goroutines at once, as ingestion calls it.
func BenchmarkMeterAdd(b *testing.B) {
	m := NewMeter(&memStore{}, nil, nil)
	tenants := make([]string, 64)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("ten_%02d", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Add(tenants[i%len(tenants)], EventsAccepted, "src_1", 100)
			i++
		}
	})
}

// TestSeriesGauge: a gauge's bucket value is its latest sample in the
// bucket or in the hour before it, never a sum: per hour, an hour without
// a sample shows the hour before's; per day, the last hourly value.
func TestSeriesGauge(t *testing.T) {
	day := t0.Truncate(24 * time.Hour)
	counts := []Count{
		{Hour: day.Add(-time.Hour), Metric: Profiles, Value: 3}, // the day before's last hour
		{Hour: day.Add(time.Hour), Metric: Profiles, Value: 5},
		{Hour: day.Add(time.Hour), Metric: APIRequests, Value: 2},
		{Hour: day.Add(3 * time.Hour), Metric: Profiles, Value: 7},
		{Hour: day.Add(30 * time.Hour), Metric: Profiles, Value: 9},
	}
	var got []int64
	for _, b := range Series(counts, day, day.Add(6*time.Hour), Hour) {
		got = append(got, b.Values[Profiles])
	}
	if want := []int64{3, 5, 5, 7, 7, 0}; !slices.Equal(got, want) {
		t.Errorf("hourly profiles %v, want %v", got, want)
	}
	got = nil
	for _, b := range Series(counts, day, day.Add(72*time.Hour), Day) {
		got = append(got, b.Values[Profiles])
	}
	if want := []int64{7, 9, 0}; !slices.Equal(got, want) {
		t.Errorf("daily profiles %v, want %v (the last hourly value of each day)", got, want)
	}
	// A day with no sample of its own takes the one of the hour before it.
	got = nil
	for _, b := range Series(counts[:1], day, day.Add(48*time.Hour), Day) {
		got = append(got, b.Values[Profiles])
	}
	if want := []int64{3, 0}; !slices.Equal(got, want) {
		t.Errorf("daily profiles of the carried sample %v, want %v", got, want)
	}
}

// TestWriteCSVGauge: the report sums a counter over the day's hours only
// and gives a gauge's last hourly value of the day.
func TestWriteCSVGauge(t *testing.T) {
	day := t0.Truncate(24 * time.Hour)
	counts := []Count{
		{TenantID: "ten_a", Hour: day.Add(-time.Hour), Metric: APIRequests, Value: 100}, // the day before
		{TenantID: "ten_a", Hour: day.Add(-time.Hour), Metric: Profiles, Value: 1},
		{TenantID: "ten_a", Hour: day.Add(2 * time.Hour), Metric: APIRequests, Value: 2},
		{TenantID: "ten_a", Hour: day.Add(2 * time.Hour), Metric: Profiles, Value: 40},
		{TenantID: "ten_a", Hour: day.Add(5 * time.Hour), Metric: APIRequests, Value: 3},
		{TenantID: "ten_a", Hour: day.Add(5 * time.Hour), Metric: Profiles, Value: 38},
		{TenantID: "ten_b", Hour: day.Add(-time.Hour), Metric: Profiles, Value: 6}, // sampled last just before midnight
	}
	var buf strings.Builder
	if err := WriteCSV(&buf, day, counts); err != nil {
		t.Fatal(err)
	}
	d := day.Format(time.DateOnly)
	want := "date,tenant_id,metric,dimension,value\n" +
		d + ",ten_a,api_requests,,5\n" + d + ",ten_a,profiles,,38\n" + d + ",ten_b,profiles,,6\n"
	if buf.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// gaugeStore keeps samples as the stores do: the latest of each hour.
type gaugeStore struct {
	memStore
	mu      sync.Mutex
	kept    map[string]Sample // tenant/hour → the sample kept
	builds  map[string]IndexBuild
	writes  int
	failing bool
}

func (g *gaugeStore) UsageSample(_ context.Context, samples []Sample) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failing {
		return errors.New("down")
	}
	g.writes++
	for _, s := range samples {
		k := s.TenantID + "/" + s.At.Truncate(time.Hour).Format(time.RFC3339)
		if old, ok := g.kept[k]; !ok || !s.At.Before(old.At) {
			g.kept[k] = s
		}
	}
	return nil
}

func (g *gaugeStore) UsageIndexBuilds(context.Context) ([]IndexBuild, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []IndexBuild
	for _, b := range g.builds {
		out = append(out, b)
	}
	return out, nil
}

func (g *gaugeStore) UsageIndexBuilt(_ context.Context, tenant string, at time.Time, final bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if final {
		delete(g.builds, tenant)
	} else {
		g.builds[tenant] = IndexBuild{TenantID: tenant, BuiltAt: at}
	}
	return nil
}

func (g *gaugeStore) value(tenant string, hour time.Time) (int64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.kept[tenant+"/"+hour.Format(time.RFC3339)]
	return s.Value, ok
}

// fakeCounter is a profile service: counts by tenant, the changes noted.
type fakeCounter struct {
	mu      sync.Mutex
	counts  map[string]int64
	changed []string
	indexed []string
	reads   int
}

func (f *fakeCounter) ProfileCount(_ context.Context, tenant string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	n, ok := f.counts[tenant]
	if !ok {
		return 0, fmt.Errorf("tenant %s: %w", tenant, ErrNotCountable)
	}
	return n, nil
}

func (f *fakeCounter) IndexProfiles(_ context.Context, tenant string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.indexed = append(f.indexed, tenant)
	return nil
}

func (f *fakeCounter) CountsChanged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.changed
	f.changed = nil
	return out
}

func (f *fakeCounter) set(tenant string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[tenant] = n
	f.changed = append(f.changed, tenant)
}

type fakeTenants []string

func (f fakeTenants) LiveTenants(context.Context) ([]string, error) { return f, nil }

// TestSampler: a replica samples the tenants whose count it changed, a
// large one no more often than ProfileReadRate allows; a failed write is
// sampled again; the full pass samples every live tenant that has a store,
// building a pre-existing tenant's index first (and once more IndexSettle
// later); the changed loop leaves an unbuilt tenant alone.
func TestSampler(t *testing.T) {
	ctx := t.Context()
	now := t0
	clock := func() time.Time { return now }
	st := &gaugeStore{kept: map[string]Sample{}, builds: map[string]IndexBuild{"ten_old": {TenantID: "ten_old"}}}
	pc := &fakeCounter{counts: map[string]int64{"ten_old": 50}}
	s, err := NewSampler(SamplerConfig{Store: st, Profiles: pc, Tenants: fakeTenants{"ten_a", "ten_big", "ten_new", "ten_old"}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	hour := t0.Truncate(time.Hour)

	pc.set("ten_a", 3)
	pc.set("ten_old", 50) // not built yet: left to the full pass
	if err := s.SampleChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if v, ok := st.value("ten_a", hour); !ok || v != 3 {
		t.Fatalf("ten_a sampled %d (%v), want 3", v, ok)
	}
	if _, ok := st.value("ten_old", hour); ok {
		t.Fatal("a tenant whose index is not built was sampled")
	}

	// 20 000 profiles: sampled, then not again for 20 s.
	pc.set("ten_big", 20_000)
	if err := s.SampleChanged(ctx); err != nil {
		t.Fatal(err)
	}
	pc.set("ten_big", 20_001)
	now = now.Add(10 * time.Second)
	if err := s.SampleChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.value("ten_big", hour); v != 20_000 {
		t.Fatalf("ten_big %d: sampled again within its read rate", v)
	}
	now = now.Add(11 * time.Second)
	st.failing = true
	if err := s.SampleChanged(ctx); err == nil {
		t.Fatal("a failed write was not reported")
	}
	st.failing = false
	if err := s.SampleChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.value("ten_big", hour); v != 20_001 {
		t.Fatalf("ten_big %d after the failed write, want 20001", v)
	}
	if err := s.SampleChanged(ctx); err != nil || st.writes != 3 {
		t.Fatalf("nothing changed: %d writes (%v), want no new one", st.writes, err)
	}

	// The full pass: ten_new has no store yet; ten_old is built, then
	// sampled.
	n, err := s.SampleAll(ctx)
	if err != nil || n != 3 {
		t.Fatalf("SampleAll: %d %v, want 3 tenants sampled", n, err)
	}
	if v, _ := st.value("ten_old", hour); v != 50 || !slices.Equal(pc.indexed, []string{"ten_old"}) {
		t.Fatalf("ten_old %d, indexed %v", v, pc.indexed)
	}
	if _, err := s.SampleAll(ctx); err != nil || len(pc.indexed) != 1 {
		t.Fatalf("indexed again within IndexSettle: %v %v", pc.indexed, err)
	}
	now = now.Add(IndexSettle)
	if _, err := s.SampleAll(ctx); err != nil || len(pc.indexed) != 2 || len(st.builds) != 0 {
		t.Fatalf("after IndexSettle: indexed %v, pending %v (%v); want a second build, then none pending", pc.indexed, st.builds, err)
	}
}
