// Package usage meters what each tenant uses, per hour: events accepted
// (by source), API requests, bytes written to the raw zone, webhook
// deliveries, and the profiles it has.
//
// The first four are counters. Counting happens in memory, on the
// request's path, at the cost of a map update under a mutex; a Meter
// flushes what it has counted to the control-plane database every few
// seconds, in one transaction that also records the flush's ID, so a flush
// retried after an ambiguous failure is applied once. A crash loses at
// most the counts since the last flush, and never counts anything twice.
// Replicas meter independently and their flushes add up: the stored value
// of an hour is the sum over every replica.
//
// Profiles is a gauge: how many unified profiles the tenant has, sampled,
// never summed. A Sampler reads the count from the profile service, whose
// profile index keeps one item per profile in one partition, written in
// the same transactions that make, merge, unmerge and erase profiles, so
// that a count is exact and costs one key-only read of that partition.
// Counting by deltas instead (+1 on a new profile, -1 on a merge) would
// make the stored number the sum of every delta ever flushed: a crash
// between a commit and its flush would leave it wrong for good, where a
// sample is corrected by the next one; and a counter item updated by every
// new profile would be contended by concurrent ingestion. A sample is kept
// as its hour's value, unless a later sample of that hour is kept already:
// samples of several replicas, and retried writes, arrive in any order and
// leave the latest, and nothing is ever added to anything. Each replica
// samples the tenants whose count it changed (Sampler.Run, every few
// seconds, but a large tenant at most once per ProfileReadRate of its
// count), and a periodic job samples every live tenant (Sampler.SampleAll,
// every few minutes, and at start), so every hour of a live tenant has its
// samples and a count a crashed replica did not sample is read again
// within minutes. A bucket's gauge value is the latest sample taken in it
// or in the hour before it (an hour not yet sampled shows the last known
// count; a tenant offboarded drops to zero after an hour): per day, the
// last hourly value of the day; over a fleet report's range, the last one
// of the range.
//
// This package imports no other Cairn package but fleet, whose outbox
// announces each daily report.
package usage

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-cdp/cairn/internal/fleet"
)

// Metrics. Each but Profiles is a counter summed per hour; Dimension says
// what one value is split by, if anything.
const (
	// EventsAccepted counts events stored by the ingestion routes. Its
	// dimension is the source ID, or "api" for events sent with a token.
	EventsAccepted = "events_accepted"
	// APIRequests counts the requests of a tenant's routes and its write
	// keys, whatever their answer.
	APIRequests = "api_requests"
	// RawBytes counts the bytes written to the tenant's raw zone.
	RawBytes = "raw_bytes"
	// WebhookDeliveries counts the deliveries of the tenant's webhook
	// events that the receiver accepted.
	WebhookDeliveries = "webhook_deliveries"
	// QueryBytes counts the bytes the tenant's SQL queries over its lake
	// scanned.
	QueryBytes = "query_bytes"
	// Profiles is how many unified profiles the tenant has: a gauge,
	// sampled (Sampler), whose value in a bucket is its latest sample (see
	// the package doc), never a sum.
	Profiles = "profiles"
)

// Metrics lists every metric, in the order reports show them.
var Metrics = []string{EventsAccepted, APIRequests, RawBytes, WebhookDeliveries, QueryBytes, Profiles}

// IsGauge reports whether metric is sampled rather than counted.
func IsGauge(metric string) bool { return metric == Profiles }

// DimensionToken is EventsAccepted's dimension for events sent with a
// token rather than a source's write key.
const DimensionToken = "api"

// Count is one stored value: a metric of a tenant in the hour starting at
// Hour, for one dimension value ("" when the metric has none).
type Count struct {
	TenantID  string
	Hour      time.Time
	Metric    string
	Dimension string
	Value     int64
}

// Range selects counts: of one tenant (or every tenant, with TenantID
// empty) in the hours starting in [From, To).
type Range struct {
	TenantID string
	From, To time.Time
}

// Sample is one reading of a gauge: its value for the tenant at At.
type Sample struct {
	TenantID string
	Metric   string
	At       time.Time
	Value    int64
}

