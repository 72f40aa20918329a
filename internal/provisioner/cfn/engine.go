// Package cfn is the AWS implementation of the provisioner's Engine port:
// CloudFormation for tenant and pool stacks, Glue for pooled tenants' catalog
// databases, IAM for pooled tenants' own roles and S3 for purging retained
// buckets and prefixes.
//
// # Clients
//
// An Engine keeps one client per Region per service, created on first use and
// cached for the Engine's lifetime, made as package awsclient describes:
// standard endpoint resolution unless Config.EndpointURL is set, the SDK
// standard retryer (throttling codes such as Throttling, ThrottlingException
// and SlowDown, 5xx answers and every transport error, including a
// connection closed before the answer) and call counting in Config.Calls.
// S3 clients also use path-style addressing whenever an endpoint is
// configured, since emulators such as moto serve one host for every bucket.
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
// An Engine is safe for concurrent use.
package cfn

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// Config configures an Engine. The zero value is valid: it loads the SDK's
// default configuration and uses awsclient's defaults (DefaultMaxAttempts,
// DefaultMaxBackoff).
type Config struct {
	// AWS holds the client settings every adapter shares (SDK
	// configuration and credentials, endpoint, retries, call counter).
	// Its AWS.Region is never used: every method takes the Region.
	AWS awsclient.Settings
	// RoleARN, if set, is the service role CloudFormation creates and
	// deletes stacks with, so that the caller needs only CloudFormation's
	// own actions and iam:PassRole on it, not the permissions to create
	// what the templates declare. Empty uses the caller's credentials.
	RoleARN string
}

// Engine implements provisioner.Engine on CloudFormation, Glue and S3.
// Create it with New. It is safe for concurrent use.
type Engine struct {
	role string
	cfn  *awsclient.Regional[cloudformation.Client]
	glue *awsclient.Regional[glue.Client]
	iam  *awsclient.Regional[iam.Client]
	s3   *awsclient.Regional[s3.Client]
}

var _ provisioner.Engine = (*Engine)(nil)

// New returns an Engine. It loads the SDK's default configuration when
// cfg.AWS.AWS is nil, and fails if that fails or if cfg.AWS holds a
// negative MaxAttempts or MaxBackoff. No client is created, and no call made, until a
// method needs one. Every method called with an empty Region fails with
// awsclient.ErrNoRegion.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	b, err := cfg.AWS.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("cfn: %w", err)
	}
	return &Engine{
		role: cfg.RoleARN,
		cfn: awsclient.NewRegional(func(region string) *cloudformation.Client {
			return cloudformation.NewFromConfig(b.AWS, func(o *cloudformation.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
		glue: awsclient.NewRegional(func(region string) *glue.Client {
			return glue.NewFromConfig(b.AWS, func(o *glue.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
		iam: awsclient.NewRegional(func(region string) *iam.Client {
			return iam.NewFromConfig(b.AWS, func(o *iam.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
		s3: b.RegionalS3(),
	}, nil
}
