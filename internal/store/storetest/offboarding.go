package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/offboarding"
)

// testOffboardingSteps records a tenant's finished offboarding steps: in
// the order they finished, a repeat keeping the first time, one tenant's
// apart from another's.
func testOffboardingSteps(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	ids := tenantIDs(t, b, 2)
	if got, err := b.OffboardingStepList(ctx, ids[0]); err != nil || len(got) != 0 {
		t.Fatalf("before any step: %v, %v; want none", got, err)
	}
	record := func(id, step string, at time.Time) {
		t.Helper()
		if err := b.OffboardingStepDone(ctx, id, step, at); err != nil {
			t.Fatalf("record %s: %v", step, err)
		}
	}
	record(ids[0], "revoke_grants", base)
	record(ids[0], "revoke_sources", base.Add(time.Second))
	record(ids[1], "revoke_grants", base.Add(2*time.Second))
	// A step recorded again, after a crash between its end and the job's
	// next step, keeps its first time.
	record(ids[0], "revoke_grants", base.Add(time.Hour))

	got, err := b.OffboardingStepList(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []offboarding.StepDone{{Step: "revoke_grants", At: base}, {Step: "revoke_sources", At: base.Add(time.Second)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if got, err := b.OffboardingStepList(ctx, ids[1]); err != nil || len(got) != 1 {
		t.Errorf("other tenant's steps: %v, %v; want its one", got, err)
	}
}
