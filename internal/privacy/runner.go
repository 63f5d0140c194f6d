package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/budget"
	"github.com/serverless-cdp/cdp/internal/secret"
)

// Defaults of a Runner's options.
const (
	DefaultErasedTTL         = 8 * 24 * time.Hour
	DefaultReserve           = 2 * time.Second
	DefaultMaxAttempts       = 5
	DefaultMaxNoticeAttempts = 5
	DefaultMaxRounds         = 3
	// FollowUpMargin widens a follow-up erase's lower bound (Person.Since) below the first
	// erase's start minus the holder's lag: the archive is partitioned by hour of arrival, and a
	// record may wait in the stream before its writer reads it.
	FollowUpMargin = time.Hour
	saveTimeout    = 5 * time.Second
)

// Options configure a Runner. Requests, Resolver and Blocklist are required; Holders is the one
// list export and delete walk, in order (the lead's composition root passes it, ending with
// NewRequestsHolder); Notifier may be nil (no notices).
type Options struct {
	Requests  RequestStore
	Resolver  Resolver
	Holders   []Holder
	Blocklist Blocklist
	Notifier  Notifier
	Hasher    blocklist.Hasher
	Now       func() time.Time
	// Sleep waits d or until ctx ends (default: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
	// ErasedTTL is how long erased-profile entries stay on the blocklist.
	ErasedTTL time.Duration
	// Reserve: no step starts this close to the context's deadline.
	Reserve time.Duration
	// MaxAttempts bounds the failed attempts of one step before the request fails.
	MaxAttempts int
	// MaxNoticeAttempts bounds the runs that retry failed notices.
	MaxNoticeAttempts int
	// MaxRounds bounds how often new profiles found after the wait are blocked and waited for.
	MaxRounds int
	Logger    *slog.Logger
}

// Runner runs privacy requests step by step. Every step is idempotent and its outcome is
// persisted in the request before the next starts, so a crash or a timeout between any two
// steps resumes where it stopped.
type Runner struct{ o Options }

