// Package lakeformation is the AWS implementation of the grants broker's
// ports: Catalog on Lake Formation and the Glue Data Catalog, and STS, a
// grants.CredentialIssuer on STS AssumeRole.
//
// # Clients
//
// Catalog and STS keep one client per Region per service (Lake Formation,
// Glue, STS), created on first use and cached for their lifetime. Every
// client:
//
//   - resolves its endpoint the SDK's standard way (AWS_ENDPOINT_URL,
//     AWS_ENDPOINT_URL_<SERVICE>, shared config), unless Config.EndpointURL is
//     set, which then wins for every service;
//   - retries with the SDK standard retryer (exponential backoff with full
//     jitter, capped at Config.MaxBackoff, at most Config.MaxAttempts
//     attempts): throttling codes, 5xx answers and transport errors, and, for
//     Lake Formation, ConcurrentModificationException, which Lake Formation
//     answers when two permission changes race on one resource;
//   - counts its calls in Config.Calls when set.
//
// No method ever falls back to a default Region: a tenant's grants are made
// only where the caller said.
//
// # Errors
//
// Every method wraps SDK errors as "lakeformation: <what>: <cause>"; the
// SDK's typed errors stay reachable through errors.As. The "already there"
// and "already gone" answers are translated once, here, into success (see
// each method), and "no such database or table" into grants.ErrNotFound.
//
// # Concurrency
//
// A Catalog and an STS are safe for concurrent use.
package lakeformation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	lf "github.com/aws/aws-sdk-go-v2/service/lakeformation"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/cairn-cdp/cairn/internal/provisioner/cfn"
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

// Config configures a Catalog or an STS. The zero value is valid: it loads
// the SDK's default configuration and uses the defaults above.
type Config struct {
	// AWS is the SDK configuration to start from (credentials, ...). Nil
	// means config.LoadDefaultConfig, which reads the environment
	// (AWS_ENDPOINT_URL, credentials, ...) and the shared config files. Its
	// Region is never used: every method takes the Region.
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
	// Calls, if set, counts every API call ("LakeFormation.GrantPermissions",
	// "Glue.GetTables", "STS.AssumeRole", ...) and every HTTP attempt.
	Calls *cfn.CallCounter
}

// retryableLakeFormationCodes are retried on top of the standard retryer's
// codes. ConcurrentModificationException is what Lake Formation answers when
// another change to the same permissions is in flight; every call this
// package makes is safe to repeat.
var retryableLakeFormationCodes = []string{"ConcurrentModificationException"}

// clients builds and caches the SDK clients of a Catalog or an STS.
type clients struct {
	aws         aws.Config
	endpointURL string
	httpClient  aws.HTTPClient
	maxAttempts int
	maxBackoff  time.Duration
	calls       *cfn.CallCounter

	lf   regional[lf.Client]
	glue regional[glue.Client]
	sts  regional[sts.Client]
}

func newClients(ctx context.Context, cfg Config) (*clients, error) {
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("lakeformation: MaxAttempts must not be negative, got %d", cfg.MaxAttempts)
	}
	if cfg.MaxBackoff < 0 {
		return nil, fmt.Errorf("lakeformation: MaxBackoff must not be negative, got %s", cfg.MaxBackoff)
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
			return nil, fmt.Errorf("lakeformation: load AWS config: %w", err)
		}
	}
	c := &clients{
		aws:         awsCfg,
		endpointURL: cfg.EndpointURL,
		httpClient:  cfg.HTTPClient,
		maxAttempts: cfg.MaxAttempts,
		maxBackoff:  cfg.MaxBackoff,
		calls:       cfg.Calls,
	}
	c.lf.newClient = func(region string) *lf.Client {
		return lf.NewFromConfig(c.aws, func(o *lf.Options) {
			o.Region = region
			if c.httpClient != nil {
				o.HTTPClient = c.httpClient
			}
			o.Retryer = retry.AddWithErrorCodes(c.retryer(), retryableLakeFormationCodes...)
			o.RetryMaxAttempts = 0
			o.BaseEndpoint = c.baseEndpoint(o.BaseEndpoint)
			o.APIOptions = append(o.APIOptions, c.apiOptions()...)
		})
	}
	c.glue.newClient = func(region string) *glue.Client {
		return glue.NewFromConfig(c.aws, func(o *glue.Options) {
			o.Region = region
			if c.httpClient != nil {
				o.HTTPClient = c.httpClient
			}
			o.Retryer, o.RetryMaxAttempts = c.retryer(), 0
			o.BaseEndpoint = c.baseEndpoint(o.BaseEndpoint)
			o.APIOptions = append(o.APIOptions, c.apiOptions()...)
		})
	}
	c.sts.newClient = func(region string) *sts.Client {
		return sts.NewFromConfig(c.aws, func(o *sts.Options) {
			o.Region = region
			if c.httpClient != nil {
				o.HTTPClient = c.httpClient
			}
			o.Retryer, o.RetryMaxAttempts = c.retryer(), 0
			o.BaseEndpoint = c.baseEndpoint(o.BaseEndpoint)
			o.APIOptions = append(o.APIOptions, c.apiOptions()...)
		})
	}
	return c, nil
}

// retryer returns a new standard retryer for one client, so that each
// client has its own retry token bucket. Setting the client's
// RetryMaxAttempts to 0 next to it matters: a non-zero value (from
// AWS_MAX_ATTEMPTS) would wrap and override it, and Config.MaxAttempts is
// meant to be authoritative.
func (c *clients) retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = c.maxAttempts
		o.MaxBackoff = c.maxBackoff
	})
}

// baseEndpoint returns the endpoint a client should use given the one the
// SDK resolved from the environment: Config.EndpointURL wins.
func (c *clients) baseEndpoint(resolved *string) *string {
	if c.endpointURL != "" {
		return aws.String(c.endpointURL)
	}
	return resolved
}

func (c *clients) apiOptions() []func(*middleware.Stack) error {
	if c.calls == nil {
		return nil
	}
	return []func(*middleware.Stack) error{c.calls.AddToStack}
}

// errNoRegion is returned by every method called with an empty Region.
var errNoRegion = errors.New("region is required")

func (c *clients) lfClient(region string) (*lf.Client, error) {
	if region == "" {
		return nil, errNoRegion
	}
	return c.lf.get(region), nil
}

func (c *clients) glueClient(region string) (*glue.Client, error) {
	if region == "" {
		return nil, errNoRegion
	}
	return c.glue.get(region), nil
}

func (c *clients) stsClient(region string) (*sts.Client, error) {
	if region == "" {
		return nil, errNoRegion
	}
	return c.sts.get(region), nil
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
