package rawzone_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/awsclient/awstest"
	"github.com/cairn-cdp/cairn/internal/awsfault"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone"
	"github.com/cairn-cdp/cairn/internal/profiles/rawzone/rawzonetest"
)

// Regions of the S3 tests; us-east-1 buckets take no location constraint.
const (
	regionA = "us-east-1"
	regionB = "eu-west-1"
)

// s3Client is a raw client, to check through the S3 API what the raw zone
// did and to set buckets up.
func s3Client(endpoint, region string) *s3.Client {
	return s3.NewFromConfig(awstest.Config(regionA), func(o *s3.Options) {
		o.Region, o.BaseEndpoint, o.UsePathStyle = region, aws.String(endpoint), true
	})
}

func newS3(t *testing.T, endpoint string, calls *awsclient.CallCounter, locate func(context.Context, string) (profiles.RawZoneLocation, error)) *rawzone.S3 {
	t.Helper()
	cfg := awstest.Config(regionA)
	z, err := rawzone.NewS3(t.Context(), rawzone.Config{
		AWS:    awsclient.Settings{AWS: &cfg, EndpointURL: endpoint, Calls: calls, MaxBackoff: 5 * time.Millisecond},
		Locate: locate,
	})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// bucketKind is how a test bucket is made.
type bucketKind int

const (
	unversioned bucketKind = iota
	versioned
	// locked is the raw zone's kind: versioned, with Object Lock and a
	// default GOVERNANCE retention.
	locked
)

func createBucket(t *testing.T, client *s3.Client, region string, kind bucketKind) profiles.RawZoneLocation {
	t.Helper()
	ctx := t.Context()
	bucket := "cairn-test-raw-" + strings.ToLower(rand.Text()[:10])
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region != regionA {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if kind == locked {
		in.ObjectLockEnabledForBucket = aws.Bool(true) // which turns versioning on
	}
	if _, err := client.CreateBucket(ctx, in); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case versioned:
		if _, err := client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(bucket),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
		}); err != nil {
			t.Fatal(err)
		}
	case locked:
		if _, err := client.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
			Bucket: aws.String(bucket),
			ObjectLockConfiguration: &s3types.ObjectLockConfiguration{
				ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
				Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{
					Mode: s3types.ObjectLockRetentionModeGovernance, Days: aws.Int32(30),
				}},
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	return profiles.RawZoneLocation{Region: region, Bucket: bucket}
}

// versions returns the lines of every version of key, through the raw
// client: ListObjectVersions, then GetObject of each version.
func versions(t *testing.T, client *s3.Client, loc profiles.RawZoneLocation, key string) [][][]byte {
	t.Helper()
	ctx := t.Context()
	var out [][][]byte
	pages := s3.NewListObjectVersionsPaginator(client, &s3.ListObjectVersionsInput{Bucket: aws.String(loc.Bucket), Prefix: aws.String(key)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			if aws.ToString(v.Key) != key {
				continue
			}
			in := &s3.GetObjectInput{Bucket: aws.String(loc.Bucket), Key: v.Key}
			if id := aws.ToString(v.VersionId); id != "" && id != "null" {
				in.VersionId = v.VersionId
			}
			obj, err := client.GetObject(ctx, in)
			if err != nil {
				t.Fatalf("get %s version %s: %v", key, aws.ToString(v.VersionId), err)
			}
			body, err := io.ReadAll(obj.Body)
			_ = obj.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			lines, err := gunzipLines(body)
			if err != nil {
				t.Fatalf("version %s of %s: %v", aws.ToString(v.VersionId), key, err)
			}
			out = append(out, lines)
		}
	}
	return out
}

func TestS3Contract(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	for _, tt := range []struct {
		name   string
		region string
		kind   bucketKind
	}{
		{"Versioned", regionA, versioned},
		{"ObjectLock", regionB, locked},
		{"Unversioned", regionA, unversioned},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := s3Client(endpoint, tt.region)
			rawzonetest.Run(t, rawzonetest.Harness{
				NewBucket: func(t *testing.T) profiles.RawZoneLocation { return createBucket(t, client, tt.region, tt.kind) },
				New: func(t *testing.T, locate func(context.Context, string) (profiles.RawZoneLocation, error)) profiles.RawZone {
					return newS3(t, endpoint, nil, locate)
				},
				Versions: func(t *testing.T, loc profiles.RawZoneLocation, key string) [][][]byte {
					return versions(t, client, loc, key)
				},
			})
		})
	}
}

