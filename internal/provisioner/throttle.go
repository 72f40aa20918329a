package provisioner

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// CloudFormation's API budget.
//
// AWS publishes CloudFormation's resource quotas but not the request rate
// of each API action: requests are throttled per account and Region with
// a token bucket whose size AWS leaves unstated, and the SAM CLI's
// maintainers report DescribeStacks capped at 5 requests a second, a cap
// that cannot be raised. Cairn therefore stays under that figure for
// every CloudFormation action together: DefaultCallRate a second per
// Region, in bursts of at most DefaultCallBurst, which leaves room for
// whatever else the account runs (the console, CI pipelines).
const (
	DefaultCallRate  = 4
	DefaultCallBurst = 4
)

// ThrottleConfig configures Throttle.
type ThrottleConfig struct {
	// Rate is the CloudFormation calls allowed a second in each Region,
	// Burst the most made at once; DefaultCallRate and DefaultCallBurst
	// when zero.
	Rate  float64
	Burst int
	// Shares, if set, counts the replicas sharing each Region's budget
	// (this one included): each takes that share of Rate and Burst, at
	// least one call at once, and follows the count as it changes.
	Shares func() int
	// OnCall, if set, is told of every CloudFormation call as it is let
	// through, with the Region, the Engine method making it and the
	// instant its token was granted.
	OnCall func(region, method string, at time.Time)
}

// ThrottledEngine is an Engine whose CloudFormation calls (stacks, their
// events, change sets and drift detection) wait for a token of their
// Region's bucket; the Glue and S3 methods pass straight through. One
// ThrottledEngine shared by every user in a process (the poller, rollouts,
// drift detection) keeps the process within the budget; replicas divide
// it between them (ThrottleConfig.Shares). It is safe for concurrent use.
type ThrottledEngine struct {
	Engine
	rate   float64
	burst  int
	shares func() int
	onCall func(region, method string, at time.Time)

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	// pages is how many pages DescribeStacks last took in each Region:
	// the next call takes that many tokens before it starts.
	pages map[string]int
}

var _ Engine = (*ThrottledEngine)(nil)

// Throttle wraps e in a per-Region token bucket.
func Throttle(e Engine, cfg ThrottleConfig) *ThrottledEngine {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultCallRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultCallBurst
	}
	return &ThrottledEngine{Engine: e, rate: cfg.Rate, burst: cfg.Burst, shares: cfg.Shares, onCall: cfg.OnCall,
		buckets: map[string]*rate.Limiter{}, pages: map[string]int{}}
}

// bucket returns region's bucket, set to this replica's share of the
// budget as of now.
func (t *ThrottledEngine) bucket(region string, now time.Time) *rate.Limiter {
	r, burst := t.rate, t.burst
	if t.shares != nil {
		if n := t.shares(); n > 1 {
			r, burst = r/float64(n), max(burst/n, 1)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.buckets[region]
	if !ok {
		b = rate.NewLimiter(rate.Limit(r), burst)
		t.buckets[region] = b
	} else if b.Limit() != rate.Limit(r) || b.Burst() != burst {
		b.SetLimitAt(now, rate.Limit(r))
		b.SetBurstAt(now, burst)
	}
	return b
}

// wait takes a token of region's bucket, or returns ctx's error.
func (t *ThrottledEngine) wait(ctx context.Context, region, method string) error {
	now := time.Now()
	r := t.bucket(region, now).ReserveN(now, 1)
	if !r.OK() {
		return errors.New("cloudformation throttle: no budget")
	}
	at := now.Add(r.DelayFrom(now))
	if d := at.Sub(now); d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			r.CancelAt(time.Now())
			return ctx.Err()
		}
	}
	if t.onCall != nil {
		t.onCall(region, method, at)
	}
	return nil
}

// describeStacksPage is how many stacks one DescribeStacks answer holds.
const describeStacksPage = 100

