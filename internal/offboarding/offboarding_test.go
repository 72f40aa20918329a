package offboarding_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/offboarding"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// script is the services the steps drive, scripted: each records its call
// in calls and answers as set.
type script struct {
	calls     []string
	grantsErr error
	purgeErr  error
	budget    time.Duration
	// gone is what Teardown answers, call after call; true once used up.
	gone []bool
}

func (s *script) RevokeAll(_ context.Context, id string) error {
	s.calls = append(s.calls, "grants")
	return s.grantsErr
}

type sources struct{ *script }

func (s sources) RevokeAll(_ context.Context, id string) (int, error) {
	s.calls = append(s.calls, "sources")
	return 2, nil
}

func (s *script) PurgeTenant(_ context.Context, id string, budget time.Duration) (int, error) {
	s.calls = append(s.calls, "purge")
	s.budget = budget
	return 7, s.purgeErr
}

func (s *script) Teardown(_ context.Context, id string, purge bool) (bool, error) {
	s.calls = append(s.calls, fmt.Sprintf("teardown purge=%t", purge))
	if len(s.gone) == 0 {
		return true, nil
	}
	gone := s.gone[0]
	s.gone = s.gone[1:]
	return gone, nil
}

type env struct {
	db  *sqlite.DB
	svc *tenants.Service
}

func newEnv(t *testing.T) env {
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
	return env{db: db, svc: tenants.NewService(db, nil)}
}

// offboarded onboards a tenant of tier and offboards it: it is
// deprovisioning, its job queued (and never worked: the tests run it).
func (e env) offboarded(t *testing.T, slug string, tier tenants.Tier) string {
	t.Helper()
	tn, err := e.svc.Onboard(t.Context(), tenants.OnboardParams{Name: "T", Slug: slug, Tier: tier, HomeRegion: "eu-west-1", Regions: []string{"eu-west-1"}})
	if err != nil {
		t.Fatal(err)
	}
	tn, err = e.svc.Offboard(t.Context(), audit.Event{}, tn.ID, nil, false)
	if err != nil || tn.Status != tenants.StatusDeprovisioning {
		t.Fatalf("offboard: %v, %v", tn.Status, err)
	}
	return tn.ID
}

