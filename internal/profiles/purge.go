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
	prefix := KeyPrefix(tenant)
	if id, err := TenantOf(prefix + "x"); err != nil || id != tenant {
		return "", InvalidInput("%q is not a tenant ID", tenant)
	}
	return prefix, nil
}

// ErrPurgeUnfinished is in the error of a Store.DeleteTenant, and of
// PurgeTenant, whose context ended after it made progress that the next
// call keeps: items deleted, or (DynamoDB) its position in the table
// saved. A call that ends without any progress returns only its
// context's error.
var ErrPurgeUnfinished = errors.New("profile purge unfinished")

// PurgeTenant deletes every profile item of an offboarded tenant (profiles,
// identifiers, events, merges, deduplication and suppression records, its
// identity configuration, segments and erasures) and returns how many it
// deleted. It is for the offboarding job only: it reads the tenant's whole
// key range, or the whole table on DynamoDB (see Store.DeleteTenant). It
// is idempotent: run again (after a crash, or to catch a write that raced
// it), it deletes what is left. Stop the tenant's writes first (revoke its
// sources: Sources.RevokeAll). The raw zone is not touched: its objects go
// with the tenant's buckets or prefix when the tenant is offboarded with
// purge.
//
// It works for at most budget (no limit if budget <= 0, but ctx's). When
// that is up it returns what it deleted and, if it made progress, an
// error that is ErrPurgeUnfinished: a large pool table takes more than
// one job run, and the store resumes where it stopped. A budget that ends
// before any progress is an error like any other (context.DeadlineExceeded),
// so that a store that cannot move forward fails the job rather than
// running it for ever.
func (s *Service) PurgeTenant(ctx context.Context, tenant string, budget time.Duration) (int, error) {
	work := ctx
	if budget > 0 {
		var cancel context.CancelFunc
		work, cancel = context.WithTimeout(ctx, budget)
		defer cancel()
	}
	n, err := s.store.DeleteTenant(work, tenant)
	if err != nil {
		return n, fmt.Errorf("purge profile items of %s (%d deleted in this call): %w", tenant, n, err)
	}
	return n, nil
}
