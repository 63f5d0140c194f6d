package segment

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/predict"
)

// Trainer fits a model (predict.Train).
type Trainer func(cfg predict.Config, profiles []predict.Profile, now time.Time) (*predict.Model, error)

// Defaults of training runs.
const (
	DefaultChunkProfiles = 2000               // features per chunk (split further when over MaxChunkBytes)
	DefaultChunkTTL      = 3 * 24 * time.Hour // how long a run's chunks are kept
	trainPage            = 100                // registry ids per page (one BatchGetItem of states)
)

// errChunksMissing: a run's chunks expired before it could fit (it fails; the next is queued).
var errChunksMissing = errors.New("features missing")

// active reports whether a run is still to be advanced.
func (t *Training) active() bool {
	return t != nil && (t.Status == TrainQueued || t.Status == TrainCollecting || t.Status == TrainFitting)
}

// newRun is a queued run of trait t replacing prev (nil: none).
func newRun(t *ComputedTrait, prev *Training, trigger string, now time.Time) *Training {
	r := &Training{TraitID: t.ID, RunID: newID("run_"), TraitVersion: t.Version, Status: TrainQueued,
		Trigger: trigger, QueuedAt: now, Version: 1}
	if prev != nil {
		r.Version = prev.Version + 1
	}
	return r
}

// dueRun is the run the schedule queues for a predictive trait at now (nil: none): when it
// was never trained, its definition changed since the last run (which that supersedes, even
// mid-run), or the last run finished retrainEvery ago.
func dueRun(t *ComputedTrait, run *Training, now time.Time, retrainEvery time.Duration) *Training {
	switch {
	case run == nil:
		return newRun(t, nil, "schedule", now)
	case run.TraitVersion != t.Version:
		trigger := run.Trigger
		if !run.active() {
			trigger = "schedule"
		}
		return newRun(t, run, trigger, now)
	case run.active():
		return nil
	case run.Status == TrainFailed && !now.Before(run.FinishedAt.Add(retryDelay(run.Failures, retrainEvery))):
		r := newRun(t, run, "retry", now)
		r.Failures = run.Failures
		return r
	case !now.Before(run.FinishedAt.Add(retrainEvery)):
		return newRun(t, run, "schedule", now)
	}
	return nil
}

// runTraining queues the runs the schedule asks for, then advances the active ones (oldest
// first) within plan. A run waits while its trait's backfill job is computing (its features
// are not complete before).
func (h *Handler) runTraining(ctx context.Context, plan budget.Plan, defs *Definitions) error {
	now := h.opt.Clock().UTC()
	var runs []*Training
	byID := map[string]*ComputedTrait{}
	for _, t := range defs.Traits {
		if !IsPredictive(t.Kind) {
			continue
		}
		byID[t.ID] = t
		run := defs.Trainings[t.ID]
		if next := dueRun(t, run, now, h.opt.RetrainEvery); next != nil {
			if _, err := h.train.PutTraining(ctx, next); errors.Is(err, ErrConflict) {
				continue // queued meanwhile by someone else: the next Tick sees it
			} else if err != nil {
				return err
			}
			run = next
		}
		if run.active() && (defs.Jobs[t.ID] == nil || defs.Jobs[t.ID].Status != StatusComputing) {
			runs = append(runs, run)
		}
		if err := h.rescoreDue(ctx, t, defs, run, now); err != nil {
			return err
		}
	}
	if len(runs) == 0 {
		return nil
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].QueuedAt.Before(runs[j].QueuedAt) })
	cat, err := h.newCatalog(defs)
	if err != nil {
		return fmt.Errorf("training: stored definitions: %w", err)
	}
	for _, run := range runs {
		if plan.Over() {
			return nil
		}
		if err := h.advance(ctx, cat, cat.Trait(byID[run.TraitID].Key), run, plan); err != nil && !errors.Is(err, ErrConflict) {
			return fmt.Errorf("training %s: %w", run.TraitID, err)
		}
	}
	return nil
}

