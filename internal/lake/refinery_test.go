package lake_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/lake"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// memStore is a lake.Store in memory.
type memStore struct {
	mu     sync.Mutex
	marks  map[string]lake.Watermark
	tables map[string]lake.TableStats
	erased []string
}

func newMemStore() *memStore {
	return &memStore{marks: map[string]lake.Watermark{}, tables: map[string]lake.TableStats{}}
}

func (m *memStore) LakeWatermarks(context.Context, string) ([]lake.Watermark, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []lake.Watermark
	for _, w := range m.marks {
		out = append(out, w)
	}
	return out, nil
}

func (m *memStore) LakeRecord(_ context.Context, _ string, w *lake.Watermark, stats []lake.TableStats) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w != nil {
		m.marks[w.Partition] = *w
	}
	for _, s := range stats {
		if s.Rows == 0 {
			delete(m.tables, s.Table+"/"+s.Partition)
		} else {
			m.tables[s.Table+"/"+s.Partition] = s
		}
	}
	return nil
}

func (m *memStore) LakeTables(context.Context, string) ([]lake.TableStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []lake.TableStats
	for _, s := range m.tables {
		out = append(out, s)
	}
	return out, nil
}

func (m *memStore) LakeEraseAdd(_ context.Context, _, _ string, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if !slices.Contains(m.erased, id) {
			m.erased = append(m.erased, id)
		}
	}
	return nil
}

func (m *memStore) LakeErased(context.Context, string) ([]string, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.erased), int64(len(m.erased)), nil
}

// fakeEngine serves raw partitions and records what it is asked to do.
type fakeEngine struct {
	raw     []lake.RawPartition
	refined []string
	erased  [][]string
	curated int
	purged  [][]string
	// sampled is each Sample's table and partitions.
	sampled []string
	// onRefine, if set, runs inside each Refine.
	onRefine func()
}

func (f *fakeEngine) Dialect() lake.Dialect { return lake.DuckDB }
func (f *fakeEngine) RawPartitions(context.Context, lake.Location) ([]lake.RawPartition, error) {
	return f.raw, nil
}
func (f *fakeEngine) Refine(_ context.Context, in lake.RefineInput) ([]lake.TableStats, error) {
	if f.onRefine != nil {
		f.onRefine()
	}
	f.refined = append(f.refined, in.Partition.Partition.String())
	f.erased = append(f.erased, in.Erased)
	return []lake.TableStats{{Table: "tracks", Partition: in.Partition.Partition.String(), Rows: int64(len(in.Partition.Objects)), Bytes: 10}}, nil
}
func (f *fakeEngine) Curate(context.Context, lake.CurateInput) ([]lake.TableStats, error) {
	f.curated++
	return []lake.TableStats{{Table: "id_graph", Rows: 1, Bytes: 5}}, nil
}
func (f *fakeEngine) Purge(_ context.Context, in lake.PurgeInput) ([]lake.PurgeResult, []lake.TableStats, error) {
	f.purged = append(f.purged, in.IDs)
	return []lake.PurgeResult{{Zone: lake.ZoneClean, Partitions: 1, Rows: 2}, {Zone: lake.ZoneCurated}}, nil, nil
}
func (f *fakeEngine) Stats(context.Context, lake.Location) ([]lake.TableStats, error) {
	return nil, nil
}
func (f *fakeEngine) Sample(_ context.Context, _ lake.Location, t lake.Table, partitions []string, _ int) ([]map[string]any, error) {
	f.sampled = append(f.sampled, t.Name+" "+strings.Join(partitions, ","))
	return []map[string]any{{"message_id": "m"}}, nil
}

type noProfiles struct{}

func (noProfiles) Snapshot(context.Context, string) (profiles.Snapshot, error) {
	return profiles.Snapshot{}, nil
}

func raw(p string, objects ...string) lake.RawPartition {
	pp, _ := lake.ParsePartition(p)
	rp := lake.RawPartition{Partition: pp}
	for _, o := range objects {
		rp.Objects = append(rp.Objects, lake.RawObject{Key: o, Size: int64(len(o))})
	}
	return rp
}

