// Package budget plans an invocation's work from its context's deadline: work stops starting
// a reserve before the deadline (or after a fallback time when there is none), and the
// bookkeeping that must survive the deadline (attempt counts, dead letters, cursors) runs on
// context.WithoutCancel with a short timeout of its own.
package budget

import (
	"context"
	"time"
)

// Plan is one invocation's time. The zero Plan has no bound and is never over.
type Plan struct {
	now  func() time.Time
	hard time.Time // the deadline less the reserve, or start + fallback; zero: none
	stop time.Time // hard, or earlier through Within; zero: none
}

// New plans from ctx's deadline less reserve, or fallback from now when ctx has no deadline
// (0: no bound), on the wall clock.
func New(ctx context.Context, reserve, fallback time.Duration) Plan {
	return NewAt(ctx, time.Now, reserve, fallback)
}

// NewAt is New on the clock now (tests inject one that advances).
func NewAt(ctx context.Context, now func() time.Time, reserve, fallback time.Duration) Plan {
	p := Plan{now: now}
	if dl, ok := ctx.Deadline(); ok {
		p.hard = dl.Add(-reserve)
	} else if fallback > 0 {
		p.hard = now().Add(fallback)
	}
	p.stop = p.hard
	return p
}

func (p Plan) clock() time.Time {
	if p.now == nil {
		return time.Now()
	}
	return p.now()
}

// Within is the plan that also stops limit from now (0: no further bound); the hard stop, which
// Fits and Closed check, stays.
func (p Plan) Within(limit time.Duration) Plan {
	if limit <= 0 {
		return p
	}
	if at := p.clock().Add(limit); p.stop.IsZero() || at.Before(p.stop) {
		p.stop = at
	}
	return p
}

// StopAt is when the plan stops starting work (zero: never).
func (p Plan) StopAt() time.Time { return p.stop }

// Left is the time until StopAt, never negative; ok is false when there is no bound.
func (p Plan) Left() (left time.Duration, ok bool) {
	if p.stop.IsZero() {
		return 0, false
	}
	return max(0, p.stop.Sub(p.clock())), true
}

// Over reports whether StopAt has come: no new work should start.
func (p Plan) Over() bool {
	return !p.stop.IsZero() && !p.clock().Before(p.stop)
}

// Closed reports whether the hard stop (the deadline less the reserve) has come; unlike Over
// it ignores Within.
func (p Plan) Closed() bool {
	return !p.hard.IsZero() && !p.clock().Before(p.hard)
}

// Fits reports whether work taking up to d, started now, ends by the hard stop (always, without
// one).
func (p Plan) Fits(d time.Duration) bool {
	return p.hard.IsZero() || !p.clock().Add(d).After(p.hard)
}

// Context is ctx with its deadline moved earlier by reserve, but by at most a third of the time
// left, so a short invocation still gets work done; without a deadline it is ctx with a cancel.
func Context(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	return contextAt(ctx, time.Now, reserve)
}

func contextAt(ctx context.Context, now func() time.Time, reserve time.Duration) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, d.Add(-min(reserve, d.Sub(now())/3)))
}

// Bookkeeping is a context for work that must survive the invocation's context: it keeps ctx's
// values, is not cancelled with it, and ends after timeout.
func Bookkeeping(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
