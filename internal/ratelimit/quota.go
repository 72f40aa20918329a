package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cairn-cdp/cairn/internal/usage"
)

// UsageReader reads the stored usage counts (the usage.Store).
type UsageReader interface {
	UsageCounts(ctx context.Context, r usage.Range) ([]usage.Count, error)
}

// Unflushed is this replica's meter: what it counted that the store does
// not hold yet (*usage.Meter).
type Unflushed interface {
	Unflushed(tenant, metric string) int64
	Flushes() uint64
}

// QuotaRefresh is how often Quota reads again the recent hours another
// replica may have flushed counts to.
const QuotaRefresh = 5 * time.Second

// Quota counts each tenant's accepted events in the current calendar
// month (UTC) against a monthly quota: the stored usage counts, every
// replica's, plus what this replica's meter has not flushed yet. Another
// replica's unflushed counts (at most its last flush interval's) are not
// seen. It reads the month's closed hours once an hour and the last two
// hours again after each of this replica's flushes, or QuotaRefresh after
// the last read: a tenant's requests cost no database read in between.
type Quota struct {
	store UsageReader
	meter Unflushed
	now   func() time.Time

	mu        sync.Mutex
	tenants   map[string]*monthCount
	announced announced
	reads     singleflight.Group
}

// announced remembers, per tenant, the month whose crossing of a quota
// this replica announced, so that it is announced once a month.
type announced struct {
	mu     sync.Mutex
	months map[string]string // tenant → month announced
}

// first reports whether the tenant's crossing in month is new, and
// remembers it.
func (a *announced) first(tenant, month string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.months == nil {
		a.months = map[string]string{}
	}
	if a.months[tenant] == month {
		return false
	}
	a.months[tenant] = month
	return true
}

// forget makes the tenant's crossing in month new again.
func (a *announced) forget(tenant, month string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.months[tenant] == month {
		delete(a.months, tenant)
	}
}

type monthCount struct {
	month time.Time
	// closed sums the hours in [month, closedUntil).
	closedUntil time.Time
	closed      int64
	// recent sums the hours from closedUntil on, as read when the meter
	// had made flushes flushes.
	recent  int64
	flushes uint64
	readAt  time.Time
}

// NewQuota counts from store and meter; now defaults to time.Now.
func NewQuota(store UsageReader, meter Unflushed, now func() time.Time) *Quota {
	if now == nil {
		now = time.Now
	}
	return &Quota{store: store, meter: meter, now: now, tenants: map[string]*monthCount{}}
}

// QuotaState is a tenant's monthly quota as a request finds it.
type QuotaState struct {
	Limit int64
	// Used is the events accepted this month before the request.
	Used int64
	// Over is whether the request's events would take Used past Limit.
	Over bool
	// Announce is true the first time this replica finds the tenant Over
	// in the month: the caller announces it (and calls Unannounce if it
	// could not).
	Announce bool
	// Month is the month counted, "2006-01"; Window its length and Reset
	// the time left of it.
	Month  string
	Window time.Duration
	Reset  time.Duration
}

// Check counts the tenant's month so far against limit for a request of
// n events.
func (q *Quota) Check(ctx context.Context, tenant string, limit int64, n int) (QuotaState, error) {
	now := q.now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	next := month.AddDate(0, 1, 0)
	used, err := q.used(ctx, tenant, month, now)
	if err != nil {
		return QuotaState{}, err
	}
	st := QuotaState{Limit: limit, Used: used, Over: used+int64(n) > limit, Month: month.Format("2006-01"),
		Window: next.Sub(month), Reset: next.Sub(now)}
	st.Announce = st.Over && q.announced.first(tenant, st.Month)
	return st, nil
}

// Unannounce undoes Check's Announce for the tenant's month, so that a
// later Check announces again.
func (q *Quota) Unannounce(tenant, month string) { q.announced.forget(tenant, month) }

// used returns the tenant's accepted events in the month that starts at
// month, reading the store only when what it read is stale.
func (q *Quota) used(ctx context.Context, tenant string, month, now time.Time) (int64, error) {
	// The last two hours may still receive flushes; those before are
	// closed.
	boundary := now.Truncate(time.Hour).Add(-time.Hour)
	if boundary.Before(month) {
		boundary = month
	}
	q.mu.Lock()
	c := q.tenants[tenant]
	fresh := c != nil && c.month.Equal(month) && c.closedUntil.Equal(boundary) &&
		c.flushes == q.meter.Flushes() && now.Sub(c.readAt) < QuotaRefresh
	var used int64
	if fresh {
		used = c.closed + c.recent
	}
	q.mu.Unlock()
	if !fresh {
		// One read a tenant at a time; requests that wait for it share
		// its answer.
		v, err, _ := q.reads.Do(tenant, func() (any, error) { return q.read(ctx, tenant, month, boundary, now) })
		if err != nil {
			return 0, err
		}
		used = v.(int64)
	}
	return used + q.meter.Unflushed(tenant, usage.EventsAccepted), nil
}

// read reads what is stale of the tenant's month and returns the stored
// total.
func (q *Quota) read(ctx context.Context, tenant string, month, boundary, now time.Time) (int64, error) {
	q.mu.Lock()
	c := q.tenants[tenant]
	if c == nil || !c.month.Equal(month) {
		c = &monthCount{month: month}
	}
	closedUntil, closed := c.closedUntil, c.closed
	q.mu.Unlock()
	if !closedUntil.Equal(boundary) {
		n, err := q.sum(ctx, tenant, month, boundary)
		if err != nil {
			return 0, err
		}
		closedUntil, closed = boundary, n
	}
	flushes := q.meter.Flushes() // before the read: a flush after it makes the read stale
	recent, err := q.sum(ctx, tenant, boundary, now.Truncate(time.Hour).Add(time.Hour))
	if err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	c.closedUntil, c.closed, c.recent, c.flushes, c.readAt = closedUntil, closed, recent, flushes, now
	q.tenants[tenant] = c
	return closed + recent, nil
}

// sum returns the tenant's stored accepted events in the hours starting
// in [from, to).
func (q *Quota) sum(ctx context.Context, tenant string, from, to time.Time) (int64, error) {
	if !from.Before(to) {
		return 0, nil
	}
	counts, err := q.store.UsageCounts(ctx, usage.Range{TenantID: tenant, From: from, To: to})
	if err != nil {
		return 0, fmt.Errorf("monthly quota of %s: %w", tenant, err)
	}
	var n int64
	for _, c := range counts {
		if c.Metric == usage.EventsAccepted {
			n += c.Value
		}
	}
	return n, nil
}
