package predict

import (
	"fmt"
	"math"
	"sort"
)

// trainBG trains purchase_likelihood, churn_likelihood and predicted_ltv.
func trainBG(cfg Config, profiles []Profile, nowDay int64) (*Model, error) {
	cutoff := nowDay - int64(cfg.HorizonDays)
	bt := collectBacktest(profiles, cutoff)
	labels := make([]bool, len(bt.rows))
	pos := 0
	for k, r := range bt.rows {
		labels[k] = r.after > 0 // purchase, LTV: a goal day in the holdout
		if cfg.Kind == KindChurn {
			labels[k] = r.after == 0 // churn: no activity in the holdout
		}
		if labels[k] {
			pos++
		}
	}
	what := "with a goal event in the holdout"
	if cfg.Kind == KindChurn {
		what = "without activity in the holdout"
	}
	if err := checkCounts(pos, len(labels)-pos, what); err != nil {
		return nil, err
	}
	cal := make([]summary, len(bt.rows))
	for k, r := range bt.rows {
		cal[k] = r.s
	}
	calBG, err := fitBGNBD(cal)
	if err != nil {
		return nil, fmt.Errorf("backtest fit: %w", err)
	}
	m := &Model{Kind: cfg.Kind, HorizonDays: cfg.HorizonDays, BGNBD: calBG, NoHistory: bt.noHistoryRate()}
	if cfg.Kind == KindChurn {
		m.NoHistory = 1 - m.NoHistory
	}
	var q Quality
	if cfg.Kind == KindLTV {
		q, err = ltvBacktest(m, profiles, bt, labels, float64(cfg.HorizonDays))
		if err != nil {
			return nil, err
		}
	} else {
		scores := make([]float64, len(bt.rows))
		for k, r := range bt.rows {
			scores[k] = m.likelihood(r.s)
		}
		q = likelihoodQuality(scores, labels)
	}
	q.Skipped = bt.unknown + bt.newcomers + bt.never
	if err := refitBG(m, cfg.Kind, profiles, nowDay); err != nil {
		return nil, err
	}
	m.Quality = q
	return m, nil
}

// refitBG fits the published model's parameters on all of the data at now's day.
func refitBG(m *Model, kind string, profiles []Profile, nowDay int64) error {
	var all []summary
	for _, p := range profiles {
		if p.Goal.Count > 0 {
			all = append(all, allTime(p.Goal, nowDay))
		}
	}
	bg, err := fitBGNBD(all)
	if err != nil {
		return fmt.Errorf("fit: %w", err)
	}
	m.BGNBD = bg
	if kind == KindLTV {
		gg, mean, err := fitSpend(profiles, func(p Profile) Spend { return p.Spend })
		if err != nil {
			return fmt.Errorf("fit spend: %w", err)
		}
		m.GammaGamma, m.MeanSpend = gg, mean
	}
	return nil
}

// fitSpend fits Gamma-Gamma on the profiles' spend (as sp picks it) with at least one order of
// positive value; it also returns the mean order value.
func fitSpend(profiles []Profile, sp func(Profile) Spend) (*Params, float64, error) {
	var obs []spendObs
	var sum, n float64
	for _, p := range profiles {
		s := sp(p)
		if s.Count >= 1 && s.Sum > 0 {
			obs = append(obs, spendObs{x: float64(s.Count), m: s.Sum / float64(s.Count)})
			sum += s.Sum
			n += float64(s.Count)
		}
	}
	if len(obs) == 0 {
		return nil, 0, fmt.Errorf("%w: no profile has an order with a value", ErrInsufficient)
	}
	sort.Slice(obs, func(i, j int) bool { return obs[i].x < obs[j].x })
	gg, err := fitGammaGamma(obs)
	return gg, sum / n, err
}

// ltvBacktest fits Gamma-Gamma on the calibration spend and measures predicted against actual
// holdout spend: the AUC and lift of predicted value for spending at all, and the calibration
// error |Σ predicted − Σ actual| / Σ actual.
func ltvBacktest(m *Model, profiles []Profile, bt bgBacktest, labels []bool, h float64) (Quality, error) {
	calSpend := func(p Profile) Spend {
		return Spend{Count: p.Spend.Count - p.RecentSpend.Count, Sum: p.Spend.Sum - p.RecentSpend.Sum}
	}
	gg, mean, err := fitSpend(profiles, calSpend)
	if err != nil {
		return Quality{}, fmt.Errorf("backtest spend fit: %w", err)
	}
	m.GammaGamma, m.MeanSpend = gg, mean
	pred := make([]float64, len(bt.rows))
	var sumPred, sumAct float64
	for k, r := range bt.rows {
		p := profiles[r.i]
		pred[k] = m.ltv(r.s, calSpend(p), h)
		sumPred += pred[k]
		sumAct += p.RecentSpend.Sum
	}
	q := likelihoodQuality(pred, labels)
	q.LogLoss = 0 // not a probability
	q.CalibrationError = 0
	if sumAct > 0 {
		q.CalibrationError = math.Abs(sumPred-sumAct) / sumAct
	}
	return q, nil
}
