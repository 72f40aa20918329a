package provisioner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairn-cdp/cairn/internal/tenants"
)

// Zones are the data lake zones every tenant gets in every Region.
var Zones = []string{"raw", "clean", "curated"}

// LocalEngine is the embedded default's ZoneEngine: it lays each tenant's zones
// out as directories, <root>/<tenant ID>/<region>/<zone>, so the whole
// lifecycle works with no AWS account.
type LocalEngine struct {
	Root string
}

var _ ZoneEngine = (*LocalEngine)(nil)

func (e *LocalEngine) dir(t tenants.Tenant, region string) string {
	return filepath.Join(e.Root, t.ID, region)
}

// Provision creates the zone directories; existing ones are kept.
func (e *LocalEngine) Provision(_ context.Context, t tenants.Tenant, region string) error {
	for _, z := range Zones {
		if err := os.MkdirAll(filepath.Join(e.dir(t, region), z), 0o700); err != nil {
			return fmt.Errorf("local engine: %w", err)
		}
	}
	return nil
}

// Deprovision removes the Region's directory when purge is set; otherwise
// the data is retained, as the AWS engine retains data buckets.
func (e *LocalEngine) Deprovision(_ context.Context, t tenants.Tenant, region string, purge bool) error {
	if !purge {
		return nil
	}
	if err := os.RemoveAll(e.dir(t, region)); err != nil {
		return fmt.Errorf("local engine: %w", err)
	}
	return nil
}
