package sqlite

import (
	"testing"

	"github.com/cairn-cdp/cairn/internal/testdb"
)

// TestMigrationListsIndexBuilds: migration 16 lists the tenants that may
// have had profiles before the profile index, the live ones, for a build.
func TestMigrationListsIndexBuilds(t *testing.T) {
	ctx := t.Context()
	d, err := Open(ctx, testdb.SQLitePath(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := d.provider()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 14); err != nil {
		t.Fatal(err)
	}
	if _, err := d.sqlDB.ExecContext(ctx, `INSERT INTO tenants (id, slug, name, tier, status, home_region, version, created_at, updated_at)
		VALUES ('ten_live', 'live', 'Live', 'pooled', 'active', 'eu-west-1', 1, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z'),
		       ('ten_gone', 'gone', 'Gone', 'pooled', 'deleted', 'eu-west-1', 1, '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z')`); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	builds, err := d.UsageIndexBuilds(ctx)
	if err != nil || len(builds) != 1 || builds[0].TenantID != "ten_live" || !builds[0].BuiltAt.IsZero() {
		t.Fatalf("builds %+v (%v), want ten_live's, not built", builds, err)
	}
}
