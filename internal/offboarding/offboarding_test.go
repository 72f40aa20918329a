package offboarding_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/offboarding"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// script is the services the hook drives, scripted: each records its call
// in calls and answers as set.
type script struct {
	calls     []string
	grantsErr error
	purgeErr  error
	budget    time.Duration
	tier      tenants.Tier
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

func (s *script) Get(_ context.Context, id string) (tenants.Tenant, error) {
	return tenants.Tenant{ID: id, Tier: s.tier}, nil
}

func hook(t *testing.T, s *script, dedicatedTables bool) func(context.Context, string) error {
	t.Helper()
	h, err := offboarding.BeforeTeardown(offboarding.Config{
		Grants: s, Sources: sources{s}, Profiles: s, Tenants: s, DedicatedTables: dedicatedTables,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBeforeTeardown(t *testing.T) {
	const id = "ten_aaaaaaaaaaaaaaaaaaaaaaaaaa"
	deadline := fmt.Errorf("purge profile items of %s: %w", id, context.DeadlineExceeded)
	for _, tc := range []struct {
		name            string
		s               script
		dedicatedTables bool
		wantCalls       []string
		wantSnooze      bool
		wantFail        bool
		wantIs          error // the failure's cause, if known
	}{
		{name: "purged", s: script{tier: tenants.TierPooled}, wantCalls: []string{"grants", "sources", "purge"}},
		{name: "purge goes on in the next run", s: script{purgeErr: fmt.Errorf("cut: %w: %w", profiles.ErrPurgeUnfinished, context.DeadlineExceeded)},
			wantCalls: []string{"grants", "sources", "purge"}, wantSnooze: true},
		{name: "purge without progress fails", s: script{purgeErr: deadline},
			wantCalls: []string{"grants", "sources", "purge"}, wantFail: true, wantIs: context.DeadlineExceeded},
		{name: "no table left", s: script{purgeErr: fmt.Errorf("locate: %w", placement.ErrNotReady)},
			wantCalls: []string{"grants", "sources", "purge"}},
		{name: "dedicated table goes with the stack", s: script{tier: tenants.TierDedicated}, dedicatedTables: true,
			wantCalls: []string{"grants", "sources"}},
		{name: "pooled tenant in AWS mode", s: script{tier: tenants.TierPooled}, dedicatedTables: true,
			wantCalls: []string{"grants", "sources", "purge"}},
		{name: "grants first", s: script{grantsErr: errors.New("lake formation down")},
			wantCalls: []string{"grants"}, wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			err := hook(t, &s, tc.dedicatedTables)(t.Context(), id)
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
		})
	}
}

func TestBeforeTeardownNeedsItsServices(t *testing.T) {
	s := &script{}
	for name, cfg := range map[string]offboarding.Config{
		"no grants":                 {Sources: sources{s}, Profiles: s},
		"no sources":                {Grants: s, Profiles: s},
		"no profiles":               {Grants: s, Sources: sources{s}},
		"dedicated tables, no tier": {Grants: s, Sources: sources{s}, Profiles: s, DedicatedTables: true},
	} {
		if _, err := offboarding.BeforeTeardown(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
