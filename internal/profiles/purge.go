package profiles

import (
	"context"
	"fmt"
)

// TenantKeyPrefix returns the prefix of every partition key of the tenant's
// items, "TENANT#<tenant>#", or ErrInvalidInput unless tenant is a tenant ID
// ("ten_" and 26 base32 characters). Store.DeleteTenant deletes the items
// whose PK starts with it. The trailing '#' and the fixed ID length keep one
// tenant's prefix from matching another's keys; the check keeps a malformed
// ID (empty, truncated, or holding a '#') from naming a range wider than one
// tenant.
func TenantKeyPrefix(tenant string) (string, error) {
	prefix := tenantPrefix(tenant)
	if id, err := TenantOf(prefix + "x"); err != nil || id != tenant {
		return "", InvalidInput("%q is not a tenant ID", tenant)
	}
	return prefix, nil
}

// PurgeTenant deletes every profile item of an offboarded tenant (profiles,
// identifiers, events, merges, deduplication and suppression records, its
// identity configuration and erasures) and returns how many it deleted. It
// is for the offboarding job only: it reads the tenant's whole key range,
// or the whole table on DynamoDB (see Store.DeleteTenant). It is
// idempotent: run again (after a crash, or to catch a write that raced
// it), it deletes what is left. Stop the tenant's writes first (revoke its
// sources: Sources.RevokeAll). The raw zone is not touched: its objects go
// with the tenant's buckets or prefix when the tenant is offboarded with
// purge.
func (s *Service) PurgeTenant(ctx context.Context, tenant string) (int, error) {
	n, err := s.store.DeleteTenant(ctx, tenant)
	if err != nil {
		return n, fmt.Errorf("purge profile items of %s: %w", tenant, err)
	}
	return n, nil
}
