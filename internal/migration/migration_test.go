package migration

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// fenceStore answers MigrationRunning only.
type fenceStore struct {
	Store
	running map[string]time.Time
}

func (s fenceStore) MigrationRunning(context.Context) (map[string]time.Time, error) {
	return s.running, nil
}

func TestFences(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	st := fenceStore{running: map[string]time.Time{"ten_a": now.Add(5 * time.Second), "ten_b": {}, "ten_c": now.Add(-time.Second)}}
	f := NewFences(st, time.Hour, func() time.Time { return now }, nil)
	f.Refresh(t.Context())

	if _, retry, ok := f.Enter("ten_a"); ok || retry != time.Second {
		t.Errorf("fenced tenant: ok %v, retry %s; want refused, retry 1s", ok, retry)
	}
	for _, id := range []string{"ten_b", "ten_c", "ten_d"} {
		release, _, ok := f.Enter(id)
		if !ok {
			t.Errorf("%s (unfenced, lapsed fence, no migration) refused", id)
			continue
		}
		release()
	}
	if !f.Migrating("ten_b") || f.Migrating("ten_d") {
		t.Errorf("migrating: b %v, d %v", f.Migrating("ten_b"), f.Migrating("ten_d"))
	}

	// waitIdle returns once the admitted writes are released.
	release, _, ok := f.Enter("ten_b")
	if !ok {
		t.Fatal("ten_b refused")
	}
	f.set("ten_b", now.Add(time.Minute), false)
	if _, _, ok := f.Enter("ten_b"); ok {
		t.Error("ten_b admitted after its fence was set on this replica")
	}
	waited := make(chan error, 1)
	go func() { waited <- f.waitIdle(t.Context(), "ten_b") }()
	select {
	case err := <-waited:
		t.Fatalf("waitIdle returned with a write in flight: %v", err)
	default:
	}
	release()
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	f.set("ten_b", time.Time{}, true)
	if f.Migrating("ten_b") {
		t.Error("ten_b still migrating after its end")
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		step  Step
		state State
		want  int
	}{
		{StepProvision, StateRunning, 0},
		{StepFence, StateRunning, 28},
		{StepPurge, StateRunning, 85},
		{StepDone, StateSucceeded, 100},
		{StepCopy, StateFailed, 14},
	}
	for _, tt := range tests {
		if got := (Migration{Step: tt.step, State: tt.state}).Percent(); got != tt.want {
			t.Errorf("%s %s: %d%%, want %d%%", tt.step, tt.state, got, tt.want)
		}
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLocalZonesSync copies a pooled tenant's slice into a dedicated
// stack's buckets and catalog: objects keep their keys below the
// prefixes, a repeat writes nothing, what the source lost is removed,
// other tenants' objects are never read, and the catalog's tables become
// the tenant's own.
func TestLocalZonesSync(t *testing.T) {
	root := t.TempDir()
	z := LocalZones{Root: root}
	from := Home{Region: "eu-west-1", Kind: placement.Pooled, Outputs: map[string]string{
		"raw_bucket": "cairn-pool-raw", "clean_bucket": "cairn-pool-clean", "curated_bucket": "cairn-pool-curated",
		"s3_prefix": "tenants/ten_a/", "glue_database": "cairn_pool_ten_a"}}
	to := Home{Region: "eu-west-1", Kind: placement.Dedicated, Outputs: map[string]string{
		"raw_bucket": "cairn-ten-a-raw", "clean_bucket": "cairn-ten-a-clean", "curated_bucket": "cairn-ten-a-curated",
		"glue_database": "cairn_ten_a"}}
	buckets := filepath.Join(root, "eu-west-1", "buckets")
	write(t, filepath.Join(buckets, "cairn-pool-raw/tenants/ten_a/events/dt=2026-05-01/hh=10/a.ndjson.gz"), "a")
	write(t, filepath.Join(buckets, "cairn-pool-raw/tenants/ten_a/events/dt=2026-05-01/hh=10/.b.tmp-1"), "partial")
	write(t, filepath.Join(buckets, "cairn-pool-clean/tenants/ten_a/tracks/dt=2026-05-01/hh=10/p.parquet"), "p")
	write(t, filepath.Join(buckets, "cairn-pool-raw/tenants/ten_b/events/dt=2026-05-01/hh=10/x.ndjson.gz"), "other tenant")
	write(t, filepath.Join(root, "eu-west-1/catalog/cairn_pool_ten_a/tracks.json"), `{"columns":["a"],"shared":true}`)

	c, err := z.Sync(t.Context(), "ten_a", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if c.Objects != 3 || c.Written != 3 || c.Removed != 0 {
		t.Errorf("first sync: %+v, want 3 objects written", c)
	}
	if got := read(t, filepath.Join(buckets, "cairn-ten-a-raw/events/dt=2026-05-01/hh=10/a.ndjson.gz")); got != "a" {
		t.Errorf("raw object: %q", got)
	}
	if got := read(t, filepath.Join(buckets, "cairn-ten-a-clean/tracks/dt=2026-05-01/hh=10/p.parquet")); got != "p" {
		t.Errorf("clean object: %q", got)
	}
	if got := read(t, filepath.Join(root, "eu-west-1/catalog/cairn_ten_a/tracks.json")); got != `{"columns":["a"],"shared":false}` {
		t.Errorf("catalog table: %s", got)
	}
	if _, err := os.Stat(filepath.Join(buckets, "cairn-ten-a-raw/ten_b")); err == nil {
		t.Error("another tenant's object was copied")
	}

	if c, err = z.Sync(t.Context(), "ten_a", from, to); err != nil || c.Written != 0 || c.Removed != 0 {
		t.Errorf("repeat: %+v, %v; want nothing written", c, err)
	}
	if err := os.Remove(filepath.Join(buckets, "cairn-pool-clean/tenants/ten_a/tracks/dt=2026-05-01/hh=10/p.parquet")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(buckets, "cairn-pool-raw/tenants/ten_a/events/dt=2026-05-01/hh=11/c.ndjson.gz"), "c")
	if c, err = z.Sync(t.Context(), "ten_a", from, to); err != nil || c.Written != 1 || c.Removed != 1 {
		t.Errorf("delta: %+v, %v; want one written, one removed", c, err)
	}

	if n, err := z.Clear(t.Context(), "ten_a", from); err != nil || n != 1 {
		t.Errorf("clear: %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(root, "eu-west-1/catalog/cairn_pool_ten_a")); err == nil {
		t.Error("the source's catalog tables are left")
	}
}

// failStore records the migration fail writes.
type failStore struct {
	Store
	updated []Migration
}

func (s *failStore) MigrationUpdate(_ context.Context, m Migration, _ ...fleet.Event) (Migration, error) {
	s.updated = append(s.updated, m)
	return m, nil
}

// releaseRecorder records the placements MoveRelease is asked to take away.
type releaseRecorder struct {
	Provisioner
	released []provisioner.Placement
}

func (p *releaseRecorder) MoveRelease(_ context.Context, pl provisioner.Placement) (bool, error) {
	p.released = append(p.released, pl)
	return true, nil
}

// TestFailReleasesUnrecordedTargets: a migration that fails in its
// provision step, before its targets are recorded, takes away what
// MoveTarget may have made in each source's Region, of the tier it moved
// to: a pooled slice's role and database as much as a dedicated stack.
// Recorded targets are taken away as recorded.
func TestFailReleasesUnrecordedTargets(t *testing.T) {
	sources := []Home{{Region: "eu-west-1", Kind: placement.Dedicated}, {Region: "us-east-1", Kind: placement.Dedicated}}
	recorded := []Home{{Region: "eu-west-1", Kind: placement.Pooled, StackName: "cairn-pool", Outputs: map[string]string{"raw_bucket": "cairn-pool-raw"}}}
	for _, tc := range []struct {
		name    string
		from    placement.Kind
		to      placement.Kind
		targets []Home
		want    []provisioner.Placement
	}{
		{"into the pool, none recorded", placement.Dedicated, placement.Pooled, nil, []provisioner.Placement{
			{TenantID: "ten_a", Kind: provisioner.KindPooled, StackRecord: provisioner.StackRecord{Region: "eu-west-1", Attempt: 2}},
			{TenantID: "ten_a", Kind: provisioner.KindPooled, StackRecord: provisioner.StackRecord{Region: "us-east-1", Attempt: 2}},
		}},
		{"into a stack, none recorded", placement.Pooled, placement.Dedicated, nil, []provisioner.Placement{
			{TenantID: "ten_a", Kind: provisioner.KindDedicated, StackRecord: provisioner.StackRecord{Region: "eu-west-1", Attempt: 2}},
			{TenantID: "ten_a", Kind: provisioner.KindDedicated, StackRecord: provisioner.StackRecord{Region: "us-east-1", Attempt: 2}},
		}},
		{"recorded", placement.Dedicated, placement.Pooled, recorded, []provisioner.Placement{
			{TenantID: "ten_a", Kind: provisioner.KindPooled, StackRecord: provisioner.StackRecord{Region: "eu-west-1", StackName: "cairn-pool", Attempt: 2, Outputs: recorded[0].Outputs}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, prov := &failStore{}, &releaseRecorder{}
			s := &Service{store: st, prov: prov, zones: LocalZones{Root: t.TempDir()}, now: time.Now,
				log: slog.New(slog.DiscardHandler), fences: NewFences(st, time.Hour, time.Now, nil)}
			m := Migration{ID: "mig_1", TenantID: "ten_a", From: tc.from, To: tc.to, Step: StepProvision, State: StateRunning,
				Progress: Progress{Attempt: 2, Targets: tc.targets}}
			for _, src := range sources {
				src.Kind = tc.from
				m.Progress.Sources = append(m.Progress.Sources, src)
			}
			if err := s.fail(t.Context(), m, errors.New("the pool in us-east-1 failed")); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(prov.released, tc.want) {
				t.Errorf("released %+v\nwant %+v", prov.released, tc.want)
			}
			if len(st.updated) != 1 || st.updated[0].State != StateFailed {
				t.Errorf("recorded %+v, want one failed migration", st.updated)
			}
		})
	}
}
