package predict

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// trainReturn trains return_likelihood: beta-binomial on each profile's orders and returns.
// The backtest fits on the calibration counts (all − recent) and predicts, for the profiles
// with orders in the holdout, whether any of those was returned.
func trainReturn(cfg Config, profiles []Profile) (*Model, error) {
	type row struct {
		n, k, recent float64
		label        bool
	}
	var cal []orderObs
	var rows []row
	pos := 0
	for _, p := range profiles {
		n := float64(max(p.Orders-p.RecentOrders, 0))
		k := math.Min(float64(max(p.Returns-p.RecentReturns, 0)), n)
		if n >= 1 {
			cal = append(cal, orderObs{n: n, k: k})
		}
		if p.RecentOrders > 0 {
			rows = append(rows, row{n: n, k: k, recent: float64(p.RecentOrders), label: p.RecentReturns > 0})
			if p.RecentReturns > 0 {
				pos++
			}
		}
	}
	if err := checkCounts(pos, len(rows)-pos, "with a return in the holdout among those with orders there"); err != nil {
		return nil, err
	}
	if len(cal) == 0 {
		return nil, fmt.Errorf("%w: no profile has an order before the holdout", ErrInsufficient)
	}
	calBeta, err := fitBetaBinom(cal)
	if err != nil {
		return nil, fmt.Errorf("backtest fit: %w", err)
	}
	scores, labels := make([]float64, len(rows)), make([]bool, len(rows))
	for i, r := range rows {
		scores[i], labels[i] = returnAny(calBeta, r.n, r.k, r.recent), r.label
	}
	q := likelihoodQuality(scores, labels)
	q.Skipped = len(profiles) - len(rows)
	var all []orderObs
	for _, p := range profiles {
		if p.Orders >= 1 {
			n := float64(p.Orders)
			all = append(all, orderObs{n: n, k: math.Min(float64(max(p.Returns, 0)), n)})
		}
	}
	beta, err := fitBetaBinom(all)
	if err != nil {
		return nil, fmt.Errorf("fit: %w", err)
	}
	return &Model{Beta: beta, NoHistory: returnMean(beta, 0, 0), Quality: q}, nil
}

// productFolds is how many folds the next-best-product backtest uses: each profile with a
// holdout purchase is scored once by a co-occurrence model built from the other folds.
const productFolds = 5

// productSeed seeds the folds' assignment, so a run is reproducible.
const productSeed = 16

// trainProducts trains next_best_product. Backtest: a profile's input is Viewed ∪ (Bought −
// RecentBought), the purchases it had at the cutoff are Bought − RecentBought; co-occurrence
// is built from the inputs of a seeded 80 % and the hit rate at K (any of the top K in
// RecentBought) measured on the other 20 % of the profiles with a holdout purchase, over 5
// folds so that each is measured once; the baseline is the K most popular products.
func trainProducts(cfg Config, profiles []Profile) (*Model, error) {
	k := cfg.K
	if k <= 0 {
		k = DefaultK
	}
	inputs := make([][]string, len(profiles))
	pos, neg := 0, 0
	for i, p := range profiles {
		inputs[i] = union(p.Viewed, minus(p.Bought, p.RecentBought))
		switch {
		case len(p.RecentBought) > 0:
			pos++
		case len(inputs[i]) > 0:
			neg++
		}
	}
	if err := checkCounts(pos, neg, "with a purchase in the holdout"); err != nil {
		return nil, err
	}
	hit, base := productBacktest(profiles, inputs, k, defaultNorm)
	all := make([][]string, len(profiles))
	for i, p := range profiles {
		all[i] = union(p.Viewed, p.Bought)
	}
	c := buildCooccurrence(all, defaultNorm)
	q := Quality{Profiles: pos + neg, Positives: pos, Negatives: neg, K: k, HitRate: hit, BaselineHitRate: base,
		Skipped: len(profiles) - pos - neg, Label: liftLabel(hit, base)}
	return &Model{K: k, Popular: c.Popular, Neighbors: c.Neighbors, Weights: c.Weights, Quality: q}, nil
}

// productBacktest is the hit rates at k of the co-occurrence model and of popularity.
func productBacktest(profiles []Profile, inputs [][]string, k, norm int) (hit, base float64) {
	rng := rand.New(rand.NewPCG(productSeed, uint64(len(profiles))))
	fold := make([]int, len(profiles))
	for i, j := range rng.Perm(len(profiles)) {
		fold[j] = i % productFolds
	}
	var hits, baseHits, n float64
	for f := 0; f < productFolds; f++ {
		var train [][]string
		for i := range profiles {
			if fold[i] != f && len(inputs[i]) > 0 {
				train = append(train, inputs[i])
			}
		}
		c := buildCooccurrence(train, norm)
		for i, p := range profiles {
			if fold[i] != f || len(p.RecentBought) == 0 {
				continue
			}
			had := minus(p.Bought, p.RecentBought)
			n++
			if anyIn(c.recommend(inputs[i], had, k), p.RecentBought) {
				hits++
			}
			excl := make(map[string]bool, len(had))
			for _, b := range had {
				excl[b] = true
			}
			if anyIn(fillPopular(nil, c.Popular, excl, k), p.RecentBought) {
				baseHits++
			}
		}
	}
	if n == 0 {
		return 0, 0
	}
	return hits / n, baseHits / n
}

// anyIn reports whether any of a is in b.
func anyIn(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
