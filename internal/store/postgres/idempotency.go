package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/idempotency"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

// stateCompleted is idempotency_keys.state once the response is stored;
// it is 'in_flight' before.
const stateCompleted = "completed"

// IdempotencyClaim implements idempotency.Store. The claim is one upsert,
// so the database picks exactly one winner among concurrent claims. When
// the upsert leaves the existing record standing it still locks it, so the
// read that follows in the same transaction returns that record. Times are
// stored at microsecond precision; the returned record is as stored.
func (d *DB) IdempotencyClaim(ctx context.Context, rec idempotency.Record, now time.Time) (idempotency.Record, bool, error) {
	var (
		out     idempotency.Record
		claimed bool
	)
	err := d.withTx(ctx, func(pgxTx pgx.Tx) error {
		q := d.queries.WithTx(pgxTx)
		row, err := q.IdempotencyClaim(ctx, db.IdempotencyClaimParams{
			Principal:   rec.Principal,
			Key:         rec.Key,
			RequestHash: rec.RequestHash,
			LockedUntil: storedTime(rec.LockedUntil),
			CreatedAt:   storedTime(rec.CreatedAt),
			ExpiresAt:   storedTime(rec.ExpiresAt),
			Now:         storedTime(now),
		})
		if err == nil {
			claimed = true
		} else if errors.Is(err, pgx.ErrNoRows) {
			row, err = q.IdempotencyGet(ctx, db.IdempotencyGetParams{Principal: rec.Principal, Key: rec.Key})
		}
		if err != nil {
			return err
		}
		out = recordFromRow(row)
		return nil
	})
	if err != nil {
		return idempotency.Record{}, false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return out, claimed, nil
}

// IdempotencyComplete implements idempotency.Store. It fails when the key
// has no in-flight claim.
func (d *DB) IdempotencyComplete(ctx context.Context, principal, key string, status int, header, body []byte) error {
	n, err := d.queries.IdempotencyComplete(ctx, db.IdempotencyCompleteParams{
		Status:    int32(status), //nolint:gosec // an HTTP status
		Header:    header,
		Body:      body,
		Principal: principal,
		Key:       key,
	})
	if err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	if n == 0 {
		return errors.New("complete idempotency key: no in-flight claim")
	}
	return nil
}

// IdempotencyRelease implements idempotency.Store. Completed records are
// kept.
func (d *DB) IdempotencyRelease(ctx context.Context, principal, key string) error {
	err := d.queries.IdempotencyRelease(ctx, db.IdempotencyReleaseParams{Principal: principal, Key: key})
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// IdempotencyDeleteExpired implements idempotency.Store.
func (d *DB) IdempotencyDeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	n, err := d.queries.IdempotencyDeleteExpired(ctx, storedTime(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return n, nil
}

// recordFromRow converts a stored row to an idempotency.Record.
func recordFromRow(r db.IdempotencyKey) idempotency.Record {
	return idempotency.Record{
		Principal:   r.Principal,
		Key:         r.Key,
		RequestHash: r.RequestHash,
		Completed:   r.State == stateCompleted,
		LockedUntil: r.LockedUntil.UTC(),
		Status:      int(r.Status),
		Header:      r.Header,
		Body:        r.Body,
		CreatedAt:   r.CreatedAt.UTC(),
		ExpiresAt:   r.ExpiresAt.UTC(),
	}
}