// rescoreDue restarts a predictive trait's backfill job, which re-scores every profile with the
// published model, when its last (re)start is RescoreEvery old and no run is under way: time
// passing changes churn and purchase scores although no event arrives.
func (h *Handler) rescoreDue(ctx context.Context, t *ComputedTrait, defs *Definitions, run *Training, now time.Time) error {
	j := defs.Jobs[t.ID]
	if defs.Models[t.ID] == nil || run.active() || j == nil || j.Status == StatusComputing ||
		j.Version != t.Version || now.Sub(j.StartedAt) < h.opt.RescoreEvery {
		return nil
	}
	next := &Job{DefinitionID: t.ID, Version: t.Version, Status: StatusComputing, StartedAt: now}
	if err := h.defs.PutJob(ctx, next); err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("restart the re-scoring of %s: %w", t.ID, err)
	}
	defs.Jobs[t.ID] = next
	return nil
}

// advance moves a run on until it finishes or plan is over: queued → collecting (chunk by
// chunk) → fitting → published, refused or failed. Progress is saved after each step.
func (h *Handler) advance(ctx context.Context, cat *Catalog, t *ComputedTrait, run *Training, plan budget.Plan) error {
	for run.active() && !plan.Over() {
		start := h.opt.WallClock()
		var err error
		switch run.Status {
		case TrainQueued:
			run.Status, run.StartedAt = TrainCollecting, h.opt.Clock().UTC()
		case TrainCollecting:
			err = h.collect(ctx, cat, t, run, plan)
		case TrainFitting:
			err = h.fit(ctx, t, run)
		}
		run.Elapsed += h.opt.WallClock().Sub(start)
		if err != nil && !errors.Is(err, errChunksMissing) {
			return err
		}
		if err != nil {
			h.finish(run, TrainFailed, err.Error())
		}
		if err := h.saveRun(ctx, run); err != nil {
			return err
		}
	}
	return nil
}

// saveRun stores a run's progress on a context that outlives the invocation.
func (h *Handler) saveRun(ctx context.Context, run *Training) error {
	bctx, cancel := h.bookkeeping(ctx)
	defer cancel()
	run.Version++
	u, err := h.train.PutTraining(bctx, run)
	run.ReadUnits += u.Read // counted in the next save
	run.WriteUnits += u.Write
	return err
}

func (h *Handler) finish(run *Training, status, reason string) {
	run.Status, run.Reason, run.FinishedAt = status, reason, h.opt.Clock().UTC()
	run.Shard, run.Cursor = 0, ""
	if status == TrainFailed {
		run.Failures++
	}
}

// retryDelay is how long after its failures-th consecutive failure a run is retried:
// RetryFailedAfter, doubling with each failure, at most the retrain period.
func retryDelay(failures int, retrainEvery time.Duration) time.Duration {
	d := RetryFailedAfter
	for i := 1; i < failures && d < retrainEvery; i++ {
		d *= 2
	}
	return min(d, retrainEvery)
}

// collect reads registry pages until a chunk's worth of features (or the end, or the plan),
// then stores them as chunks and moves the cursor past them. Tombstones (erased people) and
// merged-away profiles are skipped; chunks hold no profile id.
func (h *Handler) collect(ctx context.Context, cat *Catalog, t *ComputedTrait, run *Training, plan budget.Plan) error {
	now := h.opt.Clock().UTC()
	shard, cursor := run.Shard, run.Cursor
	var buf []predict.Profile
	for len(buf) < h.opt.ChunkProfiles && shard < regShards && !plan.Over() {
		ids, next, err := h.state.Profiles(ctx, shard, trainPage, cursor)
		if err != nil {
			return err
		}
		states, u, err := h.train.LoadStates(ctx, ids)
		run.ReadUnits, run.WriteUnits = run.ReadUnits+u.Read, run.WriteUnits+u.Write
		if err != nil {
			return err
		}
		for _, st := range states {
			if st != nil && !st.Erased && st.MergedInto == "" {
				buf = append(buf, cat.PredictionProfile(st, t, now))
			}
		}
		if cursor = next; next == "" {
			shard++
		}
	}
	bctx, cancel := h.bookkeeping(ctx)
	defer cancel()
	if err := h.putChunks(bctx, t, run, buf, now); err != nil {
		return err
	}
	run.Profiles += len(buf)
	run.Shard, run.Cursor = shard, cursor
	if shard >= regShards {
		run.Status, run.Shard, run.Cursor = TrainFitting, 0, ""
	}
	return nil
}

