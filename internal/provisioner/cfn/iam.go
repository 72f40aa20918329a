package cfn

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// EnsureTenantRole implements provisioner.Engine with IAM: CreateRole
// (path provisioner.TenantRolePath, one-hour sessions, the boundary and
// tags), or GetRole when it answers EntityAlreadyExists, then
// PutRolePolicy, which replaces the inline policy of that name. The trust
// policy lets r.AccountID assume the role with the tenant's ID as
// external ID.
func (e *Engine) EnsureTenantRole(ctx context.Context, region string, r provisioner.TenantRole) (string, error) {
	client, err := e.iam.Client(region)
	if err != nil {
		return "", fmt.Errorf("cfn: tenant role: %w", err)
	}
	if r.TenantID == "" || r.Policy == "" || r.AccountID == "" {
		return "", fmt.Errorf("cfn: tenant role: a tenant, a policy and an account are required")
	}
	name := provisioner.TenantRoleName(r.TenantID, region)
	trust, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect":    "Allow",
			"Principal": map[string]string{"AWS": "arn:aws:iam::" + r.AccountID + ":root"},
			"Action":    "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]string{"sts:ExternalId": r.TenantID}},
		}},
	})
	in := &iam.CreateRoleInput{
		RoleName:                 aws.String(name),
		Path:                     aws.String(provisioner.TenantRolePath),
		AssumeRolePolicyDocument: aws.String(string(trust)),
		Description:              aws.String("Cairn data access for pooled tenant " + r.TenantID),
		MaxSessionDuration:       aws.Int32(3600),
	}
	if r.Boundary != "" {
		in.PermissionsBoundary = aws.String(r.Boundary)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Tags)) {
		in.Tags = append(in.Tags, iamtypes.Tag{Key: aws.String(k), Value: aws.String(r.Tags[k])})
	}
	var arn string
	out, err := client.CreateRole(ctx, in)
	switch {
	case err == nil:
		arn = aws.ToString(out.Role.Arn)
	case errorCode(err) == "EntityAlreadyExists":
		got, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if err != nil {
			return "", fmt.Errorf("cfn: get tenant role %s: %w", name, err)
		}
		arn = aws.ToString(got.Role.Arn)
	default:
		return "", fmt.Errorf("cfn: create tenant role %s: %w", name, err)
	}
	if _, err := client.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(name), PolicyName: aws.String(provisioner.TenantRolePolicyName), PolicyDocument: aws.String(r.Policy),
	}); err != nil {
		return "", fmt.Errorf("cfn: put tenant role policy %s: %w", name, err)
	}
	return arn, nil
}

// DeleteTenantRole implements provisioner.Engine with IAM: ListRolePolicies
// and DeleteRolePolicy for each inline policy (IAM deletes no role that
// has one), then DeleteRole. NoSuchEntity at any step is a role already
// gone.
func (e *Engine) DeleteTenantRole(ctx context.Context, region, tenantID string) error {
	client, err := e.iam.Client(region)
	if err != nil {
		return fmt.Errorf("cfn: delete tenant role: %w", err)
	}
	name := aws.String(provisioner.TenantRoleName(tenantID, region))
	pages := iam.NewListRolePoliciesPaginator(client, &iam.ListRolePoliciesInput{RoleName: name})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if errorCode(err) == "NoSuchEntity" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cfn: list tenant role policies %s: %w", *name, err)
		}
		for _, p := range page.PolicyNames {
			if _, err := client.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: name, PolicyName: aws.String(p)}); err != nil && errorCode(err) != "NoSuchEntity" {
				return fmt.Errorf("cfn: delete tenant role policy %s: %w", *name, err)
			}
		}
	}
	if _, err := client.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: name}); err != nil && errorCode(err) != "NoSuchEntity" {
		return fmt.Errorf("cfn: delete tenant role %s: %w", *name, err)
	}
	return nil
}
