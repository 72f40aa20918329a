package plans

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
)

// Store is the plans' storage port. Implementations must be safe for
// concurrent use and translate their driver errors to this package's.
type Store interface {
	// PlanGet returns the plan or ErrNotFound.
	PlanGet(ctx context.Context, name string) (Plan, error)
	// PlanList returns at most limit plans whose names sort after after,
	// in name order.
	PlanList(ctx context.Context, after string, limit int) ([]Plan, error)
	// PlanInsert stores a new plan and rec in one transaction; it returns
	// ErrVersionMismatch when a plan has the name already.
	PlanInsert(ctx context.Context, p Plan, rec audit.Event) error
	// PlanUpdate stores p and rec in one transaction if the stored
	// version is p.Version-1, and returns ErrVersionMismatch otherwise
	// (ErrNotFound if there is no such plan).
	PlanUpdate(ctx context.Context, p Plan, rec audit.Event) error
	// Appender records a PUT that changed nothing.
	audit.Appender
}

// CacheTTL is the longest Limits answers from a plan it read before.
const CacheTTL = 5 * time.Second

// Service reads and changes plans. It is safe for concurrent use.
type Service struct {
	store Store
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]cached
	// gen counts this Service's changes: a read that a change overtook
	// is not cached.
	gen uint64
}

type cached struct {
	p  Plan
	at time.Time
}

// NewService returns a Service on store; now defaults to time.Now.
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }, cache: map[string]cached{}}
}

// Get returns the plan or ErrNotFound.
func (s *Service) Get(ctx context.Context, name string) (Plan, error) {
	return s.store.PlanGet(ctx, name)
}

// List returns at most limit plans named after after, in name order.
func (s *Service) List(ctx context.Context, after string, limit int) ([]Plan, error) {
	return s.store.PlanList(ctx, after, limit)
}

// PutParams are a plan's whole new terms.
type PutParams struct {
	// Audit is the request's audit event. Put records it as
	// "plan.create" when it makes the plan, as given otherwise, and with
	// the detail unchanged=true when the terms were the plan's already.
	Audit             audit.Event
	Description       string
	Limits            Limits
	MonthlyEventsMode Mode
	ProfilesMode      Mode
	// IfVersion, when set, makes Put fail with ErrVersionMismatch unless
	// the plan exists at this version.
	IfVersion *int64
}

// putAttempts bounds Put's retries of a create that lost a race.
const putAttempts = 3

// Put sets the plan's terms: it makes the plan (created is true) or
// replaces its terms, increasing its version, unless they are the same
// already, which changes nothing: a PUT repeated is answered alike. It
// returns a *ValidationError or ErrVersionMismatch.
func (s *Service) Put(ctx context.Context, name string, p PutParams) (plan Plan, created bool, err error) {
	want := Plan{Name: name, Description: p.Description, Limits: p.Limits, MonthlyEventsMode: p.MonthlyEventsMode, ProfilesMode: p.ProfilesMode}
	if err := want.validate(); err != nil {
		return Plan{}, false, err
	}
	for range putAttempts {
		cur, err := s.store.PlanGet(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			if p.IfVersion != nil {
				return Plan{}, false, ErrVersionMismatch
			}
			now := s.now()
			want.Version, want.CreatedAt, want.UpdatedAt = 1, now, now
			rec := p.Audit
			rec.Action = "plan.create"
			err = s.store.PlanInsert(ctx, want, rec.On(name))
			if errors.Is(err, ErrVersionMismatch) {
				continue // made meanwhile: replace it, or find it the same
			}
			if err != nil {
				return Plan{}, false, fmt.Errorf("put plan %s: %w", name, err)
			}
			s.forget()
			return want, true, nil
		case err != nil:
			return Plan{}, false, fmt.Errorf("put plan %s: %w", name, err)
		}
		if p.IfVersion != nil && *p.IfVersion != cur.Version {
			return Plan{}, false, ErrVersionMismatch
		}
		if sameTerms(cur, want) {
			if err := s.store.AuditAppend(ctx, p.Audit.On(name).With("unchanged", "true")); err != nil {
				return Plan{}, false, fmt.Errorf("put plan %s: %w", name, err)
			}
			return cur, false, nil
		}
		next := want
		next.Version, next.CreatedAt, next.UpdatedAt = cur.Version+1, cur.CreatedAt, s.now()
		err = s.store.PlanUpdate(ctx, next, p.Audit.On(name))
		if errors.Is(err, ErrVersionMismatch) && p.IfVersion == nil {
			continue // changed meanwhile: the last PUT wins
		}
		if err != nil {
			return Plan{}, false, fmt.Errorf("put plan %s: %w", name, err)
		}
		s.forget()
		return next, false, nil
	}
	return Plan{}, false, fmt.Errorf("put plan %s: %w", name, ErrVersionMismatch)
}

// Exists reports whether a tenant may name the plan: "" (the default
// plan) or a plan's name.
func (s *Service) Exists(ctx context.Context, name string) (bool, error) {
	if name == "" {
		return true, nil
	}
	_, err := s.store.PlanGet(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// Limits returns the plan a tenant's plan field names: the default plan
// for "" or a name no plan has. It reads the store at most once per
// CacheTTL a name, and never while it has a fresh answer, so every request
// may call it.
func (s *Service) Limits(ctx context.Context, name string) (Plan, error) {
	if name == "" {
		name = DefaultName
	}
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache[name]
	gen := s.gen
	s.mu.Unlock()
	if ok && now.Sub(c.at) < CacheTTL {
		return c.p, nil
	}
	p, err := s.store.PlanGet(ctx, name)
	if errors.Is(err, ErrNotFound) && name != DefaultName {
		p, err = s.store.PlanGet(ctx, DefaultName)
	}
	if errors.Is(err, ErrNotFound) {
		p, err = Default(), nil // only a database emptied by hand lacks it
	}
	if err != nil {
		if ok {
			return c.p, nil // the last answer beats failing every request
		}
		return Plan{}, fmt.Errorf("plan %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen {
		s.cache[name] = cached{p: p, at: now}
	}
	return p, nil
}

// forget makes the next Limits read every plan again: a change to the
// default plan is also the answer for every unknown name.
func (s *Service) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	clear(s.cache)
}
