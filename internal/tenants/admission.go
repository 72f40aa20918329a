package tenants

import (
	"context"
	"sync"
	"time"
)

// AdmissionMaxAge is the longest Admitted answers from a tenant it read
// before: another replica's lifecycle change (a suspension, an
// offboarding) takes effect here within it. This replica's own changes
// take effect at once.
const AdmissionMaxAge = time.Second

// admissionCap bounds the cache; past it the cache starts over.
const admissionCap = 10_000

// admissions is Service's cache of recently read tenants, for Admitted.
type admissions struct {
	mu sync.Mutex
	m  map[string]admission
	// gen counts this Service's changes. A read that a change overtook
	// is not cached: it may predate the change.
	gen uint64
}

type admission struct {
	t  Tenant
	at time.Time
}

// Admitted returns the tenant as Get does, or as this Service read it less
// than AdmissionMaxAge ago, for the checks every request of a tenant's
// token makes (is it live, is it suspended): they then cost no database
// read. Every change made through this Service is seen at once.
func (s *Service) Admitted(ctx context.Context, id string) (Tenant, error) {
	now := time.Now()
	s.admit.mu.Lock()
	a, ok := s.admit.m[id]
	gen := s.admit.gen
	s.admit.mu.Unlock()
	if ok && now.Sub(a.at) < AdmissionMaxAge {
		return a.t, nil
	}
	t, err := s.store.TenantGet(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	s.admit.mu.Lock()
	defer s.admit.mu.Unlock()
	if s.admit.gen == gen {
		if s.admit.m == nil || len(s.admit.m) >= admissionCap {
			s.admit.m = make(map[string]admission)
		}
		s.admit.m[id] = admission{t: t, at: now}
	}
	return t, nil
}

// forget drops id from the cache after a change to it.
func (a *admissions) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	delete(a.m, id)
}
