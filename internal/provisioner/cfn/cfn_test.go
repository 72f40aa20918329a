package cfn_test

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/awsfault"
	"github.com/cairn-cdp/cairn/internal/provisioner"
	"github.com/cairn-cdp/cairn/internal/provisioner/cfn"
	"github.com/cairn-cdp/cairn/internal/provisioner/enginetest"
	"github.com/cairn-cdp/cairn/templates"
)

// Regions the tests provision in. pagingRegion is used by
// TestStacksOneCallPerPage alone, so that it knows every stack there.
const (
	regionA      = "us-east-1"
	regionB      = "eu-west-1"
	pagingRegion = "ca-central-1"
)

// minimalTemplate is a stack with no real resources, for tests about the
// calls rather than about what the stack holds.
var minimalTemplate = templates.Template{
	Name: "minimal.yaml",
	Body: `AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Handle:
    Type: AWS::CloudFormation::WaitConditionHandle
Outputs:
  Answer:
    Value: "42"
`,
	Version: "test",
}

// newEngine returns an Engine on endpoint with a CallCounter and short
// backoffs, so that retried faults cost milliseconds.
func newEngine(t *testing.T, endpoint string) (*cfn.Engine, *awsclient.CallCounter) {
	t.Helper()
	cfg := awstest.Config(regionA)
	calls := &awsclient.CallCounter{}
	e, err := cfn.New(t.Context(), cfn.Config{AWS: awsclient.Settings{
		AWS:         &cfg,
		EndpointURL: endpoint,
		MaxBackoff:  5 * time.Millisecond,
		Calls:       calls,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return e, calls
}

func newProxy(t *testing.T, endpoint string) *awsfault.Proxy {
	t.Helper()
	p, err := awsfault.New(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Raw SDK clients, to check through the AWS API what the Engine did.

func s3Client(endpoint, region string) *s3.Client {
	return s3.NewFromConfig(awstest.Config(regionA), func(o *s3.Options) {
		o.Region, o.BaseEndpoint, o.UsePathStyle = region, aws.String(endpoint), true
	})
}

func cfnClient(endpoint, region string) *cloudformation.Client {
	return cloudformation.NewFromConfig(awstest.Config(regionA), func(o *cloudformation.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

func dynamoClient(endpoint, region string) *dynamodb.Client {
	return dynamodb.NewFromConfig(awstest.Config(regionA), func(o *dynamodb.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

func glueClient(endpoint, region string) *glue.Client {
	return glue.NewFromConfig(awstest.Config(regionA), func(o *glue.Options) {
		o.Region, o.BaseEndpoint = region, aws.String(endpoint)
	})
}

func randomLower(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// stackName returns a name no other test uses.
func stackName(kind string) string {
	return provisioner.StackPrefix + "test-" + kind + "-" + randomLower(5)
}

// tenantID returns a fresh ID of the form the templates accept.
func tenantID() string { return "ten_" + randomLower(16) }

func apiErrorCode(err error) string {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return apiErr.ErrorCode()
	}
	return ""
}

// countStacksNamed counts the live stacks of region named name, through the
// CloudFormation API.
func countStacksNamed(t *testing.T, endpoint, region, name string) int {
	t.Helper()
	n := 0
	pages := cloudformation.NewDescribeStacksPaginator(cfnClient(endpoint, region), &cloudformation.DescribeStacksInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Stacks {
			if aws.ToString(s.StackName) == name && s.StackStatus != "DELETE_COMPLETE" {
				n++
			}
		}
	}
	return n
}

func createMinimal(t *testing.T, e *cfn.Engine, region, name string) {
	t.Helper()
	if err := e.CreateStack(t.Context(), provisioner.CreateStackInput{
		Region: region, Name: name, Template: minimalTemplate, Token: "create-" + name,
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context() is canceled by the time cleanups run.
		if err := e.DeleteStack(context.Background(), region, name, "cleanup-"+name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// Outputs that moto reports for both templates. GlueDatabase and
// AthenaWorkGroup are missing: moto skips Glue and Athena resources, and
// drops outputs that refer to skipped resources.
var motoOutputs = []string{"RawBucket", "CleanBucket", "CuratedBucket", "StreamArn", "ProfileTable", "DataAccessRoleArn", "KmsKeyArn"}

// TestContract runs the Engine port's contract suite, which every engine
// passes, against moto.
func TestContract(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	e, _ := newEngine(t, endpoint)
	for _, region := range []string{regionA, regionB} {
		t.Run(region, func(t *testing.T) {
			t.Parallel()
			enginetest.Run(t, e, region)
		})
	}
}

func TestStackLifecycle(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	for _, region := range []string{regionA, regionB} {
		t.Run(region, func(t *testing.T) {
			t.Parallel()
			testStackLifecycle(t, endpoint, region)
		})
	}
}

func testStackLifecycle(t *testing.T, endpoint, region string) {
	ctx := t.Context()
	e, _ := newEngine(t, endpoint)
	tenant := tenantID()
	dedicated, pool := stackName("dedicated"), stackName("pool")
	poolID := "p" + randomLower(6)
	inputs := []provisioner.CreateStackInput{{
		Region:     region,
		Name:       dedicated,
		Template:   templates.Dedicated(),
		Parameters: map[string]string{"TenantId": tenant, "TenantSlug": "acme"},
		Tags:       map[string]string{"cairn:tenant-id": tenant, "cairn:managed-by": "cairn"},
		Token:      "create-" + dedicated,
	}, {
		Region:     region,
		Name:       pool,
		Template:   templates.Pool(),
		Parameters: map[string]string{"PoolId": poolID},
		Tags:       map[string]string{"cairn:pool-id": poolID, "cairn:managed-by": "cairn"},
		Token:      "create-" + pool,
	}}

	// Create each twice with the same token: one stack each.
	for _, in := range inputs {
		for range 2 {
			if err := e.CreateStack(ctx, in); err != nil {
				t.Fatalf("CreateStack %s: %v", in.Name, err)
			}
		}
		if n := countStacksNamed(t, endpoint, region, in.Name); n != 1 {
			t.Errorf("%d stacks named %s, want 1", n, in.Name)
		}
	}

	stacks, err := e.Stacks(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range stacks {
		if !strings.HasPrefix(name, provisioner.StackPrefix) || s.Name != name || s.Status == "DELETE_COMPLETE" {
			t.Errorf("Stacks returned %q: %+v", name, s)
		}
	}
	s3c, ddb := s3Client(endpoint, region), dynamoClient(endpoint, region)
	var retained []string
	for _, in := range inputs {
		s, ok := stacks[in.Name]
		if !ok {
			t.Fatalf("Stacks(%s) lacks %s", region, in.Name)
		}
		if s.Status != provisioner.StackCreateComplete || !strings.Contains(s.ID, ":"+region+":") {
			t.Errorf("%s: status %s, ID %s", in.Name, s.Status, s.ID)
		}
		for _, key := range motoOutputs {
			if s.Outputs[key] == "" {
				t.Errorf("%s: no output %s in %v", in.Name, key, s.Outputs)
			}
		}
		// The outputs name real resources, in the stack's Region.
		for _, key := range []string{"RawBucket", "CleanBucket", "CuratedBucket"} {
			bucket := s.Outputs[key]
			if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
				t.Errorf("%s: HeadBucket %s: %v", in.Name, bucket, err)
			}
			loc, err := s3c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatal(err)
			}
			want := region
			if region == regionA {
				want = "" // S3 reports us-east-1 as no constraint
			}
			if got := string(loc.LocationConstraint); got != want {
				t.Errorf("bucket %s is in %q, want %q", bucket, got, want)
			}
			retained = append(retained, bucket)
		}
		table, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.Outputs["ProfileTable"])})
		if err != nil {
			t.Fatalf("%s: DescribeTable: %v", in.Name, err)
		}
		if got := aws.ToString(table.Table.TableArn); !strings.Contains(got, ":"+region+":") {
			t.Errorf("%s: profile table %s not in %s", in.Name, got, region)
		}
	}
	// Regions do not leak into each other.
	other := map[string]string{regionA: regionB, regionB: regionA}[region]
	otherStacks, err := e.Stacks(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := otherStacks[dedicated]; ok {
		t.Errorf("Stacks(%s) has %s, created in %s", other, dedicated, region)
	}

	events, err := e.StackEvents(ctx, region, dedicated)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		t.Fatal("no events")
	}
	if !slices.IsSortedFunc(events, func(a, b provisioner.StackEvent) int { return b.Time.Compare(a.Time) }) {
		t.Error("events are not newest first")
	}
	if !slices.ContainsFunc(events, func(ev provisioner.StackEvent) bool {
		return ev.LogicalID == dedicated && ev.ResourceType == "AWS::CloudFormation::Stack" &&
			ev.Status == provisioner.StackCreateComplete && ev.ID != "" && !ev.Time.IsZero()
	}) {
		t.Errorf("no CREATE_COMPLETE event of the stack itself in %+v", events)
	}

	// Raw-zone objects are under Object Lock (GOVERNANCE): the purge must
	// bypass it.
	raw := stacks[dedicated].Outputs["RawBucket"]
	putVersions(t, s3c, raw, "events/", 3, 2)

	profileTable := stacks[dedicated].Outputs["ProfileTable"]
	dedicatedID := stacks[dedicated].ID
	for _, in := range inputs {
		for i := range 2 {
			if err := e.DeleteStack(ctx, region, in.Name, fmt.Sprintf("delete-%s-%d", in.Name, i)); err != nil {
				t.Fatalf("DeleteStack %s: %v", in.Name, err)
			}
		}
	}
	stacks, err = e.Stacks(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		if s, ok := stacks[in.Name]; ok {
			t.Errorf("Stacks still has %s after DeleteStack: %+v", in.Name, s)
		}
		// By name, a deleted stack is gone (by ID it would still answer).
		if _, err := e.StackEvents(ctx, region, in.Name); !errors.Is(err, provisioner.ErrStackNotFound) {
			t.Errorf("StackEvents of deleted %s: %v, want ErrStackNotFound", in.Name, err)
		}
	}
	if events, err := e.StackEvents(ctx, region, dedicatedID); err != nil || events[0].Status != "DELETE_COMPLETE" {
		t.Errorf("StackEvents by ID of the deleted stack: %v, newest %+v; want DELETE_COMPLETE first", err, events[:min(1, len(events))])
	}
	// The dedicated profile table goes with the stack; buckets are retained.
	if _, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(profileTable)}); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("DescribeTable %s after DeleteStack: %v, want ResourceNotFoundException", profileTable, err)
	}
	for _, bucket := range retained {
		if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("retained bucket %s: %v", bucket, err)
		}
	}
	for range 2 {
		if err := e.DeleteBuckets(ctx, region, retained); err != nil {
			t.Fatal(err)
		}
	}
	for _, bucket := range retained {
		if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); apiErrorCode(err) != "NotFound" {
			t.Errorf("HeadBucket %s after DeleteBuckets: %v, want NotFound", bucket, err)
		}
	}
}

// putVersions writes keys objects under prefix in bucket, each with
// versions versions, then a delete marker on every other key.
func putVersions(t *testing.T, client *s3.Client, bucket, prefix string, keys, versions int) {
	t.Helper()
	jobs := make(chan func() error)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 8 {
		wg.Go(func() {
			for job := range jobs {
				if err := job(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for k := range keys {
		key := fmt.Sprintf("%s%04d.json", prefix, k)
		jobs <- func() error {
			for v := range versions {
				if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(fmt.Sprint(v)),
					// moto refuses a put into a bucket with default
					// retention unless x-amz-sdk-checksum-algorithm (or
					// Content-MD5) is set, which the SDK sends only when
					// asked for an algorithm.
					ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32,
				}); err != nil {
					return fmt.Errorf("put %s: %w", key, err)
				}
			}
			if k%2 == 0 {
				if _, err := client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
					return fmt.Errorf("delete %s: %w", key, err)
				}
			}
			return nil
		}
	}
	close(jobs)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// versionCount counts object versions and delete markers under prefix.
func versionCount(t *testing.T, client *s3.Client, bucket, prefix string) int {
	t.Helper()
	n := 0
	pages := s3.NewListObjectVersionsPaginator(client, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Versions) + len(page.DeleteMarkers)
	}
	return n
}

// createLockedBucket creates a versioned bucket with Object Lock and a
// default GOVERNANCE retention, like the raw zone.
func createLockedBucket(t *testing.T, client *s3.Client, region string) string {
	t.Helper()
	bucket := "cairn-test-" + randomLower(8)
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}
	if region != regionA {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if _, err := client.CreateBucket(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObjectLockConfiguration(t.Context(), &s3.PutObjectLockConfigurationInput{
		Bucket: aws.String(bucket),
		ObjectLockConfiguration: &s3types.ObjectLockConfiguration{
			ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
			Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{
				Mode: s3types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1),
			}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	return bucket
}

func TestDeleteBucketsPurgesEveryVersion(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	e, calls := newEngine(t, endpoint)
	client := s3Client(endpoint, regionB)

	// More than one DeleteObjects batch: 700 keys x 2 versions + 350
	// delete markers = 1750 entries.
	big := createLockedBucket(t, client, regionB)
	putVersions(t, client, big, "raw/", 700, 2)
	small := createLockedBucket(t, client, regionB)
	putVersions(t, client, small, "", 3, 1)
	if n := versionCount(t, client, big, ""); n != 1750 {
		t.Fatalf("%d versions in %s, want 1750", n, big)
	}

	// The retention holds without the bypass: the purge is not trivially
	// allowed by the emulator.
	versions, err := client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(small)})
	if err != nil {
		t.Fatal(err)
	}
	locked := versions.Versions[0]
	out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(small),
		Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: locked.Key, VersionId: locked.VersionId}}},
	})
	if err != nil || len(out.Errors) != 1 || aws.ToString(out.Errors[0].Code) != "AccessDenied" {
		t.Errorf("DeleteObjects of a locked version without bypass: %v, %+v; want one AccessDenied", err, out)
	}

	calls.Reset()
	if err := e.DeleteBuckets(ctx, regionB, []string{big, "cairn-test-absent-" + randomLower(6), small}); err != nil {
		t.Fatal(err)
	}
	for _, bucket := range []string{big, small} {
		if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); apiErrorCode(err) != "NotFound" {
			t.Errorf("HeadBucket %s after DeleteBuckets: %v, want NotFound", bucket, err)
		}
	}
	// 1750 entries need two batches of at most 1000; 3 entries one more.
	if got := calls.Total("S3.DeleteObjects"); got != 3 {
		t.Errorf("%d DeleteObjects calls, want 3", got)
	}
	// The absent bucket is known absent from its listing already.
	if got := calls.Total("S3.DeleteBucket"); got != 2 {
		t.Errorf("%d DeleteBucket calls, want 2", got)
	}
}

func TestDeletePrefix(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	e, _ := newEngine(t, endpoint)
	client := s3Client(endpoint, regionA)
	bucket := createLockedBucket(t, client, regionA)
	putVersions(t, client, bucket, "tenants/ten_a/", 5, 2)
	putVersions(t, client, bucket, "tenants/ten_ab/", 4, 1)

	for range 2 {
		if err := e.DeletePrefix(ctx, regionA, bucket, "tenants/ten_a/"); err != nil {
			t.Fatal(err)
		}
	}
	if n := versionCount(t, client, bucket, "tenants/ten_a/"); n != 0 {
		t.Errorf("%d versions left under the prefix", n)
	}
	if n := versionCount(t, client, bucket, "tenants/ten_ab/"); n != 4+2 {
		t.Errorf("%d versions under the other tenant's prefix, want 6", n)
	}
	if err := e.DeletePrefix(ctx, regionA, "cairn-test-absent-"+randomLower(6), "tenants/x/"); err != nil {
		t.Errorf("DeletePrefix in an absent bucket: %v", err)
	}
	if err := e.DeletePrefix(ctx, regionA, bucket, ""); err == nil {
		t.Error("DeletePrefix with an empty prefix succeeded")
	}
}

func TestGlueDatabase(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	e, _ := newEngine(t, endpoint)
	name := templates.PooledGlueDatabase("p"+randomLower(4), tenantID())
	location := "s3://cairn-curated/tenants/" + name + "/"
	tags := map[string]string{"cairn:tenant-id": "x", "cairn:managed-by": "cairn"}
	for _, loc := range []string{location, "s3://elsewhere/"} {
		if err := e.EnsureDatabase(ctx, regionB, name, loc, tags); err != nil {
			t.Fatal(err)
		}
	}
	client := glueClient(endpoint, regionB)
	db, err := client.GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(db.Database.LocationUri); got != location {
		t.Errorf("location %q, want %q (the second ensure must not change it)", got, location)
	}
	if _, err := glueClient(endpoint, regionA).GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String(name)}); apiErrorCode(err) != "EntityNotFoundException" {
		t.Errorf("GetDatabase in the other Region: %v, want EntityNotFoundException", err)
	}
	for range 2 {
		if err := e.DeleteDatabase(ctx, regionB, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String(name)}); apiErrorCode(err) != "EntityNotFoundException" {
		t.Errorf("GetDatabase after DeleteDatabase: %v, want EntityNotFoundException", err)
	}
}

func TestStackEventsNotFound(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	e, _ := newEngine(t, endpoint)
	_, err := e.StackEvents(t.Context(), regionA, stackName("absent"))
	if !errors.Is(err, provisioner.ErrStackNotFound) {
		t.Errorf("StackEvents of an absent stack: %v, want ErrStackNotFound", err)
	}
	if err := e.DeleteStack(t.Context(), regionA, stackName("absent"), "t"); err != nil {
		t.Errorf("DeleteStack of an absent stack: %v", err)
	}
}

func TestRegionRequired(t *testing.T) {
	cfg := awstest.Config(regionA)
	e, err := cfn.New(t.Context(), cfn.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	errs := []error{
		func() error { _, err := e.Stacks(ctx, ""); return err }(),
		e.CreateStack(ctx, provisioner.CreateStackInput{Name: "cairn-x"}),
		e.DeleteStack(ctx, "", "cairn-x", ""),
		func() error { _, err := e.StackEvents(ctx, "", "cairn-x"); return err }(),
		e.EnsureDatabase(ctx, "", "db", "", nil),
		e.DeleteDatabase(ctx, "", "db"),
		e.DeleteBuckets(ctx, "", []string{"b"}),
		e.DeletePrefix(ctx, "", "b", "p/"),
	}
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "region is required") {
			t.Errorf("call %d with no Region: %v", i, err)
		}
	}
	if _, err := cfn.New(ctx, cfn.Config{AWS: awsclient.Settings{AWS: &cfg, MaxAttempts: -1}}); err == nil {
		t.Error("New accepted MaxAttempts -1")
	}
}

