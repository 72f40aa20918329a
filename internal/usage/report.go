package usage

import (
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// Granularity is the width of a report's buckets.
type Granularity string

const (
	Hour Granularity = "hour"
	Day  Granularity = "day"
)

// MaxBuckets bounds a series: 31 days of hours, or a year and a day of days.
var MaxBuckets = map[Granularity]int{Hour: 31 * 24, Day: 366}

// Bucket is one hour or one UTC day of a tenant's usage: every metric's
// value (zero when nothing was counted), and the accepted events by source.
type Bucket struct {
	Start    time.Time
	Values   map[string]int64
	BySource map[string]int64
}

// RangeError is a report range refused: empty, or too long.
type RangeError struct{ Reason string }

func (e *RangeError) Error() string { return e.Reason }

// MaxFleetHours bounds the range of a fleet report: a year and a day.
const MaxFleetHours = 366 * 24

// Span checks a report's range and aligns it to the granularity: from is
// rounded down and to up to a bucket's edge (UTC days). It refuses, with a
// RangeError, an empty range or one of more than max buckets.
func Span(from, to time.Time, g Granularity, max int) (time.Time, time.Time, error) {
	if _, ok := MaxBuckets[g]; !ok {
		return time.Time{}, time.Time{}, &RangeError{fmt.Sprintf("granularity %q: want hour or day", g)}
	}
	if !to.After(from) {
		return time.Time{}, time.Time{}, &RangeError{"to must be after from"}
	}
	from, to = floor(from, g), ceil(to, g)
	if n := int(to.Sub(from) / step(g)); n > max {
		return time.Time{}, time.Time{}, &RangeError{fmt.Sprintf("%d %ss from %s to %s: at most %d", n, g,
			from.Format(time.RFC3339), to.Format(time.RFC3339), max)}
	}
	return from, to, nil
}

func step(g Granularity) time.Duration {
	if g == Day {
		return 24 * time.Hour
	}
	return time.Hour
}

func floor(t time.Time, g Granularity) time.Time { return t.UTC().Truncate(step(g)) }

func ceil(t time.Time, g Granularity) time.Time {
	f := floor(t, g)
	if f.Equal(t.UTC()) {
		return f
	}
	return f.Add(step(g))
}

// zeroValues is every metric at zero: a report names each, used or not.
func zeroValues() map[string]int64 {
	v := make(map[string]int64, len(Metrics))
	for _, m := range Metrics {
		v[m] = 0
	}
	return v
}

// GaugeLookback is how far back a bucket looks for a gauge's value when it
// has no sample of its own: a bucket's value is the latest sample taken in
// it or in the GaugeLookback before it. An hour not yet sampled (the
// current one, in its first minutes) shows the last known value, and a
// tenant that is no longer sampled (offboarded) drops to zero after it.
const GaugeLookback = time.Hour

// Series groups one tenant's counts (as UsageCounts returns them from
// GaugeLookback before from to to, for a range from Span) into every bucket
// of [from, to), empty ones included: counters summed, gauges their latest
// value.
func Series(counts []Count, from, to time.Time, g Granularity) []Bucket {
	out := make([]Bucket, 0, int(to.Sub(from)/step(g)))
	index := map[int64]int{}
	for t := from; t.Before(to); t = t.Add(step(g)) {
		index[t.Unix()] = len(out)
		out = append(out, Bucket{Start: t, Values: zeroValues(), BySource: map[string]int64{}})
	}
	bucket := func(t time.Time) int {
		if i, ok := index[floor(t, g).Unix()]; ok {
			return i
		}
		return -1
	}
	kept := make([]map[string]time.Time, len(out)) // per bucket, the hour of each gauge's value
	for _, c := range counts {
		i := bucket(c.Hour)
		if IsGauge(c.Metric) {
			// A sample is the value of its bucket and of the bucket
			// GaugeLookback later, unless a later sample is.
			for _, b := range []int{i, bucket(c.Hour.Add(GaugeLookback))} {
				if b < 0 {
					continue
				}
				if h, ok := kept[b][c.Metric]; ok && !c.Hour.After(h) {
					continue
				}
				if kept[b] == nil {
					kept[b] = map[string]time.Time{}
				}
				kept[b][c.Metric] = c.Hour
				out[b].Values[c.Metric] = c.Value
			}
			continue
		}
		if i < 0 {
			continue
		}
		out[i].Values[c.Metric] += c.Value
		if c.Metric == EventsAccepted {
			out[i].BySource[c.Dimension] += c.Value
		}
	}
	return out
}

// Reader answers usage reports from a Store.
type Reader struct{ Store Store }

// Tenant returns the tenant's series over [from, to) at granularity g,
// with the range as Span aligned it.
func (r Reader) Tenant(ctx context.Context, tenant string, from, to time.Time, g Granularity) ([]Bucket, time.Time, time.Time, error) {
	from, to, err := Span(from, to, g, MaxBuckets[g])
	if err != nil {
		return nil, from, to, err
	}
	counts, err := r.Store.UsageCounts(ctx, Range{TenantID: tenant, From: from.Add(-GaugeLookback), To: to})
	if err != nil {
		return nil, from, to, err
	}
	return Series(counts, from, to, g), from, to, nil
}

// Total is one tenant's totals over a range: each counter's sum, each
// gauge's latest value.
type Total struct {
	TenantID string
	Values   map[string]int64
}

// Fleet returns up to limit tenants' totals over the hours of [from, to)
// (aligned to hours, at most MaxFleetHours), for tenants after
// afterTenant in ID order, whether more tenants follow, and the range.
func (r Reader) Fleet(ctx context.Context, from, to time.Time, afterTenant string, limit int) ([]Total, bool, time.Time, time.Time, error) {
	from, to, err := Span(from, to, Hour, MaxFleetHours)
	if err != nil {
		return nil, false, from, to, err
	}
	rows, err := r.Store.UsageTotals(ctx, TotalsQuery{From: from, To: to, GaugeFrom: from.Add(-GaugeLookback),
		AfterTenant: afterTenant, MaxRows: (limit + 1) * len(Metrics)})
	if err != nil {
		return nil, false, from, to, err
	}
	var out []Total
	for _, c := range rows {
		if len(out) == 0 || out[len(out)-1].TenantID != c.TenantID {
			if len(out) == limit {
				return out, true, from, to, nil
			}
			out = append(out, Total{TenantID: c.TenantID, Values: zeroValues()})
		}
		out[len(out)-1].Values[c.Metric] += c.Value
	}
	return out, false, from, to, nil
}

// csvRow is one row of a daily report.
type csvRow struct {
	tenant, metric, dimension string
	value                     int64
}

// dayRows returns the rows of day's report from counts (as UsageCounts
// returns them from GaugeLookback before the day to its end): one per
// tenant, metric and dimension, each counter summed over the day's hours,
// each gauge its last hourly value of the day; in that order.
func dayRows(day time.Time, counts []Count) []csvRow {
	day = day.UTC().Truncate(24 * time.Hour)
	end := day.Add(24 * time.Hour)
	type key struct{ tenant, metric, dimension string }
	at := map[key]int{}
	var rows []csvRow
	row := func(c Count) int {
		k := key{c.TenantID, c.Metric, c.Dimension}
		i, ok := at[k]
		if !ok {
			i = len(rows)
			at[k] = i
			rows = append(rows, csvRow{tenant: k.tenant, metric: k.metric, dimension: k.dimension})
		}
		return i
	}
	latest := map[int]time.Time{}
	for _, c := range counts {
		switch {
		case IsGauge(c.Metric):
			if c.Hour.Before(day.Add(-GaugeLookback)) || !c.Hour.Before(end) {
				continue
			}
			i := row(c)
			if kept, ok := latest[i]; !ok || c.Hour.After(kept) {
				latest[i], rows[i].value = c.Hour, c.Value
			}
		case !c.Hour.Before(day) && c.Hour.Before(end):
			i := row(c)
			rows[i].value += c.Value
		}
	}
	slices.SortFunc(rows, func(a, b csvRow) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.metric, b.metric), cmp.Compare(a.dimension, b.dimension))
	})
	return rows
}

// WriteCSV writes day's report of counts (every tenant's, as UsageCounts
// returns them from GaugeLookback before the day to its end) as CSV with a
// header: date, tenant_id, metric, dimension, value; one row per tenant,
// metric and dimension, each counter summed over the day's hours and each
// gauge its last hourly value of the day (see Series), in that order.
func WriteCSV(w io.Writer, day time.Time, counts []Count) error {
	return writeRows(w, day, dayRows(day, counts))
}

func writeRows(w io.Writer, day time.Time, rows []csvRow) error {
	cw := csv.NewWriter(w)
	date := day.UTC().Format(time.DateOnly)
	if err := cw.Write([]string{"date", "tenant_id", "metric", "dimension", "value"}); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write([]string{date, r.tenant, r.metric, r.dimension, strconv.FormatInt(r.value, 10)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
