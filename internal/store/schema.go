package store

import (
	"context"
	"fmt"
)

// SchemaVersions is what CheckSchema reads of the adapters' migrations;
// goose's *Provider has it. Both methods need goose's version table to
// exist (goose creates it otherwise).
type SchemaVersions interface {
	// HasPending reports whether a migration this version knows is not
	// applied (out-of-order ones included).
	HasPending(ctx context.Context) (bool, error)
	// GetDBVersion returns the database's latest applied version.
	GetDBVersion(ctx context.Context) (int64, error)
}

// CheckSchema implements Backend.CheckSchema for the adapters. versioned
// says whether the database has goose's version table at all (one never
// migrated has none: v is then not asked, so that checking writes
// nothing); latest is this version's latest migration. It wraps
// ErrSchemaBehind with both versions when a migration is missing.
func CheckSchema(ctx context.Context, v SchemaVersions, versioned bool, latest int64) error {
	if !versioned {
		return fmt.Errorf("%w: the database has no schema, this version needs version %d", ErrSchemaBehind, latest)
	}
	pending, err := v.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	if !pending {
		return nil
	}
	current, err := v.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	return fmt.Errorf("%w: the database is at version %d, this version needs version %d", ErrSchemaBehind, current, latest)
}