// TestS3ObjectLock checks what the contract cannot see: that objects are
// stored as gzip NDJSON with a SHA-256 checksum, that the bucket's default
// retention does lock them (a delete without the bypass is refused), and
// the number of calls each operation makes.
func TestS3ObjectLock(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	client := s3Client(endpoint, regionB)
	loc := createBucket(t, client, regionB, locked)
	loc.Prefix = "tenants/ten_x/"
	calls := &awsclient.CallCounter{}
	z := newS3(t, endpoint, calls, func(context.Context, string) (profiles.RawZoneLocation, error) { return loc, nil })

	lines := [][]byte{[]byte(`{"messageId":"m1"}`), []byte(`{"messageId":"m2"}`), []byte(`{"messageId":"m3"}`)}
	key, err := z.Append(ctx, "ten_x", time.Now(), lines)
	if err != nil {
		t.Fatal(err)
	}
	if got := calls.Snapshot(); !cmp.Equal(got, map[string]int64{"S3.PutObject": 1}) {
		t.Errorf("append made calls %v, want one PutObject", got)
	}
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ContentType) != rawzone.ContentType || aws.ToString(head.ContentEncoding) != "gzip" {
		t.Errorf("content type %q, encoding %q; want %q, gzip", aws.ToString(head.ContentType), aws.ToString(head.ContentEncoding), rawzone.ContentType)
	}
	if aws.ToString(head.ChecksumSHA256) == "" {
		t.Error("object has no SHA-256 checksum")
	}
	if head.ObjectLockMode != s3types.ObjectLockModeGovernance || head.ObjectLockRetainUntilDate == nil {
		t.Errorf("object lock %q until %v, want GOVERNANCE retention", head.ObjectLockMode, head.ObjectLockRetainUntilDate)
	}
	first := aws.ToString(head.VersionId)
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(key), VersionId: aws.String(first)}); apiErrorCode(err) != "AccessDenied" {
		t.Fatalf("delete of a locked version without bypass: %v, want AccessDenied", err)
	}

	calls.Reset()
	if n, err := z.Rewrite(ctx, "ten_x", key, func(l []byte) bool { return !bytes.Contains(l, []byte("m2")) }); err != nil || n != 1 {
		t.Fatalf("rewrite = %d, %v; want 1", n, err)
	}
	// Get, conditional put, list the versions, delete the old one.
	want := map[string]int64{"S3.GetObject": 1, "S3.PutObject": 1, "S3.ListObjectVersions": 1, "S3.DeleteObjects": 1}
	if got := calls.Snapshot(); !cmp.Equal(got, want) {
		t.Errorf("rewrite made calls %v, want %v", got, want)
	}
	if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(key), VersionId: aws.String(first)}); err == nil {
		t.Errorf("version %s survived the rewrite", first)
	}
	head, err = client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if head.ObjectLockMode != s3types.ObjectLockModeGovernance {
		t.Errorf("the rewritten object's lock is %q, want GOVERNANCE", head.ObjectLockMode)
	}
}

// TestS3RewriteFinishes: versions a Rewrite left behind (one that died
// between its put and its deletes) or that a delete marker hides are
// deleted by the next Rewrite, even one that removes no line.
func TestS3RewriteFinishes(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	client := s3Client(endpoint, regionA)
	loc := createBucket(t, client, regionA, locked)
	z := newS3(t, endpoint, nil, func(context.Context, string) (profiles.RawZoneLocation, error) { return loc, nil })

	old := [][]byte{[]byte(`{"messageId":"keep"}`), []byte(`{"messageId":"erased"}`)}
	key, err := z.Append(ctx, "ten_x", time.Now(), old)
	if err != nil {
		t.Fatal(err)
	}
	// What a Rewrite that died after its put leaves: the filtered version
	// current, the old one noncurrent.
	putRaw(t, client, loc.Bucket, key, [][]byte{old[0]})
	if n := len(versions(t, client, loc, key)); n != 2 {
		t.Fatalf("%d versions, want 2", n)
	}
	if n, err := z.Rewrite(ctx, "ten_x", key, func([]byte) bool { return true }); err != nil || n != 0 {
		t.Fatalf("rewrite keeping all = %d, %v; want 0", n, err)
	}
	if diff := cmp.Diff([][][]byte{{old[0]}}, versions(t, client, loc, key)); diff != "" {
		t.Errorf("versions after the rewrite (-want +got):\n%s", diff)
	}

	// A delete marker hides the object; the versions under it still hold
	// its lines until a Rewrite deletes them.
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	if _, err := z.Read(ctx, "ten_x", key); !errors.Is(err, rawzone.ErrNotFound) {
		t.Errorf("read behind a delete marker = %v, want ErrNotFound", err)
	}
	if n, err := z.Rewrite(ctx, "ten_x", key, func([]byte) bool { return false }); err != nil || n != 0 {
		t.Fatalf("rewrite behind a delete marker = %d, %v; want 0", n, err)
	}
	out, err := client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(loc.Bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Versions)+len(out.DeleteMarkers) != 0 {
		t.Errorf("%d versions and %d delete markers left, want none", len(out.Versions), len(out.DeleteMarkers))
	}
}

