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
	cat      *Catalog        // the accumulator specs of event conditions (nil: computed)
	extra    map[string]*Acc // accumulators the state lacks (a preview's draft), by signature
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
		return evalEvent(c.Event, x)
	}
	return false
}

// spec is the accumulator of an event condition.
func (x *evalCtx) spec(e *EventCondition) *aggSpec {
	if x.cat != nil {
		if s := x.cat.condSpecs[e]; s != nil {
			return s
		}
	}
	return condSpec(e)
}

// evalEvent counts the matching events from the condition's accumulator (none yet: 0).
func evalEvent(e *EventCondition, x *evalCtx) bool {
	s := x.spec(e)
	acc := x.st.Aggs[s.sig]
	if acc == nil {
		acc = x.extra[s.sig]
	}
	n := acc.at(s, x.now).N
	cnt := Count{Op: AtLeast, N: 1}
	if e.Count != nil {
		cnt = *e.Count
	}
	switch want := int64(cnt.N); cnt.Op {
	case AtMost:
		return n <= want
	case Exactly:
		return n == want
	default:
		return n >= want
	}
}
