// Package awsclient builds the AWS SDK clients of Cairn's AWS adapters (the
// provisioner's cfn, the grants broker's lakeformation, the profiles'
// rawzone and dynamostore) one way, so that they all retry, resolve
// endpoints and count calls alike.
//
// An adapter takes Settings as its Config's AWS field (the server builds
// one Settings and hands it to every adapter), resolves them once with
// Settings.Load, and makes one client per Region per service, on first use,
// through a Regional cache, made from Base.AWS, which carries the HTTP
// client, retryer and API options every client shares. Its option function
// for a service's client sets only the Region and Base.BaseEndpoint (which
// must see the endpoint the SDK resolved for that service); anything
// service-specific (extra retryable codes, S3 path-style addressing) stays
// in the adapter.
//
// Every client made that way:
//
//   - resolves its endpoint the SDK's standard way (AWS_ENDPOINT_URL,
//     AWS_ENDPOINT_URL_<SERVICE>, shared config), unless
//     Settings.EndpointURL is set, which then wins for every service;
//   - retries with the SDK standard retryer (exponential backoff with full
//     jitter, capped at MaxBackoff, at most MaxAttempts attempts): throttling
//     codes, 5xx answers and every transport error. Each client has its own
//     retry token bucket, so a Region or service in trouble does not starve
//     the others of retries;
//   - counts its calls and HTTP attempts in Settings.Calls when set.
//
// # Concurrency
//
// A Base, a Regional and a CallCounter are safe for concurrent use.
package awsclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/middleware"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"
)

// Defaults of Settings.
const (
	// DefaultMaxAttempts is the default number of attempts per API call,
	// the first one included.
	DefaultMaxAttempts = 8
	// DefaultMaxBackoff is the default cap of the delay between two
	// attempts.
	DefaultMaxBackoff = 20 * time.Second
)

// ErrNoRegion is returned by Regional.Client for an empty Region: no client
// ever falls back to a default Region, so that a tenant's data is never
// touched anywhere but where the caller said.
var ErrNoRegion = errors.New("region is required")

// Settings are the client settings every AWS adapter's Config holds. The
// zero value is valid: it loads the SDK's default configuration and uses
// the defaults above.
type Settings struct {
	// AWS is the SDK configuration to start from (credentials, ...). Nil
	// means config.LoadDefaultConfig, which reads the environment
	// (AWS_REGION, AWS_ENDPOINT_URL, credentials, ...) and the shared
	// config files. Its Region is never used: every client is made for a
	// Region.
	AWS *aws.Config
	// EndpointURL, if set, is the base endpoint of every client, overriding
	// the SDK's own endpoint resolution (e.g. "http://127.0.0.1:5000" for an
	// emulator, or a fault-injecting proxy in front of one).
	EndpointURL string
	// HTTPClient, if set, replaces the SDK's HTTP client.
	HTTPClient aws.HTTPClient
	// MaxAttempts is the most attempts made per API call, the first one
	// included; default DefaultMaxAttempts. It takes precedence over
	// AWS_MAX_ATTEMPTS and the shared config's max_attempts.
	MaxAttempts int
	// MaxBackoff caps the delay between attempts; default DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Calls, if set, counts every API call and every HTTP attempt.
	Calls *CallCounter
}

// Base is Settings resolved: the SDK configuration to make clients from and
// the settings with their defaults in place. Make it with Settings.Load.
type Base struct {
	// AWS is a copy of Settings.AWS, or the SDK's default configuration,
	// with HTTPClient (when set), Retryer (RetryMaxAttempts 0) and
	// APIOptions set for every client made from it.
	AWS aws.Config
	// The rest are Settings' fields, MaxAttempts and MaxBackoff never zero.
	EndpointURL string
	HTTPClient  aws.HTTPClient
	MaxAttempts int
	MaxBackoff  time.Duration
	Calls       *CallCounter
}

// Load validates s, fills in its defaults and returns the Base to make
// clients from. It loads the SDK's default configuration when s.AWS is nil,
// and fails if that fails or if s holds a negative MaxAttempts or
// MaxBackoff. Callers prefix the error with their package's name.
func (s Settings) Load(ctx context.Context) (*Base, error) {
	if s.MaxAttempts < 0 {
		return nil, fmt.Errorf("MaxAttempts must not be negative, got %d", s.MaxAttempts)
	}
	if s.MaxBackoff < 0 {
		return nil, fmt.Errorf("MaxBackoff must not be negative, got %s", s.MaxBackoff)
	}
	b := &Base{
		EndpointURL: s.EndpointURL,
		HTTPClient:  s.HTTPClient,
		MaxAttempts: s.MaxAttempts,
		MaxBackoff:  s.MaxBackoff,
		Calls:       s.Calls,
	}
	if b.MaxAttempts == 0 {
		b.MaxAttempts = DefaultMaxAttempts
	}
	if b.MaxBackoff == 0 {
		b.MaxBackoff = DefaultMaxBackoff
	}
	if s.AWS != nil {
		b.AWS = s.AWS.Copy()
	} else {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("load AWS config: %w", err)
		}
		b.AWS = awsCfg
	}
	if b.HTTPClient != nil {
		b.AWS.HTTPClient = b.HTTPClient
	}
	b.AWS.Retryer, b.AWS.RetryMaxAttempts = b.Retryer, 0
	b.AWS.APIOptions = slices.Concat(b.AWS.APIOptions, b.APIOptions())
	return b, nil
}

// Retryer returns a new standard retryer, so that each client gets its own
// retry token bucket. Base.AWS carries it with RetryMaxAttempts 0: a
// non-zero value (from AWS_MAX_ATTEMPTS) would wrap and override it, and
// MaxAttempts is meant to be authoritative.
func (b *Base) Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = b.MaxAttempts
		o.MaxBackoff = b.MaxBackoff
	})
}

// BaseEndpoint returns the endpoint a client should use given the one the
// SDK resolved. NewFromConfig has already resolved it from the environment
// (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>) when option functions run,
// so an explicit EndpointURL overrides it here.
func (b *Base) BaseEndpoint(resolved *string) *string {
	if b.EndpointURL != "" {
		return aws.String(b.EndpointURL)
	}
	return resolved
}

// APIOptions returns the entries to append to a client's APIOptions: a
// span per call (OpenTelemetry's instrumentation, on the global tracer
// provider: no-op unless tracing is on), and the call counter's middleware
// when Calls is set.
func (b *Base) APIOptions() []func(*middleware.Stack) error {
	var opts []func(*middleware.Stack) error
	otelaws.AppendMiddlewares(&opts)
	if b.Calls != nil {
		opts = append(opts, b.Calls.AddToStack)
	}
	return opts
}

// Regional caches one client per Region. Make it with NewRegional.
type Regional[C any] struct {
	newClient func(region string) *C

	mu      sync.Mutex
	clients map[string]*C
}

// NewRegional returns a cache that makes the client of a Region with
// newClient on first use.
func NewRegional[C any](newClient func(region string) *C) *Regional[C] {
	return &Regional[C]{newClient: newClient, clients: make(map[string]*C)}
}

// Client returns region's client, making it on first use; concurrent first
// uses of one Region make it once. It returns ErrNoRegion if region is
// empty.
func (r *Regional[C]) Client(region string) (*C, error) {
	if region == "" {
		return nil, ErrNoRegion
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[region]; ok {
		return c, nil
	}
	c := r.newClient(region)
	r.clients[region] = c
	return c, nil
}
