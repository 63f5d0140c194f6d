package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/archive"
	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/secret"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Defaults of a Runner's options.
const (
	DefaultReserve     = 3 * time.Second
	DefaultMaxAttempts = 5
	DefaultBatch       = 500 // Kinesis PutRecords' most records per call
	saveTimeout        = 5 * time.Second
	// MaxLease bounds a run's lease on a job: a Lambda's longest run and some margin.
	MaxLease = 16 * time.Minute
)

// Options configure a Runner. Jobs, Archive, Blocklist and Identifiers are required; Pipeline
// for pipeline jobs; Activations and Profiles for destination jobs.
type Options struct {
	Jobs        JobStore
	Archive     archive.Store
	Pipeline    Publisher // the events stream
	Activations Publisher // the activations stream
	Blocklist   Blocklist
	Profiles    Profiles
	// Destinations (optional) checks that a destination target exists and forwards only the
	// events it subscribes to (the activation stage checks that too).
	Destinations Destinations
	// Identifiers are the identity stage's identifiers of a message ("type:value", normalized):
	// what the identifiers filter, the suppression check and the profile lookup use.
	Identifiers func(*tracking.Message) []string
	// SourceIDs (optional) lists the sources a job without sources reads; without it the
	// archive is listed once when the job starts.
	SourceIDs func(ctx context.Context) ([]string, error)
	Now       func() time.Time
	// Reserve: no object starts, and no batch is sent, this close to the context's deadline.
	Reserve time.Duration
	// MaxAttempts bounds the failed attempts at one object before the job fails.
	MaxAttempts int
	// Batch is the most records sent per call (default DefaultBatch).
	Batch  int
	Logger *slog.Logger
}

// Runner advances replay jobs object by object. After each object (and when the budget ends
// within one) the job's cursor and counts are saved together, so a timeout or a crash resumes
// after what a saved step sent; what an unsaved step sent is sent again, which is harmless:
// identity dedupes the pipeline by source and messageId, the delivery log dedupes a
// destination by record id.
type Runner struct{ o Options }

// NewRunner returns a runner; zero options take their defaults.
func NewRunner(o Options) *Runner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Reserve <= 0 {
		o.Reserve = DefaultReserve
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Batch <= 0 || o.Batch > DefaultBatch {
		o.Batch = DefaultBatch
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o}
}

