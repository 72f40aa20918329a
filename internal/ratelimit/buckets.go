// Package ratelimit enforces rates and quotas on Cairn's API: token
// buckets (golang.org/x/time/rate) kept per key (a source, a tenant, a
// token, a client address) in bounded memory, the fields that tell clients
// about them (RateLimit-Policy and RateLimit), the client address of a
// request behind trusted proxies, and the monthly quota of events a tenant
// may send.
//
// # Across replicas
//
// Each replica keeps its own buckets and takes an equal share of every
// limit: 1/N of its rate and burst when N replicas hold a live lease in
// the control-plane database (package replicas counts them at every
// renewal of the lease). The replicas' shares add up to the limit, so
// together they never let more through, whatever the traffic, and the
// request path costs no database round trip. The price is that a client
// whose requests all reach one replica gets 1/N of its limit; a load
// balancer that spreads requests (an ALB does, per request) gives it the
// whole. A replica that starts is counted by the others within a third of
// the lease (5 s by default), one that stops once its lease lapses (15 s),
// or at once when it leaves cleanly: meanwhile the others use the old N,
// which lets through at most (N+1)/N of the limit for those seconds, or
// holds them to (N-1)/N.
//
// # Buckets in debt
//
// A request that carries many events is admitted when its buckets are not
// in debt (they hold a token) and is then charged every event it carried,
// which may take the bucket below zero: the next requests wait until the
// debt is paid. Over any interval, then, a key gets at most its rate, its
// burst and the requests in flight at once; a batch larger than the burst
// is accepted rather than refused forever. A debt is capped at a minute of
// the rate.
//
// # Memory
//
// Each Buckets holds at most Size keys: a full bucket is the same as a new
// one, so forgetting the least recently used key loses nothing unless
// Size keys were used more recently than it, which then costs that key
// its debt. Keys of different kinds live in different Buckets, so that
// addresses a flood makes up never push tenants' buckets out.
//
// Everything here is safe for concurrent use.
package ratelimit

import (
	"math"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Limit is a token bucket's terms: Rate tokens a second, at most Burst
// held; across every replica.
type Limit struct {
	Rate  float64
	Burst int
}

// PerSecond is the limit of a quota of q units a second: the rate q and a
// burst of one second's quota.
func PerSecond(q int64) Limit { return Limit{Rate: float64(q), Burst: int(min(q, math.MaxInt32))} }

// DefaultSize is the most keys a Buckets holds unless told otherwise.
const DefaultSize = 100_000

// maxDebt is the longest debt a charge leaves a bucket in.
const maxDebt = time.Minute

// Buckets is a bounded set of token buckets, one per key.
type Buckets struct {
	cache  *lru.Cache[string, *rate.Limiter]
	shares func() int
}

// NewBuckets holds at most size keys (DefaultSize when size <= 0).
// shares returns how many replicas share each limit (at least 1; nil
// means 1).
func NewBuckets(size int, shares func() int) *Buckets {
	if size <= 0 {
		size = DefaultSize
	}
	if shares == nil {
		shares = func() int { return 1 }
	}
	c, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &Buckets{cache: c, shares: shares}
}

// State is what a bucket holds after an operation, told as the whole
// limit's: this replica's tokens times the replicas sharing it.
type State struct {
	// OK is whether the operation was allowed.
	OK bool
	// Remaining is how many units are left now, at least 0.
	Remaining int64
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter is, when not OK, how long until it would be.
	RetryAfter time.Duration
}

// share is this replica's part of l.
func (b *Buckets) share(l Limit) (Limit, int) {
	n := max(b.shares(), 1)
	return Limit{Rate: l.Rate / float64(n), Burst: max(1, int(math.Ceil(float64(l.Burst)/float64(n))))}, n
}

// bucket returns key's bucket with this replica's share of l.
func (b *Buckets) bucket(key string, l Limit, now time.Time) (*rate.Limiter, Limit, int) {
	mine, n := b.share(l)
	lim, ok := b.cache.Get(key)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(mine.Rate), mine.Burst)
		if prev, found, _ := b.cache.PeekOrAdd(key, lim); found {
			lim = prev
		} else {
			return lim, mine, n
		}
	}
	// A plan changed, or the number of replicas: the bucket keeps its
	// tokens under the new terms.
	if lim.Limit() != rate.Limit(mine.Rate) {
		lim.SetLimitAt(now, rate.Limit(mine.Rate))
	}
	if lim.Burst() != mine.Burst {
		lim.SetBurstAt(now, mine.Burst)
	}
	return lim, mine, n
}

// Ready reports whether key's bucket holds a token (it is not in debt),
// taking nothing.
func (b *Buckets) Ready(key string, l Limit, now time.Time) State {
	lim, mine, n := b.bucket(key, l, now)
	return state(lim.TokensAt(now), 1, mine, n, l)
}

// Take takes n tokens (at most the burst) if the bucket holds them.
func (b *Buckets) Take(key string, l Limit, n int, now time.Time) State {
	lim, mine, shares := b.bucket(key, l, now)
	n = min(max(n, 1), mine.Burst)
	if lim.AllowN(now, n) {
		st := state(lim.TokensAt(now), 0, mine, shares, l)
		st.OK = true
		return st
	}
	return state(lim.TokensAt(now), float64(n), mine, shares, l)
}

// Charge takes n tokens whether or not the bucket holds them, leaving it
// in debt (at most maxDebt of its rate) when it does not.
func (b *Buckets) Charge(key string, l Limit, n int, now time.Time) State {
	lim, mine, shares := b.bucket(key, l, now)
	if n > 0 {
		// Reservations of future tokens are how x/time/rate keeps a debt;
		// each may take at most the burst.
		n = int(min(float64(n), mine.Rate*maxDebt.Seconds()+float64(mine.Burst)))
		for n > 0 {
			chunk := min(n, mine.Burst)
			lim.ReserveN(now, chunk)
			n -= chunk
		}
	}
	st := state(lim.TokensAt(now), 0, mine, shares, l)
	st.OK = true
	return st
}

// Peek returns key's bucket as it is, taking nothing.
func (b *Buckets) Peek(key string, l Limit, now time.Time) State {
	lim, mine, n := b.bucket(key, l, now)
	st := state(lim.TokensAt(now), 0, mine, n, l)
	st.OK = true
	return st
}

// Len returns how many keys b holds.
func (b *Buckets) Len() int { return b.cache.Len() }

// state describes a bucket of this replica's share mine holding tokens:
// OK when it holds need, else how long until it does.
func state(tokens, need float64, mine Limit, shares int, whole Limit) State {
	st := State{OK: tokens >= need}
	st.Remaining = min(int64(math.Floor(max(tokens, 0)*float64(shares))), int64(whole.Burst))
	if mine.Rate > 0 {
		if tokens < float64(mine.Burst) {
			st.Reset = seconds((float64(mine.Burst) - tokens) / mine.Rate)
		}
		if !st.OK {
			st.RetryAfter = seconds((need - tokens) / mine.Rate)
		}
	}
	return st
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
