// Package periodic keeps River's periodic jobs from piling up when they
// come round faster than a second.
//
// A periodic job of an interval of a second or more is unique per period
// (River's UniqueOpts.ByPeriod), so at most one is inserted a period. River
// offers no uniqueness below a second, the intervals tests run with, and
// none by state that a crashed process's "running" round would not block.
// On a busy machine a round can then take longer than its interval, and
// rounds queue up faster than they run, delaying every other job behind
// them. A Gate holds the next round back while the one its process
// inserted has not started yet.
package periodic

import (
	"sync"
	"time"
)

// Gate lets one round of a periodic job wait at a time. Its zero value is
// ready to use; it is safe for concurrent use.
type Gate struct {
	mu      sync.Mutex
	pending time.Time // when the round inserted last was, until it starts
}

// Due reports whether a round is to be inserted at now, and if so records
// it as pending. Below a second it is not while the round inserted last
// has yet to start, unless that was ten intervals ago or more: River's
// leader inserts the rounds, and another process may work them, so a
// round it never sees start must not stop the next for good. From a second
// up it always is (uniqueness per period takes over).
func (g *Gate) Due(now time.Time, interval time.Duration) bool {
	if interval >= time.Second {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.pending.IsZero() && now.Sub(g.pending) < 10*interval {
		return false
	}
	g.pending = now
	return true
}

// Started records that a round started: the next one may be inserted.
func (g *Gate) Started() {
	g.mu.Lock()
	g.pending = time.Time{}
	g.mu.Unlock()
}
