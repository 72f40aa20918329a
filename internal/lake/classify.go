package lake

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Classifier records what personal data a table holds, from its columns
// and a sample of its rows: pii.Classify with the tenant's identifier
// types, its findings kept as LF-tags by the grants broker (cmd/server
// wires it), so that grants on tags (cairn:pii=false) select the columns
// without personal data. What it records only grows: a sample without a
// column's personal data does not take the column's tag away.
type Classifier interface {
	ClassifyTable(ctx context.Context, tenant string, loc Location, t Table, sample []map[string]any) error
}

// Bounds of a classification.
const (
	// SampleRows is the most rows of a table sampled at a time.
	SampleRows = 300
	// SamplePartitions is the most clean partitions sampled at a time:
	// the latest of those refined since the table was last sampled.
	SamplePartitions = 24
)

// classified is what a tenant's tables in one catalog were last
// classified from: the clean partitions refined up to through, and each
// curated table as it then was. It is kept in memory: after a restart
// every table is classified once again, from a sample of its latest
// partitions.
type classified struct {
	through time.Time
	curated map[string]TableStats
}

// classify samples the tables that changed since they were last
// classified (the clean partitions refined since, the curated tables
// rebuilt with other contents) and hands each sample to the Classifier.
// Tables without rows are left until they have some. Nothing is
// remembered unless every table is classified: a failure is tried again
// on the next run.
func (s *Service) classify(ctx context.Context, tenant string, loc Location, marks map[string]Watermark) error {
	if s.cfg.Classifier == nil {
		return nil
	}
	// By catalog too: a tenant moved to another tier has its tables in
	// another database, classified anew.
	key := tenant + " " + loc.Region + " " + loc.Database
	s.mu.Lock()
	last := s.classified[key]
	s.mu.Unlock()
	next := classified{through: last.through, curated: map[string]TableStats{}}
	for p, w := range marks {
		if p != "" && w.RefinedAt.After(next.through) {
			next.through = w.RefinedAt
		}
	}
	stats, err := s.cfg.Store.LakeTables(ctx, tenant)
	if err != nil {
		return err
	}
	partitions := map[string][]string{} // table → partitions to sample
	var curated []string
	for _, st := range stats {
		t, ok := TableNamed(st.Table)
		switch {
		case !ok || st.Rows == 0:
		case t.Partitioned:
			if w, ok := marks[st.Partition]; ok && w.RefinedAt.After(last.through) {
				partitions[t.Name] = append(partitions[t.Name], st.Partition)
			}
		default:
			next.curated[t.Name] = st
			if last.curated[t.Name] != st {
				curated = append(curated, t.Name)
			}
		}
	}
	for _, name := range slices.Concat(slices.Sorted(maps.Keys(partitions)), curated) {
		t, _ := TableNamed(name)
		ps := partitions[name]
		slices.SortFunc(ps, func(a, b string) int { return cmp.Compare(b, a) })
		sample, err := s.cfg.Engine.Sample(ctx, loc, t, ps[:min(len(ps), SamplePartitions)], SampleRows)
		if err != nil {
			return fmt.Errorf("sample %s: %w", name, err)
		}
		if len(sample) == 0 {
			continue
		}
		if err := s.cfg.Classifier.ClassifyTable(ctx, tenant, loc, t, sample); err != nil {
			return fmt.Errorf("classify %s: %w", name, err)
		}
	}
	s.mu.Lock()
	s.classified[key] = next
	s.mu.Unlock()
	return nil
}
