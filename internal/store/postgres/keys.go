package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-cdp/cairn/internal/kmskek"
	"github.com/cairn-cdp/cairn/internal/replicas"
	"github.com/cairn-cdp/cairn/internal/signingkeys"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

var (
	_ signingkeys.Store = (*DB)(nil)
	_ replicas.Store    = (*DB)(nil)
	_ kmskek.Store      = (*DB)(nil)
)

// SigningKeyList implements signingkeys.Store.
func (d *DB) SigningKeyList(ctx context.Context) ([]signingkeys.Key, error) {
	rows, err := d.queries.SigningKeyList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	out := make([]signingkeys.Key, len(rows))
	for i, r := range rows {
		out[i] = signingkeys.Key{ID: r.Kid, Public: r.PublicKey, SealedPrivate: r.SealedPrivateKey,
			CreatedAt: r.CreatedAt.UTC(), SupersededAt: storedTimePtr(r.SupersededAt)}
	}
	return out, nil
}

// SigningKeyInsert implements signingkeys.Store.
func (d *DB) SigningKeyInsert(ctx context.Context, k signingkeys.Key) (bool, error) {
	return signingKeyInsert(ctx, d.queries, k)
}

func signingKeyInsert(ctx context.Context, q *db.Queries, k signingkeys.Key) (bool, error) {
	n, err := q.SigningKeyInsert(ctx, db.SigningKeyInsertParams{Kid: k.ID, PublicKey: k.Public, SealedPrivateKey: k.SealedPrivate,
		CreatedAt: storedTime(k.CreatedAt), SupersededAt: storedTimePtr(k.SupersededAt)})
	if err != nil {
		return false, fmt.Errorf("insert signing key %s: %w", k.ID, err)
	}
	return n == 1, nil
}

// SigningKeyRotate implements signingkeys.Store. Concurrent rotations
// queue on the current key's row; the later one then finds the earlier's
// new key current and fails with signingkeys.ErrRotationRace.
func (d *DB) SigningKeyRotate(ctx context.Context, k signingkeys.Key, forgetBefore time.Time) error {
	return d.withTx(ctx, func(tx pgx.Tx) error {
		q := d.queries.WithTx(tx)
		if err := q.SigningKeySupersede(ctx, storedTimePtr(&k.CreatedAt)); err != nil {
			return fmt.Errorf("supersede signing key: %w", err)
		}
		ok, err := signingKeyInsert(ctx, q, k)
		if err != nil {
			return err
		}
		if !ok {
			return signingkeys.ErrRotationRace
		}
		if err := q.SigningKeyForget(ctx, storedTimePtr(&forgetBefore)); err != nil {
			return fmt.Errorf("forget signing keys: %w", err)
		}
		return nil
	})
}

// ReplicaJoin implements replicas.Store. The table lock (which conflicts
// with itself) makes joins take turns, so two replicas starting at once
// cannot both find the table empty.
func (d *DB) ReplicaJoin(ctx context.Context, r replicas.Replica, now time.Time, admit func([]replicas.Replica) error) error {
	return d.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE replicas IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock replicas: %w", err)
		}
		q := d.queries.WithTx(tx)
		if err := q.ReplicaForgetLapsed(ctx, storedTime(now)); err != nil {
			return fmt.Errorf("forget lapsed replicas: %w", err)
		}
		rows, err := q.ReplicaList(ctx)
		if err != nil {
			return fmt.Errorf("list replicas: %w", err)
		}
		var live []replicas.Replica
		for _, row := range rows {
			if row.ID != r.ID {
				live = append(live, replicas.Replica{ID: row.ID, Engine: row.Engine, Host: row.Host, DataDir: row.DataDir,
					StartedAt: row.StartedAt.UTC(), ExpiresAt: row.ExpiresAt.UTC()})
			}
		}
		if err := admit(live); err != nil {
			return err
		}
		if err := q.ReplicaUpsert(ctx, db.ReplicaUpsertParams{ID: r.ID, Engine: r.Engine, Host: r.Host, DataDir: r.DataDir,
			StartedAt: storedTime(r.StartedAt), ExpiresAt: storedTime(r.ExpiresAt)}); err != nil {
			return fmt.Errorf("insert replica: %w", err)
		}
		return nil
	})
}

// ReplicaRenew implements replicas.Store.
func (d *DB) ReplicaRenew(ctx context.Context, id string, expiresAt time.Time) (bool, error) {
	n, err := d.queries.ReplicaRenew(ctx, db.ReplicaRenewParams{ID: id, ExpiresAt: storedTime(expiresAt)})
	if err != nil {
		return false, fmt.Errorf("renew replica %s: %w", id, err)
	}
	return n == 1, nil
}

// ReplicaLeave implements replicas.Store.
func (d *DB) ReplicaLeave(ctx context.Context, id string) error {
	if err := d.queries.ReplicaDelete(ctx, id); err != nil {
		return fmt.Errorf("delete replica %s: %w", id, err)
	}
	return nil
}

// ReplicaCount implements replicas.Store.
func (d *DB) ReplicaCount(ctx context.Context, now time.Time) (int, error) {
	n, err := d.queries.ReplicaCountLive(ctx, storedTime(now))
	if err != nil {
		return 0, fmt.Errorf("count replicas: %w", err)
	}
	return int(n), nil
}

// WrappedKeyGet implements kmskek.Store.
func (d *DB) WrappedKeyGet(ctx context.Context, kmsKeyARN string) ([]byte, error) {
	wrapped, err := d.queries.WrappedKeyGet(ctx, kmsKeyARN)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, kmskek.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get wrapped key: %w", err)
	}
	return wrapped, nil
}

// WrappedKeyInsert implements kmskek.Store.
func (d *DB) WrappedKeyInsert(ctx context.Context, kmsKeyARN string, wrapped []byte, at time.Time) error {
	if err := d.queries.WrappedKeyInsert(ctx, db.WrappedKeyInsertParams{KmsKeyArn: kmsKeyARN, Wrapped: wrapped, CreatedAt: storedTime(at)}); err != nil {
		return fmt.Errorf("insert wrapped key: %w", err)
	}
	return nil
}
