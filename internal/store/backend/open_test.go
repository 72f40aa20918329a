package backend_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-cdp/cairn/internal/store/backend"
	"github.com/cairn-cdp/cairn/internal/store/postgres"
	"github.com/cairn-cdp/cairn/internal/store/sqlite"
	"github.com/cairn-cdp/cairn/internal/testdb"
)

var discard = slog.New(slog.DiscardHandler)

func TestOpenSQLite(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data", "cairn")
	b, err := backend.Open(t.Context(), "", dataDir, discard)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer b.Close()
	if _, ok := b.(*sqlite.DB); !ok {
		t.Errorf("Open(\"\") = %T, want *sqlite.DB", b)
	}
	info, err := os.Stat(dataDir)
	if err != nil {
		t.Fatalf("data dir: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("data dir mode = %o, want 700", perm)
	}
	if _, err := os.Stat(filepath.Join(dataDir, backend.SQLiteFile)); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenPostgres(t *testing.T) {
	url := testdb.Postgres(t)
	for _, u := range []string{url, "postgresql" + strings.TrimPrefix(url, "postgres")} {
		b, err := backend.Open(t.Context(), u, "", discard)
		if err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
		if _, ok := b.(*postgres.DB); !ok {
			t.Errorf("Open(%q) = %T, want *postgres.DB", u, b)
		}
		_ = b.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct{ name, url, dataDir string }{
		{"unknown scheme", "mysql://root:hunter2@db/cairn", t.TempDir()},
		{"not a URL", "hunter2", t.TempDir()},
		{"no data dir", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := backend.Open(t.Context(), tt.url, tt.dataDir, discard)
			if err == nil {
				_ = b.Close()
				t.Fatal("Open succeeded")
			}
			if b != nil {
				t.Errorf("Open returned a non-nil Backend %T with its error", b)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the URL: %v", err)
			}
		})
	}
}