// NewRunner returns a runner; zero options take their defaults.
func NewRunner(o Options) *Runner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.ErasedTTL <= 0 {
		o.ErasedTTL = DefaultErasedTTL
	}
	if o.Reserve <= 0 {
		o.Reserve = DefaultReserve
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MaxNoticeAttempts <= 0 {
		o.MaxNoticeAttempts = DefaultMaxNoticeAttempts
	}
	if o.MaxRounds <= 0 {
		o.MaxRounds = DefaultMaxRounds
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{o: o}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MaxLease bounds a run's lease on a request: a Lambda's longest run (the privacy function's
// 60 s timeout) and some margin.
const MaxLease = 90 * time.Second

// errStale: another runner moved the request on; this one stops working on it.
var errStale = errors.New("privacy request changed by another runner")

// outcome of a step.
type outcome int

const (
	advance outcome = iota // persist and go on
	pause                  // persist and leave the rest to a later run
	idle                   // nothing to persist; leave the rest to a later run
)

// Run processes every pending or running request within ctx's budget (steps stop starting
// Reserve before its deadline) and returns the errors of the requests that failed a step.
func (rn *Runner) Run(ctx context.Context) error {
	plan := budget.NewAt(ctx, rn.o.Now, rn.o.Reserve, 0)
	pending, err := rn.o.Requests.Pending(ctx)
	if err != nil {
		return fmt.Errorf("privacy run: %w", err)
	}
	var errs []error
	for _, r := range pending {
		if plan.Over() {
			break
		}
		if !r.needsWork(rn.o.Now()) {
			continue // completed, its follow-up not yet due: no lease, no write
		}
		if _, err := rn.run(ctx, plan, r.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RunOne processes one request within ctx's budget and returns it as it stands.
func (rn *Runner) RunOne(ctx context.Context, id string) (Request, error) {
	return rn.run(ctx, budget.NewAt(ctx, rn.o.Now, rn.o.Reserve, 0), id)
}

func (rn *Runner) run(ctx context.Context, plan budget.Plan, id string) (Request, error) {
	r, owner, err := rn.lease(ctx, id)
	if err != nil || owner == "" {
		return r, err
	}
	defer rn.release(ctx, id, owner)
	for r.needsWork(rn.o.Now()) && !plan.Over() && ctx.Err() == nil {
		next := r.clone()
		if next.Status == StatusPending {
			next.Status, next.StartedAt = StatusRunning, rn.o.Now().UTC()
		}
		out, err := rn.step(withRequest(ctx, id), plan, &next)
		if err != nil {
			stepErr := fmt.Errorf("privacy request %s, step %s: %w", id, r.Step, err)
			if saved, err := rn.fail(ctx, r, stepErr); err != nil {
				return saved, err
			}
			return rn.o.Requests.Get(ctx, id)
		}
		if out == idle {
			return r, nil
		}
		finished := next.Terminal() && !r.Terminal()
		if r, err = rn.save(ctx, r, next); err != nil {
			if errors.Is(err, errStale) {
				return rn.o.Requests.Get(ctx, id)
			}
			return r, err
		}
		if finished {
			rn.o.Logger.InfoContext(ctx, "privacy request finished", "requestId", id, "type", r.Type, "status", r.Status)
		}
		if out == pause {
			return r, nil
		}
	}
	return r, nil
}

// errLeased: another runner holds the request's lease.
var errLeased = errors.New("privacy request leased by another runner")

// lease claims the request for this run until the context's deadline (at most MaxLease from
// now) and returns it; owner is "" (and the request as stored) when another runner holds an
// unexpired lease or the request has nothing to do (finished, any follow-up not yet due). A
// runner that dies keeps others out only until its lease ends.
func (rn *Runner) lease(ctx context.Context, id string) (Request, string, error) {
	now := rn.o.Now().UTC()
	until := now.Add(MaxLease)
	if d, ok := ctx.Deadline(); ok && d.Before(until) {
		until = d
	}
	owner := secret.String(secret.Alphanumeric, 16)
	err := rn.o.Requests.Update(ctx, id, func(cur *Request) error {
		if !cur.needsWork(now) || (cur.LeaseOwner != "" && cur.LeaseUntil.After(now)) {
			return errLeased
		}
		cur.LeaseOwner, cur.LeaseUntil = owner, until
		return nil
	})
	if errors.Is(err, errLeased) {
		r, err := rn.o.Requests.Get(ctx, id)
		return r, "", err
	}
	if err != nil {
		return Request{}, "", fmt.Errorf("privacy request %s: lease: %w", id, err)
	}
	r, err := rn.o.Requests.Get(ctx, id)
	if err != nil {
		return r, "", fmt.Errorf("privacy request %s: %w", id, err)
	}
	return r, owner, nil
}

// release gives the lease up (if still this run's), so the next run need not wait for it.
func (rn *Runner) release(ctx context.Context, id, owner string) {
	ctx, cancel := budget.Bookkeeping(ctx, saveTimeout)
	defer cancel()
	err := rn.o.Requests.Update(ctx, id, func(cur *Request) error {
		if cur.LeaseOwner != owner {
			return errLeased
		}
		cur.LeaseOwner, cur.LeaseUntil = "", time.Time{}
		return nil
	})
	if err != nil && !errors.Is(err, errLeased) {
		rn.o.Logger.WarnContext(ctx, "privacy request: lease not released (it expires)", "requestId", id, "error", err)
	}
}

// save writes next over the stored request if it is still the version r was read at.
func (rn *Runner) save(ctx context.Context, r, next Request) (Request, error) {
	ctx, cancel := budget.Bookkeeping(ctx, saveTimeout)
	defer cancel()
	if next.Step != r.Step {
		next.Attempts = 0
	}
	err := rn.o.Requests.Update(ctx, r.ID, func(cur *Request) error {
		if cur.Version != r.Version {
			return errStale
		}
		*cur = next.clone()
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("privacy request %s save: %w", r.ID, err)
	}
	next.Version = r.Version + 1
	return next, nil
}

// fail records a failed attempt; after MaxAttempts the request fails for good (scrubbed).
func (rn *Runner) fail(ctx context.Context, r Request, stepErr error) (Request, error) {
	next := r.clone()
	if next.Status == StatusPending {
		next.Status, next.StartedAt = StatusRunning, rn.o.Now().UTC()
	}
	next.Attempts++
	next.Error = redact(stepErr.Error(), &next)
	rn.o.Logger.WarnContext(ctx, "privacy request step failed", "requestId", r.ID, "step", r.Step, "attempt", next.Attempts, "error", next.Error)
	if next.Attempts >= rn.o.MaxAttempts {
		next.Status, next.CompletedAt = StatusFailed, rn.o.Now().UTC()
		next.scrub()
	}
	saved, err := rn.save(ctx, r, next)
	if err != nil && !errors.Is(err, errStale) {
		return saved, err
	}
	return saved, nil
}

func (rn *Runner) complete(r *Request) {
	r.Status, r.Step, r.CompletedAt, r.Error, r.WaitUntil = StatusCompleted, StepDone, rn.o.Now().UTC(), "", time.Time{}
	r.scrub()
}

// step runs the request's current step on r; on a terminal request, its due follow-up.
func (rn *Runner) step(ctx context.Context, plan budget.Plan, r *Request) (outcome, error) {
	if r.Terminal() {
		return rn.followUp(ctx, r)
	}
	switch r.Step {
	case StepResolve, "":
		return advance, rn.resolve(ctx, r)
	case StepSuppress:
		return advance, rn.suppress(ctx, r)
	case StepBlock:
		return advance, rn.block(ctx, r)
	case StepWait:
		return rn.wait(ctx, plan, r)
	case StepErase:
		return advance, rn.erase(ctx, r)
	case StepNotify:
		return rn.notify(ctx, r)
	case StepUnsuppress:
		return advance, rn.unsuppress(ctx, r)
	case StepExport:
		return advance, rn.export(ctx, r)
	}
	return idle, fmt.Errorf("unknown step %q", r.Step)
}

func (rn *Runner) person(r *Request) Person {
	if r.Person == nil {
		return Person{}
	}
	return *r.Person
}

func (rn *Runner) resolve(ctx context.Context, r *Request) error {
	p, err := rn.o.Resolver.Resolve(ctx, r.Identifiers)
	if err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	r.Person = &p
	r.addHashes(rn.o.Hasher, p.Identifiers)
	switch r.Type {
	case TypeSuppress, TypeSuppressWithDelete:
		r.Step = StepSuppress
	case TypeDelete:
		r.Step = StepBlock
	case TypeUnsuppress:
		r.Step = StepUnsuppress
	case TypeExport:
		r.Step = StepExport
	}
	return nil
}

func (rn *Runner) suppress(ctx context.Context, r *Request) error {
	p := rn.person(r)
	labels := make([]string, len(p.Identifiers))
	for i, id := range p.Identifiers {
		labels[i] = blocklist.Mask(id)
	}
	if err := rn.o.Blocklist.Suppress(ctx, r.ID, p.Identifiers, labels); err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	if r.Type == TypeSuppress {
		r.Results = map[string]map[string]int{"blocklist": {"identifiers": len(p.Identifiers)}}
		rn.waitThenComplete(r)
		return nil
	}
	r.Step = StepBlock
	return nil
}

func (rn *Runner) block(ctx context.Context, r *Request) error {
	if p := rn.person(r); len(p.Profiles) > 0 {
		if err := rn.o.Blocklist.BlockProfiles(ctx, r.ID, p.Profiles, rn.o.ErasedTTL); err != nil {
			return fmt.Errorf("block profiles: %w", err)
		}
	}
	r.WaitUntil = rn.o.Now().UTC().Add(rn.o.Blocklist.PropagationDelay())
	r.Step = StepWait
	return nil
}

// wait lets the blocklist reach every stage, then resolves again: profiles merged in meanwhile
// are blocked and waited for too (at most MaxRounds times), then the erase starts.
func (rn *Runner) wait(ctx context.Context, plan budget.Plan, r *Request) (outcome, error) {
	if d := r.WaitUntil.Sub(rn.o.Now()); d > 0 {
		if left, ok := plan.Left(); ok && left < d {
			return idle, nil // a later run goes on
		}
		if err := rn.o.Sleep(ctx, d); err != nil {
			return idle, nil // cancelled: a later run goes on
		}
	}
	if r.Type == TypeSuppress || r.Type == TypeUnsuppress {
		rn.complete(r)
		return advance, nil
	}
	p, err := rn.o.Resolver.Resolve(ctx, r.Identifiers)
	if err != nil {
		return idle, fmt.Errorf("resolve again: %w", err)
	}
	cur := rn.person(r)
	newProfiles, newIDs := missing(cur.Profiles, p.Profiles), missing(cur.Identifiers, p.Identifiers)
	cur.Profiles = append(cur.Profiles, newProfiles...)
	cur.Identifiers = append(cur.Identifiers, newIDs...)
	r.Person = &cur
	r.addHashes(rn.o.Hasher, newIDs)
	grew := len(newProfiles) > 0 || (r.Type == TypeSuppressWithDelete && len(newIDs) > 0)
	switch {
	case grew && r.Rounds < rn.o.MaxRounds && r.Type == TypeSuppressWithDelete:
		r.Rounds++
		r.Step = StepSuppress
	case grew && r.Rounds < rn.o.MaxRounds:
		r.Rounds++
		r.Step = StepBlock
	default:
		r.Step, r.WaitUntil = StepErase, time.Time{}
	}
	return advance, nil
}

func missing(have, got []string) []string {
	var out []string
	for _, x := range got {
		if !slices.Contains(have, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// erase erases the next holder not yet done (one per step, so each result is persisted).
func (rn *Runner) erase(ctx context.Context, r *Request) error {
	for _, h := range rn.o.Holders {
		if _, done := r.Results[h.Name()]; done {
			continue
		}
		began := rn.o.Now().UTC()
		counts, err := h.Erase(ctx, rn.person(r))
		if err != nil {
			return fmt.Errorf("erase %s: %w", h.Name(), err)
		}
		if r.Results == nil {
			r.Results = map[string]map[string]int{}
		}
		if counts == nil {
			counts = map[string]int{}
		}
		r.Results[h.Name()] = counts
		rn.planFollowUp(r, h, began)
		return nil
	}
	r.Step = StepNotify
	return nil
}

// planFollowUp schedules the follow-up erase of a lagging holder whose first erase began at
// began: due when its lag has passed, reading what arrived since began minus the lag and
// FollowUpMargin.
func (rn *Runner) planFollowUp(r *Request, h Holder, began time.Time) {
	lh, ok := h.(Lagging)
	if !ok || lh.Lag() <= 0 || slices.ContainsFunc(r.FollowUps, func(f FollowUp) bool { return f.Holder == h.Name() }) {
		return
	}
	lag := lh.Lag()
	r.FollowUps = append(r.FollowUps, FollowUp{
		Holder: h.Name(), Since: began.Add(-lag - FollowUpMargin), Due: began.Add(lag), Status: FollowUpPending,
	})
}

// followUp runs the pending follow-up due first: its holder erases, by the request's keyed
// hashes (the identifiers are scrubbed by then), what arrived since Since, and the counts are
// added to Results under the holder's name. A failed attempt is recorded on the follow-up
// (never failing the completed request) and retried by the next run, MaxAttempts times.
func (rn *Runner) followUp(ctx context.Context, r *Request) (outcome, error) {
	now := rn.o.Now().UTC()
	i := r.nextFollowUp()
	if i < 0 || r.FollowUps[i].Due.After(now) {
		return idle, nil
	}
	f := &r.FollowUps[i]
	h := rn.holder(f.Holder)
	if h == nil {
		f.Status, f.DoneAt, f.Error = FollowUpFailed, now, "holder no longer configured"
		return advance, nil
	}
	counts, err := h.Erase(ctx, Person{Hashes: slices.Clone(r.Hashes), Since: f.Since})
	if err != nil {
		f.Attempts++
		f.Error = redact(fmt.Sprintf("erase %s: %v", f.Holder, err), r)
		if f.Attempts >= rn.o.MaxAttempts {
			f.Status, f.DoneAt = FollowUpFailed, now
		}
		rn.o.Logger.WarnContext(ctx, "privacy request follow-up failed", "requestId", r.ID, "holder", f.Holder, "attempt", f.Attempts, "error", f.Error)
		return pause, nil
	}
	if r.Results == nil {
		r.Results = map[string]map[string]int{}
	}
	if r.Results[f.Holder] == nil {
		r.Results[f.Holder] = map[string]int{}
	}
	for kind, n := range counts {
		r.Results[f.Holder][kind] += n
		f.Erased += n
	}
	f.Status, f.DoneAt, f.Error = FollowUpDone, now, ""
	rn.o.Logger.InfoContext(ctx, "privacy request follow-up done", "requestId", r.ID, "holder", f.Holder, "erased", f.Erased)
	return advance, nil
}

func (rn *Runner) holder(name string) Holder {
	for _, h := range rn.o.Holders {
		if h.Name() == name {
			return h
		}
	}
	return nil
}

// notify sends the Privacy Request notice. Failed deliveries are retried by later runs up to
// MaxNoticeAttempts; then they stay recorded as failed and the request completes.
func (rn *Runner) notify(ctx context.Context, r *Request) (outcome, error) {
	if rn.o.Notifier == nil {
		rn.complete(r)
		return advance, nil
	}
	n := Notice{RequestID: r.ID, Type: r.Type, Identifiers: rn.person(r).Identifiers, At: rn.o.Now().UTC()}
	outcomes, err := rn.o.Notifier.Notify(ctx, n)
	if err != nil {
		return idle, fmt.Errorf("notify: %w", err)
	}
	r.Notices = outcomes
	r.NoticeAttempts++
	failed := slices.ContainsFunc(outcomes, func(o NoticeOutcome) bool { return o.Status == "failed" })
	if failed && r.NoticeAttempts < rn.o.MaxNoticeAttempts {
		return pause, nil
	}
	rn.complete(r)
	return advance, nil
}

func (rn *Runner) unsuppress(ctx context.Context, r *Request) error {
	n, err := rn.o.Blocklist.Unsuppress(ctx, rn.person(r).Identifiers)
	if err != nil {
		return fmt.Errorf("unsuppress: %w", err)
	}
	r.Results = map[string]map[string]int{"blocklist": {"identifiers": n}}
	rn.waitThenComplete(r)
	return nil
}

// waitThenComplete completes a suppress or unsuppress once the change is in force at every
// stage (PropagationDelay), so "completed" means events are dropped, or stored again, from then
// on.
func (rn *Runner) waitThenComplete(r *Request) {
	r.WaitUntil = rn.o.Now().UTC().Add(rn.o.Blocklist.PropagationDelay())
	r.Step = StepWait
}

// export collects every holder's items about the person into one document, stores it as the
// request's export result and records the counts per holder and kind.
func (rn *Runner) export(ctx context.Context, r *Request) error {
	p := rn.person(r)
	doc := map[string]any{"requestId": r.ID, "identifiers": nonNil(p.Identifiers), "profiles": nonNil(p.Profiles)}
	results := map[string]map[string]int{}
	for _, h := range rn.o.Holders {
		items := map[string][]json.RawMessage{}
		counts := map[string]int{}
		err := h.Export(ctx, p, func(kind string, item any) error {
			b, err := json.Marshal(item)
			if err != nil {
				return fmt.Errorf("encode %s item: %w", kind, err)
			}
			items[kind] = append(items[kind], b)
			counts[kind]++
			return nil
		})
		if err != nil {
			return fmt.Errorf("export %s: %w", h.Name(), err)
		}
		doc[h.Name()], results[h.Name()] = items, counts
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode export: %w", err)
	}
	if err := rn.o.Requests.PutExport(ctx, r.ID, b); err != nil {
		return fmt.Errorf("store export: %w", err)
	}
	r.Results = results
	rn.complete(r)
	return nil
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

type requestIDKey struct{}

func withRequest(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the id of the request whose step calls a holder ("" outside a run): the
// privacy requests holder leaves that request alone.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
