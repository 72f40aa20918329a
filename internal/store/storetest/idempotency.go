package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/idempotency"
	"github.com/cairn-cdp/cairn/internal/store"
)

// claimRecord is an in-flight claim made at now with hash.
func claimRecord(principal, key, hash string, now time.Time) idempotency.Record {
	return idempotency.Record{
		Principal:   principal,
		Key:         key,
		RequestHash: hash,
		LockedUntil: now.Add(time.Minute),
		CreatedAt:   now,
		ExpiresAt:   now.Add(24 * time.Hour),
	}
}

// mustClaim claims rec at now and checks whether it won and what record
// came back.
func mustClaim(t *testing.T, b store.Backend, rec idempotency.Record, now time.Time, wantClaimed bool, want idempotency.Record) {
	t.Helper()
	got, claimed, err := b.IdempotencyClaim(t.Context(), rec, now)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if claimed != wantClaimed {
		t.Errorf("claim at %s: claimed = %t, want %t", now.Sub(base), claimed, wantClaimed)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claim at %s returned (-want +got):\n%s", now.Sub(base), diff)
	}
}

func testIdempotencyClaim(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	const p, k = "user:alice", "key-1"

	first := claimRecord(p, k, "hash-a", base)
	mustClaim(t, b, first, base, true, first)

	// In flight and locked: refused, whatever the hash.
	mustClaim(t, b, claimRecord(p, k, "hash-a", base.Add(time.Second)), base.Add(time.Second), false, first)
	mustClaim(t, b, claimRecord(p, k, "hash-b", base.Add(time.Second)), base.Add(time.Second), false, first)

	// The key is per principal.
	other := claimRecord("user:bob", k, "hash-a", base)
	mustClaim(t, b, other, base, true, other)

	// The lock lapsed: only the same request may take the claim over.
	lapsed := first.LockedUntil
	mustClaim(t, b, claimRecord(p, k, "hash-b", lapsed), lapsed, false, first)
	retake := claimRecord(p, k, "hash-a", lapsed)
	mustClaim(t, b, retake, lapsed, true, retake)

	// Completed: refused and replayed, even after its lock time.
	header, body := []byte(`{"Content-Type":["application/json"]}`), []byte(`{"id":"ten_1"}`)
	if err := b.IdempotencyComplete(ctx, p, k, 201, header, body); err != nil {
		t.Fatalf("complete: %v", err)
	}
	completed := retake
	completed.Completed, completed.Status, completed.Header, completed.Body = true, 201, header, body
	later := retake.LockedUntil.Add(time.Hour)
	mustClaim(t, b, claimRecord(p, k, "hash-a", later), later, false, completed)

	// Release keeps a completed record.
	if err := b.IdempotencyRelease(ctx, p, k); err != nil {
		t.Fatalf("release: %v", err)
	}
	mustClaim(t, b, claimRecord(p, k, "hash-a", later), later, false, completed)

	// Expired: anyone may claim the key afresh.
	expired := completed.ExpiresAt
	fresh := claimRecord(p, k, "hash-c", expired)
	mustClaim(t, b, fresh, expired, true, fresh)

	// Release forgets an in-flight claim at once.
	if err := b.IdempotencyRelease(ctx, p, k); err != nil {
		t.Fatalf("release: %v", err)
	}
	again := claimRecord(p, k, "hash-d", expired.Add(time.Second))
	mustClaim(t, b, again, expired.Add(time.Second), true, again)

	// Completing needs an in-flight claim.
	if err := b.IdempotencyComplete(ctx, p, "never-claimed", 200, nil, nil); err == nil {
		t.Error("complete of an unclaimed key succeeded")
	}
}

func testIdempotencyDeleteExpired(t *testing.T, h Harness) {
	b := newBackend(t, h)
	ctx := t.Context()
	old := claimRecord("p", "old", "h", base)
	old.ExpiresAt = base.Add(time.Hour)
	edge := claimRecord("p", "edge", "h", base)
	edge.ExpiresAt = base.Add(2 * time.Hour)
	young := claimRecord("p", "young", "h", base)
	for _, rec := range []idempotency.Record{old, edge, young} {
		mustClaim(t, b, rec, base, true, rec)
	}
	if err := b.IdempotencyComplete(ctx, "p", "old", 200, nil, []byte("ok")); err != nil {
		t.Fatalf("complete: %v", err)
	}

	n, err := b.IdempotencyDeleteExpired(ctx, base.Add(2*time.Hour))
	if err != nil {
		t.Fatalf("delete expired: %v", err)
	}
	if n != 2 {
		t.Errorf("deleted %d records, want 2 (ExpiresAt <= now)", n)
	}
	// The young record is still there; the deleted keys are free, even to
	// another request, at a time before they expired.
	mustClaim(t, b, claimRecord("p", "young", "other", base), base, false, young)
	fresh := claimRecord("p", "old", "other", base)
	mustClaim(t, b, fresh, base, true, fresh)
}

// testIdempotencyConcurrentClaims races claims of one key: the database
// picks exactly one winner and everyone else sees its record.
func testIdempotencyConcurrentClaims(t *testing.T, h Harness) {
	b := newBackend(t, h)
	const n = 10
	type result struct {
		rec     idempotency.Record
		claimed bool
		err     error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			rec, claimed, err := b.IdempotencyClaim(t.Context(), claimRecord("p", "race", "h", base), base)
			results <- result{rec, claimed, err}
		}()
	}
	close(start)
	winners := 0
	for range n {
		r := receive(t, results, "a claim")
		if r.err != nil {
			t.Fatalf("claim: %v", r.err)
		}
		if r.claimed {
			winners++
		}
		if r.rec.Key != "race" || r.rec.Completed {
			t.Errorf("claim returned %+v", r.rec)
		}
	}
	if winners != 1 {
		t.Errorf("%d claims won, want exactly 1", winners)
	}
}
