package rawzone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/profiles"
)

// Config configures an S3 raw zone. Locate is required; the rest may be
// left zero.
type Config struct {
	// AWS holds the client settings every adapter shares (SDK
	// configuration and credentials, endpoint, retries, call counter).
	// Its AWS.Region is not used: the Region always comes from the
	// tenant's location. With an endpoint set, clients use path-style
	// addressing.
	AWS awsclient.Settings
	// Locate returns where a tenant's raw zone is.
	Locate func(ctx context.Context, tenantID string) (profiles.RawZoneLocation, error)
}

// S3 is the AWS mode's raw zone: objects in the tenant's raw-zone bucket,
// which the provisioning templates create versioned and under Object Lock
// in GOVERNANCE mode with a default retention. Create it with NewS3.
//
// Append is one PutObject, with a SHA-256 checksum (a bucket with default
// retention refuses a put with neither a checksum nor Content-MD5); the
// object is durable when S3 answers.
//
// Rewrite reads the current version, puts the filtered content under the
// same key on condition that the object is still the version read
// (If-Match on its ETag), then deletes every noncurrent version of the key
// (bypassing governance retention), so that no version still holds a
// removed line. A rewrite that keeps no line deletes every version, and so
// does a rewrite of an object that has no current version (already
// erased, or behind a delete marker). On a bucket without versioning the
// put simply replaces the object. Noncurrent versions are deleted even
// when no line is removed, which finishes a Rewrite that died between its
// put and its deletes.
//
// Concurrent Rewrites of one object are safe: in one process they queue
// up, and across processes (replicas) a put that lost the race reads the
// object again, up to rewriteAttempts times before ErrConflict. The count
// returned is of the lines the last round removed: after a lost race, or
// after a put S3 applied but whose answer was lost (the SDK's retry then
// fails its condition), lines an earlier round removed are not counted.
//
// It needs s3:GetObject, s3:PutObject, s3:ListBucket,
// s3:ListBucketVersions, s3:DeleteObjectVersion and
// s3:BypassGovernanceRetention on the tenant's prefix.
//
// Clients, one per Region, are made on first use and cached, as package
// awsclient describes; they retry with the SDK's standard retryer. An S3 is
// safe for concurrent use.
type S3 struct {
	locate  func(ctx context.Context, tenantID string) (profiles.RawZoneLocation, error)
	clients *awsclient.Regional[s3.Client]

	rewrites keyLocks
}

var _ profiles.RawZone = (*S3)(nil)

// rewriteAttempts bounds the rounds of one Rewrite: a round ends early
// when another writer changed the object between the read and the put.
// Each such round is another Rewrite's success, so n concurrent Rewrites
// of one object all finish when n <= rewriteAttempts.
const rewriteAttempts = 8

// maxDeleteObjects is the most keys one DeleteObjects request may carry.
const maxDeleteObjects = 1000

// NewS3 returns an S3 raw zone. It loads the SDK's default configuration
// when cfg.AWS is nil, and fails if that fails, if Locate is nil or if
// MaxAttempts or MaxBackoff is negative. It makes no call.
func NewS3(ctx context.Context, cfg Config) (*S3, error) {
	if cfg.Locate == nil {
		return nil, errors.New("rawzone: Locate is required")
	}
	b, err := cfg.AWS.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("rawzone: %w", err)
	}
	return &S3{
		locate:  cfg.Locate,
		clients: b.RegionalS3(),
	}, nil
}

// zone returns the tenant's location and the client of its Region.
func (z *S3) zone(ctx context.Context, tenantID string) (profiles.RawZoneLocation, *s3.Client, error) {
	loc, err := z.locate(ctx, tenantID)
	if err != nil {
		return profiles.RawZoneLocation{}, nil, fmt.Errorf("locate tenant %s: %w", tenantID, err)
	}
	if err := checkLocation(loc); err != nil {
		return profiles.RawZoneLocation{}, nil, fmt.Errorf("tenant %s: %w", tenantID, err)
	}
	client, err := z.clients.Client(loc.Region)
	if err != nil {
		return profiles.RawZoneLocation{}, nil, fmt.Errorf("tenant %s: %w", tenantID, err)
	}
	return loc, client, nil
}

