package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/idempotency"
	"github.com/cairn-cdp/cairn/internal/store/sqlite/db"
)

// stateCompleted is idempotency_keys.state once the response is stored;
// it is 'in_flight' before.
const stateCompleted = "completed"

// IdempotencyClaim implements idempotency.Store. The claim is one
// transaction, and transactions never run concurrently (see the package
// doc), so exactly one of several concurrent claims wins. Times are stored
// at microsecond precision; the returned record is as stored.
func (d *DB) IdempotencyClaim(ctx context.Context, rec idempotency.Record, now time.Time) (idempotency.Record, bool, error) {
	var (
		out     idempotency.Record
		claimed bool
	)
	err := d.withTx(ctx, func(sqlTx *sql.Tx) error {
		q := d.queries.WithTx(sqlTx)
		err := q.IdempotencyClearClaimable(ctx, db.IdempotencyClearClaimableParams{
			Principal:   rec.Principal,
			Key:         rec.Key,
			Now:         formatTime(now),
			RequestHash: rec.RequestHash,
		})
		if err != nil {
			return err
		}
		row, err := q.IdempotencyInsertClaim(ctx, db.IdempotencyInsertClaimParams{
			Principal:   rec.Principal,
			Key:         rec.Key,
			RequestHash: rec.RequestHash,
			LockedUntil: formatTime(rec.LockedUntil),
			CreatedAt:   formatTime(rec.CreatedAt),
			ExpiresAt:   formatTime(rec.ExpiresAt),
		})
		if err == nil {
			claimed = true
		} else if errors.Is(err, sql.ErrNoRows) {
			row, err = q.IdempotencyGet(ctx, db.IdempotencyGetParams{Principal: rec.Principal, Key: rec.Key})
		}
		if err != nil {
			return err
		}
		out, err = recordFromRow(row)
		return err
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
		Status:    int64(status),
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
	n, err := d.queries.IdempotencyDeleteExpired(ctx, formatTime(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return n, nil
}

// recordFromRow converts a stored row to an idempotency.Record.
func recordFromRow(r db.IdempotencyKey) (idempotency.Record, error) {
	rec := idempotency.Record{
		Principal:   r.Principal,
		Key:         r.Key,
		RequestHash: r.RequestHash,
		Completed:   r.State == stateCompleted,
		Status:      int(r.Status),
		Header:      r.Header,
		Body:        r.Body,
	}
	var err error
	if rec.LockedUntil, err = parseTime(r.LockedUntil); err != nil {
		return idempotency.Record{}, err
	}
	if rec.CreatedAt, err = parseTime(r.CreatedAt); err != nil {
		return idempotency.Record{}, err
	}
	if rec.ExpiresAt, err = parseTime(r.ExpiresAt); err != nil {
		return idempotency.Record{}, err
	}
	return rec, nil
}
