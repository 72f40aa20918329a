// Package awszones is AWS mode's migration.Zones: it copies a tenant's
// data between its placements, a slice of a Region's pool stack and a
// dedicated stack of its own, both in one Region.
//
//   - Profile items: from the source's profile table to the target's
//     (Items, the profile store's CopyTenant). A pool table holds the
//     tenant's items under its key prefix, a dedicated table the tenant
//     alone; the keys are the same in both.
//   - Zone objects: the raw, clean and curated buckets' objects below the
//     source's prefix ("tenants/<id>/" in a pool's buckets, "" in a
//     dedicated stack's own) go below the target's with the same relative
//     keys, by server-side CopyObject, encrypted with the target stack's
//     KMS key (its kms_key_arn output). An object the target holds with
//     the same size, written after the source's, is not copied again.
//     CopyObject copies objects of up to 5 GB: the raw zone's objects and
//     the refinery's Parquet files are far below it.
//   - Catalog: every table of the source's Glue database, and every
//     partition, is made in the target's with its locations re-pointed
//     from the source's buckets and prefix to the target's. A pooled
//     tenant's lake tables (clean and curated) are its partitions of the
//     pool's shared tables (package lake/athena), tenant_id first: from
//     the pool, they become the dedicated database's tables, partitioned
//     as the rest of their keys say (a curated table, keyed by tenant_id
//     alone, at its partition's location); into the pool, the reverse,
//     the shared table made if the pool lacks it. The refinery does not
//     rebuild them: it refines an hour once, and the control plane
//     records which hours it refined, so the catalog is copied, as the
//     data is.
//
// What the target holds that the source no longer has (an object the
// refinery replaced, an item deleted, a partition dropped) is removed from
// the target, so a second Sync after the write fence is the delta.
//
// Clear leaves the buckets' objects and the Glue database, with its tables,
// to the provisioner's release of the placement; it deletes a pooled
// tenant's items from the pool's table and its partitions of the pool's
// shared tables (a dedicated table goes with its stack). The tenant's data
// cells filters on shared tables leave with its grants (grants.Rehome).
//
// Zones is safe for concurrent use; Sync and Clear are safe to repeat.
package awszones

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/migration"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles/dynamostore"
)

// Items copies and purges a tenant's profile items in given tables
// (dynamostore.Store).
type Items interface {
	CopyTenant(ctx context.Context, tenant string, from, to dynamostore.TableRef) (dynamostore.CopyCounts, error)
	DeleteTenantIn(ctx context.Context, tenant string, in dynamostore.TableRef) (int, error)
}

var _ Items = (*dynamostore.Store)(nil)

// Config configures Zones. Items is required.
type Config struct {
	AWS   awsclient.Settings
	Items Items
}

// Zones is AWS mode's migration.Zones. Make it with New.
type Zones struct {
	items Items
	s3    *awsclient.Regional[s3.Client]
	glue  *awsclient.Regional[glue.Client]
}

var _ migration.Zones = (*Zones)(nil)

// New returns Zones. It loads the SDK's default configuration when
// cfg.AWS.AWS is nil, and fails if that fails or Items is nil.
func New(ctx context.Context, cfg Config) (*Zones, error) {
	if cfg.Items == nil {
		return nil, errors.New("awszones: Config.Items is required")
	}
	b, err := cfg.AWS.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("awszones: %w", err)
	}
	return &Zones{
		items: cfg.Items,
		s3:    b.RegionalS3(),
		glue: awsclient.NewRegional(func(region string) *glue.Client {
			return glue.NewFromConfig(b.AWS, func(o *glue.Options) {
				o.Region = region
				o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
			})
		}),
	}, nil
}

// Sync implements migration.Zones: the profile items, then the zones'
// objects, then the catalog (whose tables name the objects).
func (z *Zones) Sync(ctx context.Context, tenantID string, from, to migration.Home) (migration.SyncCounts, error) {
	var c migration.SyncCounts
	if from.Region != to.Region {
		return c, fmt.Errorf("awszones: source in %s, target in %s: a tenant moves within a Region", from.Region, to.Region)
	}
	if src, dst := from.ProfileTable(), to.ProfileTable(); src != "" && dst != "" {
		ic, err := z.items.CopyTenant(ctx, tenantID,
			dynamostore.TableRef{Region: from.Region, Name: src}, dynamostore.TableRef{Region: to.Region, Name: dst})
		if err != nil {
			return c, fmt.Errorf("awszones: profile items: %w", err)
		}
		c.Objects, c.Written, c.Removed = ic.Items, ic.Written, ic.Removed
	}
	client, err := z.s3.Client(to.Region)
	if err != nil {
		return c, fmt.Errorf("awszones: %w", err)
	}
	for _, p := range zonePairs(from, to) {
		if err := syncObjects(ctx, client, p, to.KMSKey(), &c); err != nil {
			return c, fmt.Errorf("awszones: %s/%s to %s/%s: %w", p.from.bucket, p.from.prefix, p.to.bucket, p.to.prefix, err)
		}
	}
	if from.GlueDatabase() != "" && to.GlueDatabase() != "" {
		g, err := z.glue.Client(to.Region)
		if err != nil {
			return c, fmt.Errorf("awszones: %w", err)
		}
		src, err := readCatalog(ctx, g, tenantID, from)
		if err != nil {
			return c, fmt.Errorf("awszones: catalog %s: %w", from.GlueDatabase(), err)
		}
		if err := writeCatalog(ctx, g, tenantID, to, repoint(src, zonePairs(from, to)), &c); err != nil {
			return c, fmt.Errorf("awszones: catalog %s to %s: %w", from.GlueDatabase(), to.GlueDatabase(), err)
		}
	}
	return c, nil
}

