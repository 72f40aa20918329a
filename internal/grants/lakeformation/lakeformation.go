// Package lakeformation is the AWS implementation of the grants broker's
// ports: Catalog on Lake Formation and the Glue Data Catalog, and STS, a
// grants.CredentialIssuer on STS AssumeRole.
//
// # Clients
//
// Catalog and STS keep one client per Region per service (Lake Formation,
// Glue, STS), created on first use and cached for their lifetime, made as
// package awsclient describes: standard endpoint resolution unless
// Config.EndpointURL is set, the SDK standard retryer (throttling codes, 5xx
// answers and transport errors) and call counting in Config.Calls. Lake
// Formation clients also retry ConcurrentModificationException, which Lake
// Formation answers when two permission changes race on one resource.
//
// No method ever falls back to a default Region: a tenant's grants are made
// only where the caller said, and a method called with an empty Region
// fails with awsclient.ErrNoRegion.
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
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	lf "github.com/aws/aws-sdk-go-v2/service/lakeformation"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/cairn-cdp/cairn/internal/awsclient"
)

// Config configures a Catalog or an STS. The zero value is valid: it loads
// the SDK's default configuration and uses awsclient's defaults
// (DefaultMaxAttempts, DefaultMaxBackoff).
type Config struct {
	// AWS holds the client settings every adapter shares (SDK
	// configuration and credentials, endpoint, retries, call counter,
	// which counts "LakeFormation.GrantPermissions", "Glue.GetTables",
	// "STS.AssumeRole", ...). Its AWS.Region is never used: every method
	// takes the Region.
	AWS awsclient.Settings
}

// retryableLakeFormationCodes are retried on top of the standard retryer's
// codes. ConcurrentModificationException is what Lake Formation answers when
// another change to the same permissions is in flight; every call this
// package makes is safe to repeat.
var retryableLakeFormationCodes = []string{"ConcurrentModificationException"}

// clients builds and caches the SDK clients of a Catalog or an STS. Each
// cache's Client fails with awsclient.ErrNoRegion for an empty Region.
type clients struct {
	lf   *awsclient.Regional[lf.Client]
	glue *awsclient.Regional[glue.Client]
	sts  *awsclient.Regional[sts.Client]
}

func newClients(ctx context.Context, cfg Config) (*clients, error) {
	b, err := cfg.AWS.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("lakeformation: %w", err)
	}
	return &clients{
		lf: awsclient.NewRegional(func(region string) *lf.Client {
			return lf.NewFromConfig(b.AWS, func(o *lf.Options) {
				o.Region = region
				o.Retryer = retry.AddWithErrorCodes(b.Retryer(), retryableLakeFormationCodes...)
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
		glue: awsclient.NewRegional(func(region string) *glue.Client {
			return glue.NewFromConfig(b.AWS, func(o *glue.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
		sts: awsclient.NewRegional(func(region string) *sts.Client {
			return sts.NewFromConfig(b.AWS, func(o *sts.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
	}, nil
}
