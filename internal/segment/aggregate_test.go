package segment

import (
	"context"
	"testing"
	"time"
)

// accOf is the accumulator of spec fed with events at now.
func accOf(s *aggSpec, evs []Event, now time.Time) *Acc {
	a := &Acc{}
	for i := range evs {
		if s.matches(&evs[i]) {
			a.add(s, &evs[i], now)
		}
	}
	return a
}

// computeEvents is a computed trait's value at now after the events.
func computeEvents(c *ComputedTrait, evs []Event, now time.Time) any {
	s := traitSpec(c)
	return Compute(c, accOf(s, evs, now).at(s, now), now)
}

// withAggs builds the accumulators of a condition's event nodes from the state's legacy events
// (as the upgrade of a stored event log does).
func withAggs(t testing.TB, st *State, cond *Condition, now time.Time) *State {
	t.Helper()
	c := &Catalog{specs: map[string]*aggSpec{}}
	cond.Walk(func(n *Condition) {
		if n.Event != nil {
			s := condSpec(n.Event)
			c.specs[s.sig] = s
		}
	})
	cp := *st
	cp.Aggs = nil
	if _, err := c.ensureAggs(context.Background(), &cp, nil, now); err != nil {
		t.Fatal(err)
	}
	return &cp
}
