package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// InlineBudget is how long Submit runs a new request before answering (0: not at all; the
	// API function sets about 20 s of its 29 s).
	InlineBudget time.Duration
	Logger       *slog.Logger
}

// Service is what the admin adapter calls.
type Service struct {
	runner *Runner
	supp   Suppressions
	opts   ServiceOptions
}

// NewService returns the service over a runner (its store and hasher) and the suppression
// list's read side (nil: no suppressions shown).
func NewService(runner *Runner, supp Suppressions, opts ServiceOptions) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{runner: runner, supp: supp, opts: opts}
}

// Submit validates in (a *ValidationError for bad input), stores the request as pending, runs
// it for up to InlineBudget and returns it as it stands; the scheduled runner finishes what is
// left.
func (s *Service) Submit(ctx context.Context, in Input) (Request, error) {
	o := s.runner.o
	r, err := NewRequest(in, o.Hasher, o.Now())
	if err != nil {
		return Request{}, err
	}
	if err := o.Requests.Create(ctx, r); err != nil {
		return Request{}, fmt.Errorf("privacy submit: %w", err)
	}
	if s.opts.InlineBudget <= 0 {
		r.Version = 1
		return r, nil
	}
	ictx, cancel := context.WithTimeout(ctx, s.opts.InlineBudget)
	defer cancel()
	if _, err := s.runner.RunOne(ictx, r.ID); err != nil {
		s.opts.Logger.WarnContext(ctx, "privacy request: inline run stopped", "requestId", r.ID, "error", redact(err.Error(), &r))
	}
	got, err := o.Requests.Get(ctx, r.ID)
	if err != nil {
		return Request{}, fmt.Errorf("privacy submit: %w", err)
	}
	return got, nil
}

// Get returns a request and, for a completed export, its result (nil once expired or erased).
func (s *Service) Get(ctx context.Context, id string) (Request, []byte, error) {
	store := s.runner.o.Requests
	r, err := store.Get(ctx, id)
	if err != nil {
		return r, nil, err
	}
	if r.Type != TypeExport || r.Status != StatusCompleted {
		return r, nil, nil
	}
	doc, err := store.GetExport(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return r, nil, nil
	}
	return r, doc, err
}

// List lists requests, newest first.
func (s *Service) List(ctx context.Context, limit int, next string) ([]Request, string, error) {
	return s.runner.o.Requests.List(ctx, limit, next)
}

// SuppressionsView is the suppression list as the admin API shows it.
type SuppressionsView struct {
	Groups          []SuppressionGroup
	DroppedBySource map[string]int64
}

// Suppressions lists the suppressed groups and the events dropped per source.
func (s *Service) Suppressions(ctx context.Context) (SuppressionsView, error) {
	v := SuppressionsView{Groups: []SuppressionGroup{}, DroppedBySource: map[string]int64{}}
	if s.supp == nil {
		return v, nil
	}
	groups, err := s.supp.Suppressions(ctx)
	if err != nil {
		return v, fmt.Errorf("privacy suppressions: %w", err)
	}
	dropped, err := s.supp.DroppedBySource(ctx)
	if err != nil {
		return v, fmt.Errorf("privacy dropped events: %w", err)
	}
	if groups != nil {
		v.Groups = groups
	}
	if dropped != nil {
		v.DroppedBySource = dropped
	}
	return v, nil
}
