package segment

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

const backfillPage = 100

// runBackfills advances every running backfill job within the time budget: each job walks the
// profile registry shard by shard, evaluating every profile against the current definitions,
// and saves its cursor after each page, so a job resumes where the last Tick stopped.
func (h *Handler) runBackfills(ctx context.Context) (int, error) {
	defs, err := h.store.LoadDefinitions(ctx)
	if err != nil {
		return 0, err
	}
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
	cat, err := NewCatalog(defs.Traits, defs.Audiences)
	if err != nil {
		return 0, fmt.Errorf("backfill: stored definitions: %w", err)
	}
	deadline := time.Now().Add(h.opt.BackfillBudget)
	done := 0
	for _, j := range jobs {
		for j.Status == StatusComputing {
			ids, next, err := h.store.profiles(ctx, j.Shard, backfillPage, j.Cursor)
			if err != nil {
				return done, err
			}
			for _, pid := range ids {
				if err := h.process(ctx, cat, pid, mode{backfill: true}); err != nil {
					return done, fmt.Errorf("backfill %s: profile %s: %w", j.DefinitionID, pid, err)
				}
				done++
			}
			j.Processed += len(ids)
			j.Cursor = next
			if next == "" {
				j.Shard++
			}
			if j.Shard >= regShards {
				j.Status, j.FinishedAt = StatusLive, h.opt.Clock().UTC()
			}
			if err := h.store.putJob(ctx, j); errors.Is(err, ErrConflict) {
				break // restarted for a newer version: the next Tick picks the new job up
			} else if err != nil {
				return done, err
			}
			if time.Now().After(deadline) { // at least one page per call, so jobs always advance
				return done, nil
			}
		}
	}
	return done, nil
}

// RunBackfills runs backfill jobs until none is computing (tests, CLI). Tick does the same in
// bounded slices.
func (h *Handler) RunBackfills(ctx context.Context) error {
	h.Invalidate()
	for {
		n, err := h.runBackfills(ctx)
		if err != nil {
			return err
		}
		defs, err := h.store.LoadDefinitions(ctx)
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
		if n == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