func TestThrottledDescribeStacksIsRetried(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	proxy := newProxy(t, endpoint)
	e, calls := newEngine(t, proxy.URL)
	name := stackName("throttle")
	createMinimal(t, e, regionA, name)

	calls.Reset()
	rule := proxy.Throttle("DescribeStacks", 3)
	stacks, err := e.Stacks(t.Context(), regionA)
	if err != nil {
		t.Fatal(err)
	}
	if s := stacks[name]; s.Status != provisioner.StackCreateComplete || s.Outputs["Answer"] != "42" {
		t.Errorf("Stacks has %+v", s)
	}
	if rule.Remaining() != 0 {
		t.Errorf("%d throttles left", rule.Remaining())
	}
	pages := int64(proxy.Calls("DescribeStacks"))
	if got := calls.Total("CloudFormation.DescribeStacks"); got != pages {
		t.Errorf("%d DescribeStacks calls for %d pages, want one per page", got, pages)
	}
	if got := calls.Attempts("CloudFormation.DescribeStacks"); got != pages+3 {
		t.Errorf("%d DescribeStacks attempts, want %d pages + 3 throttled", got, pages)
	}
}

func TestDroppedCreateStackIsRetried(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	proxy := newProxy(t, endpoint)
	e, calls := newEngine(t, proxy.URL)

	cases := []struct {
		name       string
		fault      func(op string, n int) *awsfault.Rule
		reachMoto  int // CreateStack calls that reached the emulator
		sentByTest int64
	}{
		// The request is lost: moto sees only the retry.
		{"request lost", proxy.Drop, 1, 2},
		// The answer is lost: moto creates the stack, then answers the
		// retry with AlreadyExistsException, which CreateStack turns into
		// success.
		{"answer lost", proxy.DropResponse, 2, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := stackName("drop")
			proxy.Reset()
			calls.Reset()
			c.fault("CreateStack", 1)
			createMinimal(t, e, regionA, name)
			if got := proxy.Calls("CreateStack"); got != c.reachMoto {
				t.Errorf("%d CreateStack calls reached moto, want %d", got, c.reachMoto)
			}
			if got := calls.Total("CloudFormation.CreateStack"); got != 1 {
				t.Errorf("%d CreateStack calls, want 1", got)
			}
			if got := calls.Attempts("CloudFormation.CreateStack"); got != c.sentByTest {
				t.Errorf("%d CreateStack attempts, want %d", got, c.sentByTest)
			}
			if n := countStacksNamed(t, endpoint, regionA, name); n != 1 {
				t.Errorf("%d stacks named %s, want 1", n, name)
			}
		})
	}
}

