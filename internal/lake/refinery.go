package lake

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Snapshotter reads a tenant's profile store (profiles.Service).
type Snapshotter interface {
	Snapshot(ctx context.Context, tenant string) (profiles.Snapshot, error)
}

// Config configures a Service. Store, Engine, Profiles and Locate are
// required.
type Config struct {
	Store    Store
	Engine   Engine
	Profiles Snapshotter
	// Classifier, if set, classifies the tables the refinery writes
	// (Classifier): each run samples the tables that changed since their
	// last classification, and a run fails (and its job retries) until
	// they are classified.
	Classifier Classifier
	// Readers, if set, is called after each run of a pooled tenant, whose
	// clean and curated tables are the pool's shared ones in AWS mode
	// (Location's SharedDatabase), with the names of those it has, so that
	// its own principal is granted them (grants.Service.GrantOwnRole).
	// An error is logged, not the run's: what it refined stays refined,
	// and the next run calls Readers again.
	Readers func(ctx context.Context, tenant string, loc Location, tables []string) error
	// Locate returns where the tenant's zones are; placement.ErrNotReady
	// while its home stack is not provisioned (nothing to refine yet).
	Locate func(ctx context.Context, tenant string) (Location, error)
	// Grace is how long after its hour ends a raw partition counts as
	// closed and is refined (DefaultGrace, as the raw zone's contract
	// says: a delivery stream buffers and retries for minutes). Data
	// landing later still is late data, and refines the partition again.
	Grace time.Duration
	// CurateEvery is how often the curated zone is rebuilt when no
	// partition was refined (DefaultCurateEvery), so that merges, traits
	// and memberships reach it without new events.
	CurateEvery time.Duration
	// Budget bounds one Refine call (DefaultBudget): what it leaves, the
	// next call (the job, snoozed) refines.
	Budget time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultGrace       = 15 * time.Minute
	DefaultCurateEvery = 15 * time.Minute
	// DefaultBudget leaves a refine job (one minute at most, as every
	// job) time for the partition in hand and the curated zone.
	DefaultBudget = 30 * time.Second
)

// Service is the refinery. It is safe for concurrent use; calls for one
// tenant run one at a time in a process, and replicas running the same
// tenant at once only repeat work (every write replaces whole partitions,
// and a partition refined under an older erased-ID filter is refined
// again).
type Service struct {
	cfg   Config
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// classified is what each tenant's tables were last classified from,
	// by tenant, Region and database.
	classified map[string]classified
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Engine == nil || cfg.Profiles == nil || cfg.Locate == nil {
		return nil, errors.New("lake: Store, Engine, Profiles and Locate are required")
	}
	cfg.Grace = cmp.Or(cfg.Grace, DefaultGrace)
	cfg.CurateEvery = cmp.Or(cfg.CurateEvery, DefaultCurateEvery)
	cfg.Budget = cmp.Or(cfg.Budget, DefaultBudget)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, locks: map[string]*sync.Mutex{}, classified: map[string]classified{}}, nil
}

