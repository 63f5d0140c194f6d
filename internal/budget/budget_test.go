package budget

import (
	"context"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func deadlineCtx(t *testing.T, at time.Time) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), at)
	t.Cleanup(cancel)
	return ctx
}

func TestPlanFromDeadlineLessReserve(t *testing.T) {
	c := &fakeClock{t: t0}
	p := NewAt(deadlineCtx(t, t0.Add(10*time.Second)), c.now, 3*time.Second, time.Minute)
	if got, want := p.StopAt(), t0.Add(7*time.Second); !got.Equal(want) {
		t.Fatalf("StopAt %v, want %v (deadline less reserve; fallback unused)", got, want)
	}
	if left, ok := p.Left(); !ok || left != 7*time.Second {
		t.Fatalf("Left %v %v, want 7s", left, ok)
	}
	c.advance(7*time.Second - time.Nanosecond)
	if p.Over() || p.Closed() {
		t.Fatal("over before the stop")
	}
	c.advance(time.Nanosecond)
	if !p.Over() || !p.Closed() {
		t.Fatal("not over at the stop")
	}
	c.advance(time.Second)
	if left, _ := p.Left(); left != 0 {
		t.Fatalf("Left %v after the stop, want 0", left)
	}
}

func TestPlanFallbackWithoutDeadline(t *testing.T) {
	c := &fakeClock{t: t0}
	p := NewAt(context.Background(), c.now, 3*time.Second, 25*time.Second)
	if got := p.StopAt(); !got.Equal(t0.Add(25 * time.Second)) {
		t.Fatalf("StopAt %v, want start + fallback", got)
	}
	c.advance(25 * time.Second)
	if !p.Over() {
		t.Fatal("not over after the fallback")
	}
}

func TestPlanUnbounded(t *testing.T) {
	c := &fakeClock{t: t0}
	for _, p := range []Plan{NewAt(context.Background(), c.now, time.Second, 0), {}} {
		c.advance(1000 * time.Hour)
		if p.Over() || p.Closed() || !p.Fits(1000*time.Hour) || !p.StopAt().IsZero() {
			t.Fatal("an unbounded plan ran out")
		}
		if _, ok := p.Left(); ok {
			t.Fatal("an unbounded plan has a Left")
		}
	}
}

func TestWithinCapsTheStopNotTheHardStop(t *testing.T) {
	c := &fakeClock{t: t0}
	base := NewAt(deadlineCtx(t, t0.Add(60*time.Second)), c.now, 3*time.Second, 0)
	p := base.Within(2 * time.Second)
	if got := p.StopAt(); !got.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("StopAt %v, want now + limit", got)
	}
	if got := base.Within(time.Hour).StopAt(); !got.Equal(t0.Add(57 * time.Second)) {
		t.Fatalf("a limit beyond the deadline moved the stop to %v", got)
	}
	if got := base.Within(0).StopAt(); !got.Equal(base.StopAt()) {
		t.Fatal("Within(0) changed the plan")
	}
	c.advance(2 * time.Second)
	if !p.Over() || p.Closed() {
		t.Fatalf("over=%v closed=%v at the limit, want over and not closed", p.Over(), p.Closed())
	}
	if !p.Fits(55*time.Second) || p.Fits(55*time.Second+time.Nanosecond) {
		t.Fatal("Fits does not measure against the hard stop")
	}
	// Without a deadline Within alone bounds the plan.
	u := NewAt(context.Background(), c.now, 3*time.Second, 0).Within(time.Second)
	if !u.StopAt().Equal(c.now().Add(time.Second)) || u.Closed() || !u.Fits(time.Hour) {
		t.Fatal("Within without a deadline")
	}
}

func TestContextKeepsAtMostAThirdInReserve(t *testing.T) {
	c := &fakeClock{t: t0}
	for _, tc := range []struct {
		left, reserve, want time.Duration
	}{
		{60 * time.Second, 3 * time.Second, 57 * time.Second},
		{6 * time.Second, 3 * time.Second, 4 * time.Second},
	} {
		ctx, cancel := contextAt(deadlineCtx(t, t0.Add(tc.left)), c.now, tc.reserve)
		d, ok := ctx.Deadline()
		cancel()
		if !ok || !d.Equal(t0.Add(tc.want)) {
			t.Errorf("left %v reserve %v: deadline %v, want now+%v", tc.left, tc.reserve, d.Sub(t0), tc.want)
		}
	}
	ctx, cancel := contextAt(context.Background(), c.now, time.Second)
	if _, ok := ctx.Deadline(); ok {
		t.Error("a context without a deadline got one")
	}
	cancel()
	if ctx.Err() == nil {
		t.Error("cancel does not cancel")
	}
}

func TestBookkeepingOutlivesTheInvocation(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	cancel()
	ctx, done := Bookkeeping(parent, time.Minute)
	defer done()
	if ctx.Err() != nil {
		t.Fatal("bookkeeping context cancelled with the invocation")
	}
	if ctx.Value(key{}) != "v" {
		t.Fatal("bookkeeping context lost the invocation's values")
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Minute {
		t.Fatalf("bookkeeping deadline %v %v, want within the timeout", d, ok)
	}
}
