package provisioner_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// waitTimeout bounds every wait in these tests; it only matters when one
// is about to fail.
const waitTimeout = 30 * time.Second

// hangingEngine is a LocalEngine whose CreateStack is entered, reported on
// entered, and then hangs until its context ends, whose error it returns.
type hangingEngine struct {
	*provisioner.LocalEngine
	entered chan string
}

func (e *hangingEngine) CreateStack(ctx context.Context, in provisioner.CreateStackInput) error {
	e.entered <- in.Name
	<-ctx.Done()
	return ctx.Err()
}

// testClock is a clock the test moves; it starts at the real time.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// claimSetup onboards a dedicated tenant in eu-west-1 on an embedded store
// and returns a Provisioner on a hanging engine with a short lease.
func claimSetup(t *testing.T, lease time.Duration) (*provisioner.Provisioner, *sqlite.DB, *hangingEngine, *testClock, tenants.Tenant) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cairn.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	svc := tenants.NewService(db, nil)
	tn, err := svc.Onboard(t.Context(), tenants.OnboardParams{
		Name: "T", Slug: "claims", Tier: tenants.TierDedicated, HomeRegion: "eu-west-1", Regions: []string{"eu-west-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	engine := &hangingEngine{LocalEngine: &provisioner.LocalEngine{Root: t.TempDir()}, entered: make(chan string, 10)}
	clock := &testClock{t: time.Now()}
	p, err := provisioner.New(provisioner.Config{Engine: engine, Store: db, Tenants: svc, Logger: log, Lease: lease, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return p, db, engine, clock, tn
}

// startProvision runs one provisioning step of the tenant in the
// background, as a job would, and waits until it is inside CreateStack.
func startProvision(t *testing.T, p *provisioner.Provisioner, engine *hangingEngine, ctx context.Context, id string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- provisioner.Provision(p, ctx, id) }()
	select {
	case <-engine.entered:
	case err := <-done:
		t.Fatalf("provision returned %v before CreateStack", err)
	case <-time.After(waitTimeout):
		t.Fatal("CreateStack not called")
	}
	return done
}

// TestClaimLostStopsTheOldOwner: a worker inside CreateStack under its
// claim, whose claim another worker has since taken (it was paused past
// its lease, as far as the others could tell), has its next renewal
// refused: its call is cancelled, and its step ends as someone else's
// work, not as a failure. The new claim stands.
func TestClaimLostStopsTheOldOwner(t *testing.T) {
	const lease = 300 * time.Millisecond
	p, db, engine, _, tn := claimSetup(t, lease)
	done := startProvision(t, p, engine, t.Context(), tn.ID)

	// Another worker, whose clock is past the lease, claims the create.
	var taken provisioner.Placement
	deadline := time.Now().Add(waitTimeout)
	for {
		pl, err := db.PlacementGet(t.Context(), tn.ID, "eu-west-1")
		if err != nil {
			t.Fatal(err)
		}
		later := pl.LeaseUntil.Add(time.Second)
		taken, err = db.PlacementClaim(t.Context(), pl, later, later.Add(time.Hour))
		if err == nil {
			break
		}
		if !errors.Is(err, provisioner.ErrConflict) || time.Now().After(deadline) {
			t.Fatalf("take the claim over: %v", err)
		}
		// The owner renewed in between: read again.
	}
	if taken.ClaimVersion != 2 {
		t.Fatalf("the new claim has version %d, want 2", taken.ClaimVersion)
	}
	select {
	case err := <-done:
		// It waits on the stack, like any job whose stack is in flight.
		if _, snoozed := errors.AsType[*river.JobSnoozeError](err); !snoozed {
			t.Errorf("the old owner's step = %v, want a snooze: the create is the new owner's, not a failure", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the old owner's CreateStack was not cancelled")
	}
	if got, err := db.PlacementGet(t.Context(), tn.ID, "eu-west-1"); err != nil || got.ClaimVersion != 2 || !got.LeaseUntil.Equal(taken.LeaseUntil) {
		t.Errorf("after the old owner stopped: %+v, %v; want the new claim as taken", got, err)
	}
}

// TestPollerTakesOverALapsedClaim: while a worker holds a claim and renews
// it, the poller leaves the create alone; once the worker is gone and its
// lease has lapsed with no stack made, the poller sends the placement back
// to pending and wakes the tenant's job, whose claim has the next version.
func TestPollerTakesOverALapsedClaim(t *testing.T) {
	const lease = 300 * time.Millisecond
	p, db, engine, clock, tn := claimSetup(t, lease)
	ctx, kill := context.WithCancel(t.Context())
	done := startProvision(t, p, engine, ctx, tn.ID)

	if err := p.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if pl, err := db.PlacementGet(t.Context(), tn.ID, "eu-west-1"); err != nil || pl.Status != provisioner.StatusCreating || pl.ClaimVersion != 1 {
		t.Fatalf("under a live claim the poller made it %+v, %v; want creating under claim 1", pl, err)
	}

	kill() // the worker dies: no more renewals
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("the worker did not stop")
	}
	pl, err := db.PlacementGet(t.Context(), tn.ID, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(pl.LeaseUntil.Sub(clock.Now()) - time.Millisecond)
	if err := p.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if pl, err := db.PlacementGet(t.Context(), tn.ID, "eu-west-1"); err != nil || pl.Status != provisioner.StatusCreating {
		t.Fatalf("a millisecond before the lease lapses the poller made it %+v, %v; want creating", pl, err)
	}
	clock.Advance(2 * time.Millisecond)
	if err := p.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if pl, err := db.PlacementGet(t.Context(), tn.ID, "eu-west-1"); err != nil || pl.Status != provisioner.StatusPending || pl.Attempt != 1 {
		t.Fatalf("once the lease lapsed the poller made it %+v, %v; want pending, same attempt (same token)", pl, err)
	}
	// The woken job claims it again, with the next claim version.
	ctx, stop := context.WithCancel(t.Context())
	done = startProvision(t, p, engine, ctx, tn.ID)
	pl, err = db.PlacementGet(t.Context(), tn.ID, "eu-west-1")
	stop()
	<-done
	if err != nil || pl.Status != provisioner.StatusCreating || pl.ClaimVersion != 2 {
		t.Fatalf("after the next job's claim: %+v, %v; want creating under claim 2", pl, err)
	}
}

// TestStalledTenantResumedOncePerLease: a provisioning tenant for which
// nothing happened for a lease (its job died before claiming anything) is
// resumed by the poller with one job, however many rounds find it so
// within DefaultLease.
func TestStalledTenantResumedOncePerLease(t *testing.T) {
	// Longer than any pause of a loaded machine between the onboarding
	// and the first round. No workers run: the onboarding job stays queued.
	const lease = 5 * time.Second
	p, db, _, clock, _ := claimSetup(t, lease)
	jobs := func() int64 {
		t.Helper()
		counts, err := db.JobCounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return counts["available"]
	}
	if err := p.PollOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := jobs(); n != 1 {
		t.Fatalf("%d jobs before the tenant stalled, want its onboarding job alone", n)
	}
	clock.Advance(2 * lease)
	for range 3 {
		if err := p.PollOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// River's unique periods are buckets of wall-clock time: the rounds
	// take milliseconds, but may straddle a bucket's end, which allows one
	// more resume; never one a round.
	if n := jobs() - 1; n < 1 || n > 2 {
		t.Errorf("%d resume jobs after three rounds found the tenant stalled, want one (two across a period's end)", n)
	}
}
