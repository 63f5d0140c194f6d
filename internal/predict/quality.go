package predict

import (
	"math"
	"sort"
)

// Quality labels. A likelihood's (and predicted_ltv's, ranking who spends in the holdout)
// label comes from its backtest AUC, with the usual bands for discrimination: below 0.6 Poor,
// 0.6–0.7 Fair, 0.7–0.8 Good, 0.8 and above Excellent. Next best product's comes from its hit
// rate at K over the popularity baseline's: below 1.1× Poor, 1.1–1.5× Fair, 1.5–2× Good, 2× and
// above Excellent.
const (
	LabelPoor      = "Poor"
	LabelFair      = "Fair"
	LabelGood      = "Good"
	LabelExcellent = "Excellent"
)

// aucLabel buckets an AUC.
func aucLabel(auc float64) string {
	switch {
	case auc >= 0.8:
		return LabelExcellent
	case auc >= 0.7:
		return LabelGood
	case auc >= 0.6:
		return LabelFair
	}
	return LabelPoor
}

// liftLabel buckets a hit rate's ratio to the baseline's.
func liftLabel(hit, base float64) string {
	ratio := math.Inf(1)
	if base > 0 {
		ratio = hit / base
	}
	switch {
	case hit == 0:
		return LabelPoor
	case ratio >= 2:
		return LabelExcellent
	case ratio >= 1.5:
		return LabelGood
	case ratio >= 1.1:
		return LabelFair
	}
	return LabelPoor
}

// AUC is the area under the ROC curve of scores for labels (Mann–Whitney U, ties counting
// half): the probability that a random positive scores above a random negative. NaN when
// either class is empty.
func AUC(scores []float64, labels []bool) float64 {
	order := sortedOrder(scores)
	var rankSum, pos float64
	for i := 0; i < len(order); {
		j := i
		for j < len(order) && scores[order[j]] == scores[order[i]] {
			j++
		}
		mid := float64(i+j+1) / 2 // average 1-based rank of the tie group
		for _, k := range order[i:j] {
			if labels[k] {
				rankSum += mid
				pos++
			}
		}
		i = j
	}
	neg := float64(len(scores)) - pos
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// sortedOrder is the indexes of scores in ascending order.
func sortedOrder(scores []float64) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] < scores[order[b]] })
	return order
}

// likelihoodQuality measures probabilities p against outcomes y: AUC, lift in the top decile,
// log loss (p clipped to [1e-6, 1−1e-6]), calibration error over score deciles and base rate.
func likelihoodQuality(p []float64, y []bool) Quality {
	q := Quality{Profiles: len(p)}
	for _, v := range y {
		if v {
			q.Positives++
		}
	}
	q.Negatives = q.Profiles - q.Positives
	if q.Profiles == 0 {
		return q
	}
	q.BaseRate = float64(q.Positives) / float64(q.Profiles)
	q.AUC = finite(AUC(p, y))
	var ll float64
	for i, v := range p {
		c := math.Min(math.Max(v, 1e-6), 1-1e-6)
		if y[i] {
			ll -= math.Log(c)
		} else {
			ll -= math.Log(1 - c)
		}
	}
	q.LogLoss = ll / float64(len(p))
	order := sortedOrder(p)
	q.LiftTop = topDecileLift(order, y, q.BaseRate)
	q.CalibrationError = decileCalibration(order, p, y)
	q.Label = aucLabel(q.AUC)
	return q
}

// topDecileLift is the positive rate among the tenth with the highest scores over the base rate.
func topDecileLift(order []int, y []bool, base float64) float64 {
	n := (len(order) + 9) / 10
	if n == 0 || base == 0 {
		return 0
	}
	hits := 0
	for _, k := range order[len(order)-n:] {
		if y[k] {
			hits++
		}
	}
	return float64(hits) / float64(n) / base
}

// decileCalibration is the mean over score deciles of |mean predicted − observed rate|.
func decileCalibration(order []int, p []float64, y []bool) float64 {
	n := len(order)
	var sum float64
	groups := 0
	for d := 0; d < 10; d++ {
		lo, hi := d*n/10, (d+1)*n/10
		if hi <= lo {
			continue
		}
		var pr, obs float64
		for _, k := range order[lo:hi] {
			pr += p[k]
			if y[k] {
				obs++
			}
		}
		sum += math.Abs(pr-obs) / float64(hi-lo)
		groups++
	}
	if groups == 0 {
		return 0
	}
	return sum / float64(groups)
}

// finite maps NaN and ±Inf to 0 (Quality's "not applicable").
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
