package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/fleet"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/postgres/db"
)

var _ migration.Store = (*DB)(nil)

// runningMigrationIndex lets a tenant have one running migration.
const runningMigrationIndex = "tier_migrations_running_key"

// translateMigrations maps the driver's errors of the migration queries.
func translateMigrations(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return migration.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == runningMigrationIndex {
		return migration.ErrRunning
	}
	return err
}

func migrationFromRow(r db.TierMigration) (migration.Migration, error) {
	return store.DecodeMigration(store.MigrationColumns{
		Seq: r.Seq, ID: r.ID, TenantID: r.TenantID, From: r.FromTier, To: r.ToTier, Step: r.Step, State: r.State, Error: r.Error,
		Body: r.Body, FencedAt: timeOrZero(r.FencedAt), FenceUntil: timeOrZero(r.FenceUntil), Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), FinishedAt: timeOrZero(r.FinishedAt),
	})
}

// MigrationCreate implements migration.Store.
func (d *DB) MigrationCreate(ctx context.Context, m migration.Migration, rec audit.Event) (migration.Migration, error) {
	body, err := store.EncodeMigration(m)
	if err != nil {
		return migration.Migration{}, fmt.Errorf("create migration: %w", err)
	}
	err = d.withTx(ctx, func(pgxTx pgx.Tx) error {
		q := d.queries.WithTx(pgxTx)
		seq, err := q.TierMigrationInsert(ctx, db.TierMigrationInsertParams{
			ID: m.ID, TenantID: m.TenantID, FromTier: string(m.From), ToTier: string(m.To), Step: string(m.Step),
			State: string(m.State), Body: body, CreatedAt: storedTime(m.CreatedAt),
		})
		if err != nil {
			return err
		}
		m.Seq, m.Version = seq, 1
		if err := auditAppend(ctx, q, rec); err != nil {
			return err
		}
		_, err = d.jobs.InsertTx(ctx, pgxTx, migration.StepArgs{MigrationID: m.ID}, nil)
		return err
	})
	if err != nil {
		return migration.Migration{}, fmt.Errorf("create migration: %w", translateMigrations(err))
	}
	m.CreatedAt, m.UpdatedAt = storedTime(m.CreatedAt), storedTime(m.CreatedAt)
	return m, nil
}

// MigrationGet implements migration.Store.
func (d *DB) MigrationGet(ctx context.Context, id string) (migration.Migration, error) {
	row, err := d.queries.TierMigrationGet(ctx, id)
	if err != nil {
		return migration.Migration{}, fmt.Errorf("get migration: %w", translateMigrations(err))
	}
	return migrationFromRow(row)
}

// MigrationLatest implements migration.Store.
func (d *DB) MigrationLatest(ctx context.Context, tenantID string) (migration.Migration, error) {
	row, err := d.queries.TierMigrationLatest(ctx, tenantID)
	if err != nil {
		return migration.Migration{}, fmt.Errorf("latest migration: %w", translateMigrations(err))
	}
	return migrationFromRow(row)
}

// MigrationUpdate implements migration.Store.
func (d *DB) MigrationUpdate(ctx context.Context, m migration.Migration, announce ...fleet.Event) (migration.Migration, error) {
	var stored migration.Migration
	err := d.withTx(ctx, func(pgxTx pgx.Tx) error {
		var err error
		stored, err = migrationUpdate(ctx, d.queries.WithTx(pgxTx), m, announce)
		return err
	})
	if err != nil {
		return migration.Migration{}, fmt.Errorf("update migration: %w", err)
	}
	return stored, nil
}