// TotalsQuery selects UsageTotals: the tenants after AfterTenant in ID
// order, each counter summed over the hours starting in [From, To), each
// gauge's latest value in the hours starting in [GaugeFrom, To); at most
// MaxRows rows.
type TotalsQuery struct {
	From, To, GaugeFrom time.Time
	AfterTenant         string
	MaxRows             int
}

// IndexBuild is a tenant whose profile index wants building (see
// Sampler.SampleAll): a tenant that had profiles before the index existed.
type IndexBuild struct {
	TenantID string
	// BuiltAt is when the first build pass finished; zero before it.
	BuiltAt time.Time
}

// Store keeps the counts. Implementations live in the store adapters.
type Store interface {
	// UsageAdd adds the counts to the stored ones in one transaction, and
	// records flushID in it; it does nothing and returns false when flushID
	// was recorded before (the flush was already applied).
	UsageAdd(ctx context.Context, flushID string, counts []Count, at time.Time) (applied bool, err error)
	// UsageCounts returns the stored counts in r, and the gauges' hourly
	// values in it (one per tenant, gauge and hour; Dimension empty),
	// ordered by tenant and hour.
	UsageCounts(ctx context.Context, r Range) ([]Count, error)
	// UsageTotals returns the totals q selects, Hour and Dimension empty,
	// ordered by tenant and metric.
	UsageTotals(ctx context.Context, q TotalsQuery) ([]Count, error)
	// UsageSample keeps each sample as its gauge's value in the hour its
	// At falls in, unless a sample of that hour with a later At is kept
	// already: samples arriving in any order, and again, leave the
	// latest.
	UsageSample(ctx context.Context, samples []Sample) error
	// UsageIndexBuilds returns the tenants whose profile index wants
	// building, and UsageIndexBuilt records a build pass of the tenant's
	// at at, forgetting the tenant with final.
	UsageIndexBuilds(ctx context.Context) ([]IndexBuild, error)
	UsageIndexBuilt(ctx context.Context, tenant string, at time.Time, final bool) error
	// UsageForgetFlushes forgets the flush IDs recorded before t.
	UsageForgetFlushes(ctx context.Context, before time.Time) error
	// UsageReportRecord records that day's report was written to location
	// and writes ev to the fleet outbox, in one transaction; it does
	// nothing and returns false for a day recorded before.
	UsageReportRecord(ctx context.Context, day, location string, at time.Time, ev fleet.Event) (bool, error)
	// UsageReportedDays returns the days (YYYY-MM-DD) in [from, to) whose
	// report was recorded.
	UsageReportedDays(ctx context.Context, from, to string) ([]string, error)
}

// DefaultFlushInterval is how often a Meter flushes: at most this much
// counting is lost when the process dies.
const DefaultFlushInterval = 5 * time.Second

// flushMemory is how long flush IDs are remembered: far longer than a
// flush is ever retried.
const flushMemory = 24 * time.Hour

type key struct {
	tenant, metric, dimension string
	hour                      int64 // Unix seconds of the hour's start
}

// Meter counts in memory and flushes to a Store. The zero value is not
// usable; a nil *Meter counts nothing, so callers need no check.
type Meter struct {
	store Store
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	pending map[key]int64
	// unflushed sums pending by tenant and metric; flushing sums the
	// counts a flush is writing (or failed to write and retries), which
	// the database does not hold yet either. See Unflushed.
	unflushed map[tenantMetric]int64
	flushing  map[tenantMetric]int64
	// flushes counts the flushes that wrote everything counted before
	// them (see Flushes).
	flushes atomic.Uint64

	// flushMu makes flushes one at a time; retry is a flush that failed
	// ambiguously, retried with its ID before anything newer.
	flushMu sync.Mutex
	retry   *batch
	seq     uint64
	prefix  string
}

type tenantMetric struct{ tenant, metric string }

type batch struct {
	id     string
	counts []Count
}

// NewMeter returns a Meter that flushes to s. now defaults to time.Now,
// log to slog.Default().
func NewMeter(s Store, now func() time.Time, log *slog.Logger) *Meter {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Meter{store: s, now: now, log: log, pending: map[key]int64{}, prefix: hex.EncodeToString(b[:]),
		unflushed: map[tenantMetric]int64{}, flushing: map[tenantMetric]int64{}}
}