// Stacks implements Engine. DescribeStacks pages through the Region's
// stacks, a call a page, so it first waits for a token for each page the
// Region took last time. Should the Region have grown past them, it
// takes a token for each further page afterwards without waiting: the
// calls after it wait that much longer, so the Region stays within its
// rate over time.
func (t *ThrottledEngine) Stacks(ctx context.Context, region string) (map[string]Stack, error) {
	t.mu.Lock()
	before := max(t.pages[region], 1)
	t.mu.Unlock()
	for range before {
		if err := t.wait(ctx, region, "Stacks"); err != nil {
			return nil, err
		}
	}
	stacks, err := t.Engine.Stacks(ctx, region)
	if err != nil {
		return stacks, err
	}
	pages := max((len(stacks)+describeStacksPage-1)/describeStacksPage, 1)
	t.mu.Lock()
	t.pages[region] = pages
	t.mu.Unlock()
	if pages > before {
		now := time.Now()
		b := t.bucket(region, now)
		for range pages - before {
			b.ReserveN(now, 1) // one at a time: a reservation is at most a burst
			if t.onCall != nil {
				t.onCall(region, "Stacks", now) // made now, on credit
			}
		}
	}
	return stacks, nil
}

// CreateStack implements Engine.
func (t *ThrottledEngine) CreateStack(ctx context.Context, in CreateStackInput) error {
	if err := t.wait(ctx, in.Region, "CreateStack"); err != nil {
		return err
	}
	return t.Engine.CreateStack(ctx, in)
}

// DeleteStack implements Engine.
func (t *ThrottledEngine) DeleteStack(ctx context.Context, region, name, token string) error {
	if err := t.wait(ctx, region, "DeleteStack"); err != nil {
		return err
	}
	return t.Engine.DeleteStack(ctx, region, name, token)
}

// StackEvents implements Engine.
func (t *ThrottledEngine) StackEvents(ctx context.Context, region, name string) ([]StackEvent, error) {
	if err := t.wait(ctx, region, "StackEvents"); err != nil {
		return nil, err
	}
	return t.Engine.StackEvents(ctx, region, name)
}

// CreateChangeSet implements Engine.
func (t *ThrottledEngine) CreateChangeSet(ctx context.Context, in ChangeSetInput) error {
	if err := t.wait(ctx, in.Region, "CreateChangeSet"); err != nil {
		return err
	}
	return t.Engine.CreateChangeSet(ctx, in)
}

// DescribeChangeSet implements Engine.
func (t *ThrottledEngine) DescribeChangeSet(ctx context.Context, region, stack, name string) (ChangeSet, error) {
	if err := t.wait(ctx, region, "DescribeChangeSet"); err != nil {
		return ChangeSet{}, err
	}
	return t.Engine.DescribeChangeSet(ctx, region, stack, name)
}

// ExecuteChangeSet implements Engine.
func (t *ThrottledEngine) ExecuteChangeSet(ctx context.Context, region, stack, name, token string) error {
	if err := t.wait(ctx, region, "ExecuteChangeSet"); err != nil {
		return err
	}
	return t.Engine.ExecuteChangeSet(ctx, region, stack, name, token)
}

// DeleteChangeSet implements Engine.
func (t *ThrottledEngine) DeleteChangeSet(ctx context.Context, region, stack, name string) error {
	if err := t.wait(ctx, region, "DeleteChangeSet"); err != nil {
		return err
	}
	return t.Engine.DeleteChangeSet(ctx, region, stack, name)
}

// DetectDrift implements Engine.
func (t *ThrottledEngine) DetectDrift(ctx context.Context, region, stack string) (string, error) {
	if err := t.wait(ctx, region, "DetectDrift"); err != nil {
		return "", err
	}
	return t.Engine.DetectDrift(ctx, region, stack)
}

// DriftDetection implements Engine.
func (t *ThrottledEngine) DriftDetection(ctx context.Context, region, id string) (DriftDetection, error) {
	if err := t.wait(ctx, region, "DriftDetection"); err != nil {
		return DriftDetection{}, err
	}
	return t.Engine.DriftDetection(ctx, region, id)
}

// ResourceDrifts implements Engine.
func (t *ThrottledEngine) ResourceDrifts(ctx context.Context, region, stack string) ([]ResourceDrift, error) {
	if err := t.wait(ctx, region, "ResourceDrifts"); err != nil {
		return nil, err
	}
	return t.Engine.ResourceDrifts(ctx, region, stack)
}
