// Package backend picks and opens the control-plane store from
// configuration. It is apart from package store because it imports both
// adapters, which import store.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
// in dataDir/cairn.db (dataDir is created with mode 0700 if missing, the
// database file with mode 0600, see PrivateDatabaseFile). Any
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
		path := filepath.Join(dataDir, SQLiteFile)
		if err := PrivateDatabaseFile(path); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		db, err := sqlite.Open(ctx, path, logger)
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

// PrivateDatabaseFile makes the SQLite database at path private to the
// server's user before SQLite opens it: it creates the file with mode 0600
// if it is missing, and takes group and other access away from it and
// from its -wal and -shm files if they exist (files of an older version).
// SQLite creates the -wal and -shm files with the mode of the database
// file, so they are private too, whatever the umask.
func PrivateDatabaseFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return err
		case info.Mode().Perm()&0o077 != 0:
			if err := os.Chmod(p, info.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("make %s private: %w", filepath.Base(p), err)
			}
		}
	}
	return nil
}
