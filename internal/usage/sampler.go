package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// ProfileCounter counts tenants' profiles: the profile service, in its
// profile index.
type ProfileCounter interface {
	// ProfileCount returns how many unified profiles the tenant has now,
	// or an error matching ErrNotCountable when it has no profile store yet.
	ProfileCount(ctx context.Context, tenant string) (int64, error)
	// IndexProfiles makes the tenant's count agree with its profiles
	// themselves, for profiles made before the count was kept. It reads
	// all of them: a job's work, once per tenant.
	IndexProfiles(ctx context.Context, tenant string) error
	// CountsChanged returns, and forgets, the tenants whose count this
	// replica changed since the last call.
	CountsChanged() []string
}

// ErrNotCountable is returned (wrapped) by a ProfileCounter for a tenant
// whose profiles cannot be counted yet (its data stack is not ready); the
// tenant is left out of the pass.
var ErrNotCountable = errors.New("usage: profiles not countable yet")

// TenantLister lists the tenants whose profiles a full pass samples: the
// live ones (active or suspended).
type TenantLister interface {
	LiveTenants(ctx context.Context) ([]string, error)
}

// ProfileReadRate bounds how often Run samples a large tenant: a tenant of
// n profiles is sampled again no sooner than n/ProfileReadRate seconds
// after its last sample (and every interval below ProfileReadRate
// profiles), so a replica's sampling reads at most about ProfileReadRate
// index keys a second per tenant however busy its ingestion is.
const ProfileReadRate = 1000

// IndexSettle is how long after a tenant's first index build the second
// one runs: a replica of an older version, still serving during a rolling
// upgrade, makes and merges profiles without keeping the index.
const IndexSettle = time.Hour

// samplePage bounds the samples of one UsageSample call.
const samplePage = 500

