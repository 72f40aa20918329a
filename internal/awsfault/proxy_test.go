package awsfault

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// describeStacksXML is a DescribeStacks answer as moto writes it: stack a
// complete with outputs, stack b complete without a reason, and a deleted
// stack also named a (which rewrites must leave alone).
const describeStacksXML = `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks>` +
	`<member><StackId>arn:a</StackId><StackName>cairn-a</StackName><Parameters><member><ParameterKey>StackStatus</ParameterKey><ParameterValue>x</ParameterValue></member></Parameters>` +
	`<CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs><member><OutputKey>RawBucket</OutputKey><OutputValue>raw-a</OutputValue></member></Outputs><Tags/></member>` +
	`<member><StackId>arn:b</StackId><StackName>cairn-b</StackName><CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs/></member>` +
	`<member><StackId>arn:a-old</StackId><StackName>cairn-a</StackName><CreationTime>2025-01-01T00:00:00Z</CreationTime><StackStatus>DELETE_COMPLETE</StackStatus><StackStatusReason>old</StackStatusReason></member>` +
	`</Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeStacksResponse>`

// backend is a fake emulator that records what reaches it.
type backend struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	hosts  []string
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, body)
		b.hosts = append(b.hosts, r.Host)
		b.mu.Unlock()
		switch {
		case bytes.Contains(body, []byte("Action=DescribeStacks")):
			w.Header().Set("Content-Type", "text/xml")
			_, _ = io.WriteString(w, describeStacksXML)
		case bytes.Contains(body, []byte("Action=CreateStack")):
			w.Header().Set("Content-Type", "text/xml")
			_, _ = io.WriteString(w, `<CreateStackResponse><CreateStackResult><StackId>arn:x</StackId></CreateStackResult></CreateStackResponse>`)
		case r.Header.Get("X-Amz-Target") != "":
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			_, _ = io.WriteString(w, `{}`)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.bodies)
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func awsConfig(endpoint string, attempts int) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				// No delay between attempts: these tests are about the wire.
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
}

func cfnClient(endpoint string, attempts int) *cloudformation.Client {
	return cloudformation.NewFromConfig(awsConfig(endpoint, attempts))
}

func apiErrorCode(t *testing.T, err error) string {
	t.Helper()
	apiErr, ok := errors.AsType[smithy.APIError](err)
	if !ok {
		t.Fatalf("error %v is not an API error", err)
	}
	return apiErr.ErrorCode()
}

func TestNewRejectsBadTarget(t *testing.T) {
	for _, target := range []string{"", "127.0.0.1:5000", "ftp://x", "http://"} {
		if p, err := New(target); err == nil {
			p.Close()
			t.Errorf("New(%q) = nil error", target)
		}
	}
}

func TestForwardsQueryBodyUnchanged(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	client := cfnClient(p.URL, 1)
	_, err := client.CreateStack(t.Context(), &cloudformation.CreateStackInput{
		StackName:    aws.String("cairn-x"),
		TemplateBody: aws.String("Resources: {}\n# " + strings.Repeat("x", 5000)),
	})
	if err != nil {
		t.Fatal(err)
	}
	reqs := b.requests()
	if len(reqs) != 1 {
		t.Fatalf("backend got %d requests, want 1", len(reqs))
	}
	if !bytes.HasPrefix(reqs[0], []byte("Action=CreateStack&")) || !bytes.Contains(reqs[0], []byte("%0A%23+"+strings.Repeat("x", 5000)+"&Version=2010-05-15")) {
		t.Errorf("backend got body %.80q..., want the CreateStack form", reqs[0])
	}
	if got := b.hosts[0]; got != strings.TrimPrefix(p.URL, "http://") {
		t.Errorf("backend got Host %q, want the proxy's (the signed one)", got)
	}
	if p.Calls("CreateStack") != 1 || p.Calls("cloudformation:CreateStack") != 1 || p.Received("CreateStack") != 1 {
		t.Errorf("Calls = %d, qualified %d, Received %d, want 1 each",
			p.Calls("CreateStack"), p.Calls("cloudformation:CreateStack"), p.Received("CreateStack"))
	}
}

