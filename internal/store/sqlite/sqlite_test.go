package sqlite_test

import (
	"log/slog"
	"testing"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/store/storetest"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		NewDatabase: testdb.SQLitePath,
		Open: func(t *testing.T, path string) store.Backend {
			db, err := sqlite.Open(t.Context(), path, testLogger(t))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return db
		},
	})
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, path := range []string{"", "cairn.db?mode=ro"} {
		if db, err := sqlite.Open(t.Context(), path, nil); err == nil {
			_ = db.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
