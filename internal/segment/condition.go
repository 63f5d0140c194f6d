package segment

import (
	"encoding/json"
	"time"
)

// evalCtx is what a condition sees of one profile at one instant.
type evalCtx struct {
	st       *State
	now      time.Time
	computed map[string]any
	member   func(audienceID string) bool
}

func newEvalCtx(st *State, now time.Time) *evalCtx {
	x := &evalCtx{st: st, now: now, computed: make(map[string]any, len(st.Computed))}
	for k, raw := range st.Computed {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			x.computed[k] = v
		}
	}
	x.member = func(id string) bool {
		m := st.Members[id]
		return m != nil && m.In
	}
	return x
}

// evalCondition reports whether the profile matches the condition.
func evalCondition(c *Condition, x *evalCtx) bool {
	switch {
	case c.And != nil:
		for i := range c.And {
			if !evalCondition(&c.And[i], x) {
				return false
			}
		}
		return true
	case c.Or != nil:
		for i := range c.Or {
			if evalCondition(&c.Or[i], x) {
				return true
			}
		}
		return false
	case c.Not != nil:
		return !evalCondition(c.Not, x)
	case c.Trait != nil:
		v, ok := lookup(x.st.traits(), c.Trait.Key)
		return c.Trait.Match(v, ok)
	case c.ComputedTrait != nil:
		v, ok := lookup(x.computed, c.ComputedTrait.Key)
		return c.ComputedTrait.Match(v, ok)
	case c.Audience != nil:
		return x.member(c.Audience.ID)
	case c.Event != nil:
		return evalEvent(c.Event, x.st.Events, x.now)
	}
	return false
}

func evalEvent(e *EventCondition, events []Event, now time.Time) bool {
	d := e.Within.Duration()
	n := 0
	for i := range events {
		ev := &events[i]
		if e.Between != nil {
			if ev.T.Before(e.Between.From) || !ev.T.Before(e.Between.To) {
				continue
			}
		} else if !inWindow(ev.T, now, d) {
			continue
		}
		if matches(&e.EventFilter, ev) {
			n++
		}
	}
	cnt := Count{Op: AtLeast, N: 1}
	if e.Count != nil {
		cnt = *e.Count
	}
	switch cnt.Op {
	case AtMost:
		return n <= cnt.N
	case Exactly:
		return n == cnt.N
	}
	return n >= cnt.N
}
