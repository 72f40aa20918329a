package provisioner_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// pagedEngine answers Stacks with n stacks; its other methods are never
// called.
type pagedEngine struct {
	provisioner.Engine
	n atomic.Int64
}

func (e *pagedEngine) Stacks(context.Context, string) (map[string]provisioner.Stack, error) {
	m := map[string]provisioner.Stack{}
	for i := range e.n.Load() {
		m[fmt.Sprint(i)] = provisioner.Stack{}
	}
	return m, nil
}

func (e *pagedEngine) DetectDrift(context.Context, string, string) (string, error) { return "d", nil }

type grants struct {
	mu    sync.Mutex
	times []time.Time
}

func (g *grants) record(_, _ string, at time.Time) {
	g.mu.Lock()
	g.times = append(g.times, at)
	g.mu.Unlock()
}

// span is the time between the first and the last grant.
func (g *grants) span() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.times[len(g.times)-1].Sub(g.times[0])
}

// slack absorbs the limiter's rounding of token times to whole
// nanoseconds, which can grant the last call a few nanoseconds early.
const slack = 5 * time.Millisecond

// TestThrottleShares: replicas divide the Region's budget. Two shares of
// 200 calls a second in bursts of 20 let 60 calls through no faster than
// (60 - 10) / 100 s.
func TestThrottleShares(t *testing.T) {
	var shares atomic.Int64
	shares.Store(2)
	g := &grants{}
	e := provisioner.Throttle(&pagedEngine{}, provisioner.ThrottleConfig{Rate: 200, Burst: 20,
		Shares: func() int { return int(shares.Load()) }, OnCall: g.record})
	for range 60 {
		if _, err := e.DetectDrift(context.Background(), "eu-west-1", "s"); err != nil {
			t.Fatal(err)
		}
	}
	if min := 500 * time.Millisecond; g.span() < min-slack {
		t.Errorf("60 calls at half of 200/s (burst 10) granted within %s, want at least %s", g.span(), min)
	}
}

// TestThrottleStacksPages: DescribeStacks takes a token a page. Once the
// throttle has seen a Region take three pages, the next listing waits for
// three tokens before it starts, so a full bucket of three lets it
// through and the listing after waits three tokens' time.
func TestThrottleStacksPages(t *testing.T) {
	eng := &pagedEngine{}
	eng.n.Store(250) // three pages
	g := &grants{}
	e := provisioner.Throttle(eng, provisioner.ThrottleConfig{Rate: 10, Burst: 3, OnCall: g.record})
	ctx := context.Background()
	for range 3 {
		if _, err := e.Stacks(ctx, "eu-west-1"); err != nil {
			t.Fatal(err)
		}
	}
	// First listing: one token taken before (the throttle knew of no
	// pages), two on credit; then three before each of the next two.
	if len(g.times) != 9 {
		t.Fatalf("%d calls recorded for three listings of three pages, want 9", len(g.times))
	}
	// 9 tokens from a bucket of 3 at 10/s: at least 0.6 s.
	if min := 600 * time.Millisecond; g.span() < min-slack {
		t.Errorf("three listings of three pages granted within %s, want at least %s", g.span(), min)
	}
	// Grants are recorded in order and never before the previous one.
	for i := 1; i < len(g.times); i++ {
		if g.times[i].Before(g.times[i-1]) {
			t.Errorf("grant %d at %s, before grant %d at %s", i, g.times[i], i-1, g.times[i-1])
		}
	}
}
