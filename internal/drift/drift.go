// Package drift is the fleet's configuration audit: a periodic job runs
// CloudFormation drift detection on every stack Cairn manages (dedicated
// tenants' stacks and the Regions' pool stacks) and records each stack's
// drift status and drifted resources.
//
// A round works a Region at a time: it finishes the detections of one
// Region before it starts those of the next, and starts at most
// MaxInFlight at once, through the engine the server throttles to
// CloudFormation's rate. A round outlives one run of its job: every
// detection started is recorded (its ID) before it is read, so a job that
// dies or runs out of time resumes where it stopped and never loses a
// result. A stack found drifted that was not before, or with other
// drifted resources, is announced as a stack.drifted fleet event in the
// transaction that records it.
package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// Defaults of a Detector.
const (
	DefaultInterval    = 24 * time.Hour
	DefaultPoll        = 10 * time.Second
	DefaultMaxInFlight = 10
)

// budget bounds one run of the job; the rest waits for the next.
const budget = 40 * time.Second

// Stack is a stack whose drift is detected.
type Stack struct {
	// Kind is "dedicated" or "pool".
	Kind      string
	Region    string
	StackName string
	// TenantID is a dedicated stack's tenant.
	TenantID string
}

// Record is a stack's latest drift detection.
type Record struct {
	Region    string
	StackName string
	// Status is IN_SYNC, DRIFTED, UNKNOWN or NOT_CHECKED.
	Status    string
	Resources []provisioner.ResourceDrift
	// DetectionID is a detection started and not read yet.
	DetectionID string
	CheckedAt   time.Time
}

// ErrNotFound is returned by Store.StackDriftGet for a stack never checked.
var ErrNotFound = errors.New("no drift recorded for the stack")

// Store is the drift records' storage port; implementations are safe for
// concurrent use.
type Store interface {
	// DriftStacks returns every ready dedicated stack and pool stack.
	DriftStacks(ctx context.Context) ([]Stack, error)
	// StackDriftList returns every stack's record.
	StackDriftList(ctx context.Context) ([]Record, error)
	// StackDriftGet returns the stack's record or ErrNotFound.
	StackDriftGet(ctx context.Context, region, stackName string) (Record, error)
	// StackDriftSet stores r, and announce in the same transaction.
	StackDriftSet(ctx context.Context, r Record, announce ...fleet.Event) error
}

// Config configures a Detector. Store and Engine are required.
type Config struct {
	Store  Store
	Engine provisioner.Engine
	// Interval is how often each stack is checked; DefaultInterval.
	Interval time.Duration
	// Poll is how long a round waits between runs; DefaultPoll.
	Poll time.Duration
	// MaxInFlight bounds the detections under way in the Region worked;
	// DefaultMaxInFlight.
	MaxInFlight int
	Now         func() time.Time
	Logger      *slog.Logger
	// Fleet, if set, is told when a stack.drifted event was written.
	Fleet fleet.Notifier
}

// Detector runs the drift rounds. It is safe for concurrent use.
type Detector struct {
	cfg Config
}