// Append implements profiles.RawZone.
func (z *S3) Append(ctx context.Context, tenantID string, at time.Time, lines [][]byte) (string, error) {
	loc, client, err := z.zone(ctx, tenantID)
	if err != nil {
		return "", fmt.Errorf("rawzone: append: %w", err)
	}
	body, err := encode(lines)
	if err != nil {
		return "", fmt.Errorf("rawzone: append: %w", err)
	}
	key := newKey(loc.Prefix, at)
	if _, err := put(ctx, client, loc.Bucket, key, body, ""); err != nil {
		return "", fmt.Errorf("rawzone: append %s to bucket %s: %w", key, loc.Bucket, err)
	}
	return key, nil
}

// Rewrite implements profiles.RawZone (see S3 for how).
func (z *S3) Rewrite(ctx context.Context, tenantID, key string, keep func(line []byte) bool) (int, error) {
	loc, client, err := z.zone(ctx, tenantID)
	if err != nil {
		return 0, fmt.Errorf("rawzone: rewrite: %w", err)
	}
	if !inZone(loc, key) {
		return 0, fmt.Errorf("rawzone: rewrite: %w", errNotInZone(tenantID, key))
	}
	unlock, err := z.rewrites.lock(ctx, loc.Region+"/"+loc.Bucket+"/"+key)
	if err != nil {
		return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
	}
	defer unlock()
	for range rewriteAttempts {
		obj, err := get(ctx, client, loc.Bucket, key)
		if errors.Is(err, ErrNotFound) {
			// Already erased, or deleted otherwise (a delete marker, say,
			// from a lifecycle rule): versions left behind may still hold
			// the lines, and the object is gone anyway.
			if err := deleteVersions(ctx, client, loc.Bucket, key, true); err != nil {
				return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
			}
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
		}
		kept := filter(obj.lines, keep)
		removed := len(obj.lines) - len(kept)
		versioned := isVersion(obj.versionID)
		switch {
		case len(kept) == 0:
			// Every version, the "null" one of an unversioned bucket
			// included: a plain DeleteObject would leave a delete marker
			// over the versions of a bucket versioned since the object was
			// written.
			if err := deleteVersions(ctx, client, loc.Bucket, key, true); err != nil {
				return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
			}
			return removed, nil
		case removed > 0:
			body, err := encode(kept)
			if err != nil {
				return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
			}
			versionID, err := put(ctx, client, loc.Bucket, key, body, obj.etag)
			if lostRace(err) {
				continue // another writer changed or deleted it: read it again
			}
			if err != nil {
				return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
			}
			// The bucket may have been versioned since the version read
			// was written, which leaves that one noncurrent.
			versioned = isVersion(versionID)
		}
		if versioned {
			if err := deleteVersions(ctx, client, loc.Bucket, key, false); err != nil {
				return 0, fmt.Errorf("rawzone: rewrite %s: %w", key, err)
			}
		}
		return removed, nil
	}
	return 0, fmt.Errorf("rawzone: rewrite %s after %d attempts: %w", key, rewriteAttempts, ErrConflict)
}

// Read implements profiles.RawZone: the current version's lines. It
// returns ErrNotFound for an object that does not exist.
func (z *S3) Read(ctx context.Context, tenantID, key string) ([][]byte, error) {
	loc, client, err := z.zone(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("rawzone: read: %w", err)
	}
	if !inZone(loc, key) {
		return nil, fmt.Errorf("rawzone: read: %w", errNotInZone(tenantID, key))
	}
	obj, err := get(ctx, client, loc.Bucket, key)
	if err != nil {
		return nil, fmt.Errorf("rawzone: read %s: %w", key, err)
	}
	return obj.lines, nil
}

// List implements profiles.RawZone: the keys of the current objects under
// <prefix>events/, in S3's (lexical) order, one ListObjectsV2 call a
// thousand keys.
func (z *S3) List(ctx context.Context, tenantID string) ([]string, error) {
	loc, client, err := z.zone(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("rawzone: list: %w", err)
	}
	var keys []string
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket: aws.String(loc.Bucket),
		Prefix: aws.String(loc.Prefix + eventsDir),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("rawzone: list bucket %s: %w", loc.Bucket, err)
		}
		for _, o := range page.Contents {
			// Folder markers ("…/") and odd keys are not objects of ours.
			if key := aws.ToString(o.Key); inZone(loc, key) {
				keys = append(keys, key)
			}
		}
	}
	return keys, nil
}

