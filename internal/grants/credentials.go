package grants

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/audit"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// CredentialsTTL is the lifetime of tenant-scoped credentials.
const CredentialsTTL = time.Hour

// IssuedCredentials are credentials with what they reach.
type IssuedCredentials struct {
	Credentials
	Region  string
	RoleARN string
	// Outputs name the data the credentials reach (buckets, prefixes,
	// table, Glue database).
	Outputs map[string]string
}

// accountOf returns the account ID in an ARN ("arn:aws:iam::123456789012:role/x").
func accountOf(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// Credentials issues short-lived AWS credentials on the tenant's
// data-access role (dedicated) or the pool role (pooled) in its home
// Region, confined by a session policy to the tenant's buckets or bucket
// prefixes and its DynamoDB leading keys. The issue is audited.
func (s *Service) Credentials(ctx context.Context, rec audit.Event, tenantID string) (IssuedCredentials, error) {
	t, err := s.activeTenant(ctx, tenantID)
	if err != nil {
		return IssuedCredentials{}, err
	}
	c, err := s.scoped(ctx, t)
	if err != nil {
		return IssuedCredentials{}, err
	}
	// STS has issued them: the issue is recorded on its own (nothing else
	// in the database changes), and credentials whose issue cannot be
	// recorded are not handed out.
	rec = rec.On(c.RoleARN).With("region", c.Region).With("expires_at", c.Expiration.UTC().Format(time.RFC3339))
	if err := s.record(ctx, rec); err != nil {
		return IssuedCredentials{}, fmt.Errorf("record credentials issue: %w", err)
	}
	return c, nil
}

// ScopedCredentials issues the credentials Credentials does (the tenant
// active, as there), for Cairn's own use on the tenant's behalf: its SQL
// queries on Athena, which then reach only what the tenant may. They are
// never handed out, and their issue is not audited; the queries they run
// are recorded as the tenant's.
func (s *Service) ScopedCredentials(ctx context.Context, tenantID string) (IssuedCredentials, error) {
	t, err := s.activeTenant(ctx, tenantID)
	if err != nil {
		return IssuedCredentials{}, err
	}
	return s.scoped(ctx, t)
}

// policyInput is the PolicyInput of a tenant's placement's outputs.
func policyInput(tenantID, region string, pooled bool, out map[string]string) PolicyInput {
	return PolicyInput{
		Pooled:          pooled,
		TenantID:        tenantID,
		Region:          region,
		AccountID:       accountOf(out["data_access_role_arn"]),
		RawBucket:       out["raw_bucket"],
		CleanBucket:     out["clean_bucket"],
		CuratedBucket:   out["curated_bucket"],
		ProfileTable:    out["profile_table"],
		GlueDatabase:    out["glue_database"],
		KMSKeyARN:       out["kms_key_arn"],
		StreamARN:       out["stream_arn"],
		AthenaWorkGroup: out["athena_workgroup"],
	}
}

// TenantRolePolicy is the inline policy of a pooled tenant's own role in
// region (RolePolicy) for its slice's outputs, with the pool's role as
// data_access_role_arn: provisioner.Config.TenantRolePolicy.
func TenantRolePolicy(tenantID, region string, outputs map[string]string) (string, error) {
	return RolePolicy(policyInput(tenantID, region, true, outputs))
}

// scoped assumes the tenant's role with its session policy.
func (s *Service) scoped(ctx context.Context, t tenants.Tenant) (IssuedCredentials, error) {
	pl, err := s.catalogOf(ctx, t, t.HomeRegion)
	if err != nil {
		return IssuedCredentials{}, err
	}
	out := pl.Outputs
	role := out["data_access_role_arn"]
	if role == "" {
		return IssuedCredentials{}, errors.New("credentials: the stack reports no data-access role")
	}
	policy, err := SessionPolicy(policyInput(t.ID, t.HomeRegion, pl.Kind == placement.Pooled, out))
	if err != nil {
		return IssuedCredentials{}, err
	}
	creds, err := s.creds.AssumeRole(ctx, AssumeRoleInput{
		Region: t.HomeRegion, RoleARN: role, SessionName: "cairn-" + t.ID, ExternalID: t.ID,
		Policy: policy, Duration: CredentialsTTL,
	})
	if err != nil {
		return IssuedCredentials{}, err
	}
	return IssuedCredentials{Credentials: creds, Region: t.HomeRegion, RoleARN: role, Outputs: out}, nil
}
