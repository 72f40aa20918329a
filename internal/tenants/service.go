package tenants

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
)

// Service runs the tenant lifecycle. It is safe for concurrent use; all
// coordination between replicas goes through the Store.
type Service struct {
	store Store
	now   func() time.Time
	newID func() string
	admit admissions
	// fleet, if set, is told when a change announced itself.
	fleet fleet.Notifier
	// log records each status transition once (SetLogger).
	log *slog.Logger
	// plans, if set, judges the plan names of onboardings and updates.
	plans PlanChecker
}

// PlanChecker says whether a tenant may name a plan: "" (the default plan)
// or the name of one (package plans' Service is one).
type PlanChecker interface {
	Exists(ctx context.Context, name string) (bool, error)
}

// SetPlans makes Onboard and Update refuse a plan that p does not know
// (a *ValidationError naming "plan"). Without it the plan is free text.
// Call it before the Service is used.
func (s *Service) SetPlans(p PlanChecker) { s.plans = p }

// checkPlan refuses a plan name that names no plan.
func (s *Service) checkPlan(ctx context.Context, name string) error {
	if s.plans == nil || name == "" {
		return nil
	}
	ok, err := s.plans.Exists(ctx, name)
	switch {
	case err != nil:
		return fmt.Errorf("check plan %q: %w", name, err)
	case !ok:
		return invalid("plan", "no plan is named %q", name)
	}
	return nil
}

// Announce writes ev, a fleet event that no change of a tenant carries
// (a tenant over its monthly quota), to the fleet outbox on its own, and
// has it relayed at once. An event whose ID the outbox holds is written
// once.
func (s *Service) Announce(ctx context.Context, ev fleet.Event) error {
	if err := s.store.InTx(ctx, func(tx Tx) error { return tx.FleetEventInsert(ctx, ev) }); err != nil {
		return fmt.Errorf("announce %s: %w", ev.Type, err)
	}
	if s.fleet != nil {
		s.fleet.Notify()
	}
	return nil
}

// NewService returns a Service on store. now defaults to time.Now.
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }, newID: NewID,
		log: slog.New(slog.DiscardHandler)}
}

// SetLogger makes the Service log each status transition of a tenant once,
// at INFO, with the tenant, its Regions and the reason of a failure. Call
// it before the Service is used.
func (s *Service) SetLogger(l *slog.Logger) { s.log = l }

// SetFleetNotifier makes the Service tell n after every change that wrote
// a fleet event (see Announcement), so that it goes out at once rather than
// at the relay's next round. Call it before the Service is used.
func (s *Service) SetFleetNotifier(n fleet.Notifier) { s.fleet = n }

// OnboardParams is what an ISV admin gives to onboard a tenant.
type OnboardParams struct {
	// Audit is the request's audit event, written with the tenant.
	Audit        audit.Event
	Name         string
	Slug         string
	Tier         Tier
	HomeRegion   string
	Regions      []string
	Plan         string
	ContactEmail string
	Labels       map[string]string
}

func (p OnboardParams) validate() ([]string, error) {
	if err := validateName(p.Name); err != nil {
		return nil, err
	}
	if err := validateSlug(p.Slug); err != nil {
		return nil, err
	}
	if !p.Tier.Valid() {
		return nil, invalid("tier", "must be %q or %q", TierPooled, TierDedicated)
	}
	regions, err := normalizeRegions(p.HomeRegion, p.Regions)
	if err != nil {
		return nil, err
	}
	if err := validatePlan(p.Plan); err != nil {
		return nil, err
	}
	if err := validateEmail(p.ContactEmail); err != nil {
		return nil, err
	}
	return regions, validateLabels(p.Labels)
}

// Onboard creates a tenant in StatusProvisioning and, in the same
// transaction, the job that provisions it. It returns a *ValidationError or
// ErrSlugTaken for bad input.
func (s *Service) Onboard(ctx context.Context, p OnboardParams) (Tenant, error) {
	regions, err := p.validate()
	if err != nil {
		return Tenant{}, err
	}
	if err := s.checkPlan(ctx, p.Plan); err != nil {
		return Tenant{}, err
	}
	now := s.now()
	t := Tenant{
		ID:           s.newID(),
		Slug:         p.Slug,
		Name:         p.Name,
		Tier:         p.Tier,
		Status:       StatusProvisioning,
		HomeRegion:   p.HomeRegion,
		Regions:      regions,
		Plan:         p.Plan,
		ContactEmail: p.ContactEmail,
		Labels:       maps.Clone(p.Labels),
		Version:      1,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		var err error
		if t, err = tx.TenantInsert(ctx, t); err != nil {
			return err
		}
		rec := p.Audit.On(t.ID)
		rec.TenantID = t.ID // the event is about the tenant it made
		if err := tx.AuditAppend(ctx, rec); err != nil {
			return err
		}
		return tx.JobInsert(ctx, ProvisionArgs{TenantID: t.ID})
	})
	if err != nil {
		return Tenant{}, fmt.Errorf("onboard tenant: %w", err)
	}
	return t, nil
}

