package profiles

import (
	"context"

	"github.com/riverqueue/river"
)

// Register adds the profile workers (erasures, segment computations).
func (s *Service) Register(w *river.Workers) {
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, job *river.Job[ErasureArgs]) error {
		return s.RunErasure(ctx, job.Args)
	}))
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, job *river.Job[RecomputeArgs]) error {
		return s.RunRecompute(ctx, job.Args)
	}))
}
