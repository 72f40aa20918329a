package profiles

import (
	"context"
	"errors"
	"fmt"
	"time"
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

// ErrPurgeUnfinished is returned by PurgeTenant when its time is up before
// the tenant's items are all deleted: the store kept its progress, and the
// next call goes on from there.
var ErrPurgeUnfinished = errors.New("profile purge unfinished")

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
//
// It works for at most budget (no limit if budget <= 0, but ctx's), then
// returns what it deleted and ErrPurgeUnfinished: a large pool table
// takes more than one job run, and the store resumes where it stopped.
func (s *Service) PurgeTenant(ctx context.Context, tenant string, budget time.Duration) (int, error) {
	work := ctx
	if budget > 0 {
		var cancel context.CancelFunc
		work, cancel = context.WithTimeout(ctx, budget)
		defer cancel()
	}
	n, err := s.store.DeleteTenant(work, tenant)
	if err != nil && ctx.Err() == nil && errors.Is(work.Err(), context.DeadlineExceeded) {
		return n, fmt.Errorf("purge profile items of %s: %w after %s (%d items deleted in this run)", tenant, ErrPurgeUnfinished, budget, n)
	}
	if err != nil {
		return n, fmt.Errorf("purge profile items of %s: %w", tenant, err)
	}
	return n, nil
}