func TestStacksReflectsInProgressAndRollback(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	proxy := newProxy(t, endpoint)
	e, _ := newEngine(t, proxy.URL)
	slow, failed := stackName("slow"), stackName("failed")
	createMinimal(t, e, regionA, slow)
	createMinimal(t, e, regionA, failed)

	proxy.HoldInProgress(slow, 2)
	const reason = "The following resource(s) failed to create: [RawZoneBucket]."
	fail := proxy.FailStack(failed, provisioner.StackRollbackComplete, reason)
	for poll := range 3 {
		stacks, err := e.Stacks(t.Context(), regionA)
		if err != nil {
			t.Fatal(err)
		}
		s := stacks[slow]
		if poll < 2 {
			if s.Status != provisioner.StackCreateInProgress || len(s.Outputs) != 0 {
				t.Errorf("poll %d: %s is %s with outputs %v, want CREATE_IN_PROGRESS and none", poll, slow, s.Status, s.Outputs)
			}
		} else if s.Status != provisioner.StackCreateComplete || s.Outputs["Answer"] != "42" {
			t.Errorf("poll %d: %s is %s with outputs %v, want CREATE_COMPLETE", poll, slow, s.Status, s.Outputs)
		}
		f := stacks[failed]
		if f.Status != provisioner.StackRollbackComplete || f.Reason != reason {
			t.Errorf("poll %d: %s is %s (%q), want ROLLBACK_COMPLETE (%q)", poll, failed, f.Status, f.Reason, reason)
		}
	}
	fail.Remove()
	stacks, err := e.Stacks(t.Context(), regionA)
	if err != nil {
		t.Fatal(err)
	}
	if s := stacks[failed]; s.Status != provisioner.StackCreateComplete || s.Reason != "" {
		t.Errorf("after the rule: %s is %s (%q)", failed, s.Status, s.Reason)
	}
}

