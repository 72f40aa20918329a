package usage

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-cdp/cairn/internal/fleet"
)

// A Sink keeps the daily reports: a folder on the embedded default, a
// bucket in AWS mode.
type Sink interface {
	// Put writes the object name (overwriting it) and returns where it is.
	Put(ctx context.Context, name string, body []byte) (location string, err error)
}

// DirSink writes reports as files in Dir (made 0700; files 0600, written
// whole or not at all).
type DirSink struct{ Dir string }

// Put implements Sink.
func (s DirSink) Put(_ context.Context, name string, body []byte) (string, error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(s.Dir, ".tmp-"+name+"-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	if _, err := f.Write(body); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(s.Dir, name)
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// ReportName is the object name of a day's report.
func ReportName(day time.Time) string { return "usage-" + day.UTC().Format(time.DateOnly) + ".csv" }

// Reporter writes each closed UTC day's usage of every tenant as a CSV
// report (WriteCSV) to a Sink, records it, and announces it with a
// usage.reported fleet event. A day is closed Grace after its end, once
// every replica's last flush of it has landed. Days are reported once,
// oldest first, up to CatchUp days back; a day without any usage has no
// report. A report written but not recorded (a crash between the two) is
// written again, whole.
type Reporter struct {
	Store Store
	Sink  Sink
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Grace defaults to 10 minutes; CatchUp to 7 days.
	Grace   time.Duration
	CatchUp int
	// Notify, if set, is called after a report is recorded (the fleet
	// relay's wake-up).
	Notify func()
	Logger *slog.Logger
}

// ReportDue reports every closed day not yet reported and returns how
// many it reported.
func (r *Reporter) ReportDue(ctx context.Context) (int, error) {
	now, grace, catchUp := time.Now, 10*time.Minute, 7
	if r.Now != nil {
		now = r.Now
	}
	if r.Grace > 0 {
		grace = r.Grace
	}
	if r.CatchUp > 0 {
		catchUp = r.CatchUp
	}
	today := now().UTC().Add(-grace).Truncate(24 * time.Hour) // the first day not closed
	first := today.AddDate(0, 0, -catchUp)
	done, err := r.Store.UsageReportedDays(ctx, first.Format(time.DateOnly), today.Format(time.DateOnly))
	if err != nil {
		return 0, err
	}
	reported := map[string]bool{}
	for _, d := range done {
		reported[d] = true
	}
	n := 0
	for day := first; day.Before(today); day = day.AddDate(0, 0, 1) {
		if reported[day.Format(time.DateOnly)] {
			continue
		}
		ok, err := r.report(ctx, day, now())
		if err != nil {
			return n, fmt.Errorf("usage report of %s: %w", day.Format(time.DateOnly), err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// report writes and records day's report, unless the day had no usage or
// another replica recorded it first; it reports whether it recorded it.
func (r *Reporter) report(ctx context.Context, day, now time.Time) (bool, error) {
	counts, err := r.Store.UsageCounts(ctx, Range{From: day.Add(-GaugeLookback), To: day.Add(24 * time.Hour)})
	if err != nil {
		return false, err
	}
	rows := dayRows(day, counts)
	if len(rows) == 0 {
		return false, nil
	}
	var buf bytes.Buffer
	if err := writeRows(&buf, day, rows); err != nil {
		return false, err
	}
	location, err := r.Sink.Put(ctx, ReportName(day), buf.Bytes())
	if err != nil {
		return false, err
	}
	tenants := map[string]bool{}
	for _, row := range rows {
		tenants[row.tenant] = true
	}
	date := day.Format(time.DateOnly)
	ev := fleet.Event{ID: fleet.NewID(fleet.UsageReported, date), Type: fleet.UsageReported, At: now, Data: fleet.Data{
		Date: date, Location: location, Tenants: len(tenants), Rows: len(rows), At: fleet.FormatTime(now),
	}}
	recorded, err := r.Store.UsageReportRecord(ctx, date, location, now, ev)
	if err != nil {
		return false, err
	}
	if recorded {
		if r.Logger != nil {
			r.Logger.InfoContext(ctx, "usage reported", "date", date, "location", location, "tenants", len(tenants))
		}
		if r.Notify != nil {
			r.Notify()
		}
	}
	return recorded, nil
}