// Get returns the tenant, deleted tombstones included, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Tenant, error) {
	return s.store.TenantGet(ctx, id)
}

// List returns one page of tenants in a stable order (insertion order).
// Tenants inserted while a client pages through appear at the end, so a
// client never sees a tenant twice or misses one that existed when it began.
func (s *Service) List(ctx context.Context, p ListParams) ([]Tenant, error) {
	if p.Status != "" && !p.Status.Valid() {
		return nil, invalid("status", "unknown status %q", p.Status)
	}
	if p.Tier != "" && !p.Tier.Valid() {
		return nil, invalid("tier", "unknown tier %q", p.Tier)
	}
	// Stores match Search against lower-cased names (SQL lower() folds
	// ASCII only), slugs and IDs, which are lower-case already.
	p.Search = lowerASCII(p.Search)
	if p.Region != "" && !ValidRegion(p.Region) {
		return nil, invalid("region", "%q is not an AWS commercial Region", p.Region)
	}
	return s.store.TenantList(ctx, p)
}

// UpdateParams changes a tenant's descriptive fields; nil leaves a field as
// it is. Labels replaces the whole label set.
type UpdateParams struct {
	// Audit is the request's audit event, written with the change.
	Audit        audit.Event
	Name         *string
	Plan         *string
	ContactEmail *string
	Labels       *map[string]string
	// Regions, when set, is the tenant's whole new Region list. Regions can
	// only be added; the new ones are provisioned by a job queued with the
	// change. The home Region is always kept.
	Regions *[]string
	// IfVersion, when set, makes the update fail with ErrVersionMismatch
	// unless the tenant is still at this version.
	IfVersion *int64
}

func (p UpdateParams) validate() error {
	if p.Name != nil {
		if err := validateName(*p.Name); err != nil {
			return err
		}
	}
	if p.Plan != nil {
		if err := validatePlan(*p.Plan); err != nil {
			return err
		}
	}
	if p.ContactEmail != nil {
		if err := validateEmail(*p.ContactEmail); err != nil {
			return err
		}
	}
	if p.Labels != nil {
		return validateLabels(*p.Labels)
	}
	return nil
}

// Update changes a live tenant's descriptive fields. It returns
// ErrVersionMismatch when p.IfVersion is stale and a *TransitionError when
// the tenant is being or has been deleted.
func (s *Service) Update(ctx context.Context, id string, p UpdateParams) (Tenant, error) {
	if err := p.validate(); err != nil {
		return Tenant{}, err
	}
	if p.Plan != nil {
		if err := s.checkPlan(ctx, *p.Plan); err != nil {
			return Tenant{}, err
		}
	}
	return s.change(ctx, p.Audit, id, p.IfVersion, func(t *Tenant) (JobArgs, error) {
		if !t.Status.Live() {
			return nil, &TransitionError{From: t.Status, Event: "update"}
		}
		var job JobArgs
		if p.Regions != nil {
			regions, err := normalizeRegions(t.HomeRegion, *p.Regions)
			if err != nil {
				return nil, err
			}
			for _, r := range t.Regions {
				if !slices.Contains(regions, r) {
					return nil, fmt.Errorf("%w: %s is missing", ErrRegionRemoved, r)
				}
			}
			if !slices.Equal(regions, t.Regions) {
				t.Regions = regions
				job = ProvisionArgs{TenantID: t.ID}
			}
		}
		if p.Name != nil {
			t.Name = *p.Name
		}
		if p.Plan != nil {
			t.Plan = *p.Plan
		}
		if p.ContactEmail != nil {
			t.ContactEmail = *p.ContactEmail
		}
		if p.Labels != nil {
			t.Labels = maps.Clone(*p.Labels)
			if t.Labels == nil {
				t.Labels = map[string]string{}
			}
		}
		return job, nil
	})
}