func TestThrottleQuery(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	rule := p.Throttle("DescribeStacks", 2)

	// Without retries the client sees CloudFormation's own throttling error.
	_, err := cfnClient(p.URL, 1).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{})
	if code := apiErrorCode(t, err); code != "Throttling" {
		t.Fatalf("error code %q, want Throttling", code)
	}
	var respErr interface{ HTTPStatusCode() int }
	if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != http.StatusBadRequest {
		t.Errorf("error %v, want HTTP 400", err)
	}
	if !strings.Contains(err.Error(), "Rate exceeded") {
		t.Errorf("error %v, want message Rate exceeded", err)
	}
	if rule.Remaining() != 1 {
		t.Errorf("Remaining = %d, want 1", rule.Remaining())
	}

	// With retries the standard retryer gets through.
	out, err := cfnClient(p.URL, 3).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Stacks) != 3 {
		t.Errorf("got %d stacks, want 3", len(out.Stacks))
	}
	if rule.Remaining() != 0 {
		t.Errorf("Remaining = %d, want 0", rule.Remaining())
	}
	if got, want := p.Received("DescribeStacks"), 3; got != want {
		t.Errorf("Received = %d, want %d", got, want)
	}
	if got, want := p.Calls("DescribeStacks"), 1; got != want {
		t.Errorf("Calls = %d, want %d (throttled calls are not forwarded)", got, want)
	}
	if len(b.requests()) != 1 {
		t.Errorf("backend got %d requests, want 1", len(b.requests()))
	}
}

func TestThrottleJSONAndS3(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	p.Throttle("glue:CreateDatabase", 1)
	p.Throttle("DeleteBucket", 1)
	cfg := awsConfig(p.URL, 1)

	_, err := glue.NewFromConfig(cfg).CreateDatabase(t.Context(), &glue.CreateDatabaseInput{
		DatabaseInput: &gluetypes.DatabaseInput{Name: aws.String("db")},
	})
	if code := apiErrorCode(t, err); code != "ThrottlingException" {
		t.Errorf("glue error code %q, want ThrottlingException", code)
	}
	_, err = s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).
		DeleteBucket(t.Context(), &s3.DeleteBucketInput{Bucket: aws.String("bkt")})
	if code := apiErrorCode(t, err); code != "SlowDown" {
		t.Errorf("s3 error code %q, want SlowDown", code)
	}
	if len(b.requests()) != 0 {
		t.Errorf("backend got %d requests, want none", len(b.requests()))
	}
}

func TestFail(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	p.Fail("CreateStack", 1, http.StatusInternalServerError, "InternalFailure", "boom <&>")
	_, err := cfnClient(p.URL, 1).CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String("cairn-x")})
	if code := apiErrorCode(t, err); code != "InternalFailure" {
		t.Errorf("error code %q, want InternalFailure", code)
	}
	if !strings.Contains(err.Error(), "boom <&>") {
		t.Errorf("error %v, want the message unescaped", err)
	}
	if _, err := cfnClient(p.URL, 1).CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String("cairn-x")}); err != nil {
		t.Errorf("second call: %v, want the rule used up", err)
	}
}

func TestDrop(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	p.Drop("CreateStack", 1)
	_, err := cfnClient(p.URL, 1).CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String("cairn-x")})
	if err == nil {
		t.Fatal("CreateStack succeeded through a dropped connection")
	}
	if !retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool() {
		t.Errorf("error %v is not retryable by the SDK's defaults", err)
	}
	if len(b.requests()) != 0 {
		t.Errorf("backend got %d requests, want none", len(b.requests()))
	}
	// The retryer gets through the next time.
	p.Drop("CreateStack", 1)
	if _, err := cfnClient(p.URL, 2).CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String("cairn-x")}); err != nil {
		t.Fatal(err)
	}
	if p.Received("CreateStack") != 3 || p.Calls("CreateStack") != 1 {
		t.Errorf("Received %d, Calls %d, want 3 and 1", p.Received("CreateStack"), p.Calls("CreateStack"))
	}
}

func TestDropResponse(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	p.DropResponse("CreateStack", 1)
	if _, err := cfnClient(p.URL, 2).CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String("cairn-x")}); err != nil {
		t.Fatal(err)
	}
	if len(b.requests()) != 2 {
		t.Errorf("backend got %d requests, want 2 (the lost answer's and the retry's)", len(b.requests()))
	}
	if p.Received("CreateStack") != 2 || p.Calls("CreateStack") != 2 {
		t.Errorf("Received %d, Calls %d, want 2 and 2", p.Received("CreateStack"), p.Calls("CreateStack"))
	}
}

func describe(t *testing.T, endpoint string) map[string]cfntypes.Stack {
	t.Helper()
	out, err := cfnClient(endpoint, 1).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{})
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]cfntypes.Stack)
	for _, s := range out.Stacks {
		if s.StackStatus != cfntypes.StackStatusDeleteComplete {
			m[aws.ToString(s.StackName)] = s
		}
	}
	return m
}

