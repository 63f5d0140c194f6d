package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/serverless-cdp/cdp/internal/destination"
)

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// InlineBudget is how long Submit runs a new job before answering (0: not at all; the API
	// function sets about 20 s of its 29 s). The schedule finishes what is left.
	InlineBudget time.Duration
	Logger       *slog.Logger
}

// Service is what the admin adapter calls.
type Service struct {
	runner *Runner
	opts   ServiceOptions
}

// NewService returns the service over a runner (its store, clock and destinations).
func NewService(runner *Runner, opts ServiceOptions) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{runner: runner, opts: opts}
}

// Submit validates in (a *ValidationError for bad input, also for a destination that does not
// exist), stores the job as pending, runs it for up to InlineBudget and returns it as it stands.
func (s *Service) Submit(ctx context.Context, in Input) (Job, error) {
	o := s.runner.o
	if o.Archive == nil {
		return Job{}, ErrNoArchive
	}
	j, err := NewJob(in, o.Now())
	if err != nil {
		return Job{}, err
	}
	if j.Target.Type == TargetDestination && o.Destinations != nil {
		if _, err := o.Destinations.Get(ctx, j.Target.DestinationID); errors.Is(err, destination.ErrNotFound) {
			return Job{}, invalid("target.destinationId", "no destination %s", j.Target.DestinationID)
		} else if err != nil {
			return Job{}, fmt.Errorf("replay submit: %w", err)
		}
	}
	if err := o.Jobs.Create(ctx, j); err != nil {
		return Job{}, fmt.Errorf("replay submit: %w", err)
	}
	if s.opts.InlineBudget <= 0 {
		j.Version = 1
		return j, nil
	}
	ictx, cancel := context.WithTimeout(ctx, s.opts.InlineBudget)
	defer cancel()
	if _, err := s.runner.RunOne(ictx, j.ID); err != nil {
		s.opts.Logger.WarnContext(ctx, "replay job: inline run stopped", "jobId", j.ID, "error", err)
	}
	got, err := o.Jobs.Get(ctx, j.ID)
	if err != nil {
		return Job{}, fmt.Errorf("replay submit: %w", err)
	}
	return got, nil
}

// Get returns a job or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Job, error) {
	return s.runner.o.Jobs.Get(ctx, id)
}

// List lists jobs, newest first.
func (s *Service) List(ctx context.Context, limit int, next string) ([]Job, string, error) {
	return s.runner.o.Jobs.List(ctx, limit, next)
}