func (e env) offboarder(t *testing.T, s *script, dedicatedTables bool, extra ...offboarding.Step) *offboarding.Offboarder {
	t.Helper()
	o, err := offboarding.New(offboarding.Config{
		Store: e.db, Tenants: e.svc, Grants: s, Sources: sources{s}, Profiles: s, Stacks: s, DedicatedTables: dedicatedTables,
		Extra: extra, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (e env) status(t *testing.T, id string) tenants.Status {
	t.Helper()
	tn, err := e.svc.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tn.Status
}

// TestSteps runs one offboarding run for each way its steps end.
func TestSteps(t *testing.T) {
	deadline := fmt.Errorf("purge profile items: %w", context.DeadlineExceeded)
	all := []string{"grants", "sources", "purge", "teardown purge=false"}
	for i, tc := range []struct {
		name            string
		s               script
		tier            tenants.Tier
		dedicatedTables bool
		wantCalls       []string
		wantSnooze      bool
		wantFail        bool
		wantIs          error // the failure's cause, if known
		wantDone        []string
	}{
		{name: "offboarded", wantCalls: all, wantDone: []string{"revoke_grants", "revoke_sources", "purge_profiles", "teardown_stacks"}},
		{name: "purge goes on in the next run", s: script{purgeErr: fmt.Errorf("cut: %w: %w", profiles.ErrPurgeUnfinished, context.DeadlineExceeded)},
			wantCalls: all[:3], wantSnooze: true, wantDone: []string{"revoke_grants", "revoke_sources"}},
		{name: "purge without progress fails", s: script{purgeErr: deadline},
			wantCalls: all[:3], wantFail: true, wantIs: context.DeadlineExceeded, wantDone: []string{"revoke_grants", "revoke_sources"}},
		{name: "no table left", s: script{purgeErr: fmt.Errorf("locate: %w", placement.ErrNotReady)},
			wantCalls: all, wantDone: []string{"revoke_grants", "revoke_sources", "purge_profiles", "teardown_stacks"}},
		{name: "dedicated table goes with the stack", tier: tenants.TierDedicated, dedicatedTables: true,
			wantCalls: []string{"grants", "sources", "teardown purge=false"}, wantDone: []string{"revoke_grants", "revoke_sources", "purge_profiles", "teardown_stacks"}},
		{name: "pooled tenant in AWS mode", dedicatedTables: true,
			wantCalls: all, wantDone: []string{"revoke_grants", "revoke_sources", "purge_profiles", "teardown_stacks"}},
		{name: "grants first", s: script{grantsErr: errors.New("lake formation down")},
			wantCalls: []string{"grants"}, wantFail: true, wantDone: []string{}},
		{name: "stacks still going", s: script{gone: []bool{false}},
			wantCalls: all, wantSnooze: true, wantDone: []string{"revoke_grants", "revoke_sources", "purge_profiles"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tier := tc.tier
			if tier == "" {
				tier = tenants.TierPooled
			}
			id := e.offboarded(t, fmt.Sprintf("steps-%d", i), tier)
			s := tc.s
			o := e.offboarder(t, &s, tc.dedicatedTables)
			err := o.Run(t.Context(), id, false)
			if !slices.Equal(s.calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", s.calls, tc.wantCalls)
			}
			var snooze *rivertype.JobSnoozeError
			switch {
			case tc.wantSnooze:
				if !errors.As(err, &snooze) {
					t.Errorf("error %v, want a snooze", err)
				}
			case tc.wantFail:
				if err == nil || errors.As(err, &snooze) {
					t.Errorf("error %v, want a failure, not a snooze", err)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("error %v, want %v", err, tc.wantIs)
				}
			case err != nil:
				t.Errorf("error %v, want none", err)
			}
			if slices.Contains(s.calls, "purge") && s.budget != offboarding.DefaultPurgeBudget {
				t.Errorf("purge budget %s, want %s", s.budget, offboarding.DefaultPurgeBudget)
			}
			progress, err := o.Progress(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			var done []string
			for _, d := range progress.Done {
				done = append(done, d.Step)
			}
			if !slices.Equal(done, tc.wantDone) && len(done)+len(tc.wantDone) > 0 {
				t.Errorf("steps done %v, want %v", done, tc.wantDone)
			}
			if got, want := len(progress.Done)+len(progress.Pending), len(o.Steps()); got != want {
				t.Errorf("%d steps done and pending, want %d", got, want)
			}
			want := tenants.StatusDeprovisioning
			if len(tc.wantDone) == len(o.Steps()) {
				want = tenants.StatusDeleted
			}
			if got := e.status(t, id); got != want {
				t.Errorf("tenant %s, want %s", got, want)
			}
		})
	}
}

// TestResumeAfterCrash kills an offboarding midway (its process dies in an
// extra step, after the revocations and the purge finished) and resumes it
// in a new offboarder on the same database: the finished steps are not run
// again, the step that died is, and the tenant ends deleted.
func TestResumeAfterCrash(t *testing.T) {
	e := newEnv(t)
	id := e.offboarded(t, "crash", tenants.TierPooled)
	s := &script{}
	forgot := 0
	crash, die := context.WithCancelCause(t.Context())
	forget := offboarding.Step{Name: "forget_queries", Run: func(ctx context.Context, tenantID string) error {
		forgot++
		if forgot == 1 {
			// The process dies here: nothing after this runs, and the
			// step's own work is lost with it.
			die(errors.New("SIGKILL"))
			return context.Cause(ctx)
		}
		return nil
	}}
	err := e.offboarder(t, s, false, forget).Run(crash, id, true)
	if err == nil || !slices.Equal(s.calls, []string{"grants", "sources", "purge"}) {
		t.Fatalf("first run: calls %v, error %v; want the revocations and the purge, then the crash", s.calls, err)
	}
	if got := e.status(t, id); got != tenants.StatusDeprovisioning {
		t.Fatalf("tenant %s after the crash, want deprovisioning", got)
	}

	// A new process: a new offboarder on the same store.
	s.calls, s.gone = nil, []bool{false}
	o := e.offboarder(t, s, false, forget)
	progress, err := o.Progress(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"forget_queries", "teardown_stacks"}; !slices.Equal(progress.Pending, want) {
		t.Errorf("pending %v after the crash, want %v", progress.Pending, want)
	}
	var snooze *rivertype.JobSnoozeError
	if err := o.Run(t.Context(), id, true); !errors.As(err, &snooze) {
		t.Fatalf("resumed run: error %v, want a snooze while the stacks go", err)
	}
	if err := o.Run(t.Context(), id, true); err != nil {
		t.Fatalf("last run: %v", err)
	}
	if want := []string{"teardown purge=true", "teardown purge=true"}; !slices.Equal(s.calls, want) {
		t.Errorf("calls after the crash %v, want only the teardown, twice (no finished step again)", s.calls)
	}
	if forgot != 2 {
		t.Errorf("extra step ran %d times, want 2 (the run that died and the resumed one)", forgot)
	}
	if got := e.status(t, id); got != tenants.StatusDeleted {
		t.Errorf("tenant %s, want deleted", got)
	}
	// A repeat of the job (River rescuing a run it thought stuck) changes
	// nothing and runs nothing.
	s.calls = nil
	if err := o.Run(t.Context(), id, true); err != nil || len(s.calls) > 0 || forgot != 2 {
		t.Errorf("repeat: error %v, calls %v, extra step runs %d", err, s.calls, forgot)
	}
	progress, err = o.Progress(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var done []string
	for _, d := range progress.Done {
		done = append(done, d.Step)
	}
	if want := []string{"revoke_grants", "revoke_sources", "purge_profiles", "forget_queries", "teardown_stacks"}; !slices.Equal(done, want) || len(progress.Pending) != 0 {
		t.Errorf("done %v, pending %v; want %v and none", done, progress.Pending, want)
	}
}

func TestNew(t *testing.T) {
	e := newEnv(t)
	s := &script{}
	noop := func(context.Context, string) error { return nil }
	for name, cfg := range map[string]offboarding.Config{
		"no store":          {Tenants: e.svc, Grants: s, Sources: sources{s}, Profiles: s, Stacks: s},
		"no tenants":        {Store: e.db, Grants: s, Sources: sources{s}, Profiles: s, Stacks: s},
		"no grants":         {Store: e.db, Tenants: e.svc, Sources: sources{s}, Profiles: s, Stacks: s},
		"no sources":        {Store: e.db, Tenants: e.svc, Grants: s, Profiles: s, Stacks: s},
		"no profiles":       {Store: e.db, Tenants: e.svc, Grants: s, Sources: sources{s}, Stacks: s},
		"no stacks":         {Store: e.db, Tenants: e.svc, Grants: s, Sources: sources{s}, Profiles: s},
		"extra without run": {Store: e.db, Tenants: e.svc, Grants: s, Sources: sources{s}, Profiles: s, Stacks: s, Extra: []offboarding.Step{{Name: "x"}}},
		"extra named as a built-in step": {Store: e.db, Tenants: e.svc, Grants: s, Sources: sources{s}, Profiles: s, Stacks: s,
			Extra: []offboarding.Step{{Name: offboarding.StepPurgeProfiles, Run: noop}}},
	} {
		if _, err := offboarding.New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	o, err := offboarding.New(offboarding.Config{Store: e.db, Tenants: e.svc, Grants: s, Sources: sources{s}, Profiles: s, Stacks: s,
		Extra: []offboarding.Step{{Name: "forget_queries", Run: noop}, {Name: "remove_lake_files", Run: noop}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"revoke_grants", "revoke_sources", "purge_profiles", "forget_queries", "remove_lake_files", "teardown_stacks"}
	if got := o.Steps(); !slices.Equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
}
