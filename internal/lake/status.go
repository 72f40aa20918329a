package lake

import (
	"context"
	"time"
)

// Status is what a tenant's lake holds and how far behind its raw zone it
// is.
type Status struct {
	// RawLatest is the raw zone's latest partition ("" when empty).
	RawLatest string
	// Pending counts the closed raw partitions not refined as they are
	// now (new, or changed since: late data).
	Pending int
	Tables  []TableStatus
}

// TableStatus is one table's state.
type TableStatus struct {
	Table string
	Zone  string
	// LastPartition is the latest raw partition the table was refined
	// from (for a curated table, the latest one its last rebuild read);
	// "" if none yet.
	LastPartition string
	// RefinedAt is when that partition was refined (or the curated zone
	// rebuilt); zero if never.
	RefinedAt  time.Time
	Partitions int
	Rows       int64
	Bytes      int64
	// Lag is how far the table is behind the raw zone: from the end of
	// LastPartition to the end of RawLatest (0 when level).
	Lag time.Duration
}

// Status reads the tenant's lake status.
func (s *Service) Status(ctx context.Context, tenant string) (Status, error) {
	var st Status
	loc, err := s.cfg.Locate(ctx, tenant)
	if err != nil {
		return st, err
	}
	raw, err := s.cfg.Engine.RawPartitions(ctx, loc)
	if err != nil {
		return st, err
	}
	marks, err := s.watermarks(ctx, tenant)
	if err != nil {
		return st, err
	}
	tables, err := s.cfg.Store.LakeTables(ctx, tenant)
	if err != nil {
		return st, err
	}
	now := s.cfg.Now()
	for _, rp := range raw {
		p := rp.Partition.String()
		st.RawLatest = max(st.RawLatest, p)
		if rp.Partition.End().Add(s.cfg.Grace).After(now) {
			continue
		}
		if w, ok := marks[p]; !ok || w.Fingerprint != Fingerprint(rp.Objects) {
			st.Pending++
		}
	}
	var clean Watermark
	for p, w := range marks {
		if p != "" && p > clean.Partition {
			clean = w
		}
	}
	curated := marks[""]
	for _, t := range Tables {
		ts := TableStatus{Table: t.Name, Zone: t.Zone}
		if t.Zone == ZoneClean {
			ts.LastPartition, ts.RefinedAt = clean.Partition, clean.RefinedAt
		} else {
			ts.LastPartition, ts.RefinedAt = curated.Fingerprint, curated.RefinedAt
		}
		for _, x := range tables {
			if x.Table == t.Name {
				ts.Partitions++
				ts.Rows += x.Rows
				ts.Bytes += x.Bytes
			}
		}
		ts.Lag = lag(st.RawLatest, ts.LastPartition)
		st.Tables = append(st.Tables, ts)
	}
	return st, nil
}

// lag is the time from the end of partition last to the end of latest.
func lag(latest, last string) time.Duration {
	l, err := ParsePartition(latest)
	if err != nil {
		return 0
	}
	p, err := ParsePartition(last)
	if err != nil {
		// Nothing refined: behind by everything up to the latest.
		return 0
	}
	return max(0, l.End().Sub(p.End()))
}
