package segment

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/serverless-cdp/cdp/internal/budget"
)

const backfillPage = 100

// runBackfills advances every running backfill job within the time budget: BackfillBudget (a
// soft bound: each call evaluates at least one profile, so jobs always advance) and plan (a
// hard bound from the invocation's deadline: nothing starts after it). Each job walks the profile registry shard by shard, evaluating every
// profile against the current definitions, and saves its cursor (after each page, and where it
// stops when the budget runs out mid-page), so a job resumes where the last Tick stopped.
// defs are the stored definitions, read by the caller; the jobs in defs.Jobs are updated in
// place as they advance.
func (h *Handler) runBackfills(ctx context.Context, plan budget.Plan, defs *Definitions) (int, error) {
	b := &backfillBudget{soft: plan.Within(h.opt.BackfillBudget), hard: plan}
	var jobs []*Job
	for _, j := range defs.Jobs {
		if j.Status == StatusComputing {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].StartedAt.Before(jobs[b].StartedAt) })
	cat, err := h.newCatalog(defs)
	if err != nil {
		return 0, fmt.Errorf("backfill: stored definitions: %w", err)
	}
	done := 0
	for _, j := range jobs {
		for j.Status == StatusComputing {
			if b.over() {
				return done, nil
			}
			n, stopped, err := h.backfillPage(ctx, cat, j, b)
			done += n
			if errors.Is(err, ErrConflict) {
				break // restarted for a newer version: the next Tick picks the new job up
			}
			if err != nil || stopped {
				return done, err
			}
		}
	}
	return done, nil
}

// backfillPage evaluates one page of a job's registry shard and saves the job's progress on a
// context that outlives the invocation. When the budget runs out mid-page it stops between
// profiles (stopped=true) and saves a cursor after the last profile evaluated.
func (h *Handler) backfillPage(ctx context.Context, cat *Catalog, j *Job, b *backfillBudget) (int, bool, error) {
	ids, next, err := h.state.Profiles(ctx, j.Shard, backfillPage, j.Cursor)
	if err != nil {
		return 0, false, err
	}
	done, stopped := 0, false
	var perr error
	for _, pid := range ids {
		if b.over() {
			stopped = true
			break
		}
		b.progressed = true
		if err := h.process(ctx, cat, pid, mode{backfill: true}); err != nil {
			if !isPermanent(err) {
				perr = fmt.Errorf("backfill %s: profile %s: %w", j.DefinitionID, pid, err)
				break
			}
			// Its own change records are dead-lettered when they arrive; the job goes on.
			h.log.Error("segments: backfill skips a profile the stores refuse", "profile", pid, "err", err)
		}
		done++
	}
	j.Processed += done
	switch {
	case done < len(ids) && done > 0:
		j.Cursor = cursorAfter(ids[done-1])
	case done == len(ids):
		j.Cursor = next
		if next == "" {
			j.Shard++
		}
	}
	if j.Shard >= regShards {
		j.Status, j.FinishedAt = StatusLive, h.opt.Clock().UTC()
	}
	bctx, cancel := h.bookkeeping(ctx)
	defer cancel()
	if err := h.defs.PutJob(bctx, j); err != nil {
		return done, stopped, err
	}
	return done, stopped, perr
}

// backfillBudget is a backfill call's time: the soft bound (the hard one, limited to
// BackfillBudget) applies once it has made progress.
type backfillBudget struct {
	soft, hard budget.Plan
	progressed bool
}

func (b *backfillBudget) over() bool {
	return b.hard.Over() || (b.progressed && b.soft.Over())
}

// RunBackfills runs backfill jobs until none is computing (tests, CLI). Tick does the same in
// bounded slices.
func (h *Handler) RunBackfills(ctx context.Context) error {
	h.Invalidate()
	for {
		defs, err := h.defs.LoadDefinitions(ctx)
		if err != nil {
			return err
		}
		running := false
		for _, j := range defs.Jobs {
			running = running || j.Status == StatusComputing
		}
		if !running {
			return nil
		}
		n, err := h.runBackfills(ctx, budget.NewAt(context.Background(), h.opt.WallClock, 0, 0), defs)
		if err != nil {
			return err
		}
		if n == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
