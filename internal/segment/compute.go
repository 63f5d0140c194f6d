package segment

import (
	"encoding/json"
	"math"
	"time"
)

// Compute is a computed trait's value at now from its accumulator's tally there (Acc.at). The
// result is a JSON value, or nil when the trait has no value (no matching event; counts are 0
// instead).
func Compute(c *ComputedTrait, t *Tally, now time.Time) any {
	switch c.Kind {
	case KindCount:
		return float64(t.N)
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

// numeric is the value of sum, lifetime_value, avg, min and max.
func (t *Tally) numeric(kind string) any {
	if t.K == 0 {
		if kind == KindLifetimeValue {
			return float64(0)
		}
		return nil
	}
	switch kind {
	case KindSum, KindLifetimeValue:
		return round(t.total())
	case KindAvg:
		return round(t.total() / float64(t.K))
	case KindMin:
		return t.Lo
	}
	return t.Hi
}

// values is the value of most_frequent, unique_count and unique_list.
func (t *Tally) values(kind string) any {
	switch kind {
	case KindUniqueCount:
		return t.distinct()
	case KindMostFrequent:
		best, bestN := "", int64(0)
		for v, k := range t.Freq {
			if k > bestN || k == bestN && v < best {
				best, bestN = v, k
			}
		}
		if bestN == 0 {
			return nil
		}
		return best
	}
	if len(t.List) == 0 {
		return nil
	}
	return append([]string(nil), t.List...)
}

// edge is the value of first and last: the property of that event, or its time.
func (t *Tally) edge(c *ComputedTrait) any {
	e := t.First
	if c.Kind == KindLast {
		e = t.Last
	}
	if e == nil {
		return nil
	}
	if c.Property == "" {
		return time.Unix(0, e.T).UTC().Format(time.RFC3339Nano)
	}
	var v any
	if len(e.V) > 0 {
		_ = json.Unmarshal(e.V, &v)
	}
	return v
}

// rfm is the 1–5 score of the RFM kinds.
func (t *Tally) rfm(c *ComputedTrait, now time.Time) any {
	switch {
	case c.Kind == KindRFMRecency && t.Last != nil:
		days := now.Sub(time.Unix(0, t.Last.T)).Hours() / 24
		return float64(5 - countBelow(c.Thresholds, days, false))
	case t.N == 0 || c.Kind == KindRFMRecency:
		return nil
	case c.Kind == KindRFMFrequency:
		return float64(1 + countBelow(c.Thresholds, float64(t.N), true))
	}
	return float64(1 + countBelow(c.Thresholds, t.total(), true))
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

// recencyChange is the earliest time after now at which an rfm_recency score drops with no
// new purchase: the last purchase plus a threshold (zero: never).
func recencyChange(c *ComputedTrait, t *Tally, now time.Time) time.Time {
	if t.Last == nil {
		return time.Time{}
	}
	last := time.Unix(0, t.Last.T).UTC()
	var next time.Time
	for _, th := range c.Thresholds {
		at := last.Add(time.Duration(th * float64(24*time.Hour)))
		if at.After(now) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next
}

func toJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}
