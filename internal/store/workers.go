package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-cdp/cairn/internal/tracing"
	"github.com/riverqueue/river/riverdriver"
)

// Defaults of WorkerConfig.
const (
	DefaultMaxWorkers   = 10
	DefaultPollInterval = time.Second
)

// JobTimeout bounds a run of every job whose worker sets no timeout of its
// own (River's default, said here so that the rescue below can follow
// it): its context is cancelled then.
const JobTimeout = time.Minute

// RescueAfter is how long a job may stay "running" before River works it
// again, for a job whose worker sets no longer timeout of its own (River
// leaves those alone until their timeout has passed). A job stays running
// that long only when the replica working it died: a live worker's context
// ends at the job's timeout, and the margin lets it return and record its
// result first. River's leader looks for stuck jobs every 30 seconds, so a
// dead replica's job runs again within RescueAfter and 30 seconds of its
// start. Work that must move on sooner (a stack create) holds a lease of
// its own, which another replica takes over within seconds.
const RescueAfter = JobTimeout + 15*time.Second

// StartRiver starts a River client that works jobs through driver as cfg
// says and returns the function that stops it; both adapters' StartWorkers
// call it so jobs run alike on either database. It returns an error when
// cfg.Workers is nil or a limit is negative.
//
// The client stops when ctx is done or stop is called. stop waits for
// running jobs until its own context ends; once it has returned nil,
// cfg.OnJobDone is no longer called.
func StartRiver[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], cfg WorkerConfig) (stop func(context.Context) error, err error) {
	if cfg.Workers == nil {
		return nil, errors.New("start workers: Workers is required")
	}
	if cfg.MaxWorkers < 0 || cfg.PollInterval < 0 {
		return nil, errors.New("start workers: MaxWorkers and PollInterval must not be negative")
	}
	poll := cmp.Or(cfg.PollInterval, DefaultPollInterval)
	client, err := river.NewClient(driver, &river.Config{
		Logger:       slog.New(demoted{cmp.Or(cfg.Logger, slog.Default()).Handler()}),
		Workers:      cfg.Workers,
		PeriodicJobs: cfg.PeriodicJobs,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: cmp.Or(cfg.MaxWorkers, DefaultMaxWorkers)},
		},
		FetchPollInterval: poll,
		// River refuses a cooldown longer than the poll interval, which
		// tests shorten.
		FetchCooldown:        min(poll, river.FetchCooldownDefault),
		JobTimeout:           JobTimeout,
		RescueStuckJobsAfter: RescueAfter,
		// A span per job, continuing the trace that inserted it.
		Middleware: []rivertype.Middleware{&tracing.JobInsert{}, &tracing.JobWork{}},
	})
	if err != nil {
		return nil, fmt.Errorf("start workers: %w", err)
	}

	// River closes the subscription channel when the client stops, which
	// ends the goroutine.
	cancelEvents, eventsDone := func() {}, make(chan struct{})
	if cfg.OnJobDone != nil {
		var events <-chan *river.Event
		events, cancelEvents = client.Subscribe(
			river.EventKindJobCompleted,
			river.EventKindJobFailed,
			river.EventKindJobCancelled,
			river.EventKindJobSnoozed,
		)
		go func() {
			defer close(eventsDone)
			for ev := range events {
				cfg.OnJobDone(ev.Job.Kind, string(ev.Job.State))
			}
		}()
	} else {
		close(eventsDone)
	}

	if err := client.Start(ctx); err != nil {
		cancelEvents()
		<-eventsDone
		return nil, fmt.Errorf("start workers: %w", err)
	}
	return func(ctx context.Context) error {
		// Stop returns at once when the client is already stopping because
		// ctx ended, hence the wait on Stopped.
		if err := client.Stop(ctx); err != nil {
			return fmt.Errorf("stop workers: %w", err)
		}
		select {
		case <-client.Stopped():
		case <-ctx.Done():
			return fmt.Errorf("stop workers: %w", ctx.Err())
		}
		cancelEvents()
		<-eventsDone
		return nil
	}, nil
}

// demoted passes River's INFO records on as DEBUG: River reports its
// routine work at INFO ("producer: Producer job counts" every few seconds,
// elections, periodic jobs), which is DEBUG to an operator. Its warnings
// and errors keep their levels.
type demoted struct{ h slog.Handler }

func lower(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return l - 4
	}
	return l
}

func (d demoted) Enabled(ctx context.Context, l slog.Level) bool { return d.h.Enabled(ctx, lower(l)) }

func (d demoted) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lower(r.Level)
	return d.h.Handle(ctx, r)
}

func (d demoted) WithAttrs(as []slog.Attr) slog.Handler { return demoted{d.h.WithAttrs(as)} }

func (d demoted) WithGroup(name string) slog.Handler { return demoted{d.h.WithGroup(name)} }

// RunningJobArgs returns the encoded arguments of the jobs of kind that
// are running, read through client; both adapters' RunningJobArgs call it.
// A job stays running until its worker returns, or, on a replica that
// died, until River rescues it (RescueAfter).
func RunningJobArgs[TTx any](ctx context.Context, client *river.Client[TTx], kind string) ([][]byte, error) {
	var out [][]byte
	params := river.NewJobListParams().Kinds(kind).States(rivertype.JobStateRunning).First(1000)
	for {
		res, err := client.JobList(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("list running %s jobs: %w", kind, err)
		}
		for _, j := range res.Jobs {
			out = append(out, j.EncodedArgs)
		}
		if len(res.Jobs) < 1000 || res.LastCursor == nil {
			return out, nil
		}
		params = params.After(res.LastCursor)
	}
}
