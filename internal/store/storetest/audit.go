package storetest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/grants"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// auditIDPattern is what AuditAppend assigns to an event without an ID.
var auditIDPattern = regexp.MustCompile(`^aud_[a-z2-7]{26}$`)

func appendAudit(t *testing.T, s grants.Store, events ...audit.Event) {
	t.Helper()
	for _, e := range events {
		if err := inGrantsTx(t, s, func(tx grants.Tx) error { return tx.AuditAppend(t.Context(), e) }); err != nil {
			t.Fatalf("append audit event %s: %v", e.Action, err)
		}
	}
}

func listAudit(t *testing.T, s audit.Store, p audit.ListParams) []audit.Event {
	t.Helper()
	got, err := s.AuditList(t.Context(), p)
	if err != nil {
		t.Fatalf("list audit events %+v: %v", p, err)
	}
	return got
}

func testAudit(t *testing.T, h Harness) {
	b := newBackend(t, h)
	s := b.Grants()

	// Events are a log: they need no tenant row, and some have no tenant.
	var want []audit.Event
	for i := range 9 {
		actor := []string{"admin", "tenant:ten_a"}[i%2]
		if i >= 7 {
			actor = "cairn"
		}
		e := audit.Event{
			Time:       base.Add(time.Duration(i) * time.Minute),
			TenantID:   []string{"ten_a", "ten_b", ""}[i%3],
			Actor:      actor,
			Action:     []string{"grant.create", "grant.revoke", "credentials.issue"}[i%3],
			TargetType: "grant",
			TargetID:   fmt.Sprintf("grt_%d", i),
			RequestID:  fmt.Sprintf("req_%d", i),
			Outcome:    "ok",
			Detail:     map[string]string{"principal": roleA, "n": fmt.Sprint(i)},
		}
		if i%4 == 0 {
			e.ID = fmt.Sprintf("aud_given_%d", i)
		}
		if i == 5 {
			e.Detail, e.Outcome, e.TargetType, e.TargetID, e.RequestID = nil, "", "", "", ""
		}
		want = append(want, e)
	}
	appendAudit(t, s, want...)

	all := listAudit(t, b, audit.ListParams{Limit: 100})
	if len(all) != len(want) {
		t.Fatalf("list returned %d events, want %d", len(all), len(want))
	}
	for i, got := range all {
		if i > 0 && got.Seq <= all[i-1].Seq {
			t.Errorf("event %d: Seq %d after Seq %d, want ascending", i, got.Seq, all[i-1].Seq)
		}
		if want[i].ID == "" {
			if !auditIDPattern.MatchString(got.ID) {
				t.Errorf("event %d: assigned ID %q, want %s", i, got.ID, auditIDPattern)
			}
			want[i].ID = got.ID
		}
		want[i].Seq = got.Seq
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if all[1].ID == all[2].ID {
		t.Errorf("two events were assigned ID %s", all[1].ID)
	}

	pick := func(keep func(e audit.Event) bool) []audit.Event {
		var out []audit.Event
		for _, e := range want {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	tests := []struct {
		name string
		p    audit.ListParams
		want []audit.Event
	}{
		{"tenant", audit.ListParams{TenantID: "ten_a"}, pick(func(e audit.Event) bool { return e.TenantID == "ten_a" })},
		{"actor", audit.ListParams{Actor: "cairn"}, pick(func(e audit.Event) bool { return e.Actor == "cairn" })},
		{"action", audit.ListParams{Action: "grant.revoke"}, pick(func(e audit.Event) bool { return e.Action == "grant.revoke" })},
		{"tenant and action", audit.ListParams{TenantID: "ten_a", Action: "grant.create"},
			pick(func(e audit.Event) bool { return e.TenantID == "ten_a" && e.Action == "grant.create" })},
		{"nothing matches", audit.ListParams{TenantID: "ten_a", Action: "grant.revoke"}, nil},
		{"from is inclusive", audit.ListParams{From: want[6].Time}, want[6:]},
		{"to is exclusive", audit.ListParams{To: want[2].Time}, want[:2]},
		{"from and to", audit.ListParams{From: want[3].Time, To: want[5].Time}, want[3:5]},
		{"bounds between microseconds", audit.ListParams{From: want[3].Time.Add(time.Nanosecond), To: want[5].Time.Add(time.Nanosecond)}, want[4:6]},
		{"bounds in another zone", audit.ListParams{From: want[3].Time.In(time.FixedZone("X", 3600))}, want[3:]},
		{"after seq", audit.ListParams{AfterSeq: want[6].Seq}, want[7:]},
		{"limit", audit.ListParams{Limit: 4}, want[:4]},
		{"no limit", audit.ListParams{}, want},
		{"after seq with filter and limit", audit.ListParams{TenantID: "ten_b", AfterSeq: want[1].Seq, Limit: 1}, want[4:5]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAudit(t, b, tt.p)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("list %+v (-want +got):\n%s", tt.p, diff)
			}
		})
	}

	// Paging with AfterSeq sees every event once, in Seq order.
	for _, limit := range []int{1, 4, 9} {
		var paged []audit.Event
		for after := int64(0); ; {
			got := listAudit(t, b, audit.ListParams{AfterSeq: after, Limit: limit})
			paged = append(paged, got...)
			if len(got) < limit {
				break
			}
			after = got[len(got)-1].Seq
		}
		if diff := cmp.Diff(want, paged); diff != "" {
			t.Errorf("limit %d: paged events (-want +got):\n%s", limit, diff)
		}
	}

	// A zero Time means now; an ID is unique; a zero event records
	// nothing, in a transaction or on its own.
	before := time.Now()
	appendAudit(t, s, audit.Event{TenantID: "ten_c", Actor: "admin", Action: "grant.refuse"}, audit.Event{TenantID: "ten_c"})
	if err := b.AuditAppend(t.Context(), audit.Event{TenantID: "ten_c", Actor: "admin"}); err != nil {
		t.Fatalf("append of a zero event on its own: %v", err)
	}
	got := listAudit(t, b, audit.ListParams{TenantID: "ten_c"})
	if len(got) != 1 {
		t.Fatalf("list of ten_c = %d events, want 1", len(got))
	}
	checkUpdatedAt(t, "append without Time", got[0].Time, before, time.Now())
	err := inGrantsTx(t, s, func(tx grants.Tx) error { return tx.AuditAppend(t.Context(), want[0]) })
	if err == nil {
		t.Error("append of an event with a taken ID succeeded")
	}

	// On its own, outside any transaction.
	alone := audit.Event{TenantID: "ten_d", Actor: "cli", Action: "token.mint", TargetType: "token", TargetID: "ten_d", Outcome: audit.OutcomeOK, Time: base}
	if err := b.AuditAppend(t.Context(), alone); err != nil {
		t.Fatalf("append on its own: %v", err)
	}
	got = listAudit(t, b, audit.ListParams{TenantID: "ten_d"})
	if len(got) != 1 {
		t.Fatalf("list of ten_d = %d events, want 1", len(got))
	}
	alone.ID, alone.Seq = got[0].ID, got[0].Seq
	if diff := cmp.Diff(alone, got[0], cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("event appended on its own (-want +got):\n%s", diff)
	}
}

// testAuditWithChange checks that a change's audit event commits and rolls
// back with the change, through each kind of store method that takes one:
// a tenants.Tx, a source, a webhook endpoint and a delivery. A refused
// change (a taken name, a stale version, a full endpoint list) leaves no
// event; a zero event with a change records nothing.
func testAuditWithChange(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	ids := tenantIDs(t, b, 1)
	tenant := ids[0]
	rec := func(action, id string) audit.Event {
		return audit.Event{TenantID: tenant, Actor: "admin", RequestID: "req_" + action, Action: action, TargetType: "x", TargetID: id, Outcome: audit.OutcomeOK}
	}
	actions := func() []string {
		t.Helper()
		var out []string
		for _, e := range listAudit(t, b, audit.ListParams{TenantID: tenant}) {
			out = append(out, e.Action)
		}
		return out
	}

	// A tenants.Tx: rolled back with fn's error, committed without.
	errBoom := errors.New("boom")
	err := b.InTx(ctx, func(tx tenants.Tx) error {
		if err := tx.AuditAppend(ctx, rec("tenant.rolled_back", tenant)); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	if err := b.InTx(ctx, func(tx tenants.Tx) error { return tx.AuditAppend(ctx, rec("tenant.committed", tenant)) }); err != nil {
		t.Fatal(err)
	}

	// Sources.
	src := newSource(tenant, 1)
	if _, err := b.SourceInsert(ctx, src, rec("source.create", src.ID)); err != nil {
		t.Fatal(err)
	}
	dup := newSource(tenant, 2)
	dup.Name = src.Name
	if _, err := b.SourceInsert(ctx, dup, rec("source.create_taken", dup.ID)); !errors.Is(err, profiles.ErrSourceNameTaken) {
		t.Fatalf("insert of a taken name = %v", err)
	}
	stale := src
	stale.Version = 7
	if _, err := b.SourceUpdate(ctx, stale, rec("source.update_stale", src.ID)); !errors.Is(err, profiles.ErrSourceConflict) {
		t.Fatalf("stale update = %v", err)
	}
	if _, err := b.SourceUpdate(ctx, src, audit.Event{}); err != nil {
		t.Fatal(err)
	}

	// Webhook endpoints and deliveries.
	ep := newEndpoint(tenant, 1)
	if _, err := b.WebhookEndpointInsert(ctx, ep, 1, rec("webhook.create", ep.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WebhookEndpointInsert(ctx, newEndpoint(tenant, 2), 1, rec("webhook.create_over_limit", "")); !errors.Is(err, webhooks.ErrLimit) {
		t.Fatalf("insert over the limit = %v", err)
	}
	if err := b.WebhookEndpointDelete(ctx, tenant, ep.ID, 9, rec("webhook.delete_stale", ep.ID)); !errors.Is(err, webhooks.ErrVersionMismatch) {
		t.Fatalf("stale delete = %v", err)
	}
	if _, err := b.WebhookDeliveryRetry(ctx, ep.ID, "dlv_missing", base, rec("webhook.redeliver_missing", "dlv_missing")); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("retry of a missing delivery = %v", err)
	}
	if _, err := b.WebhookDeliveryRecover(ctx, ep.ID, base, base, rec("webhook.recover", ep.ID)); err != nil {
		t.Fatal(err)
	}
	if err := b.WebhookEndpointDelete(ctx, tenant, ep.ID, 0, rec("webhook.delete", ep.ID)); err != nil {
		t.Fatal(err)
	}

	want := []string{"tenant.committed", "source.create", "webhook.create", "webhook.recover", "webhook.delete"}
	if got := actions(); !slices.Equal(got, want) {
		t.Errorf("recorded %v, want %v", got, want)
	}
}