func TestHoldInProgress(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	rule := p.HoldInProgress("cairn-a", 2)
	for i := range 3 {
		stacks := describe(t, p.URL)
		a := stacks["cairn-a"]
		want := cfntypes.StackStatusCreateInProgress
		if i == 2 {
			want = cfntypes.StackStatusCreateComplete
		}
		if a.StackStatus != want {
			t.Errorf("poll %d: cairn-a is %s, want %s", i, a.StackStatus, want)
		}
		if got := len(a.Outputs); (want == cfntypes.StackStatusCreateInProgress) != (got == 0) {
			t.Errorf("poll %d: cairn-a has %d outputs in %s", i, got, a.StackStatus)
		}
		if len(a.Parameters) != 1 {
			t.Errorf("poll %d: cairn-a has %d parameters, want 1 (left alone)", i, len(a.Parameters))
		}
		if s := stacks["cairn-b"].StackStatus; s != cfntypes.StackStatusCreateComplete {
			t.Errorf("poll %d: cairn-b is %s, want it untouched", i, s)
		}
	}
	if rule.Remaining() != -1 {
		t.Errorf("Remaining of a rewrite = %d, want -1", rule.Remaining())
	}
	p.mu.Lock()
	n := len(p.rules)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d rules left, want the used-up hold removed", n)
	}
}

func TestHoldInProgressCountsOnlyAnswersWithTheStack(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	p.HoldInProgress("cairn-later", 1)
	describe(t, p.URL) // no cairn-later in it
	p.mu.Lock()
	n := len(p.rules)
	p.mu.Unlock()
	if n != 1 {
		t.Errorf("%d rules left, want the hold still pending", n)
	}
}

func TestFailStack(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	rule := p.FailStack("cairn-b", "ROLLBACK_COMPLETE", "The following resource(s) failed to create: [RawZoneBucket] & more.")
	for range 2 {
		b := describe(t, p.URL)["cairn-b"]
		if b.StackStatus != cfntypes.StackStatusRollbackComplete {
			t.Errorf("cairn-b is %s, want ROLLBACK_COMPLETE", b.StackStatus)
		}
		if got := aws.ToString(b.StackStatusReason); got != "The following resource(s) failed to create: [RawZoneBucket] & more." {
			t.Errorf("reason %q", got)
		}
	}
	rule.Remove()
	rule.Remove()
	if s := describe(t, p.URL)["cairn-b"].StackStatus; s != cfntypes.StackStatusCreateComplete {
		t.Errorf("after Remove cairn-b is %s, want CREATE_COMPLETE", s)
	}

	// A failed creation has no outputs; a failed update keeps them.
	for status, outputs := range map[string]int{"ROLLBACK_COMPLETE": 0, "CREATE_FAILED": 0, "UPDATE_ROLLBACK_COMPLETE": 1} {
		rule := p.FailStack("cairn-a", status, "r")
		a := describe(t, p.URL)["cairn-a"]
		if string(a.StackStatus) != status || len(a.Outputs) != outputs {
			t.Errorf("FailStack %s: cairn-a is %s with %d outputs, want %d", status, a.StackStatus, len(a.Outputs), outputs)
		}
		rule.Remove()
	}
}

func TestRewriteOrderAndNon2xx(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	p.Rewrite("CreateStack", func(body []byte) []byte { return bytes.Replace(body, []byte("arn:x"), []byte("arn:y"), 1) })
	p.Rewrite("CreateStack", func(body []byte) []byte { return bytes.Replace(body, []byte("arn:y"), []byte("arn:z"), 1) })
	out, err := cfnClient(p.URL, 1).CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String("cairn-x")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.StackId); got != "arn:z" {
		t.Errorf("StackId %q, want arn:z (rewrites in order)", got)
	}
}

func TestSetStackStatusLeavesUnparsableBodies(t *testing.T) {
	for _, body := range []string{"", "not xml <", `{"json":true}`} {
		out, found := setStackStatus([]byte(body), "cairn-a", "X", "", true)
		if found || string(out) != body {
			t.Errorf("setStackStatus(%q) = %q, %v", body, out, found)
		}
	}
}

