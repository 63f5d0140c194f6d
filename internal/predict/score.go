package predict

import (
	"math"
	"sort"
	"time"

	"gonum.org/v1/gonum/stat"
)

// Score is the profile's prediction at now from its all-time fields. A profile without the goal
// event scores NoHistory (predicted_ltv: NoHistory × MeanSpend; return_likelihood: the
// population's mean return rate α/(α+β)). The value is always finite.
func (m *Model) Score(p Profile, now time.Time) Score {
	if m.Kind == KindProduct {
		k := m.K
		if k <= 0 {
			k = DefaultK
		}
		c := cooccurrence{Popular: m.Popular, Neighbors: m.Neighbors, Weights: m.Weights}
		return Score{Products: c.recommend(union(p.Viewed, p.Bought), p.Bought, k)}
	}
	v := m.value(p, Day(now))
	return Score{Value: v, Percentile: m.Percentile(v)}
}

// value is a profile's score at nowDay (finite; 0 for a model without parameters).
func (m *Model) value(p Profile, nowDay int64) float64 {
	var v float64
	switch m.Kind {
	case KindReturn:
		if m.Beta == nil {
			return 0
		}
		n := float64(max(p.Orders, 0))
		v = returnMean(m.Beta, n, math.Min(float64(max(p.Returns, 0)), n))
	case KindPurchase, KindChurn, KindLTV:
		if p.Goal.Count <= 0 || m.BGNBD == nil {
			v = m.NoHistory
			if m.Kind == KindLTV {
				v *= m.MeanSpend
			}
			break
		}
		s := allTime(p.Goal, nowDay)
		if m.Kind == KindLTV {
			v = m.ltv(s, p.Spend, float64(m.HorizonDays))
		} else {
			v = m.likelihood(s)
		}
	}
	return finite(v)
}

// likelihood is purchase_likelihood (1 − P(no goal day in the horizon)) or churn_likelihood
// (P(no active day in the horizon)) of a summary.
func (m *Model) likelihood(s summary) float64 {
	none := bgFrom(m.BGNBD).pNone(s, float64(m.HorizonDays))
	if m.Kind == KindChurn {
		return none
	}
	return 1 - none
}

// ltv is E[X(horizon)] × E[M | x, m]; a profile without an order of known value gets the
// population's mean order value.
func (m *Model) ltv(s summary, sp Spend, h float64) float64 {
	e := bgFrom(m.BGNBD).expected(s, h)
	spend := m.MeanSpend
	if m.GammaGamma != nil {
		gg := ggFrom(m.GammaGamma)
		if sp.Count > 0 && sp.Sum > 0 {
			spend = gg.conditionalSpend(float64(sp.Count), sp.Sum/float64(sp.Count))
		} else if gg.q > 1 {
			spend = gg.p * gg.gamma / (gg.q - 1)
		}
	}
	return finite(e * ordersPerDay(s, sp) * spend)
}

// ordersPerDay is how many orders a profile places per active day, at least 1: BG/NBD counts
// active days, Gamma-Gamma values orders, so a profile that often orders twice a day is
// expected to spend twice per expected active day.
func ordersPerDay(s summary, sp Spend) float64 {
	if days := s.x + 1; float64(sp.Count) > days {
		return float64(sp.Count) / days
	}
	return 1
}

// Percentile is how many of the model's 99 percentile cuts are ≤ v (0–99): a score at or above
// the scores' 80th percentile has Percentile ≥ 80, so "percentile ≥ 80" is the top 20 %. 0 for a
// model without cuts.
func (m *Model) Percentile(v float64) int {
	if math.IsNaN(v) {
		return 0
	}
	return sort.Search(len(m.Cuts), func(i int) bool { return m.Cuts[i] > v })
}

// percentileCuts is the 1st to 99th percentiles of vals (nil when vals is empty).
func percentileCuts(vals []float64) []float64 {
	if len(vals) == 0 {
		return nil
	}
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	cuts := make([]float64, 99)
	for i := range cuts {
		cuts[i] = stat.Quantile(float64(i+1)/100, stat.Empirical, s, nil)
	}
	return cuts
}

// Parameters is the model's fitted parameters with their standard errors (BG/NBD, then
// Gamma-Gamma; or the beta-binomial's), as QualityView.Params shows them; nil for
// next_best_product.
func (m *Model) Parameters() []Params {
	var out []Params
	for _, p := range []*Params{m.BGNBD, m.GammaGamma, m.Beta} {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}
