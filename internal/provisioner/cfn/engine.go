// Package cfn is the AWS implementation of the provisioner's Engine port:
// CloudFormation for tenant and pool stacks, Glue for pooled tenants' catalog
// databases and S3 for purging retained buckets and prefixes.
//
// # Clients
//
// An Engine keeps one client per Region per service, created on first use and
// cached for the Engine's lifetime. Every client:
//
//   - resolves its endpoint the SDK's standard way (AWS_ENDPOINT_URL,
//     AWS_ENDPOINT_URL_<SERVICE>, shared config), unless Config.EndpointURL is
//     set, which then wins for every service;
//   - uses S3 path-style addressing whenever an endpoint is configured, since
//     emulators such as moto serve one host for every bucket;
//   - retries with the SDK standard retryer (exponential backoff with full
//     jitter, capped at Config.MaxBackoff, at most Config.MaxAttempts
//     attempts). It retries throttling codes (Throttling, ThrottlingException,
//     SlowDown, ...), 5xx answers and every transport error, including a
//     connection closed before the answer. Each client has its own retry
//     token bucket, so a Region or service in trouble does not starve the
//     others of retries.
//
// # Errors
//
// Every method wraps SDK errors as "cfn: <what>: <cause>"; the SDK's typed
// errors stay reachable through errors.As. The "already there" and "already
// gone" errors of each service are translated once, here, into success (see
// each method), and StackEvents translates CloudFormation's "does not exist"
// ValidationError into provisioner.ErrStackNotFound.
//
// # Concurrency
//
// An Engine and a CallCounter are safe for concurrent use.
package cfn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// Defaults of Config.
const (
	// DefaultMaxAttempts is the default number of attempts per API call,
	// the first one included.
	DefaultMaxAttempts = 8
	// DefaultMaxBackoff is the default cap of the delay between two
	// attempts.
	DefaultMaxBackoff = 20 * time.Second
)

// Config configures an Engine. The zero value is valid: it loads the SDK's
// default configuration and uses the defaults below.
type Config struct {
	// AWS is the SDK configuration to start from (credentials, default
	// Region, ...). Nil means config.LoadDefaultConfig, which reads the
	// environment (AWS_REGION, AWS_ENDPOINT_URL, credentials, ...) and the
	// shared config files.
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
	// Calls, if set, counts every API call and every HTTP attempt the
	// Engine's clients make.
	Calls *CallCounter
}

// Engine implements provisioner.Engine on CloudFormation, Glue and S3.
// Create it with New. It is safe for concurrent use.
type Engine struct {
	aws         aws.Config
	endpointURL string
	httpClient  aws.HTTPClient
	maxAttempts int
	maxBackoff  time.Duration
	calls       *CallCounter

	cfn  regional[cloudformation.Client]
	glue regional[glue.Client]
	s3   regional[s3.Client]
}

var _ provisioner.Engine = (*Engine)(nil)

// New returns an Engine. It loads the SDK's default configuration when
// cfg.AWS is nil, and fails if that fails or if cfg holds a negative
// MaxAttempts or MaxBackoff. No client is created, and no call made, until a
// method needs one.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("cfn: MaxAttempts must not be negative, got %d", cfg.MaxAttempts)
	}
	if cfg.MaxBackoff < 0 {
		return nil, fmt.Errorf("cfn: MaxBackoff must not be negative, got %s", cfg.MaxBackoff)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	var awsCfg aws.Config
	if cfg.AWS != nil {
		awsCfg = cfg.AWS.Copy()
	} else {
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("cfn: load AWS config: %w", err)
		}
	}
	e := &Engine{
		aws:         awsCfg,
		endpointURL: cfg.EndpointURL,
		httpClient:  cfg.HTTPClient,
		maxAttempts: cfg.MaxAttempts,
		maxBackoff:  cfg.MaxBackoff,
		calls:       cfg.Calls,
	}
	e.cfn.newClient = func(region string) *cloudformation.Client {
		return cloudformation.NewFromConfig(e.aws, func(o *cloudformation.Options) {
			o.Region = region
			if e.httpClient != nil {
				o.HTTPClient = e.httpClient
			}
			o.Retryer, o.RetryMaxAttempts = e.retryer(), 0
			o.BaseEndpoint = e.baseEndpoint(o.BaseEndpoint)
			o.APIOptions = append(o.APIOptions, e.apiOptions()...)
		})
	}
	e.glue.newClient = func(region string) *glue.Client {
		return glue.NewFromConfig(e.aws, func(o *glue.Options) {
			o.Region = region
			if e.httpClient != nil {
				o.HTTPClient = e.httpClient
			}
			o.Retryer, o.RetryMaxAttempts = e.retryer(), 0
			o.BaseEndpoint = e.baseEndpoint(o.BaseEndpoint)
			o.APIOptions = append(o.APIOptions, e.apiOptions()...)
		})
	}
	e.s3.newClient = func(region string) *s3.Client {
		return s3.NewFromConfig(e.aws, func(o *s3.Options) {
			o.Region = region
			if e.httpClient != nil {
				o.HTTPClient = e.httpClient
			}
			o.Retryer, o.RetryMaxAttempts = e.retryer(), 0
			o.BaseEndpoint = e.baseEndpoint(o.BaseEndpoint)
			o.APIOptions = append(o.APIOptions, e.apiOptions()...)
			// One host serves every bucket on an emulator: virtual-hosted
			// names (bucket.127.0.0.1) would not resolve.
			if o.BaseEndpoint != nil {
				o.UsePathStyle = true
			}
		})
	}
	return e, nil
}

// retryer returns a new standard retryer for one client. Setting the
// client's RetryMaxAttempts to 0 next to it matters: a non-zero value (from
// AWS_MAX_ATTEMPTS) would wrap and override it, and Config.MaxAttempts is
// meant to be authoritative.
func (e *Engine) retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = e.maxAttempts
		o.MaxBackoff = e.maxBackoff
	})
}

// baseEndpoint returns the endpoint a client should use given the one the
// SDK resolved. NewFromConfig has already resolved it from the environment
// (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>) when option functions run,
// so an explicit Config.EndpointURL overrides it here.
func (e *Engine) baseEndpoint(resolved *string) *string {
	if e.endpointURL != "" {
		return aws.String(e.endpointURL)
	}
	return resolved
}

func (e *Engine) apiOptions() []func(*middleware.Stack) error {
	if e.calls == nil {
		return nil
	}
	return []func(*middleware.Stack) error{e.calls.AddToStack}
}

// regional caches one client per Region.
type regional[C any] struct {
	newClient func(region string) *C

	mu      sync.Mutex
	clients map[string]*C
}

func (r *regional[C]) get(region string) *C {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[region]; ok {
		return c
	}
	if r.clients == nil {
		r.clients = make(map[string]*C)
	}
	c := r.newClient(region)
	r.clients[region] = c
	return c
}

// errNoRegion is returned by every method called with an empty Region: the
// Engine never falls back to a default Region, so that a tenant's data is
// never provisioned anywhere but where the caller said.
var errNoRegion = errors.New("region is required")

func (e *Engine) cfnClient(region string) (*cloudformation.Client, error) {
	if region == "" {
		return nil, errNoRegion
	}
	return e.cfn.get(region), nil
}

func (e *Engine) glueClient(region string) (*glue.Client, error) {
	if region == "" {
		return nil, errNoRegion
	}
	return e.glue.get(region), nil
}

func (e *Engine) s3Client(region string) (*s3.Client, error) {
	if region == "" {
		return nil, errNoRegion
	}
	return e.s3.get(region), nil
}