// TestStacksOneCallPerPage creates more stacks than one DescribeStacks page
// holds (moto pages by 50; AWS by a size limit) in a Region no other test
// uses, and checks that Stacks costs one call per page.
func TestStacksOneCallPerPage(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	proxy := newProxy(t, endpoint)
	e, calls := newEngine(t, proxy.URL)
	names := make([]string, 60)
	for i := range names {
		names[i] = stackName(fmt.Sprintf("page%02d", i))
		createMinimal(t, e, pagingRegion, names[i])
	}

	var stackIDs atomic.Int64
	proxy.Rewrite("DescribeStacks", func(body []byte) []byte {
		stackIDs.Add(int64(strings.Count(string(body), "<StackId>")))
		return body
	})
	calls.Reset()
	stacks, err := e.Stacks(t.Context(), pagingRegion)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, ok := stacks[name]; !ok {
			t.Errorf("Stacks lacks %s", name)
		}
	}
	pages := int64(proxy.Calls("DescribeStacks"))
	if n := stackIDs.Load(); pages < 2 || pages != (n+49)/50 {
		t.Errorf("%d DescribeStacks pages for %d stacks, want ceil(n/50) >= 2", pages, n)
	}
	if got := calls.Total("CloudFormation.DescribeStacks"); got != pages {
		t.Errorf("%d DescribeStacks calls for %d pages", got, pages)
	}
	if snap := calls.Snapshot(); len(snap) != 1 {
		t.Errorf("calls %v, want DescribeStacks only", snap)
	}
}