// Refine is level-based: closed partitions that are new, changed since,
// or refined under an older erased-ID filter are refined, the rest left;
// the curated zone follows what was refined, an erasure, or its age.
func TestRefineLevels(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 1, 0, 0, time.UTC)
	// Time moves on a little at every reading, as it does.
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	st, eng := newMemStore(), &fakeEngine{raw: []lake.RawPartition{
		raw("2026-11-26T10", "a"), raw("2026-11-26T11", "b"), raw("2026-11-26T12", "c"),
	}}
	svc, err := lake.New(lake.Config{Store: st, Engine: eng, Profiles: noProfiles{}, Now: clock,
		Locate: func(context.Context, string) (lake.Location, error) { return lake.Location{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	run := func(wantRefined []string, wantCurated bool) {
		t.Helper()
		eng.refined = nil
		curated := eng.curated
		res, err := svc.Refine(ctx, "ten_a")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(eng.refined, wantRefined) || !slices.Equal(res.Partitions, wantRefined) || res.Curated != wantCurated || (eng.curated > curated) != wantCurated {
			t.Fatalf("refined %v (result %+v), curated %v; want %v, %v", eng.refined, res, eng.curated > curated, wantRefined, wantCurated)
		}
	}
	// 11:00-12:00 closes at 12:15 (the grace): only 10 is closed.
	run([]string{"2026-11-26T10"}, true)
	run(nil, false)
	now = now.Add(lake.DefaultGrace)
	run([]string{"2026-11-26T11"}, true)
	// Late data in 10: refined again.
	eng.raw[0] = raw("2026-11-26T10", "a", "a2")
	run([]string{"2026-11-26T10"}, true)
	run(nil, false)
	// The curated zone is rebuilt when it is CurateEvery old.
	now = now.Add(lake.DefaultCurateEvery)
	run(nil, true)
	run(nil, false)
	// An erasure: the filter reaches the zones now (purge, curate), and
	// the partitions are level with it: nothing to refine again.
	zones, err := svc.EraseZones(ctx, "ten_a", "era_1", []string{"p1"}, []string{"m1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != 2 || zones[0].Zone != "clean" || zones[0].Rows != 2 || !slices.Equal(eng.purged[0], []string{"p1", "m1"}) {
		t.Fatalf("erase zones %+v, purged %v", zones, eng.purged)
	}
	run(nil, false)
	// A run that read the filter before an erasure and wrote after it is
	// refined again under the new filter.
	eng.raw[1] = raw("2026-11-26T11", "b", "b2")
	eng.onRefine = func() {
		eng.onRefine = nil
		_ = st.LakeEraseAdd(ctx, "ten_a", "era_2", []string{"p2"}) // another replica's erasure
	}
	run([]string{"2026-11-26T11"}, true)
	run([]string{"2026-11-26T10", "2026-11-26T11"}, true)
	if got := eng.erased[len(eng.erased)-1]; !slices.Equal(got, []string{"p1", "m1", "p2"}) {
		t.Fatalf("last run's filter %v", got)
	}
	now = now.Add(time.Hour)
	run([]string{"2026-11-26T12"}, true)

	// The status: level with the raw zone, nothing pending.
	s, err := svc.Status(ctx, "ten_a")
	if err != nil {
		t.Fatal(err)
	}
	if s.RawLatest != "2026-11-26T12" || s.Pending != 0 {
		t.Fatalf("status %+v", s)
	}
	for _, ts := range s.Tables {
		if ts.LastPartition != "2026-11-26T12" || ts.Lag != 0 {
			t.Errorf("table %+v", ts)
		}
		if ts.Table == "tracks" && (ts.Rows != 5 || ts.Partitions != 3) {
			t.Errorf("tracks %+v", ts)
		}
	}
	// A new hour, not refined yet: the tables lag by it.
	eng.raw = append(eng.raw, raw("2026-11-26T13", "d"))
	s, _ = svc.Status(ctx, "ten_a")
	if s.Tables[0].Lag != time.Hour || s.Pending != 0 {
		t.Fatalf("status with an open hour: %+v", s)
	}
	now = now.Add(2 * time.Hour)
	if s, _ = svc.Status(ctx, "ten_a"); s.Pending != 1 {
		t.Fatalf("status with a closed hour to refine: %+v", s)
	}
}

// A run stops at its budget and says there is more; the curated zone is
// rebuilt once the clean zone is level.
func TestRefineBudget(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	st, eng := newMemStore(), &fakeEngine{raw: []lake.RawPartition{raw("2026-11-26T08", "a"), raw("2026-11-26T09", "b"), raw("2026-11-26T10", "c")}}
	eng.onRefine = func() { now = now.Add(time.Minute) }
	svc, _ := lake.New(lake.Config{Store: st, Engine: eng, Profiles: noProfiles{}, Now: func() time.Time { return now }, Budget: 90 * time.Second,
		Locate: func(context.Context, string) (lake.Location, error) { return lake.Location{}, nil }})
	res, err := svc.Refine(t.Context(), "ten_a")
	// The curated zone waits for the clean zone to be level.
	if err != nil || !res.More || len(res.Partitions) != 2 || res.Curated || eng.curated != 0 {
		t.Fatalf("first run %+v %v", res, err)
	}
	eng.onRefine = nil
	res, err = svc.Refine(t.Context(), "ten_a")
	if err != nil || res.More || !slices.Equal(res.Partitions, []string{"2026-11-26T10"}) || !res.Curated {
		t.Fatalf("second run %+v %v", res, err)
	}
}

// classifier records the tables it is asked to classify, and fails while
// fail is set.
type classifier struct {
	tables []string
	fail   error
}

func (c *classifier) ClassifyTable(_ context.Context, tenant string, _ lake.Location, t lake.Table, sample []map[string]any) error {
	if c.fail != nil {
		return c.fail
	}
	c.tables = append(c.tables, tenant+" "+t.Name)
	return nil
}

// Refine classifies what changed since the last classification: the clean
// tables' partitions refined since (the latest first), the curated tables
// whose contents changed; nothing on a run that changed nothing; and what
// failed to classify on the next run.
func TestRefineClassifies(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	st, eng := newMemStore(), &fakeEngine{raw: []lake.RawPartition{raw("2026-11-26T10", "a"), raw("2026-11-26T11", "b")}}
	cl := &classifier{}
	svc, err := lake.New(lake.Config{Store: st, Engine: eng, Profiles: noProfiles{}, Now: clock, Classifier: cl,
		Locate: func(context.Context, string) (lake.Location, error) { return lake.Location{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	run := func(wantSampled, wantClassified []string) error {
		t.Helper()
		eng.sampled, cl.tables = nil, nil
		_, err := svc.Refine(t.Context(), "ten_a")
		if !slices.Equal(eng.sampled, wantSampled) || !slices.Equal(cl.tables, wantClassified) {
			t.Fatalf("sampled %q, classified %q; want %q, %q", eng.sampled, cl.tables, wantSampled, wantClassified)
		}
		return err
	}
	if err := run([]string{"tracks 2026-11-26T11,2026-11-26T10", "id_graph "}, []string{"ten_a tracks", "ten_a id_graph"}); err != nil {
		t.Fatal(err)
	}
	if err := run(nil, nil); err != nil {
		t.Fatal(err)
	}
	// Late data in 10, and the classifier fails: the run fails, and the
	// next one classifies the partition.
	eng.raw[0] = raw("2026-11-26T10", "a", "a2")
	cl.fail = errors.New("catalog down")
	if err := run([]string{"tracks 2026-11-26T10"}, nil); !errors.Is(err, cl.fail) {
		t.Fatalf("a run whose classification failed: %v", err)
	}
	cl.fail = nil
	// id_graph, rebuilt with the late data as it was, is not sampled.
	if err := run([]string{"tracks 2026-11-26T10"}, []string{"ten_a tracks"}); err != nil {
		t.Fatal(err)
	}
	if err := run(nil, nil); err != nil {
		t.Fatal(err)
	}
}

// A run of a pooled tenant whose tables are the pool's shared ones tells
// Readers the tables its lake has there, every run, and does not fail
// when Readers does (the next run calls it again); a dedicated tenant's
// runs do not call it.
func TestRefineTellsReaders(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	st, eng := newMemStore(), &fakeEngine{raw: []lake.RawPartition{raw("2026-11-26T10", "a")}}
	locs := map[string]lake.Location{
		"ten_p": {Region: "eu-west-1", Tenant: "ten_p", Database: "cairn_pool_ten_p", SharedDatabase: "cairn_pool_shared", Pooled: true},
		"ten_d": {Region: "eu-west-1", Tenant: "ten_d", Database: "cairn_ten_d"},
	}
	var told []string
	var fail error
	svc, err := lake.New(lake.Config{Store: st, Engine: eng, Profiles: noProfiles{}, Now: clock,
		Locate: func(_ context.Context, tenant string) (lake.Location, error) { return locs[tenant], nil },
		Readers: func(_ context.Context, tenant string, loc lake.Location, tables []string) error {
			told = append(told, tenant+" "+loc.SharedDatabase+" "+strings.Join(tables, ","))
			return fail
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"ten_p", "ten_d", "ten_p"} {
		if _, err := svc.Refine(t.Context(), tenant); err != nil {
			t.Fatal(err)
		}
	}
	want := "ten_p cairn_pool_shared id_graph,tracks"
	if !slices.Equal(told, []string{want, want}) {
		t.Fatalf("Readers told %q, want %q twice", told, want)
	}
	fail = errors.New("grants down")
	if _, err := svc.Refine(t.Context(), "ten_p"); err != nil || len(told) != 3 {
		t.Fatalf("a run whose Readers failed: %v (Readers told %d times)", err, len(told))
	}
}