// Add counts n of metric for the tenant, now. A nil Meter, an empty tenant
// or n <= 0 counts nothing.
func (m *Meter) Add(tenant, metric, dimension string, n int64) {
	if m == nil || tenant == "" || n <= 0 {
		return
	}
	hour := m.now().UTC().Truncate(time.Hour).Unix()
	m.mu.Lock()
	m.pending[key{tenant, metric, dimension, hour}] += n
	m.unflushed[tenantMetric{tenant, metric}] += n
	m.mu.Unlock()
}

// Unflushed returns what this Meter counted of metric for the tenant that
// the Store does not hold yet: counted since the last flush, or in a flush
// not yet written. A reader of the Store adds it to what it read to know
// this replica's whole count (package ratelimit's monthly quota does). It
// is not split by hour: counts wait at most a flush interval, so only the
// first seconds of an hour (or a month) see the previous one's last
// counts in it. A nil Meter counts nothing.
func (m *Meter) Unflushed(tenant, metric string) int64 {
	if m == nil {
		return 0
	}
	k := tenantMetric{tenant, metric}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unflushed[k] + m.flushing[k]
}

// Flushes counts the flushes that wrote everything this Meter had counted
// before they began. A reader that read the Store before the count last
// changed may lack what that flush wrote, and reads it again: between
// its reads, what Unflushed leaves out is in the Store.
func (m *Meter) Flushes() uint64 {
	if m == nil {
		return 0
	}
	return m.flushes.Load()
}

// Flush writes what was counted since the last flush. On an error the
// batch is kept and retried, with the same ID, by the next Flush: whether
// or not the failed write committed, it is applied once.
func (m *Meter) Flush(ctx context.Context) error {
	if m == nil {
		return nil
	}
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	if m.retry != nil {
		if _, err := m.store.UsageAdd(ctx, m.retry.id, m.retry.counts, m.now()); err != nil {
			return fmt.Errorf("usage: flush %s again: %w", m.retry.id, err)
		}
		m.retry = nil
	}
	m.mu.Lock()
	pending := m.pending
	m.pending = make(map[key]int64, len(pending))
	for k, v := range m.unflushed {
		m.flushing[k] += v
	}
	clear(m.unflushed)
	m.mu.Unlock()
	if len(pending) == 0 {
		m.flushed()
		return nil
	}
	counts := make([]Count, 0, len(pending))
	for k, v := range pending {
		counts = append(counts, Count{TenantID: k.tenant, Hour: time.Unix(k.hour, 0).UTC(), Metric: k.metric, Dimension: k.dimension, Value: v})
	}
	// A stable order: flushes of replicas touch rows in one order, so
	// their transactions never wait on each other in a cycle.
	slices.SortFunc(counts, func(a, b Count) int {
		return cmp.Or(cmp.Compare(a.TenantID, b.TenantID), cmp.Compare(a.Metric, b.Metric),
			cmp.Compare(a.Dimension, b.Dimension), a.Hour.Compare(b.Hour))
	})
	m.seq++
	b := &batch{id: fmt.Sprintf("%s-%d", m.prefix, m.seq), counts: counts}
	if _, err := m.store.UsageAdd(ctx, b.id, b.counts, m.now()); err != nil {
		m.retry = b
		return fmt.Errorf("usage: flush %s: %w", b.id, err)
	}
	m.flushed()
	return nil
}

// flushed notes that the Store holds everything counted until the flush
// (flushMu held): nothing is in flight any more.
func (m *Meter) flushed() {
	m.mu.Lock()
	clear(m.flushing)
	m.mu.Unlock()
	m.flushes.Add(1)
}

// Run flushes every interval (DefaultFlushInterval if zero) until ctx ends,
// then flushes once more with a short deadline of its own, so a clean
// shutdown loses nothing. It forgets old flush IDs once an hour.
func (m *Meter) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var forgot time.Time
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := m.Flush(final); err != nil {
				m.log.ErrorContext(final, "usage counts lost at shutdown", "error", err)
			}
			return
		case <-t.C:
			if err := m.Flush(ctx); err != nil && !errors.Is(err, context.Canceled) {
				m.log.WarnContext(ctx, "usage flush failed; retrying", "error", err)
			}
			if now := m.now(); now.Sub(forgot) > time.Hour {
				if err := m.store.UsageForgetFlushes(ctx, now.Add(-flushMemory)); err == nil {
					forgot = now
				}
			}
		}
	}
}
