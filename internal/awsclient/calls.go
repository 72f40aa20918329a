package awsclient

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/aws/smithy-go/middleware"
)

// CallCounter counts AWS API calls, keyed "Service.Operation" (the SDK's
// service ID, e.g. "CloudFormation.DescribeStacks", "Glue.CreateDatabase",
// "S3.DeleteObjects"). It counts each call once, however many times the
// retryer sends it, and separately every HTTP attempt. Benchmarks use it to
// count CloudFormation calls per polling round.
//
// The zero value is ready to use. A CallCounter is safe for concurrent use.
// Hook it into an adapter through Settings.Calls (its Config's AWS.Calls),
// or into any SDK client through AddToStack
// (config.WithAPIOptions or a client's APIOptions).
type CallCounter struct {
	mu       sync.Mutex
	calls    map[string]int64
	attempts map[string]int64
}

// Middleware IDs of the counter. The smithy-go version in use does not
// reject a duplicate ID in the Initialize or Finalize step, so a counter
// added twice to one client counts twice: add it once.
const (
	callMiddlewareID    = "cairn.CallCounter"
	attemptMiddlewareID = "cairn.AttemptCounter"
)

// AddToStack adds the counter's middleware to an SDK operation stack: one in
// the Initialize step, which runs once per call, and one at the end of the
// Finalize step, which runs inside the retry loop, once per HTTP attempt
// (after signing, just before the request is sent). It has the signature of
// an APIOptions entry.
func (c *CallCounter) AddToStack(stack *middleware.Stack) error {
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc(callMiddlewareID,
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.add(&c.calls, operationKey(ctx))
			return next.HandleInitialize(ctx, in)
		}), middleware.Before); err != nil {
		return fmt.Errorf("add call counter: %w", err)
	}
	if err := stack.Finalize.Add(middleware.FinalizeMiddlewareFunc(attemptMiddlewareID,
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.add(&c.attempts, operationKey(ctx))
			return next.HandleFinalize(ctx, in)
		}), middleware.After); err != nil {
		return fmt.Errorf("add attempt counter: %w", err)
	}
	return nil
}

func operationKey(ctx context.Context) string {
	return middleware.GetServiceID(ctx) + "." + middleware.GetOperationName(ctx)
}

func (c *CallCounter) add(m *map[string]int64, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *m == nil {
		*m = make(map[string]int64)
	}
	(*m)[key]++
}

// Total returns how many calls of op ("Service.Operation") were made since
// the last Reset, counting each call once whatever its retries.
func (c *CallCounter) Total(op string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// Attempts returns how many HTTP attempts of op ("Service.Operation") were
// sent since the last Reset, retries included.
func (c *CallCounter) Attempts(op string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts[op]
}

// Snapshot returns a copy of the call counts, keyed "Service.Operation".
func (c *CallCounter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.calls))
	maps.Copy(out, c.calls)
	return out
}

// AttemptsSnapshot returns a copy of the attempt counts, keyed
// "Service.Operation".
func (c *CallCounter) AttemptsSnapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.attempts))
	maps.Copy(out, c.attempts)
	return out
}

// Reset sets every count back to zero.
func (c *CallCounter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = nil
	c.attempts = nil
}