func (s *Service) lock(tenant string) func() {
	s.mu.Lock()
	l, ok := s.locks[tenant]
	if !ok {
		l = &sync.Mutex{}
		s.locks[tenant] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Fingerprint identifies a raw partition's objects: their keys and sizes.
func Fingerprint(objects []RawObject) string {
	sorted := slices.Clone(objects)
	slices.SortFunc(sorted, func(a, b RawObject) int { return cmp.Compare(a.Key, b.Key) })
	h := sha256.New()
	for _, o := range sorted {
		fmt.Fprintf(h, "%s %d\n", o.Key, o.Size)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// RefineResult reports what a Refine call did.
type RefineResult struct {
	// Partitions are the partitions refined.
	Partitions []string
	// Events is how many rows the clean tables got from them.
	Events int64
	// RawBytes is the raw bytes refined.
	RawBytes int64
	Curated  bool
	// More is set when the budget ran out with closed partitions left.
	More bool
}

// Refine brings the tenant's clean and curated zones level with its raw
// zone: every closed raw partition not refined yet, or whose objects
// changed since (late data), or refined under an older erased-ID filter,
// is refined; then the curated zone is rebuilt if anything was, if an
// erasure happened since its last rebuild, or if that was CurateEvery ago
// (curateDue), once no partition is left for a later run; last, the tables
// that changed are classified (Config.Classifier).
func (s *Service) Refine(ctx context.Context, tenant string) (RefineResult, error) {
	var res RefineResult
	defer s.lock(tenant)()
	start := s.cfg.Now()
	loc, err := s.cfg.Locate(ctx, tenant)
	if err != nil {
		return res, err
	}
	raw, err := s.cfg.Engine.RawPartitions(ctx, loc)
	if err != nil {
		return res, err
	}
	marks, err := s.watermarks(ctx, tenant)
	if err != nil {
		return res, err
	}
	erased, seq, err := s.cfg.Store.LakeErased(ctx, tenant)
	if err != nil {
		return res, err
	}
	var snap *profiles.Snapshot
	snapshot := func() (profiles.Snapshot, error) {
		if snap == nil {
			sn, err := s.cfg.Profiles.Snapshot(ctx, tenant)
			if err != nil {
				return sn, fmt.Errorf("snapshot: %w", err)
			}
			snap = &sn
		}
		return *snap, nil
	}
	for _, rp := range raw {
		p := rp.Partition.String()
		if rp.Partition.End().Add(s.cfg.Grace).After(start) {
			continue // open
		}
		fp := Fingerprint(rp.Objects)
		if w, ok := marks[p]; ok && w.Fingerprint == fp && w.ErasedSeq >= seq {
			continue
		}
		if s.cfg.Now().Sub(start) > s.cfg.Budget {
			res.More = true
			break
		}
		sn, err := snapshot()
		if err != nil {
			return res, err
		}
		stats, err := s.cfg.Engine.Refine(ctx, RefineInput{Tenant: tenant, Location: loc, Partition: rp, Snapshot: sn, Erased: erased})
		if err != nil {
			return res, fmt.Errorf("refine %s: %w", p, err)
		}
		w := Watermark{Partition: p, Fingerprint: fp, RawObjects: int64(len(rp.Objects)), ErasedSeq: seq, RefinedAt: s.cfg.Now().UTC()}
		for _, o := range rp.Objects {
			w.RawBytes += o.Size
		}
		if err := s.cfg.Store.LakeRecord(ctx, tenant, &w, stats); err != nil {
			return res, err
		}
		marks[p] = w
		res.Partitions = append(res.Partitions, p)
		res.RawBytes += w.RawBytes
		for _, st := range stats {
			res.Events += st.Rows
		}
	}
	// With more to refine, the curated zone waits for the clean zone:
	// the job goes on, and curates once it is level.
	if !res.More && s.curateDue(marks, seq) {
		sn, err := snapshot()
		if err != nil {
			return res, err
		}
		if err := s.curate(ctx, tenant, loc, sn, marks, seq); err != nil {
			return res, err
		}
		res.Curated = true
		s.cfg.Logger.InfoContext(ctx, "lake refined", "tenant_id", tenant, "partitions", len(res.Partitions), "events", res.Events, "more", res.More)
	}
	if err := s.classify(ctx, tenant, loc, marks); err != nil {
		return res, fmt.Errorf("classify: %w", err)
	}
	if s.cfg.Readers != nil && loc.SharedDatabase != "" {
		tables, err := s.sharedTables(ctx, tenant)
		if err != nil {
			return res, err
		}
		if err := s.cfg.Readers(ctx, tenant, loc, tables); err != nil {
			s.cfg.Logger.WarnContext(ctx, "lake tables' readers not granted; the next run tries again", "tenant_id", tenant, "error", err)
		}
	}
	return res, nil
}

// sharedTables are the tables the tenant's lake has: those its refines
// and curations recorded (every clean table exists from its first
// refine, a curated one from its first curation).
func (s *Service) sharedTables(ctx context.Context, tenant string) ([]string, error) {
	stats, err := s.cfg.Store.LakeTables(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, st := range stats {
		if _, ok := TableNamed(st.Table); ok && !slices.Contains(out, st.Table) {
			out = append(out, st.Table)
		}
	}
	slices.Sort(out)
	return out, nil
}

// curateDue reports whether the curated zone must be rebuilt: some clean
// partition was refined since its last rebuild, an erasure came since, or
// it is CurateEvery old (merges, traits and memberships change without
// events). A tenant with nothing refined has nothing to curate.
func (s *Service) curateDue(marks map[string]Watermark, seq int64) bool {
	cur, ok := marks[""]
	if !ok {
		return len(marks) > 0
	}
	if cur.ErasedSeq < seq || s.cfg.Now().Sub(cur.RefinedAt) >= s.cfg.CurateEvery {
		return true
	}
	for p, w := range marks {
		if p != "" && w.RefinedAt.After(cur.RefinedAt) {
			return true
		}
	}
	return false
}

// curate rebuilds the curated zone and records it; its watermark's
// Fingerprint is the latest clean partition it read.
func (s *Service) curate(ctx context.Context, tenant string, loc Location, sn profiles.Snapshot, marks map[string]Watermark, seq int64) error {
	stats, err := s.cfg.Engine.Curate(ctx, CurateInput{Tenant: tenant, Location: loc, Snapshot: sn})
	if err != nil {
		return fmt.Errorf("curate: %w", err)
	}
	latest := ""
	for p := range marks {
		latest = max(latest, p)
	}
	w := Watermark{Partition: "", Fingerprint: latest, ErasedSeq: seq, RefinedAt: s.cfg.Now().UTC()}
	return s.cfg.Store.LakeRecord(ctx, tenant, &w, stats)
}

func (s *Service) watermarks(ctx context.Context, tenant string) (map[string]Watermark, error) {
	list, err := s.cfg.Store.LakeWatermarks(ctx, tenant)
	if err != nil {
		return nil, err
	}
	marks := make(map[string]Watermark, len(list))
	for _, w := range list {
		marks[w.Partition] = w
	}
	return marks, nil
}

// EraseZones removes an erased profile's rows from the tenant's clean and
// curated zones: its member IDs and the message IDs of its events join the
// tenant's erased-ID filter first, so that no later refinery run brings
// them back from the raw zone, then the clean partitions holding them are
// rewritten without them and the curated zone is rebuilt from the profile
// store, which no longer holds the profile. It returns what it removed
// from each zone. It is safe to call again: a second call finds nothing
// left to remove. A tenant whose zones are not provisioned has nothing to
// remove.
func (s *Service) EraseZones(ctx context.Context, tenant, erasureID string, members, messages []string) ([]profiles.ZoneErasure, error) {
	ids := slices.Concat(members, messages)
	if err := s.cfg.Store.LakeEraseAdd(ctx, tenant, erasureID, ids); err != nil {
		return nil, err
	}
	defer s.lock(tenant)()
	loc, err := s.cfg.Locate(ctx, tenant)
	if errors.Is(err, placement.ErrNotReady) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, seq, err := s.cfg.Store.LakeErased(ctx, tenant)
	if err != nil {
		return nil, err
	}
	results, rewritten, err := s.cfg.Engine.Purge(ctx, PurgeInput{Tenant: tenant, Location: loc, IDs: ids})
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	if err := s.cfg.Store.LakeRecord(ctx, tenant, nil, rewritten); err != nil {
		return nil, err
	}
	// Every partition now holds nothing the filter names: it is level
	// with it, and needs no refining for it.
	marks, err := s.watermarks(ctx, tenant)
	if err != nil {
		return nil, err
	}
	for p, w := range marks {
		if p == "" || w.ErasedSeq >= seq {
			continue
		}
		w.ErasedSeq = seq
		if err := s.cfg.Store.LakeRecord(ctx, tenant, &w, nil); err != nil {
			return nil, err
		}
	}
	if _, ok := marks[""]; ok {
		sn, err := s.cfg.Profiles.Snapshot(ctx, tenant)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		if err := s.curate(ctx, tenant, loc, sn, marks, seq); err != nil {
			return nil, err
		}
	}
	out := make([]profiles.ZoneErasure, len(results))
	for i, r := range results {
		out[i] = profiles.ZoneErasure{Zone: r.Zone, Partitions: r.Partitions, Rows: r.Rows}
	}
	return out, nil
}

var _ profiles.ZoneEraser = (*Service)(nil)

// RefineArgs is the durable job that refines one tenant's zones: a sweep
// queues one per tenant, unless one is queued or running already; a run
// that leaves partitions for later snoozes.
type RefineArgs struct {
	TenantID string `json:"tenant_id"`
}

// Kind implements river.JobArgs.
func (RefineArgs) Kind() string { return "lake_refine" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (RefineArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}}}
}

type refineWorker struct {
	river.WorkerDefaults[RefineArgs]
	s *Service
}

// Work refines; a tenant not provisioned yet has nothing to refine.
func (w *refineWorker) Work(ctx context.Context, job *river.Job[RefineArgs]) error {
	res, err := w.s.Refine(ctx, job.Args.TenantID)
	if errors.Is(err, placement.ErrNotReady) {
		return nil
	}
	if err != nil {
		return err
	}
	if res.More {
		return river.JobSnooze(time.Second)
	}
	return nil
}

// Register adds the refinery's worker.
func (s *Service) Register(w *river.Workers) {
	river.AddWorker(w, &refineWorker{s: s})
}
