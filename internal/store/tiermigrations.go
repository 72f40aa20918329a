package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/placement"
)

// EncodeMigration returns the stored body of m: its progress.
func EncodeMigration(m migration.Migration) ([]byte, error) {
	return json.Marshal(m.Progress)
}

// MigrationColumns are a migration's stored columns, in the domain's types
// (times in UTC, zero for NULL).
type MigrationColumns struct {
	Seq                                        int64
	ID, TenantID, From, To, Step, State, Error string
	Body                                       []byte
	FencedAt, FenceUntil                       time.Time
	Version                                    int64
	CreatedAt, UpdatedAt, FinishedAt           time.Time
}

// DecodeMigration returns the migration stored as c.
func DecodeMigration(c MigrationColumns) (migration.Migration, error) {
	m := migration.Migration{
		ID: c.ID, TenantID: c.TenantID, From: placement.Kind(c.From), To: placement.Kind(c.To), Step: migration.Step(c.Step),
		State: migration.State(c.State), Error: c.Error, FencedAt: c.FencedAt, FenceUntil: c.FenceUntil, Version: c.Version,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, FinishedAt: c.FinishedAt, Seq: c.Seq,
	}
	if err := json.Unmarshal(c.Body, &m.Progress); err != nil {
		return migration.Migration{}, fmt.Errorf("migration %s body: %w", c.ID, err)
	}
	return m, nil
}
