package rollouts

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/ids"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/templates"
)

// Limits on a Plan.
const (
	MaxCanary      = 1000
	MaxBake        = 7 * 24 * time.Hour
	MaxInFlight    = 500
	maxUpdateTries = 10
)

// Service starts and steers rollouts. It is safe for concurrent use; all
// state is in the Store.
type Service struct {
	store     Store
	templates func(kind string) templates.Template
	now       func() time.Time
}

// ServiceConfig configures a Service. Store is required.
type ServiceConfig struct {
	Store Store
	// Templates returns the template a rollout applies to stacks of a
	// kind (KindDedicated, KindPool); the embedded templates by default.
	Templates func(kind string) templates.Template
	// Now defaults to time.Now.
	Now func() time.Time
}

// NewService returns a Service, or an error naming what cfg lacks.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("rollouts: Store is required")
	}
	if cfg.Templates == nil {
		cfg.Templates = EmbeddedTemplate
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{store: cfg.Store, templates: cfg.Templates, now: func() time.Time { return cfg.Now().UTC().Truncate(time.Microsecond) }}, nil
}

// EmbeddedTemplate is the template this build applies to stacks of kind.
func EmbeddedTemplate(kind string) templates.Template {
	if kind == KindPool {
		return templates.Pool()
	}
	return templates.Dedicated()
}

// NewID returns a fresh rollout ID: "rol_" and 26 characters.
func NewID() string { return ids.New("rol_") }

