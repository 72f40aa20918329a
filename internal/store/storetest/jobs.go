package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-cdp/cairn/internal/store"
	"github.com/cairn-cdp/cairn/internal/tenants"
)

// signalArgs is a test job whose worker reports its token on a channel.
type signalArgs struct {
	Token string `json:"token"`
}

func (signalArgs) Kind() string { return "storetest_signal" }

type signalWorker struct {
	river.WorkerDefaults[signalArgs]
	worked chan string
}

func (w *signalWorker) Work(_ context.Context, job *river.Job[signalArgs]) error {
	w.worked <- job.Args.Token
	return nil
}

// jobDone is what WorkerConfig.OnJobDone reports.
type jobDone struct{ kind, state string }

// onJobDone returns an OnJobDone that reports on the returned channel. It
// never blocks River: the channel has room for more events than a test
// makes.
func onJobDone() (func(kind, state string), <-chan jobDone) {
	ch := make(chan jobDone, 100)
	return func(kind, state string) {
		select {
		case ch <- jobDone{kind, state}:
		default:
		}
	}, ch
}

func jobCounts(t *testing.T, b store.Backend) map[string]int64 {
	t.Helper()
	counts, err := b.JobCounts(t.Context())
	if err != nil {
		t.Fatalf("job counts: %v", err)
	}
	return counts
}

func totalJobs(counts map[string]int64) int64 {
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

func testTxRollback(t *testing.T, h Harness) {
	b := newBackend(t, h)
	tn := newTenant(1)
	errBoom := errors.New("boom")
	err := b.InTx(t.Context(), func(tx tenants.Tx) error {
		if _, err := tx.TenantInsert(t.Context(), tn); err != nil {
			return err
		}
		if err := tx.JobInsert(t.Context(), tenants.ProvisionArgs{TenantID: tn.ID}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	if _, err := b.TenantGet(t.Context(), tn.ID); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("rolled-back tenant: get = %v, want ErrNotFound", err)
	}
	if counts := jobCounts(t, b); totalJobs(counts) != 0 {
		t.Errorf("rolled-back job is there: %v", counts)
	}
}

func testJobInsert(t *testing.T, h Harness) {
	b := newBackend(t, h)
	counts := jobCounts(t, b)
	for _, state := range []string{"available", "running", "retryable", "scheduled", "completed", "discarded", "cancelled"} {
		if n, ok := counts[state]; !ok || n != 0 {
			t.Errorf("new database: JobCounts[%q] = %d, %t; want 0, true", state, n, ok)
		}
	}
	err := b.InTx(t.Context(), func(tx tenants.Tx) error {
		return tx.JobInsert(t.Context(), tenants.DeprovisionArgs{TenantID: "ten_x", Purge: true})
	})
	if err != nil {
		t.Fatalf("insert job: %v", err)
	}
	if counts := jobCounts(t, b); counts["available"] != 1 || totalJobs(counts) != 1 {
		t.Errorf("after one insert: JobCounts = %v, want one available", counts)
	}
}

// testServiceOnboard onboards through tenants.Service: the tenant and its
// provisioning job commit together.
func testServiceOnboard(t *testing.T, h Harness) {
	b := newBackend(t, h)
	svc := tenants.NewService(b, nil)
	p := tenants.OnboardParams{
		Name:       "Acme",
		Slug:       "acme",
		Tier:       tenants.TierDedicated,
		HomeRegion: "eu-central-1",
		Regions:    []string{"us-west-2"},
		Labels:     map[string]string{"env": "prod"},
	}
	tn, err := svc.Onboard(t.Context(), p)
	if err != nil {
		t.Fatalf("onboard: %v", err)
	}
	if got := get(t, b, tn.ID); got.Status != tenants.StatusProvisioning || got.Seq != tn.Seq {
		t.Errorf("stored tenant: status %s seq %d, want provisioning seq %d", got.Status, got.Seq, tn.Seq)
	}
	if counts := jobCounts(t, b); counts["available"] != 1 {
		t.Errorf("JobCounts = %v, want one available provisioning job", counts)
	}

	if _, err := svc.Onboard(t.Context(), p); !errors.Is(err, tenants.ErrSlugTaken) {
		t.Errorf("second onboard with the slug = %v, want ErrSlugTaken", err)
	}
	if counts := jobCounts(t, b); counts["available"] != 1 {
		t.Errorf("refused onboard left a job: JobCounts = %v", counts)
	}
}

func testWorkers(t *testing.T, h Harness) {
	b := newBackend(t, h)
	worker := &signalWorker{worked: make(chan string, 1)}
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	done, doneCh := onJobDone()
	stop, err := b.StartWorkers(t.Context(), store.WorkerConfig{
		Workers:      workers,
		MaxWorkers:   2,
		PollInterval: 50 * time.Millisecond,
		OnJobDone:    done,
	})
	if err != nil {
		t.Fatalf("start workers: %v", err)
	}
	stopOnCleanup(t, stop)

	err = b.InTx(t.Context(), func(tx tenants.Tx) error {
		return tx.JobInsert(t.Context(), signalArgs{Token: "hello"})
	})
	if err != nil {
		t.Fatalf("insert job: %v", err)
	}
	if got := receive(t, worker.worked, "the job to run"); got != "hello" {
		t.Errorf("worker got token %q, want hello", got)
	}
	if got := receive(t, doneCh, "OnJobDone"); got != (jobDone{"storetest_signal", "completed"}) {
		t.Errorf("OnJobDone(%q, %q), want storetest_signal, completed", got.kind, got.state)
	}
	if counts := jobCounts(t, b); counts["completed"] != 1 {
		t.Errorf("JobCounts = %v, want one completed", counts)
	}
}

// provisionWorker marks tenants provisioned, standing in for the real
// provisioner.
type provisionWorker struct {
	river.WorkerDefaults[tenants.ProvisionArgs]
	svc *tenants.Service
}

func (w *provisionWorker) Work(ctx context.Context, job *river.Job[tenants.ProvisionArgs]) error {
	_, err := w.svc.MarkProvisioned(ctx, job.Args.TenantID)
	return err
}

// testWorkersProvisionOnboardedTenant runs the whole path: Onboard inserts
// the provisioning job with the tenant, a worker picks it up and changes
// the tenant through the same store.
func testWorkersProvisionOnboardedTenant(t *testing.T, h Harness) {
	b := newBackend(t, h)
	svc := tenants.NewService(b, nil)
	workers := river.NewWorkers()
	river.AddWorker(workers, &provisionWorker{svc: svc})
	done, doneCh := onJobDone()
	stop, err := b.StartWorkers(t.Context(), store.WorkerConfig{
		Workers:      workers,
		PollInterval: 50 * time.Millisecond,
		OnJobDone:    done,
	})
	if err != nil {
		t.Fatalf("start workers: %v", err)
	}
	stopOnCleanup(t, stop)

	tn, err := svc.Onboard(t.Context(), tenants.OnboardParams{
		Name: "Globex", Slug: "globex", Tier: tenants.TierPooled, HomeRegion: "us-east-1",
	})
	if err != nil {
		t.Fatalf("onboard: %v", err)
	}
	if got := receive(t, doneCh, "the provisioning job"); got != (jobDone{tenants.ProvisionArgs{}.Kind(), "completed"}) {
		t.Fatalf("OnJobDone(%q, %q), want %s completed", got.kind, got.state, tenants.ProvisionArgs{}.Kind())
	}
	if got := get(t, b, tn.ID); got.Status != tenants.StatusActive || got.Version != 2 {
		t.Errorf("after provisioning: status %s version %d, want active version 2", got.Status, got.Version)
	}
}
