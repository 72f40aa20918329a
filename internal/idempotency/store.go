package idempotency

import (
	"context"
	"time"
)

// Record is one remembered request, keyed by the principal that sent it and
// its Idempotency-Key header.
type Record struct {
	Principal string
	Key       string
	// RequestHash identifies method, path and body of the first request.
	RequestHash string
	// Completed is false while the first request is in flight.
	Completed bool
	// LockedUntil bounds how long an in-flight claim holds the key: a claim
	// whose holder crashed can be taken again after it.
	LockedUntil time.Time
	// Status, Header (JSON object of string arrays) and Body are the
	// response to replay; set only when Completed.
	Status    int
	Header    []byte
	Body      []byte
	CreatedAt time.Time
	// ExpiresAt is when the key may be forgotten and reused.
	ExpiresAt time.Time
}

// Store is the storage port for idempotency keys. Implementations must be
// safe for concurrent use by several replicas: claims are decided by the
// database, never in memory.
type Store interface {
	// IdempotencyClaim atomically claims (rec.Principal, rec.Key) for an
	// in-flight request. It succeeds (returns rec, true) when no record
	// exists, when the existing one has expired (ExpiresAt <= now), or when
	// the existing one is in flight, its lock has lapsed (LockedUntil <=
	// now) and its RequestHash equals rec.RequestHash. Otherwise it returns
	// the existing record and false.
	IdempotencyClaim(ctx context.Context, rec Record, now time.Time) (Record, bool, error)
	// IdempotencyComplete stores the response of a claimed request.
	IdempotencyComplete(ctx context.Context, principal, key string, status int, header, body []byte) error
	// IdempotencyRelease forgets an in-flight claim, so the request can be
	// retried at once (used when the request failed with a server error).
	IdempotencyRelease(ctx context.Context, principal, key string) error
	// IdempotencyDeleteExpired removes records with ExpiresAt <= now and
	// returns how many it removed.
	IdempotencyDeleteExpired(ctx context.Context, now time.Time) (int64, error)
}