// New validates cfg and returns a Detector.
func New(cfg Config) (*Detector, error) {
	if cfg.Store == nil || cfg.Engine == nil {
		return nil, errors.New("drift: Store and Engine are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Detector{cfg: cfg}, nil
}

func key(region, stack string) string { return region + "/" + stack }

// RunOnce takes the round one step: it reads the detections under way in
// the Region being worked (the first, by name, with a stack due or a
// detection under way), records those complete, and starts detections of
// its due stacks up to MaxInFlight. It reports whether the round is over:
// no stack due and no detection under way anywhere.
func (d *Detector) RunOnce(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	stacks, err := d.cfg.Store.DriftStacks(ctx)
	if err != nil {
		return false, fmt.Errorf("drift stacks: %w", err)
	}
	list, err := d.cfg.Store.StackDriftList(ctx)
	if err != nil {
		return false, fmt.Errorf("drift records: %w", err)
	}
	records := map[string]Record{}
	for _, r := range list {
		records[key(r.Region, r.StackName)] = r
	}
	now := d.cfg.Now().UTC()
	dueBefore := now.Add(-d.cfg.Interval / 2)
	byRegion := map[string][]Stack{}
	for _, s := range stacks {
		r, ok := records[key(s.Region, s.StackName)]
		if !ok || r.DetectionID != "" || r.CheckedAt.Before(dueBefore) {
			byRegion[s.Region] = append(byRegion[s.Region], s)
		}
	}
	if len(byRegion) == 0 {
		return true, nil
	}
	region := slices.Sorted(maps.Keys(byRegion))[0]
	var errs []error
	inFlight := 0
	for _, s := range byRegion[region] {
		r, ok := records[key(s.Region, s.StackName)]
		if !ok || r.DetectionID == "" {
			continue
		}
		pending, err := d.read(ctx, s, r)
		if err != nil {
			errs = append(errs, err)
		}
		if pending {
			inFlight++
		}
	}
	for _, s := range byRegion[region] {
		if inFlight >= d.cfg.MaxInFlight || ctx.Err() != nil {
			break
		}
		r, ok := records[key(s.Region, s.StackName)]
		if ok && r.DetectionID != "" {
			continue
		}
		id, err := d.cfg.Engine.DetectDrift(ctx, s.Region, s.StackName)
		if errors.Is(err, provisioner.ErrStackNotFound) {
			continue // gone since it was listed
		}
		if !ok {
			r = Record{Region: s.Region, StackName: s.StackName, Status: provisioner.DriftNotChecked, CheckedAt: now}
		}
		if err != nil && ctx.Err() == nil {
			// Refused (after the SDK's retries): the stack's drift is
			// unknown until the next round, which this one does not hold
			// up.
			errs = append(errs, fmt.Errorf("detect drift of %s in %s: %w", s.StackName, s.Region, err))
			r.Status, r.Resources, r.DetectionID, r.CheckedAt = provisioner.DriftUnknown, nil, "", now
			if err := d.cfg.Store.StackDriftSet(ctx, r); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err != nil {
			break
		}
		r.DetectionID = id
		if err := d.cfg.Store.StackDriftSet(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		inFlight++
	}
	return false, errors.Join(errs...)
}

// read records a detection's result once complete; it reports whether it
// is still under way.
func (d *Detector) read(ctx context.Context, s Stack, r Record) (bool, error) {
	det, err := d.cfg.Engine.DriftDetection(ctx, s.Region, r.DetectionID)
	if err != nil {
		return true, fmt.Errorf("drift detection of %s in %s: %w", s.StackName, s.Region, err)
	}
	if det.Status == provisioner.DetectionInProgress {
		return true, nil
	}
	next := Record{Region: s.Region, StackName: s.StackName, Status: det.StackDriftStatus, CheckedAt: d.cfg.Now().UTC()}
	if det.Status == provisioner.DetectionFailed && next.Status == "" {
		next.Status = provisioner.DriftUnknown
	}
	if next.Status == provisioner.DriftDrifted {
		if next.Resources, err = d.cfg.Engine.ResourceDrifts(ctx, s.Region, s.StackName); err != nil {
			return true, fmt.Errorf("resource drifts of %s in %s: %w", s.StackName, s.Region, err)
		}
	}
	var announce []fleet.Event
	if next.Status == provisioner.DriftDrifted && (r.Status != provisioner.DriftDrifted || !slices.Equal(logicalIDs(r.Resources), logicalIDs(next.Resources))) {
		announce = append(announce, fleet.Event{
			ID:   fleet.NewID(fleet.StackDrifted, s.Region, s.StackName, r.DetectionID),
			Type: fleet.StackDrifted, At: next.CheckedAt,
			Data: fleet.Data{TenantID: s.TenantID, Region: s.Region, StackName: s.StackName, DriftStatus: next.Status,
				DriftedResources: logicalIDs(next.Resources), At: fleet.FormatTime(next.CheckedAt)},
		})
	}
	if err := d.cfg.Store.StackDriftSet(ctx, next, announce...); err != nil {
		return false, err
	}
	if len(announce) > 0 {
		d.cfg.Logger.InfoContext(ctx, "stack drifted", "region", s.Region, "stack_name", s.StackName, "resources", logicalIDs(next.Resources))
		if d.cfg.Fleet != nil {
			d.cfg.Fleet.Notify()
		}
	}
	return false, nil
}

func logicalIDs(drifts []provisioner.ResourceDrift) []string {
	ids := make([]string, len(drifts))
	for i, d := range drifts {
		ids[i] = d.LogicalID + ":" + d.Status
	}
	slices.Sort(ids)
	return ids
}

// DetectArgs is the drift round's job: periodic, and snoozing until its
// round is over.
type DetectArgs struct{}

// Kind implements river.JobArgs.
func (DetectArgs) Kind() string { return "stack_drift_detect" }

type detectWorker struct {
	river.WorkerDefaults[DetectArgs]
	d *Detector
}

// Timeout bounds one run: budget of calls and records.
func (w *detectWorker) Timeout(*river.Job[DetectArgs]) time.Duration { return time.Minute }

func (w *detectWorker) Work(ctx context.Context, _ *river.Job[DetectArgs]) error {
	done, err := w.d.RunOnce(ctx)
	if err != nil {
		w.d.cfg.Logger.WarnContext(ctx, "drift detection", "err", err)
	}
	if !done {
		return river.JobSnooze(w.d.cfg.Poll)
	}
	return nil
}

// Register adds the detector's worker.
func (d *Detector) Register(w *river.Workers) { river.AddWorker(w, &detectWorker{d: d}) }

// PeriodicJobs returns the round's job, every Interval.
func (d *Detector) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(d.cfg.Interval), func() (river.JobArgs, *river.InsertOpts) {
			if d.cfg.Interval < time.Second {
				return DetectArgs{}, nil
			}
			return DetectArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: d.cfg.Interval}}
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}
