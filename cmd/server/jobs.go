package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/awsclient"
	"github.com/cairn-cdp/cairn/internal/idempotency"
	"github.com/cairn-cdp/cairn/internal/placement"
	"github.com/cairn-cdp/cairn/internal/profiles"
	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// jobMetrics exports the job queue's depth (read from the database at
// scrape time, so every replica reports the shared queue) and the outcome
// of every job attempt this replica ran.
type jobMetrics struct {
	outcomes *prometheus.CounterVec
	depth    *prometheus.Desc
	db       store.Backend
}

func newJobMetrics(reg prometheus.Registerer, db store.Backend) *jobMetrics {
	m := &jobMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_job_attempts_total",
			Help: "Job attempts by kind and resulting state.",
		}, []string{"kind", "state"}),
		depth: prometheus.NewDesc("cairn_jobs", "Jobs in the queue by state.", []string{"state"}, nil),
		db:    db,
	}
	reg.MustRegister(m.outcomes, m)
	return m
}

func (m *jobMetrics) done(kind, state string) { m.outcomes.WithLabelValues(kind, state).Inc() }

// Describe implements prometheus.Collector.
func (m *jobMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.depth }

// Collect implements prometheus.Collector.
func (m *jobMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := m.db.JobCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.depth, err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(n), state)
	}
}

// awsCallsCollector exports the AWS engine's API calls by operation.
type awsCallsCollector struct{ calls *awsclient.CallCounter }

var awsCallsDesc = prometheus.NewDesc("cairn_aws_calls_total", "AWS API calls by service and operation.", []string{"operation"}, nil)

// Describe implements prometheus.Collector.
func (awsCallsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- awsCallsDesc }

// Collect implements prometheus.Collector.
func (c awsCallsCollector) Collect(ch chan<- prometheus.Metric) {
	for op, n := range c.calls.Snapshot() {
		ch <- prometheus.MustNewConstMetric(awsCallsDesc, prometheus.CounterValue, float64(n), op)
	}
}

// idempotencySweepArgs removes expired idempotency keys.
type idempotencySweepArgs struct{}

func (idempotencySweepArgs) Kind() string { return "idempotency_sweep" }

type idempotencySweeper struct {
	river.WorkerDefaults[idempotencySweepArgs]
	store idempotency.Store
}

func (w *idempotencySweeper) Work(ctx context.Context, _ *river.Job[idempotencySweepArgs]) error {
	n, err := w.store.IdempotencyDeleteExpired(ctx, time.Now())
	if err == nil && n > 0 {
		slog.InfoContext(ctx, "expired idempotency keys removed", "count", n)
	}
	return err
}

func registerMaintenance(workers *river.Workers, db store.Backend) {
	river.AddWorker(workers, &idempotencySweeper{store: db})
}

func maintenanceJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
			return idempotencySweepArgs{}, nil
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

// audienceSweepArgs evaluates, for every active tenant, what its profile
// store's queue holds (markers a crash or another replica left), the
// profiles whose time-dependent segments are due, and relays its outbox.
// It runs every audienceSweepEvery, so a profile leaves a window segment
// within that long of the moment it stops qualifying.
type audienceSweepArgs struct{}

func (audienceSweepArgs) Kind() string { return "audience_sweep" }

// audienceSweepEvery is the sweep's period: windows close within it.
const audienceSweepEvery = 30 * time.Second

type audienceSweeper struct {
	river.WorkerDefaults[audienceSweepArgs]
	tenants  *tenants.Service
	profiles *profiles.Service
}

func (w *audienceSweeper) Work(ctx context.Context, _ *river.Job[audienceSweepArgs]) error {
	var errs []error
	p := tenants.ListParams{Status: tenants.StatusActive, Limit: 500}
	for {
		list, err := w.tenants.List(ctx, p)
		if err != nil {
			return err
		}
		for _, t := range list {
			if _, err := w.profiles.Pending(ctx, t.ID); err != nil && !errors.Is(err, placement.ErrNotReady) {
				errs = append(errs, fmt.Errorf("tenant %s: %w", t.ID, err))
			}
			if _, err := w.profiles.Relay(ctx, t.ID); err != nil && !errors.Is(err, placement.ErrNotReady) {
				errs = append(errs, fmt.Errorf("tenant %s: relay: %w", t.ID, err))
			}
		}
		if len(list) < p.Limit {
			return errors.Join(errs...)
		}
		p.AfterSeq = list[len(list)-1].Seq
	}
}

func audienceJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(audienceSweepEvery), func() (river.JobArgs, *river.InsertOpts) {
			// No uniqueness: a sweep is idempotent, and a unique one would
			// wait for River's rescue (minutes) behind a sweep a killed
			// replica left running.
			return audienceSweepArgs{}, nil
		}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}
