package webhooks

import (
	"math/rand/v2"
	"time"
)

// Schedule is the delay before each attempt of a delivery, the first
// immediate: after n failed attempts the next waits Schedule[n], with
// jitter, and after len(Schedule) attempts (about 28 hours in all) the
// delivery has failed for good. It is Svix's published schedule, which
// receivers of Standard Webhooks already plan their outages around.
var Schedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// jitter spreads retries by up to this fraction either way, so endpoints
// that failed together are not retried in lockstep.
const jitter = 0.2

// NextAttempt returns when attempt number attempts+1 should run, after
// attempts failed ones (attempts >= 1; less counts as 0, the immediate
// first attempt): now plus Schedule[attempts] with ±20% jitter drawn from
// rnd (returning [0,1); nil means math/rand/v2), but never sooner than
// retryAfter, a receiver's Retry-After, itself capped at 24h. ok is false
// when the schedule is exhausted: the delivery has failed for good.
func NextAttempt(attempts int, now time.Time, retryAfter time.Duration, rnd func() float64) (time.Time, bool) {
	attempts = max(attempts, 0)
	if attempts >= len(Schedule) {
		return time.Time{}, false
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	f := min(max(rnd(), 0), 1)
	d := time.Duration(float64(Schedule[attempts]) * (1 + jitter*(2*f-1)))
	d = max(d, min(retryAfter, maxRetryAfter))
	return now.Add(d), true
}
