package migration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// Tenants reads tenants.
type Tenants interface {
	Get(ctx context.Context, id string) (tenants.Tenant, error)
}

// Provisioner makes the target placement and takes the source away
// (provisioner.Provisioner).
type Provisioner interface {
	MoveTarget(ctx context.Context, t tenants.Tenant, region string, to provisioner.Kind, attempt int) (provisioner.Placement, bool, error)
	MoveRelease(ctx context.Context, pl provisioner.Placement) (bool, error)
}

var _ Provisioner = (*provisioner.Provisioner)(nil)

// Grants re-applies a tenant's grants on its new catalog database
// (grants.Service).
type Grants interface {
	Rehome(ctx context.Context, tenantID, region, from, to string, pooled bool) (int, error)
}

// Defaults of Config.
const (
	// DefaultDrain is how long the job waits after raising the write fence
	// before it copies the delta: every replica's Fences has read the
	// fence (DefaultFenceRefresh) and its requests admitted before have
	// finished.
	DefaultDrain = 3 * time.Second
	// DefaultFenceTTL is how long a fence holds unless lifted; a job that
	// died leaves the tenant writable again after it, and its successor
	// raises the fence again before it switches.
	DefaultFenceTTL = 30 * time.Second
	// DefaultPollInterval is how long the job snoozes while a target
	// stack is on its way (or the source's is being deleted).
	DefaultPollInterval = 5 * time.Second
	// DefaultLease is how long a job's hold on its migration lasts unless
	// renewed; the sweep takes over a migration whose lease lapsed.
	DefaultLease = 15 * time.Second
)

// Config wires a Service. Store, Tenants, Placements, Provisioner, Grants,
// Fences and Zones are required.
type Config struct {
	Store       Store
	Tenants     Tenants
	Placements  placement.Reader
	Provisioner Provisioner
	Grants      Grants
	Fences      *Fences
	Zones       Zones
	// Drain, FenceTTL, PollInterval and Lease default to the constants
	// above. FenceTTL is at least four drains.
	Drain        time.Duration
	FenceTTL     time.Duration
	PollInterval time.Duration
	Lease        time.Duration
	// Now is the clock; time.Now by default.
	Now    func() time.Time
	Logger *slog.Logger
	// Fleet, if set, is told when a migration's end was written to the
	// fleet outbox.
	Fleet fleet.Notifier
}

// Service starts migrations, shows them, and works their jobs. It is safe
// for concurrent use by any number of workers and replicas: all state is
// in the Store.
type Service struct {
	store      Store
	tenants    Tenants
	placements placement.Reader
	prov       Provisioner
	grants     Grants
	fences     *Fences
	zones      Zones
	drain      time.Duration
	fenceTTL   time.Duration
	poll       time.Duration
	lease      time.Duration
	now        func() time.Time
	log        *slog.Logger
	fleet      fleet.Notifier
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Tenants == nil || cfg.Placements == nil || cfg.Provisioner == nil || cfg.Grants == nil || cfg.Fences == nil || cfg.Zones == nil {
		return nil, errors.New("migration: Store, Tenants, Placements, Provisioner, Grants, Fences and Zones are required")
	}
	if cfg.Drain <= 0 {
		cfg.Drain = DefaultDrain
	}
	if cfg.FenceTTL <= 0 {
		cfg.FenceTTL = DefaultFenceTTL
	}
	cfg.FenceTTL = max(cfg.FenceTTL, 4*cfg.Drain)
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{
		store: cfg.Store, tenants: cfg.Tenants, placements: cfg.Placements, prov: cfg.Provisioner, grants: cfg.Grants,
		fences: cfg.Fences, zones: cfg.Zones, drain: cfg.Drain, fenceTTL: cfg.FenceTTL, poll: cfg.PollInterval,
		lease: cfg.Lease, now: cfg.Now, log: cfg.Logger, fleet: cfg.Fleet,
	}, nil
}

// Start starts moving the tenant to tier ("pooled" or "dedicated"), with
// rec the audit event of the request, and returns the migration. Its
// errors: *ValidationError for another tier, tenants.ErrNotFound,
// ErrNotActive, ErrSameTier, placement.ErrNotReady (a Region whose
// placement is not ready) and ErrRunning.
func (s *Service) Start(ctx context.Context, rec audit.Event, tenantID, tier string) (Migration, error) {
	to := placement.Kind(tier)
	if to != placement.Pooled && to != placement.Dedicated {
		return Migration{}, &ValidationError{Field: "/tier", Reason: `must be "pooled" or "dedicated"`}
	}
	t, err := s.tenants.Get(ctx, tenantID)
	if err != nil {
		return Migration{}, err
	}
	if t.Status != tenants.StatusActive {
		return Migration{}, fmt.Errorf("%w: it is %s", ErrNotActive, t.Status)
	}
	if placement.Kind(t.Tier) == to {
		return Migration{}, fmt.Errorf("%w: %s", ErrSameTier, to)
	}
	where, err := s.placements.TenantPlacements(ctx, tenantID)
	if err != nil {
		return Migration{}, err
	}
	var sources []Home
	for _, region := range t.Regions {
		pl, err := where.In(region)
		if err != nil {
			return Migration{}, fmt.Errorf("placement in %s: %w", region, err)
		}
		sources = append(sources, Home{Region: region, Kind: pl.Kind, StackName: pl.StackName, Outputs: pl.Outputs})
	}
	now := s.now().UTC()
	m := Migration{
		ID: ids.New("mig_"), TenantID: t.ID, From: placement.Kind(t.Tier), To: to, Step: StepProvision, State: StateRunning,
		Progress: Progress{Attempt: 1, Sources: sources}, CreatedAt: now, UpdatedAt: now,
	}
	rec = rec.On(m.ID).With("from_tier", string(m.From)).With("to_tier", string(m.To))
	rec.Time = now
	m, err = s.store.MigrationCreate(ctx, m, rec)
	if err != nil {
		return Migration{}, err
	}
	s.fences.set(t.ID, time.Time{}, false)
	return m, nil
}

// Get returns the tenant's latest migration (ErrNotFound if none).
func (s *Service) Get(ctx context.Context, tenantID string) (Migration, error) {
	if _, err := s.tenants.Get(ctx, tenantID); err != nil {
		return Migration{}, err
	}
	return s.store.MigrationLatest(ctx, tenantID)
}