// putChunks stores features as chunks numbered from run.Chunks on, halving a chunk encoded
// over MaxChunkBytes; a retry after a crash rewrites the same numbers.
func (h *Handler) putChunks(ctx context.Context, t *ComputedTrait, run *Training, ps []predict.Profile, now time.Time) error {
	if len(ps) == 0 {
		return nil
	}
	u, err := h.train.PutChunk(ctx, t.ID, run.RunID, run.Chunks, ps, now.Add(h.opt.ChunkTTL))
	run.ReadUnits, run.WriteUnits = run.ReadUnits+u.Read, run.WriteUnits+u.Write
	if errors.Is(err, ErrTooLarge) && len(ps) > 1 {
		if err := h.putChunks(ctx, t, run, ps[:len(ps)/2], now); err != nil {
			return err
		}
		return h.putChunks(ctx, t, run, ps[len(ps)/2:], now)
	}
	if err != nil {
		return err
	}
	run.Chunks++
	return nil
}

// fit reads the run's chunks and trains. Too little data refuses the run (the old model
// stays); a model is published and the trait's backfill job restarted, which re-scores every
// profile (and records audience transitions through the outbox).
func (h *Handler) fit(ctx context.Context, t *ComputedTrait, run *Training) error {
	var all []predict.Profile
	u, err := h.train.Chunks(ctx, t.ID, run.RunID, run.Chunks, func(ps []predict.Profile) error {
		all = append(all, ps...)
		return nil
	})
	run.ReadUnits, run.WriteUnits = run.ReadUnits+u.Read, run.WriteUnits+u.Write
	if err != nil {
		return fmt.Errorf("%w: %w", errChunksMissing, err)
	}
	now := h.opt.Clock().UTC()
	m, err := h.opt.Train(predict.Config{Kind: t.Kind, HorizonDays: t.Prediction.HorizonDays, K: t.Prediction.K}, all, now)
	switch {
	case errors.Is(err, predict.ErrInsufficient):
		h.finish(run, TrainRefused, err.Error())
		return nil
	case err != nil:
		h.finish(run, TrainFailed, err.Error())
		return nil
	}
	bctx, cancel := h.bookkeeping(ctx)
	defer cancel()
	u, err = h.train.PutModel(bctx, t.ID, m)
	run.ReadUnits, run.WriteUnits = run.ReadUnits+u.Read, run.WriteUnits+u.Write
	if errors.Is(err, ErrTooLarge) {
		h.finish(run, TrainFailed, err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	j := &Job{DefinitionID: t.ID, Version: t.Version, Status: StatusComputing, StartedAt: now}
	if err := h.defs.PutJob(bctx, j); err != nil {
		return fmt.Errorf("start the re-scoring backfill: %w", err)
	}
	h.Invalidate()
	h.finish(run, TrainPublished, "")
	return nil
}

// trainingDefaults fills in the training options.
func trainingDefaults(opt *Options) {
	if opt.RetrainEvery <= 0 {
		opt.RetrainEvery = DefaultRetrainEvery
	}
	if opt.RescoreEvery <= 0 {
		opt.RescoreEvery = DefaultRescoreEvery
	}
	if opt.Train == nil {
		opt.Train = predict.Train
	}
	if opt.ChunkProfiles <= 0 {
		opt.ChunkProfiles = DefaultChunkProfiles
	}
	if opt.ChunkTTL <= 0 {
		opt.ChunkTTL = DefaultChunkTTL
	}
}
