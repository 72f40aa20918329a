package usage

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
