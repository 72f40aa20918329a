package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/cairn-cdp/cairn/internal/usage"
)

// ProfileCounts reads each tenant's profiles, as the usage gauge last
// sampled them (usage.Sampler: every few seconds for a tenant whose
// profiles changed), at most once every QuotaRefresh a tenant: a tenant's
// requests cost no database read in between. A count is therefore up to
// a sampling interval plus QuotaRefresh old.
type ProfileCounts struct {
	store UsageReader
	now   func() time.Time

	mu        sync.Mutex
	counts    map[string]profileCount
	announced announced
	reads     singleflight.Group
}

type profileCount struct {
	n      int64
	readAt time.Time
}

// NewProfileCounts reads from store; now defaults to time.Now.
func NewProfileCounts(store UsageReader, now func() time.Time) *ProfileCounts {
	if now == nil {
		now = time.Now
	}
	return &ProfileCounts{store: store, now: now, counts: map[string]profileCount{}}
}

// ProfilesState is a tenant's profiles against its plan's limit.
type ProfilesState struct {
	Limit, Count int64
	// Over is whether the tenant has as many profiles as its limit, or
	// more: new ones would take it past.
	Over bool
	// Announce is true the first time this replica finds the tenant Over
	// in a calendar month (Month, "2006-01"): the caller announces it (and
	// calls Unannounce if it could not).
	Announce bool
	Month    string
}

// Check compares the tenant's last sampled profiles with limit.
func (p *ProfileCounts) Check(ctx context.Context, tenant string, limit int64) (ProfilesState, error) {
	now := p.now().UTC()
	n, err := p.count(ctx, tenant, now)
	if err != nil {
		return ProfilesState{}, err
	}
	st := ProfilesState{Limit: limit, Count: n, Over: n >= limit, Month: now.Format("2006-01")}
	st.Announce = st.Over && p.announced.first(tenant, st.Month)
	return st, nil
}

// Unannounce undoes Check's Announce for the tenant's month.
func (p *ProfileCounts) Unannounce(tenant, month string) { p.announced.forget(tenant, month) }

func (p *ProfileCounts) count(ctx context.Context, tenant string, now time.Time) (int64, error) {
	p.mu.Lock()
	c, ok := p.counts[tenant]
	p.mu.Unlock()
	if ok && now.Sub(c.readAt) < QuotaRefresh {
		return c.n, nil
	}
	v, err, _ := p.reads.Do(tenant, func() (any, error) { return p.read(ctx, tenant, now) })
	if err != nil {
		return 0, err
	}
	return v.(int64), nil
}

// read returns the latest sample of the tenant's profiles within the
// gauge's lookback (none: no profiles sampled yet, 0).
func (p *ProfileCounts) read(ctx context.Context, tenant string, now time.Time) (int64, error) {
	hour := now.Truncate(time.Hour)
	counts, err := p.store.UsageCounts(ctx, usage.Range{TenantID: tenant, From: hour.Add(-usage.GaugeLookback), To: hour.Add(time.Hour)})
	if err != nil {
		return 0, fmt.Errorf("profiles of %s: %w", tenant, err)
	}
	var n int64
	var at time.Time
	for _, c := range counts {
		if c.Metric == usage.Profiles && !c.Hour.Before(at) {
			n, at = c.Value, c.Hour
		}
	}
	p.mu.Lock()
	p.counts[tenant] = profileCount{n: n, readAt: now}
	p.mu.Unlock()
	return n, nil
}
