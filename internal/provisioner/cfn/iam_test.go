package cfn_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/provisioner"
)

// TestTenantRoleOnIAM reads back, through IAM on moto, what
// EnsureTenantRole made: the role under /cairn/pooled/ with its boundary
// and tags, trusting the account only with the tenant's ID as external
// ID, and its inline policy, which a second call replaces.
func TestTenantRoleOnIAM(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	e, _ := newEngine(t, endpoint)
	cfg := awstest.Config(regionA)
	client := iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(endpoint) })
	tenant := tenantID()
	policy := func(action string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + action + `","Resource":"*"}]}`
	}
	boundary := "arn:aws:iam::123456789012:policy/cairn/boundary"
	r := provisioner.TenantRole{TenantID: tenant, AccountID: "123456789012", Policy: policy("s3:GetObject"), Boundary: boundary,
		Tags: map[string]string{"cairn:tenant-id": tenant}}
	arn, err := e.EnsureTenantRole(ctx, regionA, r)
	if err != nil {
		t.Fatal(err)
	}
	r.Policy = policy("s3:PutObject")
	if again, err := e.EnsureTenantRole(ctx, regionA, r); err != nil || again != arn {
		t.Fatalf("second EnsureTenantRole: %q, %v (first %q)", again, err, arn)
	}
	t.Cleanup(func() { _ = e.DeleteTenantRole(t.Context(), regionA, tenant) })

	name := aws.String(provisioner.TenantRoleName(tenant, regionA))
	got, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: name})
	if err != nil {
		t.Fatal(err)
	}
	role := got.Role
	if aws.ToString(role.Arn) != arn || aws.ToString(role.Path) != provisioner.TenantRolePath || aws.ToInt32(role.MaxSessionDuration) != 3600 {
		t.Errorf("role %s: path %s, max session %d", aws.ToString(role.Arn), aws.ToString(role.Path), aws.ToInt32(role.MaxSessionDuration))
	}
	if role.PermissionsBoundary == nil || aws.ToString(role.PermissionsBoundary.PermissionsBoundaryArn) != boundary {
		t.Errorf("boundary %+v, want %s", role.PermissionsBoundary, boundary)
	}
	if len(role.Tags) != 1 || aws.ToString(role.Tags[0].Key) != "cairn:tenant-id" || aws.ToString(role.Tags[0].Value) != tenant {
		t.Errorf("tags %+v", role.Tags)
	}
	var trust struct {
		Statement []struct {
			Effect    string
			Principal struct{ AWS string }
			Action    string
			Condition map[string]map[string]string
		}
	}
	doc, _ := url.QueryUnescape(aws.ToString(role.AssumeRolePolicyDocument))
	if err := json.Unmarshal([]byte(doc), &trust); err != nil {
		t.Fatalf("trust policy %q: %v", doc, err)
	}
	if len(trust.Statement) != 1 || trust.Statement[0].Principal.AWS != "arn:aws:iam::123456789012:root" ||
		trust.Statement[0].Action != "sts:AssumeRole" || trust.Statement[0].Condition["StringEquals"]["sts:ExternalId"] != tenant {
		t.Errorf("trust policy %s", doc)
	}
	inline, err := client.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: name, PolicyName: aws.String(provisioner.TenantRolePolicyName)})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.QueryUnescape(aws.ToString(inline.PolicyDocument)); doc != policy("s3:PutObject") {
		t.Errorf("inline policy %s, want the second call's", doc)
	}

	if err := e.DeleteTenantRole(ctx, regionA, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: name}); err == nil {
		t.Fatal("the role is still there after DeleteTenantRole")
	}
}
