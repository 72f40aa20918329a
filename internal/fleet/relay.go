package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/periodic"
)

// Defaults of a Relay.
const (
	// DefaultInterval is how often the periodic job relays the outbox,
	// which catches what another replica wrote, or what a Notify missed.
	DefaultInterval = 5 * time.Second
	// DefaultBatch is how many events one Publish call hands over.
	DefaultBatch = 100
)

// Store is the outbox as a Relay uses it. Implementations must be safe for
// concurrent use.
type Store interface {
	// FleetEventList returns at most limit events of the outbox, in Seq
	// order (oldest first).
	FleetEventList(ctx context.Context, limit int) ([]Event, error)
	// FleetEventDelete deletes the events with these IDs; IDs no longer
	// in the outbox are ignored.
	FleetEventDelete(ctx context.Context, ids []string) error
}

// Publisher takes events on from the outbox. Publish must be idempotent by
// event ID (a relay that dies before deleting what it published publishes
// it again), and durable when it returns nil: the events leave the outbox
// then.
type Publisher interface {
	Publish(ctx context.Context, events []Event) error
}

// Notifier is told that a change committed with events in the outbox. The
// tenants service and the provisioner call it; a Relay is one.
type Notifier interface {
	Notify()
}

// Config configures a Relay. Store and Publisher are required.
type Config struct {
	Store     Store
	Publisher Publisher
	// Interval is the periodic job's; default DefaultInterval.
	Interval time.Duration
	// Batch is the most events per Publish; default DefaultBatch.
	Batch int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Relay moves events from the outbox to the Publisher: at once when
// notified (Run), and every Interval from a periodic job that the leader
// replica schedules. It is safe for concurrent use; one relay pass runs at
// a time in a process.
type Relay struct {
	store    Store
	pub      Publisher
	interval time.Duration
	batch    int
	log      *slog.Logger

	// wake holds at most one pending Notify.
	wake chan struct{}
	// mu serialises passes, so that this process hands the outbox over
	// in order.
	mu sync.Mutex
	// round gates the periodic runs (PeriodicJobs).
	round periodic.Gate
}

var _ Notifier = (*Relay)(nil)

// NewRelay returns a Relay, or an error naming what Config lacks.
func NewRelay(cfg Config) (*Relay, error) {
	if cfg.Store == nil || cfg.Publisher == nil {
		return nil, errors.New("fleet: Store and Publisher are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Relay{store: cfg.Store, pub: cfg.Publisher, interval: cfg.Interval, batch: cfg.Batch, log: cfg.Logger, wake: make(chan struct{}, 1)}, nil
}

// Notify asks Run for a pass soon. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays the outbox each time Notify is called, until ctx ends; it
// then returns nil. A failed pass is logged and left to the periodic job.
func (r *Relay) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		}
		if _, err := r.RelayOnce(ctx); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "relay fleet events", "err", err)
		}
	}
}

// RelayOnce hands the whole outbox to the Publisher, a batch at a time and
// oldest first, deleting each batch once published. It returns how many
// events it relayed.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for {
		events, err := r.store.FleetEventList(ctx, r.batch)
		if err != nil {
			return total, fmt.Errorf("read fleet outbox: %w", err)
		}
		if len(events) == 0 {
			return total, nil
		}
		if err := r.pub.Publish(ctx, events); err != nil {
			return total, fmt.Errorf("publish fleet events: %w", err)
		}
		ids := make([]string, len(events))
		for i, ev := range events {
			ids[i] = ev.ID
		}
		if err := r.store.FleetEventDelete(ctx, ids); err != nil {
			return total, fmt.Errorf("delete relayed fleet events: %w", err)
		}
		total += len(events)
		if len(events) < r.batch {
			return total, nil
		}
	}
}

// RelayArgs is the periodic job that relays the outbox.
type RelayArgs struct{}

// Kind implements river.JobArgs.
func (RelayArgs) Kind() string { return "fleet_relay" }

type relayWorker struct {
	river.WorkerDefaults[RelayArgs]
	r *Relay
}

func (w *relayWorker) Work(ctx context.Context, _ *river.Job[RelayArgs]) error {
	w.r.round.Started()
	_, err := w.r.RelayOnce(ctx)
	return err
}

// Register adds the relay's worker.
func (r *Relay) Register(w *river.Workers) {
	river.AddWorker(w, &relayWorker{r: r})
}

// PeriodicJobs returns the relay job, every Interval. Runs are unique per
// interval, as the provisioner's poller's are: a run a crashed process
// left "running" must not stop the runs after it.
func (r *Relay) PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(r.interval), func() (river.JobArgs, *river.InsertOpts) {
			if !r.round.Due(time.Now(), r.interval) {
				return nil, nil // below a second, one waiting at a time (periodic.Gate)
			}
			if r.interval < time.Second {
				return RelayArgs{}, nil // River's unique periods start at a second
			}
			return RelayArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: r.interval}}
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}