// Enqueue inserts a durable job, and the audit event of the request that
// asked for it, on their own (for work whose state lives outside the
// control-plane database, such as a profile erasure).
func (s *Service) Enqueue(ctx context.Context, rec audit.Event, args JobArgs) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.AuditAppend(ctx, rec); err != nil {
			return err
		}
		return tx.JobInsert(ctx, args)
	})
}

// Reconcile queues a provisioning job for the tenant without changing it,
// so the provisioner compares its stacks with what the tenant wants again
// (used after a stack retry, whose audit event rec is written with the
// job).
func (s *Service) Reconcile(ctx context.Context, rec audit.Event, id string) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		if _, err := tx.TenantGet(ctx, id); err != nil {
			return err
		}
		if err := tx.AuditAppend(ctx, rec); err != nil {
			return err
		}
		return tx.JobInsert(ctx, ProvisionArgs{TenantID: id})
	})
}

// Suspend, Resume, Retry and Offboard apply to the tenant at ifVersion
// when it is not nil, and return ErrVersionMismatch, changing nothing, when
// the tenant has changed since. Each writes rec, the request's audit
// event, with the change.
//
// Suspend stops an active tenant's access: its tokens are refused at once,
// and a job queued with the change takes its data grants away. Its stacks
// stay in place.
func (s *Service) Suspend(ctx context.Context, rec audit.Event, id string, ifVersion *int64) (Tenant, error) {
	return s.transition(ctx, rec, id, ifVersion, EventSuspend, "", accessSync)
}

// Resume gives a suspended tenant its access back, grants included.
func (s *Service) Resume(ctx context.Context, rec audit.Event, id string, ifVersion *int64) (Tenant, error) {
	return s.transition(ctx, rec, id, ifVersion, EventResume, "", accessSync)
}

func accessSync(t Tenant) JobArgs { return AccessSyncArgs{TenantID: t.ID} }

// Retry sends a failed tenant back to provisioning with a fresh job.
func (s *Service) Retry(ctx context.Context, rec audit.Event, id string, ifVersion *int64) (Tenant, error) {
	return s.transition(ctx, rec, id, ifVersion, EventRetry, "", func(t Tenant) JobArgs { return ProvisionArgs{TenantID: t.ID} })
}

// Offboard moves a tenant to deprovisioning and inserts the job that takes
// its stacks away; the tenant ends as a deleted tombstone. purge also
// deletes data that would otherwise be retained.
func (s *Service) Offboard(ctx context.Context, rec audit.Event, id string, ifVersion *int64, purge bool) (Tenant, error) {
	return s.transition(ctx, rec, id, ifVersion, EventOffboard, "", func(t Tenant) JobArgs {
		return DeprovisionArgs{TenantID: t.ID, Purge: purge}
	})
}

// MarkProvisioned is called by the provisioner when every Region is ready.
func (s *Service) MarkProvisioned(ctx context.Context, id string) (Tenant, error) {
	return s.transition(ctx, byCairn("tenant.provisioned", id), id, nil, EventProvisioned, "", nil)
}

// MarkFailed is called by the provisioner when a stack failed for good. It
// fails the tenant only at version, the one the provisioner judged the
// failure against: a retry since (or any other change) is
// ErrVersionMismatch, and changes nothing, so that a stale judgement
// cannot undo a retry.
func (s *Service) MarkFailed(ctx context.Context, id string, version int64, reason string) (Tenant, error) {
	return s.change(ctx, byCairn("tenant.failed", id).With("reason", reason), id, &version, func(t *Tenant) (JobArgs, error) {
		to, err := Next(t.Status, EventProvisionFailed)
		if err != nil {
			return nil, err
		}
		t.Status, t.StatusReason = to, reason
		return nil, nil
	})
}

// MarkDeleted is called by the provisioner once everything is gone.
func (s *Service) MarkDeleted(ctx context.Context, id string) (Tenant, error) {
	return s.transition(ctx, byCairn("tenant.deleted", id), id, nil, EventDeprovisioned, "", nil)
}

// byCairn is the audit event of a change the provisioner's jobs make to a
// tenant (provisioned, failed, deleted): the request that started the
// work recorded itself, and this records how it ended.
func byCairn(action, id string) audit.Event {
	return audit.Event{TenantID: id, Actor: audit.ActorCairn, Action: action, TargetType: "tenant", TargetID: id, Outcome: audit.OutcomeOK}
}

