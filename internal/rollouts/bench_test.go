package rollouts_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/enginetest"
	"github.com/cairn-cdp/cairn/internal/rollouts"
	"github.com/cairn-cdp/cairn/templates"
)

// callLog records the CloudFormation-shaped calls the throttle lets
// through.
type callLog struct {
	mu    sync.Mutex
	times []time.Time
}

func (c *callLog) record(_, _ string, at time.Time) {
	c.mu.Lock()
	c.times = append(c.times, at)
	c.mu.Unlock()
}

// maxPerMinute is the most calls in any 60-second window.
func (c *callLog) maxPerMinute() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	most, j := 0, 0
	for i, t := range c.times {
		for t.Sub(c.times[j]) >= time.Minute {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// BenchmarkRollout rolls a new dedicated template version out to
// CAIRN_BENCH_ROLLOUT_STACKS (default 1,000; 10 with -short, as make
// test's bench-smoke runs it) dedicated stacks on the local
// engine, in the default waves (canary, 5%, 25%, 100%) without bake time,
// its steps run back to back: "throttled" through provisioner.Throttle at
// CloudFormation's budget (DefaultCallRate a second per Region), the
// baseline "unthrottled" on the bare engine. It reports the total time,
// the CloudFormation-shaped calls and the most calls in any minute, which
// for the throttled run must stay within the budget (60 × rate + burst).
//
//	scripts/testenv.sh run go test -run '^$' -bench BenchmarkRollout -benchtime 1x -timeout 60m ./internal/rollouts/
func BenchmarkRollout(b *testing.B) {
	n := 1000
	if testing.Short() {
		n = 10
	}
	if v := os.Getenv("CAIRN_BENCH_ROLLOUT_STACKS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("CAIRN_BENCH_ROLLOUT_STACKS=%q", v)
		}
	}
	for _, throttled := range []bool{false, true} {
		name := "unthrottled"
		if throttled {
			name = "throttled"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				env := newFleet(b, n, enginetest.WithMarker(templates.Dedicated(), "Bench"))
				log := &callLog{}
				var engine provisioner.Engine = &countingEngine{Engine: env.engine, log: log}
				if throttled {
					engine = provisioner.Throttle(env.engine, provisioner.ThrottleConfig{OnCall: log.record})
				}
				ro := env.create(rollouts.CreateParams{})
				r := env.runner(engine)
				b.StartTimer()
				start := time.Now()
				steps := 0
				for ; ; steps++ {
					again, err := r.Step(context.Background(), ro.ID)
					if err != nil {
						b.Fatal(err)
					}
					if !again {
						break
					}
				}
				elapsed := time.Since(start)
				b.StopTimer()
				got, _, err := env.svc.Get(context.Background(), ro.ID)
				if err != nil || got.State != rollouts.StateCompleted || got.Counts[rollouts.TargetSucceeded] != n {
					b.Fatalf("rollout: %s %v, %v", got.State, got.Counts, err)
				}
				perMinute := log.maxPerMinute()
				budget := 60*provisioner.DefaultCallRate + provisioner.DefaultCallBurst
				if throttled && perMinute > budget {
					b.Fatalf("%d CloudFormation calls in one minute, over the budget of %d", perMinute, budget)
				}
				b.ReportMetric(elapsed.Seconds(), "s/rollout")
				b.ReportMetric(float64(len(log.times)), "calls")
				b.ReportMetric(float64(perMinute), "max-calls/min")
				b.ReportMetric(float64(steps), "steps")
				b.Logf("%s: %d stacks in %s, %d calls (%.2f a stack), at most %d in a minute, %d steps",
					name, n, elapsed.Round(time.Millisecond), len(log.times), float64(len(log.times))/float64(n), perMinute, steps)
			}
		})
	}
}

// countingEngine logs the CloudFormation-shaped calls of an unthrottled
// engine, as the throttle's OnCall does, a page of DescribeStacks a call.
type countingEngine struct {
	provisioner.Engine
	log *callLog
}

func (c *countingEngine) Stacks(ctx context.Context, region string) (map[string]provisioner.Stack, error) {
	s, err := c.Engine.Stacks(ctx, region)
	for range max(1, (len(s)+99)/100) {
		c.log.record(region, "Stacks", time.Now())
	}
	return s, err
}

func (c *countingEngine) CreateChangeSet(ctx context.Context, in provisioner.ChangeSetInput) error {
	c.log.record(in.Region, "CreateChangeSet", time.Now())
	return c.Engine.CreateChangeSet(ctx, in)
}

func (c *countingEngine) DescribeChangeSet(ctx context.Context, region, stack, name string) (provisioner.ChangeSet, error) {
	c.log.record(region, "DescribeChangeSet", time.Now())
	return c.Engine.DescribeChangeSet(ctx, region, stack, name)
}

func (c *countingEngine) ExecuteChangeSet(ctx context.Context, region, stack, name, token string) error {
	c.log.record(region, "ExecuteChangeSet", time.Now())
	return c.Engine.ExecuteChangeSet(ctx, region, stack, name, token)
}
