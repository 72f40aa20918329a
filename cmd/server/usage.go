package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/awsclient"

	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/tenants"
	"github.com/cairn-cdp/cairn/internal/usage"
	"github.com/cairn-cdp/cairn/internal/webhooks"
)

// meteredRawZone counts the bytes each tenant's raw zone is written, one
// line and its newline each, once the object is durable.
type meteredRawZone struct {
	profiles.RawZone
	meter *usage.Meter
}

func (z meteredRawZone) Append(ctx context.Context, tenantID string, at time.Time, lines [][]byte) (string, error) {
	key, err := z.RawZone.Append(ctx, tenantID, at, lines)
	if err == nil {
		n := int64(0)
		for _, l := range lines {
			n += int64(len(l)) + 1
		}
		z.meter.Add(tenantID, usage.RawBytes, "", n)
	}
	return key, err
}

// meterDeliveries counts a tenant's webhook deliveries its receiver
// accepted (a 2xx answer); fleet deliveries are no tenant's.
func meterDeliveries(m *usage.Meter) func(webhooks.Delivery, webhooks.Result) {
	return func(d webhooks.Delivery, r webhooks.Result) {
		if r.Status >= 200 && r.Status < 300 {
			m.Add(d.TenantID, usage.WebhookDeliveries, "", 1)
		}
	}
}

// s3Sink writes the daily usage reports to a bucket under a prefix.
type s3Sink struct {
	client *s3.Client
	bucket string
	prefix string
}

// newS3Sink makes the sink of an s3://bucket[/prefix] URL, in the Region of
// the SDK's default configuration (AWS_REGION).
func newS3Sink(ctx context.Context, rawURL, endpoint string, calls *awsclient.CallCounter) (*s3Sink, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("usage-report-bucket %q: want s3://bucket or s3://bucket/prefix", rawURL)
	}
	b, err := awsclient.Settings{EndpointURL: endpoint, Calls: calls}.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("usage reports: %w", err)
	}
	if b.AWS.Region == "" {
		return nil, errors.New("usage-report-bucket needs an AWS Region (AWS_REGION)")
	}
	client := s3.NewFromConfig(b.AWS, func(o *s3.Options) {
		o.BaseEndpoint = b.BaseEndpoint(o.BaseEndpoint)
		if o.BaseEndpoint != nil { // an emulator serves every bucket on one host
			o.UsePathStyle = true
		}
	})
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &s3Sink{client: client, bucket: u.Host, prefix: prefix}, nil
}

func (s *s3Sink) Put(ctx context.Context, name string, body []byte) (string, error) {
	key := s.prefix + name
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("text/csv"), ServerSideEncryption: s3types.ServerSideEncryptionAes256,
	})
	if err != nil {
		return "", fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
	}
	return "s3://" + s.bucket + "/" + key, nil
}

// usageSink is where the daily reports go: the configured bucket, or
// <data-dir>/usage-reports.
func usageSink(ctx context.Context, cfg *config, calls *awsclient.CallCounter) (usage.Sink, error) {
	if cfg.UsageReportBucket == "" {
		return usage.DirSink{Dir: filepath.Join(cfg.DataDir, "usage-reports")}, nil
	}
	return newS3Sink(ctx, cfg.UsageReportBucket, cfg.AWSEndpointURL, calls)
}

// usageReportEvery is how often the daily report job looks for a closed
// day to report.
const usageReportEvery = 15 * time.Minute

type usageReportArgs struct{}

func (usageReportArgs) Kind() string { return "usage_report" }

// usageReporter is the daily report job: idempotent (a day is recorded
// once), so it needs no uniqueness, and any replica may run it.
type usageReporter struct {
	river.WorkerDefaults[usageReportArgs]
	r *usage.Reporter
}

func (w *usageReporter) Work(ctx context.Context, _ *river.Job[usageReportArgs]) error {
	_, err := w.r.ReportDue(ctx)
	return err
}

func usageJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(usageReportEvery), func() (river.JobArgs, *river.InsertOpts) {
			return usageReportArgs{}, nil
		}, &river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(profileSampleEvery), func() (river.JobArgs, *river.InsertOpts) {
			return profileSampleArgs{}, nil
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

// profileCounter is the profile service as the usage sampler sees it.
type profileCounter struct {
	svc *profiles.Service
	log *slog.Logger
}

func (c profileCounter) ProfileCount(ctx context.Context, tenant string) (int64, error) {
	n, err := c.svc.ProfileCount(ctx, tenant)
	if errors.Is(err, profiles.ErrNotReady) {
		return 0, fmt.Errorf("%w: %w", usage.ErrNotCountable, err)
	}
	return int64(n), err
}

func (c profileCounter) IndexProfiles(ctx context.Context, tenant string) error {
	added, removed, err := c.svc.IndexProfiles(ctx, tenant)
	if errors.Is(err, profiles.ErrNotReady) {
		return fmt.Errorf("%w: %w", usage.ErrNotCountable, err)
	}
	if err == nil && added+removed > 0 {
		c.log.InfoContext(ctx, "profile index mended", "tenant_id", tenant, "added", added, "removed", removed)
	}
	return err
}

func (c profileCounter) CountsChanged() []string { return c.svc.CountsChanged() }

// liveTenants lists the tenants whose profiles are sampled: active and
// suspended ones (a suspended tenant keeps its profiles).
type liveTenants struct{ svc *tenants.Service }

func (l liveTenants) LiveTenants(ctx context.Context) ([]string, error) {
	var out []string
	for _, status := range []tenants.Status{tenants.StatusActive, tenants.StatusSuspended} {
		p := tenants.ListParams{Status: status, Limit: 500}
		for {
			list, err := l.svc.List(ctx, p)
			if err != nil {
				return nil, err
			}
			for _, t := range list {
				out = append(out, t.ID)
			}
			if len(list) < p.Limit {
				break
			}
			p.AfterSeq = list[len(list)-1].Seq
		}
	}
	return out, nil
}

// newProfileSampler returns the profile count sampler and starts its loop
// over the tenants this replica changes; stop ends the loop and waits for
// it.
func newProfileSampler(db usage.Store, svc *profiles.Service, tenantSvc *tenants.Service, log *slog.Logger) (*usage.Sampler, func(), error) {
	s, err := usage.NewSampler(usage.SamplerConfig{Store: db, Profiles: profileCounter{svc: svc, log: log},
		Tenants: liveTenants{svc: tenantSvc}, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, usage.DefaultSampleInterval)
	}()
	return s, func() { cancel(); <-done }, nil
}

// profileSampleEvery is how often every live tenant's profiles are
// sampled: an hour has several samples, and a count a crashed replica did
// not sample is read within this long.
const profileSampleEvery = 10 * time.Minute

type profileSampleArgs struct{}

func (profileSampleArgs) Kind() string { return "usage_profile_sample" }

// profileSampler is the periodic full pass: idempotent (the latest sample
// of an hour is kept), so it needs no uniqueness, and any replica may run
// it.
type profileSampler struct {
	river.WorkerDefaults[profileSampleArgs]
	s *usage.Sampler
}

// Timeout is a pass's period, not the default minute: a pass counts every
// live tenant (writing its samples as it goes) and builds the profile
// index of a tenant from before it, which reads all of its members.
func (w *profileSampler) Timeout(*river.Job[profileSampleArgs]) time.Duration {
	return profileSampleEvery
}

func (w *profileSampler) Work(ctx context.Context, _ *river.Job[profileSampleArgs]) error {
	_, err := w.s.SampleAll(ctx)
	return err
}