// TestNewHonoursEndpointEnvironment builds an Engine from the environment
// alone, as the server does: AWS_ENDPOINT_URL for every service, and
// AWS_ENDPOINT_URL_CLOUDFORMATION overriding it for CloudFormation.
func TestNewHonoursEndpointEnvironment(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	proxy := newProxy(t, endpoint)
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", proxy.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", regionA)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	e, err := cfn.New(t.Context(), cfn.Config{AWS: awsclient.Settings{MaxBackoff: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	// Config.MaxAttempts (default 8) wins over AWS_MAX_ATTEMPTS=1.
	proxy.Throttle("DescribeStacks", 1)
	if _, err := e.Stacks(t.Context(), regionA); err != nil {
		t.Fatal(err)
	}
	if proxy.Received("DescribeStacks") < 2 {
		t.Errorf("DescribeStacks did not go through AWS_ENDPOINT_URL_CLOUDFORMATION or was not retried: %d received", proxy.Received("DescribeStacks"))
	}
	name := "cairn_env_" + randomLower(6)
	if err := e.EnsureDatabase(t.Context(), regionA, name, "", nil); err != nil {
		t.Fatal(err)
	}
	if proxy.Received("CreateDatabase") != 0 {
		t.Error("Glue went through the CloudFormation endpoint")
	}
	if _, err := glueClient(endpoint, regionA).GetDatabase(t.Context(), &glue.GetDatabaseInput{Name: aws.String(name)}); err != nil {
		t.Errorf("database not created through AWS_ENDPOINT_URL: %v", err)
	}
	if err := e.DeleteDatabase(t.Context(), regionA, name); err != nil {
		t.Fatal(err)
	}
}

// TestStackServiceRole checks that an Engine with a RoleARN has
// CloudFormation create and delete its stacks with that role, as the
// control plane's template runs it (CAIRN_STACK_ROLE_ARN).
func TestStackServiceRole(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	const role = "arn:aws:iam::123456789012:role/cairn-control-plane/stacks"
	cfg := awstest.Config(regionA)
	e, err := cfn.New(ctx, cfn.Config{AWS: awsclient.Settings{AWS: &cfg, EndpointURL: endpoint, MaxBackoff: 5 * time.Millisecond}, RoleARN: role})
	if err != nil {
		t.Fatal(err)
	}
	name, poolID := stackName("role"), "p"+randomLower(6)
	err = e.CreateStack(ctx, provisioner.CreateStackInput{
		Region: regionA, Name: name, Template: templates.Pool(),
		Parameters: map[string]string{"PoolId": poolID}, Token: "create-" + name,
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfnClient(endpoint, regionA).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Stacks) != 1 || aws.ToString(out.Stacks[0].RoleARN) != role {
		t.Fatalf("stack %s: %+v, want one stack with RoleARN %s", name, out.Stacks, role)
	}
	if err := e.DeleteStack(ctx, regionA, name, "delete-"+name); err != nil {
		t.Fatal(err)
	}
	if n := countStacksNamed(t, endpoint, regionA, name); n != 0 {
		t.Errorf("%d stacks named %s after DeleteStack, want 0", n, name)
	}
}