func TestS3Operation(t *testing.T) {
	cases := []struct {
		method, target, copySource, want string
	}{
		{"GET", "/", "", "ListBuckets"},
		{"PUT", "/bkt", "", "CreateBucket"},
		{"HEAD", "/bkt", "", "HeadBucket"},
		{"DELETE", "/bkt", "", "DeleteBucket"},
		{"GET", "/bkt?versions&max-keys=1000&prefix=a%2F", "", "ListObjectVersions"},
		{"GET", "/bkt?list-type=2&prefix=a", "", "ListObjectsV2"},
		{"GET", "/bkt?prefix=a", "", "ListObjects"},
		{"GET", "/bkt?location", "", "GetBucketLocation"},
		{"GET", "/bkt?versioning", "", "GetBucketVersioning"},
		{"PUT", "/bkt?versioning", "", "PutBucketVersioning"},
		{"POST", "/bkt?delete&x-id=DeleteObjects", "", "DeleteObjects"},
		{"PUT", "/bkt/a/b.json?x-id=PutObject", "", "PutObject"},
		{"PUT", "/bkt/a/b.json", "src/k", "CopyObject"},
		{"GET", "/bkt/a/b.json?versionId=3", "", "GetObject"},
		{"HEAD", "/bkt/a", "", "HeadObject"},
		{"DELETE", "/bkt/a?versionId=3", "", "DeleteObject"},
		{"GET", "/bkt?tagging", "", ""},
		{"PUT", "/bkt/a?tagging", "", ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, nil)
		if c.copySource != "" {
			r.Header.Set("X-Amz-Copy-Source", c.copySource)
		}
		if got := s3Operation(r); got != c.want {
			t.Errorf("%s %s = %q, want %q", c.method, c.target, got, c.want)
		}
	}
}

func TestConcurrentRules(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	const calls, throttled = 40, 15
	p.Throttle("DescribeStacks", throttled)
	client := cfnClient(p.URL, 1)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	for range calls {
		wg.Go(func() {
			_, err := client.DescribeStacks(context.Background(), &cloudformation.DescribeStacksInput{})
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		})
		// Rules come and go while calls flow.
		wg.Go(func() { p.FailStack("cairn-a", "ROLLBACK_COMPLETE", "r").Remove() })
	}
	wg.Wait()
	if failed != throttled {
		t.Errorf("%d calls failed, want exactly %d", failed, throttled)
	}
	if p.Received("DescribeStacks") != calls || p.Calls("DescribeStacks") != calls-throttled {
		t.Errorf("Received %d, Calls %d, want %d and %d", p.Received("DescribeStacks"), p.Calls("DescribeStacks"), calls, calls-throttled)
	}
	p.Reset()
	if p.Received("DescribeStacks") != 0 {
		t.Error("Reset kept the counts")
	}
}

func TestSetStackStatusSplices(t *testing.T) {
	type member struct {
		Name    string   `xml:"StackName"`
		Status  string   `xml:"StackStatus"`
		Reason  string   `xml:"StackStatusReason"`
		Outputs []string `xml:"Outputs>member>OutputKey"`
	}
	type doc struct {
		Members []member `xml:"DescribeStacksResult>Stacks>member"`
	}
	const head = `<DescribeStacksResponse xmlns="ns"><DescribeStacksResult><Stacks><member><StackName>s</StackName><StackStatus>CREATE_COMPLETE</StackStatus>`
	const tail = `</member></Stacks></DescribeStacksResult></DescribeStacksResponse>`
	outputs := `<Outputs><member><OutputKey>K</OutputKey></member></Outputs>`
	cases := []struct {
		name, middle, reason string
		drop                 bool
		want                 member
	}{
		{"add reason, drop outputs", outputs, "why", true, member{"s", "X", "why", nil}},
		{"replace reason", `<StackStatusReason>old</StackStatusReason>` + outputs, "new & <why>", false, member{"s", "X", "new & <why>", []string{"K"}}},
		{"remove reason", `<StackStatusReason>old</StackStatusReason><Outputs/>`, "", true, member{"s", "X", "", nil}},
		{"nothing after", ``, "r", true, member{"s", "X", "r", nil}},
	}
	for _, c := range cases {
		out, found := setStackStatus([]byte(head+c.middle+tail), "s", "X", c.reason, c.drop)
		var d doc
		if err := xml.Unmarshal(out, &d); err != nil || !found || len(d.Members) != 1 {
			t.Errorf("%s: %s: %v, found %v", c.name, out, err, found)
			continue
		}
		if got := d.Members[0]; got.Name != c.want.Name || got.Status != c.want.Status || got.Reason != c.want.Reason || !slices.Equal(got.Outputs, c.want.Outputs) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestIdentifyRESTJSON(t *testing.T) {
	b := newBackend(t)
	p := newProxy(t, b.URL)
	p.Throttle("lakeformation:GrantPermissions", 1)
	send := func(path string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, p.URL+path, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/lakeformation/aws4_request, SignedHeaders=host, Signature=x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if resp := send("/GrantPermissions"); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "ThrottlingException" {
		t.Errorf("throttled call: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	if resp := send("/GrantPermissions"); resp.StatusCode != http.StatusOK {
		t.Errorf("second call: %d", resp.StatusCode)
	}
	send("/2015-03-31/functions")
	if p.Received("GrantPermissions") != 2 || p.Calls("lakeformation:GrantPermissions") != 1 {
		t.Errorf("Received %d, Calls %d", p.Received("GrantPermissions"), p.Calls("lakeformation:GrantPermissions"))
	}
}
