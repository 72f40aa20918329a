package lakeformation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/cairn-cdp/cairn/internal/grants"
)

// STS implements grants.CredentialIssuer on STS AssumeRole, in the Region of
// each request. Create it with NewSTS. It is safe for concurrent use.
type STS struct {
	c *clients
}

var _ grants.CredentialIssuer = (*STS)(nil)

// NewSTS returns an STS. It loads the SDK's default configuration when
// cfg.AWS is nil, and fails if that fails or if cfg holds a negative
// MaxAttempts or MaxBackoff. No client is created, and no call made, until
// AssumeRole needs one.
func NewSTS(ctx context.Context, cfg Config) (*STS, error) {
	c, err := newClients(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &STS{c: c}, nil
}

// AssumeRole returns credentials of in.RoleARN from one STS AssumeRole call
// in in.Region, confined by the inline session policy in.Policy (the
// credentials can do only what both the role's policies and the session
// policy allow). in.ExternalID and in.Policy are sent only when set;
// in.Duration, when set, is sent in whole seconds (STS accepts 900 s up to
// the role's maximum session duration), and zero lets STS default to one
// hour. Region, RoleARN and SessionName are required.
func (s *STS) AssumeRole(ctx context.Context, in grants.AssumeRoleInput) (grants.Credentials, error) {
	client, err := s.c.sts.Client(in.Region)
	if err != nil {
		return grants.Credentials{}, fmt.Errorf("lakeformation: assume role: %w", err)
	}
	if in.RoleARN == "" || in.SessionName == "" {
		return grants.Credentials{}, errors.New("lakeformation: assume role: role ARN and session name are required")
	}
	if in.Duration < 0 || (in.Duration > 0 && in.Duration < time.Second) {
		return grants.Credentials{}, fmt.Errorf("lakeformation: assume role: invalid duration %s", in.Duration)
	}
	req := &sts.AssumeRoleInput{
		RoleArn:         aws.String(in.RoleARN),
		RoleSessionName: aws.String(in.SessionName),
	}
	if in.ExternalID != "" {
		req.ExternalId = aws.String(in.ExternalID)
	}
	if in.Policy != "" {
		req.Policy = aws.String(in.Policy)
	}
	if in.Duration > 0 {
		req.DurationSeconds = aws.Int32(int32(min(in.Duration/time.Second, 1<<31-1)))
	}
	out, err := client.AssumeRole(ctx, req)
	if err != nil {
		return grants.Credentials{}, fmt.Errorf("lakeformation: assume role %s in %s: %w", in.RoleARN, in.Region, err)
	}
	creds := out.Credentials
	if creds == nil || aws.ToString(creds.AccessKeyId) == "" {
		return grants.Credentials{}, fmt.Errorf("lakeformation: assume role %s in %s: no credentials in the answer", in.RoleARN, in.Region)
	}
	return grants.Credentials{
		AccessKeyID:     aws.ToString(creds.AccessKeyId),
		SecretAccessKey: aws.ToString(creds.SecretAccessKey),
		SessionToken:    aws.ToString(creds.SessionToken),
		Expiration:      aws.ToTime(creds.Expiration),
	}, nil
}
