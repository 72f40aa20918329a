package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/usage"
)

var t0 = time.Date(2026, 5, 14, 10, 30, 0, 0, time.UTC)

// TestBucketsDebt: a bucket admits while it holds a token, is charged
// every unit a request carried, and in debt refuses until the debt is
// paid, saying how long that takes.
func TestBucketsDebt(t *testing.T) {
	b := NewBuckets(0, nil)
	l := PerSecond(10)
	if st := b.Ready("k", l, t0); !st.OK || st.Remaining != 10 || st.Reset != 0 {
		t.Fatalf("new bucket: %+v", st)
	}
	// A batch of 25 is admitted on a full bucket and leaves it 15 in debt.
	if st := b.Charge("k", l, 25, t0); st.Remaining != 0 || st.Reset != 2500*time.Millisecond {
		t.Fatalf("after charging 25: %+v", st)
	}
	st := b.Ready("k", l, t0)
	if st.OK || st.RetryAfter != 1600*time.Millisecond {
		t.Fatalf("in debt: %+v, want refused for 1.6s (15 owed, 1 needed, at 10/s)", st)
	}
	if st := b.Ready("k", l, t0.Add(1500*time.Millisecond)); st.OK {
		t.Fatalf("still in debt after 1.5s: %+v", st)
	}
	if st := b.Ready("k", l, t0.Add(1600*time.Millisecond)); !st.OK {
		t.Fatalf("debt paid after 1.6s: %+v", st)
	}
	// A debt is capped at a minute of the rate.
	b.Charge("huge", l, 1_000_000, t0)
	if st := b.Ready("huge", l, t0.Add(maxDebt+time.Second)); !st.OK {
		t.Fatalf("a minute and a second after a huge batch: %+v", st)
	}
}

// TestBucketsTake: Take is all or nothing, and says when n would fit.
func TestBucketsTake(t *testing.T) {
	b := NewBuckets(0, nil)
	l := PerSecond(3)
	for i := range 3 {
		if st := b.Take("tok", l, 1, t0); !st.OK || st.Remaining != int64(2-i) {
			t.Fatalf("take %d: %+v", i+1, st)
		}
	}
	st := b.Take("tok", l, 1, t0)
	if st.OK || st.Remaining != 0 || RetryAfter(st.RetryAfter) != "1" {
		t.Fatalf("fourth take in the second: %+v", st)
	}
	if st := b.Take("tok", l, 1, t0.Add(400*time.Millisecond)); !st.OK {
		t.Fatalf("a third of a second later: %+v", st)
	}
}

// TestBucketsShares: N replicas each take 1/N of the rate and the burst,
// and report the whole limit's remaining quota; a change of N or of the
// limit applies to a bucket in use.
func TestBucketsShares(t *testing.T) {
	var mu sync.Mutex
	n := 2
	b := NewBuckets(0, func() int { mu.Lock(); defer mu.Unlock(); return n })
	l := PerSecond(100)
	accepted := 0
	for range 200 {
		if b.Take("src", l, 1, t0).OK {
			accepted++
		}
	}
	if accepted != 50 {
		t.Fatalf("one of 2 replicas accepted %d in an instant, want its burst of 50", accepted)
	}
	// Over 10 s, at its 50/s, it accepts its share only.
	accepted = 0
	for i := range 2000 {
		if b.Take("src", l, 1, t0.Add(time.Duration(i)*5*time.Millisecond)).OK {
			accepted++
		}
	}
	if accepted < 495 || accepted > 505 {
		t.Fatalf("over 10s one of 2 replicas accepted %d, want about 500", accepted)
	}
	if st := b.Peek("fresh", l, t0); st.Remaining != 100 {
		t.Fatalf("a fresh bucket's remaining, told as the whole limit's: %d", st.Remaining)
	}
	mu.Lock()
	n = 1
	mu.Unlock()
	// Alone again, the bucket keeps the tokens it held and fills up to
	// the whole burst at the whole rate.
	if st := b.Peek("src", l, t0.Add(20*time.Second)); st.Remaining != 50 {
		t.Fatalf("alone again: %+v", st)
	}
	if st := b.Peek("src", l, t0.Add(20500*time.Millisecond)); st.Remaining != 100 {
		t.Fatalf("alone again, half a second on: %+v", st)
	}
	if st := b.Peek("src", PerSecond(7), t0.Add(21*time.Second)); st.Remaining != 7 {
		t.Fatalf("under a smaller limit: %+v", st)
	}
}

