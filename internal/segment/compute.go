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
	d := c.Window.Duration()
	var (
		n        int
		nums     int
		sum      float64
		lo, hi   = math.Inf(1), math.Inf(-1)
		first    *Event
		last     *Event
		freq     map[string]int
		lastSeen map[string]int
	)
	needValues := c.Kind == KindMostFrequent || c.Kind == KindUniqueList || c.Kind == KindUniqueCount
	if needValues {
		freq, lastSeen = map[string]int{}, map[string]int{}
	}
	for i := range events {
		e := &events[i]
		if !inWindow(e.T, now, d) || !c.Event.Matches(e) {
			continue
		}
		n++
		if first == nil {
			first = e
		}
		last = e
		if c.Property == "" {
			continue
		}
		v, ok := lookup(e.props(), c.Property)
		if !ok {
			continue
		}
		if f, isNum := toNumber(v); isNum {
			nums++
			sum += f
			lo, hi = math.Min(lo, f), math.Max(hi, f)
		}
		if needValues {
			if s := scalarString(v); s != "" {
				freq[s]++
				lastSeen[s] = i
			}
		}
	}
	switch c.Kind {
	case KindCount:
		return float64(n)
	case KindSum, KindLifetimeValue:
		if nums == 0 && c.Kind == KindLifetimeValue {
			return float64(0)
		}
		if nums == 0 {
			return nil
		}
		return round(sum)
	case KindAvg:
		if nums == 0 {
			return nil
		}
		return round(sum / float64(nums))
	case KindMin:
		if nums == 0 {
			return nil
		}
		return lo
	case KindMax:
		if nums == 0 {
			return nil
		}
		return hi
	case KindMostFrequent:
		best, bestN := "", 0
		for v, k := range freq {
			if k > bestN || k == bestN && v < best {
				best, bestN = v, k
			}
		}
		if bestN == 0 {
			return nil
		}
		return best
	case KindUniqueList:
		if len(freq) == 0 {
			return nil
		}
		list := make([]string, 0, len(freq))
		for v := range freq {
			list = append(list, v)
		}
		sort.Strings(list)
		if len(list) > MaxUniqueValues {
			list = list[:MaxUniqueValues]
		}
		return list
	case KindUniqueCount:
		return float64(len(freq))
	case KindFirst, KindLast:
		e := first
		if c.Kind == KindLast {
			e = last
		}
		if e == nil {
			return nil
		}
		if c.Property == "" {
			return e.T.Format(time.RFC3339Nano)
		}
		v, _ := lookup(e.props(), c.Property)
		return v
	case KindRFMRecency:
		if last == nil {
			return nil
		}
		days := now.Sub(last.T).Hours() / 24
		return float64(5 - countBelow(c.Thresholds, days, false))
	case KindRFMFrequency:
		if n == 0 {
			return nil
		}
		return float64(1 + countBelow(c.Thresholds, float64(n), true))
	case KindRFMMonetary:
		if n == 0 {
			return nil
		}
		return float64(1 + countBelow(c.Thresholds, sum, true))
	}
	return nil
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
func (c *ComputedTrait) nextChange(events []Event, now time.Time) time.Time {
	if c.Kind == KindRFMRecency {
		var last *Event
		for i := range events {
			if c.Event.Matches(&events[i]) {
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
		if inWindow(e.T, now, d) && f.Matches(e) {
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
