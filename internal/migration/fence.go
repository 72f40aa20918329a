package migration

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultFenceRefresh is how often Fences reads the running migrations'
// fences from the Store unless told otherwise.
const DefaultFenceRefresh = time.Second

// Fences is one replica's view of the write fences of running migrations,
// read from the Store every refresh interval (Run) and, on the replica
// whose job raises or lifts a fence, at once. Ingestion asks it before it
// writes (Enter), so that it costs no database read per request; the
// migration waits out the drain after raising a fence, which covers the
// other replicas' refresh and their requests already admitted. It also
// counts this replica's admitted requests per tenant, so that the job
// waits for those exactly. It is safe for concurrent use.
type Fences struct {
	store   Store
	refresh time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu sync.Mutex
	// running maps each tenant with a running migration to its fence's
	// end (zero when not fenced).
	running map[string]time.Time
	// inflight counts admitted requests per tenant; idle is signalled
	// when one ends.
	inflight map[string]int
	idle     *sync.Cond
}

// NewFences returns the fences of store's migrations, refreshed every
// refresh (DefaultFenceRefresh when 0) once Run runs. A nil now is
// time.Now; a nil logger slog.Default().
func NewFences(store Store, refresh time.Duration, now func() time.Time, log *slog.Logger) *Fences {
	if refresh <= 0 {
		refresh = DefaultFenceRefresh
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	f := &Fences{store: store, refresh: refresh, now: now, log: log, running: map[string]time.Time{}, inflight: map[string]int{}}
	f.idle = sync.NewCond(&f.mu)
	return f
}

// Run reads the fences every refresh interval until ctx ends.
func (f *Fences) Run(ctx context.Context) {
	t := time.NewTicker(f.refresh)
	defer t.Stop()
	for {
		f.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh reads the fences once; a failed read keeps what was known.
func (f *Fences) Refresh(ctx context.Context) {
	running, err := f.store.MigrationRunning(ctx)
	if err != nil {
		if ctx.Err() == nil {
			f.log.WarnContext(ctx, "read the migrations' write fences", "err", err)
		}
		return
	}
	f.mu.Lock()
	f.running = running
	f.mu.Unlock()
}

// Enter admits a write of the tenant's data: it returns a release func to
// call when the write is done, or, while the tenant is fenced, false and
// how long to wait before trying again.
func (f *Fences) Enter(tenantID string) (release func(), retry time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if until := f.running[tenantID]; !until.IsZero() {
		if left := until.Sub(f.now()); left > 0 {
			return nil, min(left, time.Second), false
		}
	}
	f.inflight[tenantID]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.inflight[tenantID]--; f.inflight[tenantID] <= 0 {
			delete(f.inflight, tenantID)
			f.idle.Broadcast()
		}
	}, 0, true
}

// Migrating reports whether the tenant has a running migration, as last
// read.
func (f *Fences) Migrating(tenantID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.running[tenantID]
	return ok
}

// set records this replica's own change of a tenant's fence at once:
// until is its end, zero for a migration unfenced; finished drops it.
func (f *Fences) set(tenantID string, until time.Time, finished bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if finished {
		delete(f.running, tenantID)
		return
	}
	f.running[tenantID] = until
}

// waitIdle returns once this replica has no admitted write of the tenant
// in flight, or ctx ends.
func (f *Fences) waitIdle(ctx context.Context, tenantID string) error {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.idle.Broadcast()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.inflight[tenantID] > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.idle.Wait()
	}
	return nil
}