// TestBucketsBounded: at most Size keys are kept, the least recently used
// forgotten.
func TestBucketsBounded(t *testing.T) {
	b := NewBuckets(100, nil)
	for i := range 1000 {
		b.Charge(fmt.Sprint(i), PerSecond(1), 5, t0)
	}
	if b.Len() != 100 {
		t.Fatalf("%d keys held, want 100", b.Len())
	}
	if !b.Ready("0", PerSecond(1), t0).OK {
		t.Fatal("a forgotten key is a new, full bucket")
	}
	if b.Ready("999", PerSecond(1), t0).OK {
		t.Fatal("a recent key kept its debt")
	}
}

func TestHeaders(t *testing.T) {
	h := http.Header{}
	SetHeaders(h, []Policy{
		{Name: "per-source", Quota: 100, Window: time.Second, Unit: "events", State: State{OK: true, Remaining: 40, Reset: 600 * time.Millisecond}},
		{Name: "per-tenant", Quota: 500, Window: time.Second, Unit: "events", State: State{OK: false, RetryAfter: 1200 * time.Millisecond, Reset: 3 * time.Second}},
		{Name: `odd"name`, Quota: 5, Window: 30 * 24 * time.Hour, State: State{OK: true, Remaining: 5}},
	})
	if got, want := h.Get(PolicyField), `"per-source";q=100;w=1;cairn-unit="events", "per-tenant";q=500;w=1;cairn-unit="events", "odd\"name";q=5;w=2592000`; got != want {
		t.Errorf("RateLimit-Policy:\n got %s\nwant %s", got, want)
	}
	if got, want := h.Get(LimitField), `"per-source";r=40;t=1, "per-tenant";r=0;t=2, "odd\"name";r=5;t=0`; got != want {
		t.Errorf("RateLimit:\n got %s\nwant %s", got, want)
	}
	empty := http.Header{}
	SetHeaders(empty, nil)
	if len(empty) != 0 {
		t.Errorf("no policy, fields %v", empty)
	}
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2"} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestClientAddr(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/16, 192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseProxies("10.0.0.0/16,nope"); err == nil {
		t.Fatal("a bad proxy was accepted")
	}
	for _, tc := range []struct {
		name    string
		trusted Proxies
		remote  string
		xff     []string
		want    string
	}{
		{"no proxy trusted: the peer, whatever it claims", nil, "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"an untrusted peer's claim is ignored", proxies, "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"a trusted proxy names its client", proxies, "10.0.3.4:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a client's own claim before it is ignored", proxies, "10.0.3.4:4000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"through two trusted proxies", proxies, "10.0.3.4:4000", []string{"1.2.3.4, 198.51.100.1", "192.0.2.7"}, "198.51.100.1"},
		{"garbage a proxy never writes stops the walk", proxies, "10.0.3.4:4000", []string{"nonsense"}, "10.0.3.4"},
		{"a trusted peer without the header", proxies, "10.0.3.4:4000", nil, "10.0.3.4"},
		{"IPv4 in IPv6", nil, "[::ffff:203.0.113.5]:4000", nil, "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.trusted.ClientAddr(r); got.String() != tc.want {
				t.Errorf("ClientAddr = %s, want %s", got, tc.want)
			}
		})
	}
	for addr, want := range map[string]string{"203.0.113.5": "203.0.113.5", "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "2001:db8:1:2::9": "2001:db8:1:2::/64"} {
		if got := AddrKey(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AddrKey(%s) = %s, want %s", addr, got, want)
		}
	}
}

// fakeUsage is the stored counts and a meter's unflushed ones.
type fakeUsage struct {
	mu        sync.Mutex
	counts    []usage.Count
	reads     int
	unflushed int64
	flushes   uint64
}

