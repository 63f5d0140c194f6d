package segment

import (
	"encoding/json"
	"math"
	"sort"
	"time"
)

// inWindow reports whether an event at t counts in a window of length d ending at now
// (d == 0: all time). An event leaves the window at exactly t+d.
func inWindow(t, now time.Time, d time.Duration) bool {
	return d == 0 || t.After(now.Add(-d))
}

// Compute evaluates a computed trait over a profile's events at now. The result is a JSON
// value, or nil when the trait has no value (no matching event; counts are 0 instead).
func Compute(c *ComputedTrait, events []Event, now time.Time) any {
	t := tallyEvents(c, events, now)
	switch c.Kind {
	case KindCount:
		return float64(t.n)
	case KindSum, KindLifetimeValue, KindAvg, KindMin, KindMax:
		return t.numeric(c.Kind)
	case KindMostFrequent, KindUniqueList, KindUniqueCount:
		return t.values(c.Kind)
	case KindFirst, KindLast:
		return t.edge(c)
	case KindRFMRecency, KindRFMFrequency, KindRFMMonetary:
		return t.rfm(c, now)
	}
	return nil
}

// tally is what Compute gathers from the events a computed trait matches.
type tally struct {
	n, nums     int     // matching events; of those, with a numeric property value
	sum, lo, hi float64 // of the numeric values
	first, last *Event
	freq        map[string]int // distinct property values (kinds over values only)
}

// tallyEvents gathers what Compute needs from the events c matches.
func tallyEvents(c *ComputedTrait, events []Event, now time.Time) tally {
	d := c.Window.Duration()
	t := tally{lo: math.Inf(1), hi: math.Inf(-1)}
	if c.Kind == KindMostFrequent || c.Kind == KindUniqueList || c.Kind == KindUniqueCount {
		t.freq = map[string]int{}
	}
	for i := range events {
		e := &events[i]
		if !inWindow(e.T, now, d) || !matches(&c.Event, e) {
			continue
		}
		t.n++
		if t.first == nil {
			t.first = e
		}
		t.last = e
		if c.Property != "" {
			t.addValue(e, c.Property)
		}
	}
	return t
}

func (t *tally) addValue(e *Event, prop string) {
	v, ok := lookup(e.props(), prop)
	if !ok {
		return
	}
	if f, isNum := toNumber(v); isNum {
		t.nums++
		t.sum += f
		t.lo, t.hi = math.Min(t.lo, f), math.Max(t.hi, f)
	}
	if t.freq != nil {
		if s := scalarString(v); s != "" {
			t.freq[s]++
		}
	}
}

// numeric is the value of sum, lifetime_value, avg, min and max.
func (t *tally) numeric(kind string) any {
	if t.nums == 0 {
		if kind == KindLifetimeValue {
			return float64(0)
		}
		return nil
	}
	switch kind {
	case KindSum, KindLifetimeValue:
		return round(t.sum)
	case KindAvg:
		return round(t.sum / float64(t.nums))
	case KindMin:
		return t.lo
	}
	return t.hi
}

// values is the value of most_frequent, unique_count and unique_list.
func (t *tally) values(kind string) any {
	switch kind {
	case KindUniqueCount:
		return float64(len(t.freq))
	case KindMostFrequent:
		best, bestN := "", 0
		for v, k := range t.freq {
			if k > bestN || k == bestN && v < best {
				best, bestN = v, k
			}
		}
		if bestN == 0 {
			return nil
		}
		return best
	}
	if len(t.freq) == 0 {
		return nil
	}
	list := make([]string, 0, len(t.freq))
	for v := range t.freq {
		list = append(list, v)
	}
	sort.Strings(list)
	if len(list) > MaxUniqueValues {
		list = list[:MaxUniqueValues]
	}
	return list
}

// edge is the value of first and last: the property of that event, or its time.
func (t *tally) edge(c *ComputedTrait) any {
	e := t.first
	if c.Kind == KindLast {
		e = t.last
	}
	if e == nil {
		return nil
	}
	if c.Property == "" {
		return e.T.Format(time.RFC3339Nano)
	}
	v, _ := lookup(e.props(), c.Property)
	return v
}

// rfm is the 1–5 score of the RFM kinds.
func (t *tally) rfm(c *ComputedTrait, now time.Time) any {
	switch {
	case c.Kind == KindRFMRecency && t.last != nil:
		days := now.Sub(t.last.T).Hours() / 24
		return float64(5 - countBelow(c.Thresholds, days, false))
	case t.n == 0 || c.Kind == KindRFMRecency:
		return nil
	case c.Kind == KindRFMFrequency:
		return float64(1 + countBelow(c.Thresholds, float64(t.n), true))
	}
	return float64(1 + countBelow(c.Thresholds, t.sum, true))
}

// countBelow counts thresholds t with v ≥ t (orEqual) or v > t.
func countBelow(ts []float64, v float64, orEqual bool) int {
	k := 0
	for _, t := range ts {
		if v > t || orEqual && v == t {
			k++
		}
	}
	return k
}

// round keeps sums of decimal amounts readable (0.1+0.2 → 0.3).
func round(f float64) float64 { return math.Round(f*1e9) / 1e9 }

// nextChange is the earliest time after now at which a computed trait can change with no new
// event (zero: never).
func nextChange(c *ComputedTrait, events []Event, now time.Time) time.Time {
	if c.Kind == KindRFMRecency {
		var last *Event
		for i := range events {
			if matches(&c.Event, &events[i]) {
				last = &events[i]
			}
		}
		if last == nil {
			return time.Time{}
		}
		var next time.Time
		for _, t := range c.Thresholds {
			at := last.T.Add(time.Duration(t * float64(24*time.Hour)))
			if at.After(now) && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
		return next
	}
	return windowExpiry(&c.Event, c.Window.Duration(), events, now)
}

// windowExpiry is the earliest time after now at which a matching event leaves the window.
func windowExpiry(f *EventFilter, d time.Duration, events []Event, now time.Time) time.Time {
	if d == 0 {
		return time.Time{}
	}
	for i := range events { // oldest first: the first matching in-window event expires first
		e := &events[i]
		if inWindow(e.T, now, d) && matches(f, e) {
			return e.T.Add(d)
		}
	}
	return time.Time{}
}

func toJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}
