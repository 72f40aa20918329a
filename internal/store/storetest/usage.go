package storetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/usage"
)

// testUsageAdd: flushes add up per tenant, metric, dimension and hour; a
// flush ID seen before is not applied again; a range reads its hours only,
// of one tenant or of all.
func testUsageAdd(t *testing.T, h Harness) {
	ctx := t.Context()
	b := newBackend(t, h)
	h0 := base.Truncate(time.Hour)
	h1 := h0.Add(time.Hour)
	first := []usage.Count{
		{TenantID: "ten_a", Hour: h0, Metric: usage.EventsAccepted, Dimension: "src_1", Value: 5},
		{TenantID: "ten_a", Hour: h1, Metric: usage.EventsAccepted, Dimension: "src_1", Value: 2},
		{TenantID: "ten_b", Hour: h0, Metric: usage.APIRequests, Value: 7},
	}
	if ok, err := b.UsageAdd(ctx, "flush-1", first, base); err != nil || !ok {
		t.Fatalf("first flush: %v %v", ok, err)
	}
	if ok, err := b.UsageAdd(ctx, "flush-1", first, base); err != nil || ok {
		t.Fatalf("the same flush again: applied %v, %v; want not applied", ok, err)
	}
	second := []usage.Count{{TenantID: "ten_a", Hour: h0, Metric: usage.EventsAccepted, Dimension: "src_1", Value: 10}}
	if ok, err := b.UsageAdd(ctx, "flush-2", second, base); err != nil || !ok {
		t.Fatalf("second flush: %v %v", ok, err)
	}

	got, err := b.UsageCounts(ctx, usage.Range{TenantID: "ten_a", From: h0, To: h1.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []usage.Count{
		{TenantID: "ten_a", Hour: h0, Metric: usage.EventsAccepted, Dimension: "src_1", Value: 15},
		{TenantID: "ten_a", Hour: h1, Metric: usage.EventsAccepted, Dimension: "src_1", Value: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ten_a's counts (-want +got):\n%s", diff)
	}
	got, err = b.UsageCounts(ctx, usage.Range{From: h0, To: h1})
	if err != nil {
		t.Fatal(err)
	}
	want = []usage.Count{want[0], {TenantID: "ten_b", Hour: h0, Metric: usage.APIRequests, Value: 7}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("every tenant's first hour (-want +got):\n%s", diff)
	}

	// A forgotten flush ID is a new flush.
	if err := b.UsageForgetFlushes(ctx, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.UsageAdd(ctx, "flush-1", second, base); err != nil || !ok {
		t.Fatalf("a forgotten flush ID: applied %v, %v", ok, err)
	}
}

// testUsageTotals: totals sum a range's hours and dimensions per tenant
// and metric, in tenant order after a cursor, and the Reader pages them.
func testUsageTotals(t *testing.T, h Harness) {
	ctx := t.Context()
	b := newBackend(t, h)
	h0 := base.Truncate(time.Hour)
	var counts []usage.Count
	for i := range 5 {
		tenant := fmt.Sprintf("ten_%d", i)
		counts = append(counts,
			usage.Count{TenantID: tenant, Hour: h0, Metric: usage.EventsAccepted, Dimension: "src_1", Value: int64(i + 1)},
			usage.Count{TenantID: tenant, Hour: h0.Add(time.Hour), Metric: usage.EventsAccepted, Dimension: "api", Value: 100},
			usage.Count{TenantID: tenant, Hour: h0.Add(48 * time.Hour), Metric: usage.EventsAccepted, Value: 1000}, // out of range
			usage.Count{TenantID: tenant, Hour: h0, Metric: usage.APIRequests, Value: 3})
	}
	if _, err := b.UsageAdd(ctx, "f", counts, base); err != nil {
		t.Fatal(err)
	}
	r := usage.Reader{Store: b}
	var seen []string
	after := ""
	for page := 0; ; page++ {
		totals, more, _, _, err := r.Fleet(ctx, h0, h0.Add(24*time.Hour), after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, tot := range totals {
			seen = append(seen, tot.TenantID)
			var i int
			fmt.Sscanf(tot.TenantID, "ten_%d", &i)
			if tot.Values[usage.EventsAccepted] != int64(i+101) || tot.Values[usage.APIRequests] != 3 || tot.Values[usage.RawBytes] != 0 {
				t.Errorf("%s totals %v, want events %d, requests 3, raw bytes 0", tot.TenantID, tot.Values, i+101)
			}
		}
		if !more {
			break
		}
		if page > 5 || len(totals) == 0 {
			t.Fatalf("paging does not end: %v", seen)
		}
		after = totals[len(totals)-1].TenantID
	}
	if diff := cmp.Diff([]string{"ten_0", "ten_1", "ten_2", "ten_3", "ten_4"}, seen); diff != "" {
		t.Errorf("tenants paged (-want +got):\n%s", diff)
	}
}

// failingStore fails the first UsageAdd after committing it, as a lost
// commit acknowledgement would.
type failingStore struct {
	usage.Store
	mu     sync.Mutex
	failed bool
}

func (f *failingStore) UsageAdd(ctx context.Context, id string, counts []usage.Count, at time.Time) (bool, error) {
	ok, err := f.Store.UsageAdd(ctx, id, counts, at)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && !f.failed {
		f.failed = true
		return false, fmt.Errorf("connection reset before the commit's answer")
	}
	return ok, err
}

// testUsageMeter: counts from many goroutines, flushed while they count,
// with one flush whose commit answer is lost and is retried, are stored
// exactly once, and survive a restart of the database.
func testUsageMeter(t *testing.T, h Harness) {
	ctx := t.Context()
	addr := h.NewDatabase(t)
	b := open(t, h, addr)
	now := base
	m := usage.NewMeter(&failingStore{Store: b}, func() time.Time { return now }, nil)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.Add("ten_m", usage.EventsAccepted, fmt.Sprintf("src_%d", w%2), 1)
				if i%100 == 0 {
					_ = m.Flush(ctx) // the first one fails after committing
				}
			}
		}()
	}
	wg.Wait()
	for range 3 { // the failed batch is retried first, then the rest
		if err := m.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(t, h, addr)
	got, err := b.UsageCounts(ctx, usage.Range{TenantID: "ten_m", From: base.Truncate(time.Hour), To: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	sum := map[string]int64{}
	for _, c := range got {
		sum[c.Dimension] += c.Value
	}
	if want := map[string]int64{"src_0": workers / 2 * each, "src_1": workers / 2 * each}; !cmp.Equal(want, sum) {
		t.Errorf("stored after a restart %v, want %v (nothing lost, nothing twice)", sum, want)
	}
}

// testUsageDailyReport: a closed day with usage is written as CSV to the
// sink, recorded and announced (usage.reported) once; an open day, or one
// without usage, is not.
func testUsageDailyReport(t *testing.T, h Harness) {
	ctx := t.Context()
	b := newBackend(t, h)
	day := base.Truncate(24 * time.Hour)
	counts := []usage.Count{
		{TenantID: "ten_b", Hour: day.Add(23 * time.Hour), Metric: usage.EventsAccepted, Dimension: "src_1", Value: 4},
		{TenantID: "ten_a", Hour: day.Add(time.Hour), Metric: usage.APIRequests, Value: 2},
		{TenantID: "ten_a", Hour: day.Add(2 * time.Hour), Metric: usage.APIRequests, Value: 3},
		{TenantID: "ten_a", Hour: day.Add(24 * time.Hour), Metric: usage.APIRequests, Value: 100}, // the next day
	}
	if _, err := b.UsageAdd(ctx, "f", counts, base); err != nil {
		t.Fatal(err)
	}
	// Profiles: the last hourly value of the day, not a sum.
	if err := b.UsageSample(ctx, []usage.Sample{
		{TenantID: "ten_a", Metric: usage.Profiles, At: day.Add(2*time.Hour + 5*time.Minute), Value: 12},
		{TenantID: "ten_a", Metric: usage.Profiles, At: day.Add(3*time.Hour + 5*time.Minute), Value: 11},
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := day.Add(24*time.Hour + 5*time.Minute)
	notified := 0
	r := &usage.Reporter{Store: b, Sink: usage.DirSink{Dir: dir}, Now: func() time.Time { return now }, Notify: func() { notified++ }}
	if n, err := r.ReportDue(ctx); err != nil || n != 0 {
		t.Fatalf("within the grace after the day: reported %d, %v; want none", n, err)
	}
	now = day.Add(24*time.Hour + 20*time.Minute)
	if n, err := r.ReportDue(ctx); err != nil || n != 1 {
		t.Fatalf("after the grace: reported %d, %v; want the one day with usage", n, err)
	}
	if n, err := r.ReportDue(ctx); err != nil || n != 0 || notified != 1 {
		t.Fatalf("again: reported %d (%v), notified %d; want nothing new", n, err, notified)
	}
	date := day.Format(time.DateOnly)
	got, err := os.ReadFile(filepath.Join(dir, "usage-"+date+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := "date,tenant_id,metric,dimension,value\n" +
		date + ",ten_a,api_requests,,5\n" +
		date + ",ten_a,profiles,,11\n" +
		date + ",ten_b,events_accepted,src_1,4\n"
	if string(got) != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	evs := outbox(t, b)
	if len(evs) != 1 || evs[0].Type != fleet.UsageReported || evs[0].Data.Date != date || evs[0].Data.Tenants != 2 ||
		evs[0].Data.Rows != 3 || evs[0].Data.Location != filepath.Join(dir, "usage-"+date+".csv") {
		t.Errorf("outbox %+v, want one usage.reported of %s", evs, date)
	}
}

// testUsageSamples: a gauge keeps, per hour, the sample taken last, however
// replicas' samples and retried writes interleave: never a sum. UsageCounts
// returns the gauge beside the counters; a tenant's series and the fleet's
// totals give its latest value, from the hour before a bucket when the
// bucket has none; a tenant with only a gauge is in the fleet's totals.
func testUsageSamples(t *testing.T, h Harness) {
	ctx := t.Context()
	addr := h.NewDatabase(t)
	b := open(t, h, addr)
	h0 := base.Truncate(time.Hour)
	// Three replicas sample ten_p in h0, each several times, and each write
	// is retried once; the latest sample (At h0+50m) is 42.
	var wg sync.WaitGroup
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				at := h0.Add(time.Duration(10*i+r) * time.Minute)
				smp := []usage.Sample{{TenantID: "ten_p", Metric: usage.Profiles, At: at, Value: int64(30 + 2*i + r)}}
				if i == 4 && r == 2 {
					smp[0].At, smp[0].Value = h0.Add(50*time.Minute), 42
				}
				for range 2 {
					if err := b.UsageSample(ctx, smp); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	// An older sample arriving last changes nothing.
	if err := b.UsageSample(ctx, []usage.Sample{{TenantID: "ten_p", Metric: usage.Profiles, At: h0.Add(time.Minute), Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UsageAdd(ctx, "f", []usage.Count{{TenantID: "ten_p", Hour: h0, Metric: usage.APIRequests, Value: 4}}, base); err != nil {
		t.Fatal(err)
	}
	if err := b.UsageSample(ctx, []usage.Sample{
		{TenantID: "ten_p", Metric: usage.Profiles, At: h0.Add(2*time.Hour + time.Minute), Value: 40},
		{TenantID: "ten_q", Metric: usage.Profiles, At: h0.Add(time.Minute), Value: 7},
	}); err != nil {
		t.Fatal(err)
	}
	// It survives a restart.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(t, h, addr)

	got, err := b.UsageCounts(ctx, usage.Range{TenantID: "ten_p", From: h0, To: h0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := []usage.Count{
		{TenantID: "ten_p", Hour: h0, Metric: usage.APIRequests, Value: 4},
		{TenantID: "ten_p", Hour: h0, Metric: usage.Profiles, Value: 42},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ten_p's first hour (-want +got):\n%s", diff)
	}

	r := usage.Reader{Store: b}
	series, _, _, err := r.Tenant(ctx, "ten_p", h0, h0.Add(4*time.Hour), usage.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var hourly []int64
	for _, bk := range series {
		hourly = append(hourly, bk.Values[usage.Profiles])
	}
	if diff := cmp.Diff([]int64{42, 42, 40, 40}, hourly); diff != "" {
		t.Errorf("ten_p's profiles per hour (-want +got):\n%s", diff)
	}
	series, _, _, err = r.Tenant(ctx, "ten_p", h0, h0.Add(time.Minute), usage.Day)
	if err != nil || len(series) != 1 {
		t.Fatalf("a day: %v %v", series, err)
	}
	if want := int64(40); series[0].Values[usage.Profiles] != want { // base is early in its day
		t.Errorf("ten_p's profiles that day %d, want the last hourly value %d", series[0].Values[usage.Profiles], want)
	}

	totals, more, _, _, err := r.Fleet(ctx, h0, h0.Add(2*time.Hour), "", 10)
	if err != nil || more {
		t.Fatal(more, err)
	}
	byTenant := map[string]map[string]int64{}
	for _, tot := range totals {
		byTenant[tot.TenantID] = tot.Values
	}
	if p, q := byTenant["ten_p"], byTenant["ten_q"]; p[usage.Profiles] != 42 || p[usage.APIRequests] != 4 || q[usage.Profiles] != 7 || len(totals) != 2 {
		t.Errorf("fleet totals %v: want ten_p with 42 profiles and 4 requests, ten_q with 7 profiles", byTenant)
	}
	// The hour before the range counts for a gauge, not for a counter.
	totals, _, _, _, err = r.Fleet(ctx, h0.Add(time.Hour), h0.Add(2*time.Hour), "", 10)
	if err != nil || len(totals) != 2 || totals[0].Values[usage.Profiles] != 42 || totals[0].Values[usage.APIRequests] != 0 {
		t.Errorf("fleet totals of the next hour %+v (%v): want ten_p's 42 profiles carried, no requests", totals, err)
	}
}

// testUsageIndexBuilds: a build pass is recorded, and the final one
// forgets the tenant.
func testUsageIndexBuilds(t *testing.T, h Harness) {
	ctx := t.Context()
	b := newBackend(t, h)
	builds, err := b.UsageIndexBuilds(ctx)
	if err != nil || len(builds) != 0 {
		t.Fatalf("a new database: %v %v; want no build pending", builds, err)
	}
	// A tenant not listed: recording its pass is harmless.
	if err := b.UsageIndexBuilt(ctx, "ten_x", base, false); err != nil {
		t.Fatal(err)
	}
	if err := b.UsageIndexBuilt(ctx, "ten_x", base, true); err != nil {
		t.Fatal(err)
	}
}