// Run advances every pending or running job within ctx's budget (work stops starting Reserve
// before its deadline) and returns the errors of the jobs whose step failed.
func (rn *Runner) Run(ctx context.Context) error {
	plan := budget.NewAt(ctx, rn.o.Now, rn.o.Reserve, 0)
	pending, err := rn.o.Jobs.Pending(ctx)
	if err != nil {
		return fmt.Errorf("replay run: %w", err)
	}
	var errs []error
	for _, j := range pending {
		if plan.Over() {
			break
		}
		if _, err := rn.run(ctx, plan, j.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RunOne advances one job within ctx's budget and returns it as it stands.
func (rn *Runner) RunOne(ctx context.Context, id string) (Job, error) {
	return rn.run(ctx, budget.NewAt(ctx, rn.o.Now, rn.o.Reserve, 0), id)
}

// errStale: another runner moved the job on; this one stops working on it.
var errStale = errors.New("replay job changed by another runner")

// errLeased: another runner holds the job's lease.
var errLeased = errors.New("replay job leased by another runner")

func (rn *Runner) run(ctx context.Context, plan budget.Plan, id string) (Job, error) {
	j, owner, err := rn.lease(ctx, id)
	if err != nil || owner == "" {
		return j, err
	}
	defer rn.release(ctx, id, owner)
	st, err := rn.start(ctx, j)
	if err != nil {
		return rn.fail(ctx, j, j, err)
	}
	for !j.Terminal() && !plan.Over() && ctx.Err() == nil {
		next := j.clone()
		if next.Status == StatusPending {
			next.Status, next.StartedAt = StatusRunning, rn.o.Now().UTC()
		}
		more, stepErr := rn.step(ctx, plan, st, &next)
		if stepErr != nil {
			return rn.fail(ctx, j, next, fmt.Errorf("replay job %s at %s: %w", id, next.Progress.position(), stepErr))
		}
		if j, err = rn.save(ctx, j, next); err != nil {
			if errors.Is(err, errStale) {
				return rn.o.Jobs.Get(ctx, id)
			}
			return j, err
		}
		if j.Terminal() {
			rn.o.Logger.InfoContext(ctx, "replay job finished", "jobId", id, "status", j.Status, "read", j.Counts.Read,
				"matched", j.Counts.Matched, "sent", j.Counts.Sent, "skipped", j.Counts.Skipped)
		}
		if !more {
			break
		}
	}
	return j, nil
}

// lease claims the job for this run until the context's deadline (at most MaxLease from now)
// and returns it; owner is "" (and the job as stored) when another runner holds an unexpired
// lease or the job is finished. A runner that dies keeps others out only until its lease ends.
func (rn *Runner) lease(ctx context.Context, id string) (Job, string, error) {
	now := rn.o.Now().UTC()
	until := now.Add(MaxLease)
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		until = d
	}
	owner := secret.String(secret.Alphanumeric, 16)
	err := rn.o.Jobs.Update(ctx, id, func(cur *Job) error {
		if cur.Terminal() || (cur.LeaseOwner != "" && cur.LeaseUntil.After(now)) {
			return errLeased
		}
		cur.LeaseOwner, cur.LeaseUntil = owner, until
		return nil
	})
	if errors.Is(err, errLeased) {
		j, err := rn.o.Jobs.Get(ctx, id)
		return j, "", err
	}
	if err != nil {
		return Job{}, "", fmt.Errorf("replay job %s: lease: %w", id, err)
	}
	j, err := rn.o.Jobs.Get(ctx, id)
	if err != nil {
		return j, "", fmt.Errorf("replay job %s: %w", id, err)
	}
	return j, owner, nil
}

// release gives the lease up (if still this run's), so the next run need not wait for it.
func (rn *Runner) release(ctx context.Context, id, owner string) {
	ctx, cancel := budget.Bookkeeping(ctx, saveTimeout)
	defer cancel()
	err := rn.o.Jobs.Update(ctx, id, func(cur *Job) error {
		if cur.LeaseOwner != owner {
			return errLeased
		}
		cur.LeaseOwner, cur.LeaseUntil = "", time.Time{}
		return nil
	})
	if err != nil && !errors.Is(err, errLeased) {
		rn.o.Logger.WarnContext(ctx, "replay job: lease not released (it expires)", "jobId", id, "error", err)
	}
}

// save writes next over the stored job if it is still the version j was read at.
func (rn *Runner) save(ctx context.Context, j, next Job) (Job, error) {
	ctx, cancel := budget.Bookkeeping(ctx, saveTimeout)
	defer cancel()
	err := rn.o.Jobs.Update(ctx, j.ID, func(cur *Job) error {
		if cur.Version != j.Version {
			return errStale
		}
		lo, lu := cur.LeaseOwner, cur.LeaseUntil
		*cur = next.clone()
		cur.LeaseOwner, cur.LeaseUntil = lo, lu
		return nil
	})
	if err != nil {
		return j, fmt.Errorf("replay job %s save: %w", j.ID, err)
	}
	next.Version = j.Version + 1
	return next, nil
}

// fail records a failed attempt over j with what the attempt got done (next: its cursor and
// counts are consistent, they move only after a batch is sent); after MaxAttempts the job
// fails.
func (rn *Runner) fail(ctx context.Context, j, next Job, stepErr error) (Job, error) {
	next.Attempts++
	next.Error = stepErr.Error()
	rn.o.Logger.WarnContext(ctx, "replay job step failed", "jobId", next.ID, "attempt", next.Attempts, "error", next.Error)
	if next.Attempts >= rn.o.MaxAttempts {
		next.Status, next.CompletedAt = StatusFailed, rn.o.Now().UTC()
		next.mask()
	}
	saved, err := rn.save(ctx, j, next)
	if err != nil && !errors.Is(err, errStale) {
		return saved, errors.Join(stepErr, err)
	}
	return saved, stepErr
}

// runState is what one run learns once: the sources in order and the destination target.
type runState struct {
	sources  []string
	dest     *destination.Destination
	profiles map[string]profileOf
}

type profileOf struct {
	id string
	ok bool
}

// start loads what the run needs: the sources in key order (the job's, else every source) and
// the destination of a destination job.
func (rn *Runner) start(ctx context.Context, j Job) (*runState, error) {
	st := &runState{sources: slices.Clone(j.Sources), profiles: map[string]profileOf{}}
	if len(st.sources) == 0 {
		var err error
		if st.sources, err = rn.allSources(ctx); err != nil {
			return nil, err
		}
	}
	// Key order: "source=<id>/…" compares as id+"/".
	slices.SortFunc(st.sources, func(a, b string) int { return strings.Compare(a+"/", b+"/") })
	if j.Target.Type == TargetDestination && rn.o.Destinations != nil {
		d, err := rn.o.Destinations.Get(ctx, j.Target.DestinationID)
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", j.Target.DestinationID, err)
		}
		st.dest = &d
	}
	return st, nil
}

func (rn *Runner) allSources(ctx context.Context) ([]string, error) {
	if rn.o.SourceIDs != nil {
		ids, err := rn.o.SourceIDs(ctx)
		if err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		return ids, nil
	}
	out, err := archive.Sources(ctx, rn.o.Archive)
	if err != nil {
		return nil, fmt.Errorf("list archived sources: %w", err)
	}
	return out, nil
}
