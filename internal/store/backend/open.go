// Package backend picks and opens the control-plane store from
// configuration. It is apart from package store because it imports both
// adapters, which import store.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/postgres"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
)

// SQLiteFile is the database file's name inside the data directory.
const SQLiteFile = "cairn.db"

// Open opens the store that databaseURL names: PostgreSQL for a
// postgres:// or postgresql:// URL, or, when databaseURL is empty, SQLite
// in dataDir/cairn.db (dataDir is created with mode 0700 if missing). Any
// other URL is an error. Open does not migrate.
func Open(ctx context.Context, databaseURL, dataDir string, logger *slog.Logger) (store.Backend, error) {
	switch {
	case databaseURL == "":
		if dataDir == "" {
			return nil, errors.New("open store: no database URL and no data directory")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		db, err := sqlite.Open(ctx, filepath.Join(dataDir, SQLiteFile), logger)
		if err != nil { // not a nil *sqlite.DB in a non-nil Backend
			return nil, err
		}
		return db, nil
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		db, err := postgres.Open(ctx, databaseURL, logger)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	// Name only the scheme: the rest may hold a password.
	const want = "want postgres:// or postgresql://, or no URL for embedded SQLite"
	if scheme, _, ok := strings.Cut(databaseURL, "://"); ok {
		return nil, fmt.Errorf("open store: unsupported database URL scheme %q: %s", scheme, want)
	}
	return nil, fmt.Errorf("open store: database URL is not a URL: %s", want)
}
