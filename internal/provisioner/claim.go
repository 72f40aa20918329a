package provisioner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Claims and leases.
//
// A worker claims a stack create (PlacementClaim, PoolClaim) before it asks
// the engine for the stack. The claim increments the record's
// ClaimVersion and carries a lease; while the engine call runs, the worker
// renews the lease every third of it, each renewal conditional on the
// claim version it holds. The poller takes a create for lost only once its
// lease has lapsed and the engine has no stack (observe), and sends the
// record back to pending; the next claim increments the version again.
//
// So a replica that dies holding a claim delays the stack by at most a
// lease after its last renewal (not by a fixed grace covering the longest
// call), and no step runs twice at once: a worker that was paused past its
// lease and resumes finds its renewal refused (ErrClaimLost), which
// cancels its engine call, and whatever reaches the engine anyway repeats
// the new holder's request under the same ClientRequestToken, which never
// makes a second stack.
//
// Leases are written and read by each replica's own clock (Config.Now), so
// replicas' clocks must agree to well within a lease, as NTP keeps them. A
// clock that is off only moves a takeover earlier or later: the fencing
// above, not the clock, keeps two workers from one step.

// renewFunc renews one claim's lease to until, as of now.
type renewFunc func(ctx context.Context, now, until time.Time) error

// underClaim runs call while renewing the claim that the caller has just
// taken, whose lease runs to leaseUntil. call's context is cancelled when
// the claim is lost: a renewal is refused, or renewals keep failing until
// the lease lapses. A call cut short that way returns errClaimLost
// (wrapped), which the caller treats as someone else's work now, not as a
// failure.
func (p *Provisioner) underClaim(ctx context.Context, leaseUntil time.Time, renew renewFunc, call func(ctx context.Context) error) error {
	work, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(p.lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-work.Done():
				return
			case <-tick.C:
			}
			now := p.now()
			err := renew(work, now, now.Add(p.lease))
			switch {
			case err == nil:
				leaseUntil = now.Add(p.lease)
			case errors.Is(err, ErrClaimLost):
				cancel(err)
				return
			case !now.Before(leaseUntil):
				cancel(fmt.Errorf("%w: lease lapsed while renewals failed: %w", ErrClaimLost, err))
				return
			default:
				p.log.WarnContext(ctx, "renew claim lease; retrying until it lapses", "lease_until", leaseUntil, "err", err)
			}
		}
	})
	err := call(work)
	close(stop)
	wg.Wait()
	if cause := context.Cause(work); errors.Is(cause, ErrClaimLost) && ctx.Err() == nil {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}

// leaseLive reports whether a lease running to until has not lapsed.
func (p *Provisioner) leaseLive(until time.Time) bool {
	return p.now().Before(until)
}