// object is a version of an object as get read it.
type object struct {
	lines     [][]byte
	etag      string
	versionID string
}

// get reads the current version of key; ErrNotFound if there is none.
func get(ctx context.Context, client *s3.Client, bucket, key string) (object, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if errors.As(err, new(*s3types.NoSuchKey)) {
			return object{}, ErrNotFound
		}
		return object{}, fmt.Errorf("get: %w", err)
	}
	defer out.Body.Close()
	lines, err := decode(out.Body)
	if err != nil {
		return object{}, fmt.Errorf("get: %w", err)
	}
	return object{lines: lines, etag: aws.ToString(out.ETag), versionID: aws.ToString(out.VersionId)}, nil
}

// put stores body under key as gzip NDJSON and returns the new version's
// ID ("" or "null" without versioning). A non-empty ifMatch makes the put
// conditional on the current object's ETag.
func put(ctx context.Context, client *s3.Client, bucket, key string, body []byte, ifMatch string) (string, error) {
	in := &s3.PutObjectInput{
		Bucket:            aws.String(bucket),
		Key:               aws.String(key),
		Body:              bytes.NewReader(body),
		ContentLength:     aws.Int64(int64(len(body))),
		ContentType:       aws.String(ContentType),
		ContentEncoding:   aws.String("gzip"),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := client.PutObject(ctx, in)
	if err != nil {
		return "", fmt.Errorf("put: %w", err)
	}
	return aws.ToString(out.VersionId), nil
}

// lostRace reports whether a conditional put failed because the object
// is no longer the version read: changed (412 PreconditionFailed), being
// changed (409 ConditionalRequestConflict) or deleted (404).
func lostRace(err error) bool {
	if err == nil {
		return false
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey":
			return true
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case http.StatusPreconditionFailed, http.StatusConflict, http.StatusNotFound:
			return true
		}
	}
	return false
}

// isVersion reports whether a version ID names a version of a versioned
// bucket (S3 says "null", or nothing, without versioning).
func isVersion(id string) bool { return id != "" && id != "null" }

// deleteVersions deletes the versions and delete markers of key (exactly
// key, not keys it prefixes), bypassing governance retention: every one
// when all is set, else every one but the current version. With all it
// lists again after deleting until nothing is left, so that a version put
// by a concurrent Rewrite between the listing and the delete goes too
// (its lines are a subset of the ones all of which are being removed).
func deleteVersions(ctx context.Context, client *s3.Client, bucket, key string, all bool) error {
	for range rewriteAttempts {
		var doomed []s3types.ObjectIdentifier
		pages := s3.NewListObjectVersionsPaginator(client, &s3.ListObjectVersionsInput{
			Bucket: aws.String(bucket),
			Prefix: aws.String(key),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("list object versions: %w", err)
			}
			for _, v := range page.Versions {
				if aws.ToString(v.Key) == key && (all || !aws.ToBool(v.IsLatest)) {
					doomed = append(doomed, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
				}
			}
			for _, m := range page.DeleteMarkers {
				if aws.ToString(m.Key) == key && (all || !aws.ToBool(m.IsLatest)) {
					doomed = append(doomed, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
				}
			}
		}
		if len(doomed) == 0 {
			return nil
		}
		for batch := range slices.Chunk(doomed, maxDeleteObjects) {
			out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket:                    aws.String(bucket),
				Delete:                    &s3types.Delete{Objects: batch, Quiet: aws.Bool(true)},
				BypassGovernanceRetention: aws.Bool(true),
			})
			if err != nil {
				return fmt.Errorf("delete object versions: %w", err)
			}
			if len(out.Errors) > 0 {
				first := out.Errors[0]
				return fmt.Errorf("delete object versions: %d of %d not deleted, first %s: %s: %s",
					len(out.Errors), len(batch), aws.ToString(first.VersionId),
					aws.ToString(first.Code), aws.ToString(first.Message))
			}
		}
		if !all {
			// The current version stays; what was noncurrent is gone, and a
			// version that became noncurrent since is a concurrent
			// Rewrite's to delete.
			return nil
		}
	}
	return fmt.Errorf("delete object versions: versions of %s kept appearing: %w", key, ErrConflict)
}