// TestS3RewriteRace: two replicas rewrite one object at once. The second
// replica's Rewrite runs, whole, between the first one's read and its put
// (from inside keep), so the first one's conditional put fails and it
// reads the object again: both erasures hold, and no version keeps either
// line. Within one process Rewrites queue up, so only a second S3 shows
// this; a goroutine race would not do either, because the emulator does
// not check If-Match atomically.
func TestS3RewriteRace(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	client := s3Client(endpoint, regionB)
	loc := createBucket(t, client, regionB, locked)
	locate := func(context.Context, string) (profiles.RawZoneLocation, error) { return loc, nil }
	calls := &awsclient.CallCounter{}
	first, second := newS3(t, endpoint, calls, locate), newS3(t, endpoint, nil, locate)

	lines := [][]byte{[]byte(`{"messageId":"a"}`), []byte(`{"messageId":"b"}`), []byte(`{"messageId":"c"}`)}
	key, err := first.Append(ctx, "ten_x", time.Now(), lines)
	if err != nil {
		t.Fatal(err)
	}
	raced := false
	n, err := first.Rewrite(ctx, "ten_x", key, func(line []byte) bool {
		if !raced {
			raced = true
			if n, err := second.Rewrite(ctx, "ten_x", key, func(l []byte) bool { return !bytes.Contains(l, []byte(`"b"`)) }); err != nil || n != 1 {
				t.Errorf("second replica's rewrite = %d, %v; want 1", n, err)
			}
		}
		return !bytes.Contains(line, []byte(`"a"`))
	})
	if err != nil || n != 1 {
		t.Fatalf("first replica's rewrite = %d, %v; want 1", n, err)
	}
	if got := calls.Total("S3.PutObject"); got != 1+2 {
		t.Errorf("%d PutObject calls by the first replica, want 3 (append, lost put, put)", got)
	}
	if diff := cmp.Diff([][][]byte{{lines[2]}}, versions(t, client, loc, key)); diff != "" {
		t.Errorf("versions after the race (-want +got):\n%s", diff)
	}
}

// TestS3Retries: throttling and lost answers are retried, and a put S3
// applied whose answer was lost leaves the object right.
func TestS3Retries(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := t.Context()
	proxy, err := awsfault.New(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	client := s3Client(endpoint, regionA)
	loc := createBucket(t, client, regionA, locked)
	z := newS3(t, proxy.URL, nil, func(context.Context, string) (profiles.RawZoneLocation, error) { return loc, nil })

	proxy.Throttle("s3:PutObject", 2)
	lines := [][]byte{[]byte(`{"messageId":"a"}`), []byte(`{"messageId":"b"}`)}
	key, err := z.Append(ctx, "ten_x", time.Now(), lines)
	if err != nil {
		t.Fatalf("append through throttling: %v", err)
	}
	proxy.DropResponse("s3:GetObject", 1)
	proxy.DropResponse("s3:PutObject", 1)
	proxy.Throttle("s3:DeleteObjects", 1)
	if _, err := z.Rewrite(ctx, "ten_x", key, func(l []byte) bool { return !bytes.Contains(l, []byte(`"a"`)) }); err != nil {
		t.Fatalf("rewrite through faults: %v", err)
	}
	if diff := cmp.Diff([][][]byte{{lines[1]}}, versions(t, client, loc, key)); diff != "" {
		t.Errorf("versions after the rewrite (-want +got):\n%s", diff)
	}
}

func TestNewS3Validates(t *testing.T) {
	cfg := awstest.Config(regionA)
	locate := func(context.Context, string) (profiles.RawZoneLocation, error) {
		return profiles.RawZoneLocation{}, nil
	}
	for name, c := range map[string]rawzone.Config{
		"no Locate":        {AWS: awsclient.Settings{AWS: &cfg}},
		"negative retries": {AWS: awsclient.Settings{AWS: &cfg, MaxAttempts: -1}, Locate: locate},
		"negative backoff": {AWS: awsclient.Settings{AWS: &cfg, MaxBackoff: -time.Second}, Locate: locate},
	} {
		if _, err := rawzone.NewS3(t.Context(), c); err == nil {
			t.Errorf("NewS3 with %s succeeded", name)
		}
	}
}

// putRaw puts lines under key as the raw zone would, through the raw
// client.
func putRaw(t *testing.T, client *s3.Client, bucket, key string, lines [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, l := range lines {
		_, _ = zw.Write(append(bytes.Clone(l), '\n'))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes()),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
	}); err != nil {
		t.Fatal(err)
	}
}

func apiErrorCode(err error) string {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return apiErr.ErrorCode()
	}
	return ""
}
