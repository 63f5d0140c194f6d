package segment

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// predictiveTrait finds a stored predictive trait: ErrNotFound for an unknown id, a
// *ValidationError for a trait of another kind.
func (sv *Service) predictiveTrait(ctx context.Context, id string) (*ComputedTrait, *Definitions, error) {
	defs, err := sv.store.LoadDefinitions(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range defs.Traits {
		if t.ID != id {
			continue
		}
		if !IsPredictive(t.Kind) {
			return nil, nil, &ValidationError{Field: "kind", Message: fmt.Sprintf("computed trait %s is a %s, not a predictive trait (purchase_likelihood, churn_likelihood, predicted_ltv, return_likelihood, next_best_product)", t.Key, t.Kind)}
		}
		return t, defs, nil
	}
	return nil, nil, fmt.Errorf("computed trait %s: %w", id, ErrNotFound)
}

// Train queues a training run of a predictive trait now (trigger "api") and returns it; the
// schedule's Tick advances it. A run already queued or under way for the current definition
// is returned as it is (asking twice starts one run).
func (sv *Service) Train(ctx context.Context, id string) (*Training, error) {
	for range 3 {
		t, defs, err := sv.predictiveTrait(ctx, id)
		if err != nil {
			return nil, err
		}
		prev := defs.Trainings[id]
		if prev.active() && prev.TraitVersion == t.Version {
			return prev, nil
		}
		run := newRun(t, prev, "api", sv.clock().UTC())
		if _, err := sv.store.PutTraining(ctx, run); errors.Is(err, ErrConflict) {
			continue // another request or the schedule queued one meanwhile: look again
		} else if err != nil {
			return nil, err
		}
		return run, nil
	}
	return nil, fmt.Errorf("computed trait %s: training: %w", id, ErrConflict)
}

// Quality is a predictive trait's published model (parameters and backtest quality) and its
// latest training run, with when the schedule retrains it next.
func (sv *Service) Quality(ctx context.Context, id string) (*QualityView, error) {
	t, defs, err := sv.predictiveTrait(ctx, id)
	if err != nil {
		return nil, err
	}
	every := sv.RetrainEvery
	if every <= 0 {
		every = DefaultRetrainEvery
	}
	v := &QualityView{TraitID: t.ID, Key: t.Key, Kind: t.Kind, Training: defs.Trainings[id]}
	if m := defs.Models[id]; m != nil {
		q := m.Quality
		v.TrainedAt, v.Quality, v.Params = m.TrainedAt, &q, m.Parameters()
	}
	v.NextRunAt = nextRunAt(v.Training, sv.clock().UTC(), every)
	return v, nil
}

// nextRunAt is when the schedule next starts a run: now when none ran or one is under way
// (it advances at each Tick), else a retrain period after the last one finished.
func nextRunAt(run *Training, now time.Time, every time.Duration) time.Time {
	if run == nil || run.active() {
		return now
	}
	return run.FinishedAt.Add(every)
}