// CreateParams is what an admin gives to start a rollout.
type CreateParams struct {
	Audit    audit.Event
	Selector Selector
	Plan     Plan
	// Versions, if set, are the versions the admin expects to roll out,
	// by kind ("dedicated", "pool"): a server whose templates differ
	// refuses the rollout rather than apply another version.
	Versions  map[string]string
	CreatedBy string
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// normalize checks the plan and fills in its defaults.
func (p Plan) normalize() (Plan, error) {
	p.Canary = cmp.Or(p.Canary, DefaultCanary)
	if p.Canary < 1 || p.Canary > MaxCanary {
		return p, invalid("canary", "must be between 1 and %d", MaxCanary)
	}
	if len(p.Waves) == 0 {
		p.Waves = slices.Clone(DefaultWaves)
	}
	prev := 0
	for i, w := range p.Waves {
		if w <= prev || w > 100 {
			return p, invalid(fmt.Sprintf("waves/%d", i), "percentages must increase, between 1 and 100")
		}
		prev = w
	}
	if prev != 100 {
		return p, invalid("waves", "the last wave must be 100 (percent)")
	}
	if p.Bake < 0 || p.Bake > MaxBake {
		return p, invalid("bake_seconds", "must be between 0 and %d", int(MaxBake.Seconds()))
	}
	p.FailureThreshold = cmp.Or(p.FailureThreshold, DefaultFailureThreshold)
	if p.FailureThreshold < 1 {
		return p, invalid("failure_threshold", "must be at least 1")
	}
	p.MaxInFlight = cmp.Or(p.MaxInFlight, DefaultMaxInFlight)
	if p.MaxInFlight < 1 || p.MaxInFlight > MaxInFlight {
		return p, invalid("max_in_flight", "must be between 1 and %d", MaxInFlight)
	}
	return p, nil
}

func (s Selector) validate() error {
	switch s.Tier {
	case "", KindDedicated, string(tenants.TierPooled):
	default:
		return invalid("selector/tier", "must be %q or %q", KindDedicated, tenants.TierPooled)
	}
	for i, r := range s.Regions {
		if !tenants.ValidRegion(r) {
			return invalid(fmt.Sprintf("selector/regions/%d", i), "%q is not an AWS commercial Region", r)
		}
	}
	return nil
}

// waveBounds returns, for n targets, the number done at the end of each
// wave: the canary, then each percentage of n (rounded up), each wave at
// least one more than the last.
func waveBounds(n int, p Plan) []int {
	bounds := []int{min(p.Canary, n)}
	for _, pct := range p.Waves {
		b := min(n, max(bounds[len(bounds)-1]+1, (pct*n+99)/100))
		if b > bounds[len(bounds)-1] {
			bounds = append(bounds, b)
		}
	}
	return bounds
}

// Create resolves the selection into targets, assigns them to waves and
// starts the rollout. It returns a *ValidationError for bad input,
// ErrNothingToRoll when no selected stack is behind the version, and
// ErrStackBusy when another rollout holds a selected stack.
func (s *Service) Create(ctx context.Context, p CreateParams) (Rollout, error) {
	plan, err := p.Plan.normalize()
	if err != nil {
		return Rollout{}, err
	}
	if err := p.Selector.validate(); err != nil {
		return Rollout{}, err
	}
	tmpls := map[string]Template{}
	for _, kind := range []string{KindDedicated, KindPool} {
		t := s.templates(kind)
		tmpls[kind] = Template{Name: t.Name, Version: t.Version, Body: t.Body}
	}
	for kind, v := range p.Versions {
		t, ok := tmpls[kind]
		if !ok {
			return Rollout{}, invalid("template_versions/"+kind, "unknown stack kind (want %q or %q)", KindDedicated, KindPool)
		}
		if v != t.Version {
			return Rollout{}, invalid("template_versions/"+kind, "this server applies version %s of %s, not %s", t.Version, t.Name, v)
		}
	}
	candidates, err := s.store.RolloutCandidates(ctx)
	if err != nil {
		return Rollout{}, fmt.Errorf("rollout candidates: %w", err)
	}
	now := s.now()
	r := Rollout{
		ID: NewID(), State: StateRunning, Selector: p.Selector, Plan: plan, Templates: tmpls,
		CreatedBy: p.CreatedBy, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	var targets []Target
	for _, c := range candidates {
		if !p.Selector.selects(c) || c.TemplateVersion == tmpls[c.Kind].Version {
			continue
		}
		targets = append(targets, Target{
			RolloutID: r.ID, Kind: c.Kind, TenantID: c.TenantID, TenantSlug: c.TenantSlug, Region: c.Region,
			StackName: c.StackName, FromVersion: c.TemplateVersion, ToVersion: tmpls[c.Kind].Version,
			State: TargetPending, Version: 1,
		})
	}
	if len(targets) == 0 {
		return Rollout{}, ErrNothingToRoll
	}
	// Waves sample the fleet, not one Region or one tenant after another:
	// targets are ordered by a hash of the rollout and the stack.
	slices.SortFunc(targets, func(a, b Target) int {
		return cmp.Compare(sampleKey(r.ID, a), sampleKey(r.ID, b))
	})
	bounds := waveBounds(len(targets), plan)
	wave := 0
	for i := range targets {
		for i >= bounds[wave] {
			wave++
		}
		targets[i].Index, targets[i].Wave = i, wave
		targets[i].ChangeSet = changeSetName(r.ID, i)
	}
	r.WaveCount = len(bounds)
	rec := p.Audit.On(r.ID).With("targets", fmt.Sprint(len(targets)))
	stored, err := s.store.RolloutCreate(ctx, r, targets, rec)
	if err != nil {
		return Rollout{}, err
	}
	stored.Counts = map[TargetState]int{TargetPending: len(targets)}
	return stored, nil
}

func sampleKey(rolloutID string, t Target) string {
	sum := sha256.Sum256([]byte(rolloutID + "/" + t.Region + "/" + t.StackName))
	return string(sum[:])
}

// changeSetName is the name of the change set a rollout makes for its
// target index: the same on every retry, so a repeated step finds the one
// it made, and unique to the stack (the emulator looks change sets up by
// name alone).
func changeSetName(rolloutID string, index int) string {
	return "cairn-" + strings.ReplaceAll(rolloutID, "_", "-") + "-" + strconv.Itoa(index)
}

// selects reports whether the selector keeps candidate c.
func (s Selector) selects(c Candidate) bool {
	if len(s.Regions) > 0 && !slices.Contains(s.Regions, c.Region) {
		return false
	}
	switch c.Kind {
	case KindDedicated:
		if s.Tier == string(tenants.TierPooled) {
			return false
		}
		if c.TenantStatus != string(tenants.StatusActive) && c.TenantStatus != string(tenants.StatusSuspended) {
			return false
		}
		return s.keepsTenant(c.TenantID, c.TenantLabels)
	case KindPool:
		if s.Tier == KindDedicated {
			return false
		}
		if len(s.TenantIDs) == 0 && len(s.Labels) == 0 {
			return true
		}
		return slices.ContainsFunc(c.PooledTenants, func(t PooledTenant) bool { return s.keepsTenant(t.ID, t.Labels) })
	}
	return false
}

func (s Selector) keepsTenant(id string, labels map[string]string) bool {
	if len(s.TenantIDs) > 0 && !slices.Contains(s.TenantIDs, id) {
		return false
	}
	for k, v := range s.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Get returns the rollout with its target counts, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Rollout, []Target, error) {
	r, err := s.store.RolloutGet(ctx, id)
	if err != nil {
		return Rollout{}, nil, err
	}
	targets, err := s.store.RolloutTargets(ctx, id)
	if err != nil {
		return Rollout{}, nil, err
	}
	r.Counts = countTargets(targets)
	return r, targets, nil
}

// List returns a page of rollouts, newest first, with their target counts.
func (s *Service) List(ctx context.Context, beforeSeq int64, limit int) ([]Rollout, error) {
	list, err := s.store.RolloutList(ctx, beforeSeq, limit)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Counts, err = s.store.RolloutCounts(ctx, list[i].ID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func countTargets(targets []Target) map[TargetState]int {
	counts := map[TargetState]int{}
	for _, t := range targets {
		counts[t.State]++
	}
	return counts
}

// Pause stops a running rollout from starting stacks; stacks in flight
// finish. ErrState unless it is running.
func (s *Service) Pause(ctx context.Context, rec audit.Event, id string) (Rollout, error) {
	return s.steer(ctx, rec, id, func(r *Rollout, _ []Target) (Update, error) {
		if r.State != StateRunning {
			return Update{}, fmt.Errorf("%w: pause a %s rollout", ErrState, r.State)
		}
		r.State, r.Reason = StatePaused, ""
		return Update{}, nil
	})
}

// Resume sets a paused or halted rollout running again; a halted one's
// failure threshold counts the failures from now on. Stacks awaiting
// approval stay so (Approve applies them). ErrState otherwise.
func (s *Service) Resume(ctx context.Context, rec audit.Event, id string) (Rollout, error) {
	return s.steer(ctx, rec, id, func(r *Rollout, targets []Target) (Update, error) {
		if r.State != StatePaused && r.State != StateHalted {
			return Update{}, fmt.Errorf("%w: resume a %s rollout", ErrState, r.State)
		}
		r.State, r.Reason, r.FailureBase = StateRunning, "", countTargets(targets)[TargetFailed]
		return Update{Enqueue: true}, nil
	})
}

// Approve applies the change sets awaiting approval and sets the rollout
// running. ErrState when none awaits approval or the rollout is finished.
func (s *Service) Approve(ctx context.Context, rec audit.Event, id string) (Rollout, error) {
	return s.steer(ctx, rec, id, func(r *Rollout, targets []Target) (Update, error) {
		n := countTargets(targets)[TargetAwaitingApproval]
		if n == 0 || r.State.Done() {
			return Update{}, fmt.Errorf("%w: no stack of this %s rollout awaits approval", ErrState, r.State)
		}
		if r.State == StateHalted {
			r.FailureBase = countTargets(targets)[TargetFailed]
		}
		r.State, r.Reason = StateRunning, ""
		return Update{Enqueue: true, Approve: true}, nil
	})
}

// Abort ends a rollout that is not finished: stacks not started stay on
// their version, change sets not executed are deleted, updates under way
// finish. ErrState for a finished rollout.
func (s *Service) Abort(ctx context.Context, rec audit.Event, id string) (Rollout, error) {
	return s.steer(ctx, rec, id, func(r *Rollout, _ []Target) (Update, error) {
		if r.State.Done() {
			return Update{}, fmt.Errorf("%w: abort a %s rollout", ErrState, r.State)
		}
		r.State, r.Reason = StateAborted, "aborted by "+cmp.Or(rec.Actor, "an admin")
		return Update{Enqueue: true}, nil
	})
}

// steer applies change to the rollout as stored, retrying on concurrent
// changes (the rollout's job updates it too), and records rec with it.
func (s *Service) steer(ctx context.Context, rec audit.Event, id string, change func(*Rollout, []Target) (Update, error)) (Rollout, error) {
	for range maxUpdateTries {
		r, targets, err := s.Get(ctx, id)
		if err != nil {
			return Rollout{}, err
		}
		u, err := change(&r, targets)
		if err != nil {
			return Rollout{}, err
		}
		r.UpdatedAt = s.now()
		u.Rollout, u.Audit = r, rec.On(id)
		stored, err := s.store.RolloutUpdate(ctx, u)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Rollout{}, err
		}
		stored.Counts = maps.Clone(r.Counts)
		if u.Approve {
			stored.Counts[TargetExecuting] += stored.Counts[TargetAwaitingApproval]
			delete(stored.Counts, TargetAwaitingApproval)
		}
		return stored, nil
	}
	return Rollout{}, fmt.Errorf("rollout %s: %w", id, ErrConflict)
}
