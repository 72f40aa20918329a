package postgres_test

import (
	"log/slog"
	"testing"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/store/postgres"
	"github.com/cairn-cdp/cairn/internal/store/storetest"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		NewDatabase: testdb.PostgresMigrated,
		Open:        open,
	})
}

// TestMigrateConcurrently starts two backends on one empty database, as two
// replicas would: goose's session lock lets one migrate while the other
// waits, and both succeed.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := testdb.Postgres(t)
	backends := []store.Backend{open(t, url), open(t, url)}
	errs := make(chan error, len(backends))
	for _, b := range backends {
		t.Cleanup(func() { _ = b.Close() })
		go func() { errs <- b.Migrate(t.Context()) }()
	}
	for range backends {
		if err := <-errs; err != nil {
			t.Errorf("migrate: %v", err)
		}
	}
	if _, err := backends[0].JobCounts(t.Context()); err != nil {
		t.Errorf("River schema missing after migrate: %v", err)
	}
}

func open(t *testing.T, url string) store.Backend {
	db, err := postgres.Open(t.Context(), url, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return db
}