// Clear implements migration.Zones.
func (z *Zones) Clear(ctx context.Context, tenantID string, h migration.Home) (int64, error) {
	if h.Kind != placement.Pooled {
		return 0, nil
	}
	var n int64
	if h.ProfileTable() != "" {
		items, err := z.items.DeleteTenantIn(ctx, tenantID, dynamostore.TableRef{Region: h.Region, Name: h.ProfileTable()})
		n += int64(items)
		if err != nil {
			return n, fmt.Errorf("awszones: profile items: %w", err)
		}
	}
	if h.GlueDatabase() != "" {
		g, err := z.glue.Client(h.Region)
		if err != nil {
			return n, fmt.Errorf("awszones: %w", err)
		}
		parts, err := clearShared(ctx, g, tenantID)
		n += parts
		if err != nil {
			return n, fmt.Errorf("awszones: the pool's shared tables: %w", err)
		}
	}
	return n, nil
}

// place is a zone's bucket and the tenant's prefix in it.
type place struct{ bucket, prefix string }

// url is the place as a catalog location names it.
func (p place) url() string { return "s3://" + p.bucket + "/" + p.prefix }

type pair struct{ from, to place }

// zonePairs pairs the source's raw, clean and curated buckets with the
// target's.
func zonePairs(from, to migration.Home) []pair {
	var out []pair
	for _, b := range [][2]string{{from.RawBucket(), to.RawBucket()}, {from.CleanBucket(), to.CleanBucket()}, {from.CuratedBucket(), to.CuratedBucket()}} {
		if b[0] != "" && b[1] != "" {
			out = append(out, pair{place{b[0], from.Prefix()}, place{b[1], to.Prefix()}})
		}
	}
	return out
}

// object is what a listing says of an object.
type object struct {
	size     int64
	modified time.Time
}

// list returns the objects below p, by key relative to p's prefix.
func list(ctx context.Context, client *s3.Client, p place) (map[string]object, error) {
	out := map[string]object{}
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(p.bucket), Prefix: aws.String(p.prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p.url(), err)
		}
		for _, o := range page.Contents {
			out[strings.TrimPrefix(aws.ToString(o.Key), p.prefix)] = object{size: aws.ToInt64(o.Size), modified: aws.ToTime(o.LastModified)}
		}
	}
	return out, nil
}

// maxDeleteObjects is the most keys one DeleteObjects request may carry.
const maxDeleteObjects = 1000

// syncObjects copies p's source objects the target lacks, or holds in an
// older or other copy, and deletes the target's objects the source lacks.
func syncObjects(ctx context.Context, client *s3.Client, p pair, kmsKey string, c *migration.SyncCounts) error {
	have, err := list(ctx, client, p.to)
	if err != nil {
		return err
	}
	src, err := list(ctx, client, p.from)
	if err != nil {
		return err
	}
	for rel, o := range src {
		c.Objects++
		if t, ok := have[rel]; ok && t.size == o.size && t.modified.After(o.modified) {
			continue
		}
		in := &s3.CopyObjectInput{
			Bucket:     aws.String(p.to.bucket),
			Key:        aws.String(p.to.prefix + rel),
			CopySource: aws.String(p.from.bucket + "/" + url.PathEscape(p.from.prefix+rel)),
		}
		if kmsKey != "" {
			in.ServerSideEncryption, in.SSEKMSKeyId = s3types.ServerSideEncryptionAwsKms, aws.String(kmsKey)
		}
		if _, err := client.CopyObject(ctx, in); err != nil {
			return fmt.Errorf("copy %s: %w", rel, err)
		}
		c.Written++
		c.Bytes += o.size
	}
	var stale []s3types.ObjectIdentifier
	for rel := range have {
		if _, ok := src[rel]; !ok {
			stale = append(stale, s3types.ObjectIdentifier{Key: aws.String(p.to.prefix + rel)})
		}
	}
	for start := 0; start < len(stale); start += maxDeleteObjects {
		chunk := stale[start:min(start+maxDeleteObjects, len(stale))]
		out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(p.to.bucket),
			Delete: &s3types.Delete{Objects: chunk, Quiet: aws.Bool(true)}})
		if err != nil {
			return fmt.Errorf("delete from %s: %w", p.to.url(), err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete %s from %s: %s: %s", aws.ToString(e.Key), p.to.bucket, aws.ToString(e.Code), aws.ToString(e.Message))
		}
		c.Removed += int64(len(chunk))
	}
	return nil
}