// migrationUpdate stores m and announces events through q.
func migrationUpdate(ctx context.Context, q *db.Queries, m migration.Migration, announce []fleet.Event) (migration.Migration, error) {
	body, err := store.EncodeMigration(m)
	if err != nil {
		return migration.Migration{}, err
	}
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = time.Now()
	}
	row, err := q.TierMigrationUpdate(ctx, db.TierMigrationUpdateParams{
		Step: string(m.Step), State: string(m.State), Error: m.Error, Body: body,
		FencedAt: optionalTime(m.FencedAt), FenceUntil: optionalTime(m.FenceUntil), UpdatedAt: storedTime(m.UpdatedAt),
		FinishedAt: optionalTime(m.FinishedAt), ID: m.ID, PrevVersion: m.Version,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := q.TierMigrationGet(ctx, m.ID); gerr != nil {
			return migration.Migration{}, translateMigrations(gerr)
		}
		return migration.Migration{}, migration.ErrConflict
	}
	if err != nil {
		return migration.Migration{}, err
	}
	if err := fleetEventInsert(ctx, q, announce); err != nil {
		return migration.Migration{}, err
	}
	return migrationFromRow(row)
}

// MigrationSwitch implements migration.Store.
func (d *DB) MigrationSwitch(ctx context.Context, m migration.Migration, targets []migration.Home) (migration.Migration, error) {
	var stored migration.Migration
	err := d.withTx(ctx, func(pgxTx pgx.Tx) error {
		q := d.queries.WithTx(pgxTx)
		now := storedTime(m.UpdatedAt)
		if m.UpdatedAt.IsZero() {
			now = storedTime(time.Now())
		}
		n, err := q.TierMigrationSwitchTenant(ctx, db.TierMigrationSwitchTenantParams{Tier: string(m.To), UpdatedAt: now, ID: m.TenantID, FromTier: string(m.From)})
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("tenant %s is not a live %s tenant: %w", m.TenantID, m.From, migration.ErrConflict)
		}
		for _, h := range targets {
			outputs, err := outputsColumn(h.Outputs)
			if err != nil {
				return err
			}
			n, err := q.TierMigrationSwitchPlacement(ctx, db.TierMigrationSwitchPlacementParams{
				Kind: string(h.Kind), StackName: h.StackName, StackStatus: "", TemplateVersion: h.TemplateVersion, Outputs: outputs,
				UpdatedAt: now, TenantID: m.TenantID, Region: h.Region, FromKind: string(m.From),
			})
			if err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("placement of %s in %s is not a ready %s one: %w", m.TenantID, h.Region, m.From, migration.ErrConflict)
			}
		}
		stored, err = migrationUpdate(ctx, q, m, nil)
		return err
	})
	if err != nil {
		return migration.Migration{}, fmt.Errorf("switch migration: %w", err)
	}
	return stored, nil
}

// MigrationClaim implements migration.Store.
func (d *DB) MigrationClaim(ctx context.Context, id string, job int64, until, now time.Time) (bool, error) {
	n, err := d.queries.TierMigrationClaim(ctx, db.TierMigrationClaimParams{Job: pgtype.Int8{Int64: job, Valid: true},
		LeaseUntil: optionalTime(until), ID: id, Now: optionalTime(now)})
	if err != nil {
		return false, fmt.Errorf("claim migration %s: %w", id, err)
	}
	return n == 1, nil
}

// MigrationLapsed implements migration.Store.
func (d *DB) MigrationLapsed(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := d.queries.TierMigrationLapsed(ctx, optionalTime(now))
	if err != nil {
		return nil, fmt.Errorf("lapsed migrations: %w", err)
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.ID] = timeOrZero(r.LeaseUntil)
	}
	return out, nil
}

// MigrationEnqueue implements migration.Store.
func (d *DB) MigrationEnqueue(ctx context.Context, id string, takeover int64) error {
	if _, err := d.jobs.Insert(ctx, migration.StepArgs{MigrationID: id, Takeover: takeover}, nil); err != nil {
		return fmt.Errorf("enqueue migration %s: %w", id, err)
	}
	return nil
}

// MigrationRunning implements migration.Store.
func (d *DB) MigrationRunning(ctx context.Context) (map[string]time.Time, error) {
	rows, err := d.queries.TierMigrationRunning(ctx)
	if err != nil {
		return nil, fmt.Errorf("running migrations: %w", err)
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.TenantID] = timeOrZero(r.FenceUntil)
	}
	return out, nil
}
