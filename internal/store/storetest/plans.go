package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/plans"
)

func limit(v int64) *int64 { return &v }

// testPlans: the migrated database has the default plan as plans.Default
// describes it; plans round-trip, are versioned, list by name, and each
// change commits with its audit event or not at all.
func testPlans(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()

	def, err := b.PlanGet(ctx, plans.DefaultName)
	if err != nil {
		t.Fatalf("the default plan: %v", err)
	}
	want := plans.Default()
	if diff := cmp.Diff(want.Limits, def.Limits); diff != "" || def.MonthlyEventsMode != want.MonthlyEventsMode || def.ProfilesMode != want.ProfilesMode || def.Description != want.Description || def.Version != 1 {
		t.Fatalf("the migrated default plan differs from plans.Default (-want +got):\n%s\n%+v", diff, def)
	}
	if _, err := b.PlanGet(ctx, "gold"); !errors.Is(err, plans.ErrNotFound) {
		t.Fatalf("PlanGet of no plan: %v, want ErrNotFound", err)
	}

	gold := plans.Plan{
		Name: "gold", Description: "Gold", MonthlyEventsMode: plans.ModeBlock, ProfilesMode: plans.ModeBlock, Version: 1, CreatedAt: base, UpdatedAt: base,
		Limits: plans.Limits{EventsPerSecondPerSource: limit(100), Segments: limit(0), MonthlyEvents: limit(1_000_000)},
	}
	rec := audit.Event{Actor: "admin", Action: "plan.create", TargetType: "plan", TargetID: "gold", RequestID: "req_gold", Outcome: audit.OutcomeOK}
	if err := b.PlanInsert(ctx, gold, rec); err != nil {
		t.Fatal(err)
	}
	got, err := b.PlanGet(ctx, "gold")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gold, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	// A second insert of the name is refused, and its event not kept.
	if err := b.PlanInsert(ctx, gold, audit.Event{Actor: "admin", Action: "plan.create", TargetType: "plan", TargetID: "gold", RequestID: "req_again"}); !errors.Is(err, plans.ErrVersionMismatch) {
		t.Fatalf("insert of a plan that exists: %v, want ErrVersionMismatch", err)
	}

	next := gold
	next.Version, next.UpdatedAt, next.Limits, next.ProfilesMode = 2, base.Add(time.Minute), plans.Limits{Webhooks: limit(3)}, plans.ModeWarn
	if err := b.PlanUpdate(ctx, next, audit.Event{Actor: "admin", Action: "plan.update", TargetType: "plan", TargetID: "gold", RequestID: "req_update", Outcome: audit.OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.PlanGet(ctx, "gold"); got.Version != 2 || got.ProfilesMode != plans.ModeWarn || got.Limits.Webhooks == nil || *got.Limits.Webhooks != 3 || got.Limits.Segments != nil || !got.CreatedAt.Equal(base) {
		t.Fatalf("after the update: %+v", got)
	}
	if err := b.PlanUpdate(ctx, next, audit.Event{Actor: "admin", Action: "plan.update", TargetType: "plan", TargetID: "gold", RequestID: "req_stale"}); !errors.Is(err, plans.ErrVersionMismatch) {
		t.Fatalf("stale update: %v, want ErrVersionMismatch", err)
	}
	missing := next
	missing.Name = "none"
	if err := b.PlanUpdate(ctx, missing, audit.Event{}); !errors.Is(err, plans.ErrNotFound) {
		t.Fatalf("update of no plan: %v, want ErrNotFound", err)
	}
	var ids []string
	for _, e := range listAudit(t, b, audit.ListParams{Actor: "admin"}) {
		ids = append(ids, e.RequestID)
	}
	if fmt.Sprint(ids) != "[req_gold req_update]" {
		t.Fatalf("audit events %v, want those of the changes made only", ids)
	}

	for _, name := range []string{"a-plan", "z.plan", "m_plan"} {
		p := gold
		p.Name = name
		if err := b.PlanInsert(ctx, p, audit.Event{}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	after := ""
	for {
		page, err := b.PlanList(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			names = append(names, p.Name)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Name
	}
	if fmt.Sprint(names) != "[a-plan default gold m_plan z.plan]" {
		t.Fatalf("plans by name: %v", names)
	}
}

// testPlanService: Put makes, replaces and leaves a plan as it is, one
// audit event each; concurrent creates of one name all succeed, one of
// them creating; Limits falls back to the default plan.
func testPlanService(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	svc := plans.NewService(b, nil)
	ev := func(id string) audit.Event {
		return audit.Event{Actor: "admin", Action: "plan.update", TargetType: "plan", RequestID: id}
	}
	terms := plans.PutParams{Audit: ev("req_1"), Limits: plans.Limits{Segments: limit(5)}}
	p, created, err := svc.Put(ctx, "silver", terms)
	if err != nil || !created || p.Version != 1 || p.MonthlyEventsMode != plans.ModeWarn {
		t.Fatalf("first put: %+v %v %v", p, created, err)
	}
	terms.Audit = ev("req_2")
	if p, created, err = svc.Put(ctx, "silver", terms); err != nil || created || p.Version != 1 {
		t.Fatalf("the same put again: %+v %v %v, want version 1 unchanged", p, created, err)
	}
	stale := int64(7)
	terms.Audit, terms.IfVersion, terms.Limits = ev("req_3"), &stale, plans.Limits{Segments: limit(6)}
	if _, _, err := svc.Put(ctx, "silver", terms); !errors.Is(err, plans.ErrVersionMismatch) {
		t.Fatalf("put at a stale version: %v", err)
	}
	one := int64(1)
	terms.Audit, terms.IfVersion = ev("req_4"), &one
	if p, _, err = svc.Put(ctx, "silver", terms); err != nil || p.Version != 2 || *p.Limits.Segments != 6 {
		t.Fatalf("put at the current version: %+v %v", p, err)
	}
	if _, _, err := svc.Put(ctx, "silver", plans.PutParams{Audit: ev("req_5"), Limits: plans.Limits{Webhooks: limit(-1)}}); !errors.Is(err, plans.ErrInvalid) {
		t.Fatalf("a negative limit: %v, want ErrInvalid", err)
	}
	events := listAudit(t, b, audit.ListParams{Actor: "admin"})
	var got []string
	for _, e := range events {
		got = append(got, e.RequestID+":"+e.Action+":"+e.TargetID+":"+e.Detail["unchanged"])
	}
	if fmt.Sprint(got) != "[req_1:plan.create:silver: req_2:plan.update:silver:true req_4:plan.update:silver:]" {
		t.Fatalf("audit events: %v", got)
	}

	// Racing creates: each answers, exactly one made the plan.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		creates int
	)
	for i := range 4 {
		wg.Go(func() {
			_, created, err := svc.Put(ctx, "race", plans.PutParams{Audit: ev(fmt.Sprintf("req_race_%d", i)), Limits: plans.Limits{Profiles: limit(10)}})
			if err != nil {
				t.Errorf("racing put: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if created {
				creates++
			}
		})
	}
	wg.Wait()
	if creates != 1 {
		t.Fatalf("%d racing puts created the plan, want 1", creates)
	}

	for name, want := range map[string]string{"": plans.DefaultName, "no-such-plan": plans.DefaultName, "silver": "silver"} {
		p, err := svc.Limits(ctx, name)
		if err != nil || p.Name != want {
			t.Fatalf("Limits(%q): %+v %v, want plan %s", name, p, err, want)
		}
	}
	for name, want := range map[string]bool{"": true, "silver": true, "gold": false} {
		if ok, err := svc.Exists(ctx, name); ok != want || err != nil {
			t.Fatalf("Exists(%q): %v %v", name, ok, err)
		}
	}
}