// SamplerConfig configures a Sampler.
type SamplerConfig struct {
	Store    Store
	Profiles ProfileCounter
	Tenants  TenantLister
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Sampler samples the Profiles gauge (see the package doc). SampleAll is
// the periodic full pass, run by one replica at a time; Run is each
// replica's own loop over the tenants whose count it changed. Both are safe
// to run at once, on any number of replicas: the store keeps the latest
// sample of an hour, and nothing is summed.
type Sampler struct {
	store    Store
	profiles ProfileCounter
	tenants  TenantLister
	now      func() time.Time
	log      *slog.Logger

	mu sync.Mutex
	// waiting are the tenants whose count changed and that Run has not
	// sampled since; next is when Run may sample a tenant again.
	waiting map[string]bool
	next    map[string]time.Time
}

// NewSampler returns a Sampler; Store, Profiles and Tenants are required.
func NewSampler(cfg SamplerConfig) (*Sampler, error) {
	if cfg.Store == nil || cfg.Profiles == nil || cfg.Tenants == nil {
		return nil, errors.New("usage: a sampler needs a Store, a ProfileCounter and a TenantLister")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sampler{store: cfg.Store, profiles: cfg.Profiles, tenants: cfg.Tenants, now: cfg.Now, log: cfg.Logger,
		waiting: map[string]bool{}, next: map[string]time.Time{}}, nil
}

// sample reads the tenant's count; ok is false for a tenant with nothing to
// count yet. At is taken before the count is read: a sample that started
// earlier never hides one of a change that committed after it started.
func (s *Sampler) sample(ctx context.Context, tenant string) (Sample, bool, error) {
	at := s.now()
	n, err := s.profiles.ProfileCount(ctx, tenant)
	if errors.Is(err, ErrNotCountable) {
		return Sample{}, false, nil
	}
	if err != nil {
		return Sample{}, false, fmt.Errorf("count the profiles of %s: %w", tenant, err)
	}
	return Sample{TenantID: tenant, Metric: Profiles, At: at, Value: n}, true, nil
}

func (s *Sampler) write(ctx context.Context, samples []Sample) error {
	for chunk := range slices.Chunk(samples, samplePage) {
		if err := s.store.UsageSample(ctx, chunk); err != nil {
			return fmt.Errorf("usage: keep samples: %w", err)
		}
	}
	return nil
}

// SampleAll samples every live tenant's profiles, writing them a page at
// a time as it goes; then it builds the profile index of each tenant that
// had profiles before it existed (and builds it once more IndexSettle
// later), sampling the tenant once built, so that a long build delays no
// other tenant's sample. It returns how many tenants it sampled; a tenant
// that fails is reported in the error and the others are sampled.
func (s *Sampler) SampleAll(ctx context.Context) (int, error) {
	live, err := s.tenants.LiveTenants(ctx)
	if err != nil {
		return 0, fmt.Errorf("usage: list tenants: %w", err)
	}
	builds, err := s.store.UsageIndexBuilds(ctx)
	if err != nil {
		return 0, fmt.Errorf("usage: read index builds: %w", err)
	}
	pending := make(map[string]IndexBuild, len(builds))
	for _, b := range builds {
		pending[b.TenantID] = b
	}
	var errs []error
	var samples []Sample
	n := 0
	flush := func(atLeast int) error {
		if len(samples) < atLeast {
			return nil
		}
		if err := s.write(ctx, samples); err != nil {
			return err
		}
		n += len(samples)
		samples = samples[:0]
		return nil
	}
	var toBuild []IndexBuild
	for _, t := range live {
		if b, ok := pending[t]; ok {
			toBuild = append(toBuild, b)
			if b.BuiltAt.IsZero() {
				continue // not countable until built
			}
		}
		smp, ok, err := s.sample(ctx, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			samples = append(samples, smp)
		}
		if err := flush(samplePage); err != nil {
			return n, err
		}
	}
	if err := flush(1); err != nil {
		return n, err
	}
	for _, b := range toBuild {
		built, err := s.build(ctx, b)
		if err != nil {
			if !errors.Is(err, ErrNotCountable) {
				errs = append(errs, err)
			}
			continue
		}
		if !built {
			continue
		}
		smp, ok, err := s.sample(ctx, b.TenantID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			samples = append(samples, smp)
		}
		if err := flush(1); err != nil {
			return n, err
		}
	}
	return n, errors.Join(errs...)
}

// build builds a tenant's profile index, when due, and reports whether
// it did.
func (s *Sampler) build(ctx context.Context, b IndexBuild) (bool, error) {
	if !b.BuiltAt.IsZero() && s.now().Sub(b.BuiltAt) < IndexSettle {
		return false, nil // built once: counts are right but for an older replica's changes
	}
	if err := s.profiles.IndexProfiles(ctx, b.TenantID); err != nil {
		return false, fmt.Errorf("index the profiles of %s: %w", b.TenantID, err)
	}
	s.log.InfoContext(ctx, "profile index built", "tenant_id", b.TenantID, "final", !b.BuiltAt.IsZero())
	return true, s.store.UsageIndexBuilt(ctx, b.TenantID, s.now(), !b.BuiltAt.IsZero())
}

// SampleChanged samples the tenants whose count this replica changed
// (ProfileCounter.CountsChanged) and that are due (ProfileReadRate). A
// tenant not sampled, for that or for an error, waits for the next call.
func (s *Sampler) SampleChanged(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.profiles.CountsChanged() {
		s.waiting[t] = true
	}
	if len(s.waiting) == 0 {
		return nil
	}
	builds, err := s.store.UsageIndexBuilds(ctx)
	if err != nil {
		return fmt.Errorf("usage: read index builds: %w", err)
	}
	for _, b := range builds {
		if b.BuiltAt.IsZero() {
			delete(s.waiting, b.TenantID) // its count is partial: SampleAll builds it, then samples
		}
	}
	now := s.now()
	var samples []Sample
	var errs []error
	for t := range s.waiting {
		if now.Before(s.next[t]) {
			continue
		}
		smp, ok, err := s.sample(ctx, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.waiting, t)
		if ok {
			samples = append(samples, smp)
			s.next[t] = smp.At.Add(time.Duration(smp.Value) * time.Second / ProfileReadRate)
		}
	}
	for t, at := range s.next {
		if !s.waiting[t] && !now.Before(at) {
			delete(s.next, t)
		}
	}
	if err := s.write(ctx, samples); err != nil {
		for _, smp := range samples {
			s.waiting[smp.TenantID] = true
			delete(s.next, smp.TenantID)
		}
		return err
	}
	return errors.Join(errs...)
}

// DefaultSampleInterval is how often Run looks for changed counts: a new
// profile is in its tenant's usage within this much (and the meter's
// flush, for the events that made it).
const DefaultSampleInterval = 5 * time.Second

// Run calls SampleChanged every interval (DefaultSampleInterval if zero)
// until ctx ends.
func (s *Sampler) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSampleInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.SampleChanged(ctx); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "profile count sampling failed; retrying", "error", err)
			}
		}
	}
}
