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

// Series groups one tenant's counts (as UsageCounts returns them for a
// range from Span) into every bucket of [from, to), empty ones included.
func Series(counts []Count, from, to time.Time, g Granularity) []Bucket {
	out := make([]Bucket, 0, int(to.Sub(from)/step(g)))
	index := map[int64]int{}
	for t := from; t.Before(to); t = t.Add(step(g)) {
		index[t.Unix()] = len(out)
		out = append(out, Bucket{Start: t, Values: zeroValues(), BySource: map[string]int64{}})
	}
	for _, c := range counts {
		i, ok := index[floor(c.Hour, g).Unix()]
		if !ok {
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
	counts, err := r.Store.UsageCounts(ctx, Range{TenantID: tenant, From: from, To: to})
	if err != nil {
		return nil, from, to, err
	}
	return Series(counts, from, to, g), from, to, nil
}

// Total is one tenant's sum of each metric over a range.
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
	rows, err := r.Store.UsageTotals(ctx, from, to, afterTenant, (limit+1)*len(Metrics))
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

// WriteCSV writes a day's counts (every tenant) as CSV with a header:
// date, tenant_id, metric, dimension, value; one row per tenant, metric
// and dimension, summed over the day's hours, in that order.
func WriteCSV(w io.Writer, day time.Time, counts []Count) error {
	type row struct{ tenant, metric, dimension string }
	sums := map[row]int64{}
	var order []row
	for _, c := range counts {
		k := row{c.TenantID, c.Metric, c.Dimension}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += c.Value
	}
	slices.SortFunc(order, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.metric, b.metric), cmp.Compare(a.dimension, b.dimension))
	})
	cw := csv.NewWriter(w)
	date := day.UTC().Format(time.DateOnly)
	if err := cw.Write([]string{"date", "tenant_id", "metric", "dimension", "value"}); err != nil {
		return err
	}
	for _, k := range order {
		if err := cw.Write([]string{date, k.tenant, k.metric, k.dimension, strconv.FormatInt(sums[k], 10)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