func (f *fakeUsage) UsageCounts(_ context.Context, r usage.Range) ([]usage.Count, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	var out []usage.Count
	for _, c := range f.counts {
		if c.TenantID == r.TenantID && !c.Hour.Before(r.From) && c.Hour.Before(r.To) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeUsage) Unflushed(string, string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unflushed
}
func (f *fakeUsage) Flushes() uint64 { f.mu.Lock(); defer f.mu.Unlock(); return f.flushes }

// flush moves the unflushed counts to the store, in the current hour.
func (f *fakeUsage) flush(tenant string, hour time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts = append(f.counts, usage.Count{TenantID: tenant, Hour: hour, Metric: usage.EventsAccepted, Dimension: "src", Value: f.unflushed})
	f.unflushed = 0
	f.flushes++
}

// TestQuota: the month's stored counts (this month's only, events
// accepted only) plus the meter's unflushed ones; a flush neither loses
// nor doubles a count; a crossing is announced once a month.
func TestQuota(t *testing.T) {
	now := t0
	f := &fakeUsage{counts: []usage.Count{
		{TenantID: "ten_a", Hour: t0.AddDate(0, -1, 0), Metric: usage.EventsAccepted, Value: 1000}, // last month
		{TenantID: "ten_a", Hour: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), Metric: usage.EventsAccepted, Value: 60},
		{TenantID: "ten_a", Hour: time.Date(2026, 5, 13, 7, 0, 0, 0, time.UTC), Metric: usage.APIRequests, Value: 500},
		{TenantID: "ten_b", Hour: time.Date(2026, 5, 13, 7, 0, 0, 0, time.UTC), Metric: usage.EventsAccepted, Value: 999},
	}, unflushed: 30}
	q := NewQuota(f, f, func() time.Time { return now })
	ctx := t.Context()
	check := func(n int) QuotaState {
		t.Helper()
		st, err := q.Check(ctx, "ten_a", 100, n)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := check(10)
	if st.Used != 90 || st.Over || st.Month != "2026-05" || st.Window != 31*24*time.Hour || st.Reset != time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Sub(t0) {
		t.Fatalf("first check: %+v", st)
	}
	reads := f.reads
	if check(1); f.reads != reads {
		t.Fatalf("a fresh count read the store again (%d reads, then %d)", reads, f.reads)
	}
	// The meter flushes its 30: counted once, read again at once.
	f.flush("ten_a", now.Truncate(time.Hour))
	if st := check(10); st.Used != 90 || f.reads == reads {
		t.Fatalf("after a flush: used %d (want 90), %d reads", st.Used, f.reads)
	}
	// Another replica's flush is seen within QuotaRefresh.
	f.mu.Lock()
	f.counts = append(f.counts, usage.Count{TenantID: "ten_a", Hour: now.Truncate(time.Hour), Metric: usage.EventsAccepted, Value: 5})
	f.mu.Unlock()
	now = now.Add(QuotaRefresh)
	st = check(6)
	if st.Used != 95 || !st.Over || !st.Announce {
		t.Fatalf("over the quota: %+v", st)
	}
	if st := check(6); !st.Over || st.Announce {
		t.Fatalf("over again: announced twice: %+v", st)
	}
	q.Unannounce("ten_a", "2026-05")
	if st := check(6); !st.Announce {
		t.Fatalf("after Unannounce: %+v", st)
	}
	// Next month starts from nothing, and is announced again.
	now = time.Date(2026, 6, 1, 0, 0, 1, 0, time.UTC)
	f.mu.Lock()
	f.unflushed = 0
	f.mu.Unlock()
	if st := check(6); st.Used != 0 || st.Over || st.Month != "2026-06" {
		t.Fatalf("a new month: %+v", st)
	}
	f.mu.Lock()
	f.counts = append(f.counts, usage.Count{TenantID: "ten_a", Hour: now.Truncate(time.Hour), Metric: usage.EventsAccepted, Value: 100})
	f.mu.Unlock()
	now = now.Add(QuotaRefresh)
	if st := check(1); !st.Over || !st.Announce {
		t.Fatalf("over in the new month: %+v", st)
	}
}
