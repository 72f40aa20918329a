package provisioner

import (
	"context"
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
	// OnCall, if set, is told of every CloudFormation call as it is let
	// through, with the Region and the Engine method making it.
	OnCall func(region, method string, at time.Time)
}

// ThrottledEngine is an Engine whose CloudFormation calls (stacks, their
// events, change sets and drift detection) wait for a token of their
// Region's bucket; the Glue and S3 methods pass straight through. One
// ThrottledEngine shared by every user in a process (the poller, rollouts,
// drift detection) keeps the process within the budget; several replicas
// each keep their own, so set Rate to the Region's budget divided by the
// replicas. It is safe for concurrent use.
type ThrottledEngine struct {
	Engine
	rate   rate.Limit
	burst  int
	onCall func(region, method string, at time.Time)

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
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
	return &ThrottledEngine{Engine: e, rate: rate.Limit(cfg.Rate), burst: cfg.Burst, onCall: cfg.OnCall, buckets: map[string]*rate.Limiter{}}
}

func (t *ThrottledEngine) bucket(region string) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.buckets[region]
	if !ok {
		b = rate.NewLimiter(t.rate, t.burst)
		t.buckets[region] = b
	}
	return b
}

// wait takes a token of region's bucket, or returns ctx's error.
func (t *ThrottledEngine) wait(ctx context.Context, region, method string) error {
	if err := t.bucket(region).Wait(ctx); err != nil {
		return err
	}
	if t.onCall != nil {
		t.onCall(region, method, time.Now())
	}
	return nil
}

// describeStacksPage is how many stacks one DescribeStacks answer holds.
const describeStacksPage = 100

// Stacks implements Engine. It waits for one token for the first page of
// DescribeStacks and, once it knows how many pages the Region took, takes
// one more per further page without waiting: the calls after it wait
// that much longer, so the Region stays within its rate.
func (t *ThrottledEngine) Stacks(ctx context.Context, region string) (map[string]Stack, error) {
	if err := t.wait(ctx, region, "Stacks"); err != nil {
		return nil, err
	}
	stacks, err := t.Engine.Stacks(ctx, region)
	if pages := (len(stacks) + describeStacksPage - 1) / describeStacksPage; pages > 1 {
		now, b := time.Now(), t.bucket(region)
		for range pages - 1 {
			b.ReserveN(now, 1) // one at a time: a reservation is at most a burst
			if t.onCall != nil {
				t.onCall(region, "Stacks", now)
			}
		}
	}
	return stacks, err
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