// transition applies one state-machine event and, if job is not nil, the
// job it causes, in one transaction.
func (s *Service) transition(ctx context.Context, rec audit.Event, id string, ifVersion *int64, ev Event, reason string, job func(Tenant) JobArgs) (Tenant, error) {
	return s.change(ctx, rec, id, ifVersion, func(t *Tenant) (JobArgs, error) {
		to, err := Next(t.Status, ev)
		if err != nil {
			return nil, err
		}
		t.Status = to
		t.StatusReason = reason
		if to == StatusDeleted {
			now := s.now()
			t.DeletedAt = &now
		}
		if job == nil {
			return nil, nil
		}
		return job(*t), nil
	})
}

// change reads the tenant, applies mutate and writes it back with its
// version increased, all in one transaction; a change that Announcement
// finds worth announcing writes its fleet event in that transaction too,
// and so does rec, the audit event of the request that made the change
// (zero for Cairn's own changes, which record nothing).
func (s *Service) change(ctx context.Context, rec audit.Event, id string, ifVersion *int64, mutate func(*Tenant) (JobArgs, error)) (Tenant, error) {
	var (
		out       Tenant
		from      Status
		announced bool
	)
	err := s.store.InTx(ctx, func(tx Tx) error {
		t, err := tx.TenantGet(ctx, id)
		if err != nil {
			return err
		}
		if ifVersion != nil && *ifVersion != t.Version {
			return ErrVersionMismatch
		}
		from = t.Status
		job, err := mutate(&t)
		if err != nil {
			return err
		}
		t.Version++
		t.UpdatedAt = s.now()
		if err := tx.TenantUpdate(ctx, t); err != nil {
			return err
		}
		if err := tx.AuditAppend(ctx, rec.On(t.ID)); err != nil {
			return err
		}
		if job != nil {
			if err := tx.JobInsert(ctx, job); err != nil {
				return err
			}
		}
		if ev, ok := Announcement(from, t); ok {
			if err := tx.FleetEventInsert(ctx, ev); err != nil {
				return err
			}
			announced = true
		}
		out = t
		return nil
	})
	if err != nil {
		return Tenant{}, fmt.Errorf("change tenant %s: %w", id, err)
	}
	s.admit.forget(id)
	if announced && s.fleet != nil {
		s.fleet.Notify()
	}
	if out.Status != from {
		attrs := []any{"tenant_id", out.ID, "from", from, "to", out.Status, "home_region", out.HomeRegion, "regions", out.Regions}
		if out.StatusReason != "" {
			attrs = append(attrs, "reason", out.StatusReason)
		}
		s.log.InfoContext(ctx, "tenant status changed", attrs...)
	}
	return out, nil
}

// Announcement returns the fleet event that announces t's move from status
// from to t.Status, if the move is one the ISV hears of: provisioning
// completed (tenant.provisioned; a resume is not announced), provisioning
// failed, a suspension, and the end of offboarding (tenant.deleted). Its
// ID is derived from the tenant's ID, new status and new version, so a
// retried change yields the same ID.
func Announcement(from Status, t Tenant) (fleet.Event, bool) {
	if from == t.Status {
		return fleet.Event{}, false
	}
	var typ string
	switch {
	case t.Status == StatusActive && from == StatusProvisioning:
		typ = fleet.TenantProvisioned
	case t.Status == StatusFailed:
		typ = fleet.TenantFailed
	case t.Status == StatusSuspended:
		typ = fleet.TenantSuspended
	case t.Status == StatusDeleted:
		typ = fleet.TenantDeleted
	default:
		return fleet.Event{}, false
	}
	data := FleetData(t, t.UpdatedAt)
	if t.Status == StatusFailed {
		data.Reason = t.StatusReason
	}
	return fleet.Event{
		ID:   fleet.NewID(t.ID, string(t.Status), strconv.FormatInt(t.Version, 10)),
		Type: typ, At: t.UpdatedAt, Data: data,
	}, true
}

// FleetData describes t in a fleet event of a change at at.
func FleetData(t Tenant, at time.Time) fleet.Data {
	return fleet.Data{
		TenantID: t.ID, Slug: t.Slug, Name: t.Name, Status: string(t.Status), Tier: string(t.Tier),
		Regions: slices.Clone(t.Regions), At: fleet.FormatTime(at),
	}
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
