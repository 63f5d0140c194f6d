package predict

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
)

// Return likelihood: each customer returns an order with its own probability θ ~ Beta(α, β);
// its returns among its orders are binomial, so across customers beta-binomial. Its score is
// the posterior mean (α+returns)/(α+β+orders), which shrinks customers with few orders
// towards the population's α/(α+β).

// orderObs is a customer's orders and returns, with how many customers share them.
type orderObs struct{ n, k, w float64 }

// groupOrders merges identical (orders, returns) pairs.
func groupOrders(obs []orderObs) []orderObs {
	type key struct{ n, k float64 }
	idx := map[key]int{}
	var out []orderObs
	for _, o := range obs {
		if i, ok := idx[key{o.n, o.k}]; ok {
			out[i].w++
			continue
		}
		idx[key{o.n, o.k}] = len(out)
		out = append(out, orderObs{n: o.n, k: o.k, w: 1})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n || out[i].n == out[j].n && out[i].k < out[j].k })
	return out
}

// betaBinomNLL is the negative log-likelihood (without the binomial coefficients, constant in
// the parameters) of lp = (log α, log β): ln B(α+k, β+n−k) − ln B(α, β) per customer.
func betaBinomNLL(lp []float64, data []orderObs) float64 {
	a, b := math.Exp(lp[0]), math.Exp(lp[1])
	lb := mathext.Lbeta(a, b)
	ll := 0.0
	for _, d := range data {
		ll += d.w * (mathext.Lbeta(a+d.k, b+d.n-d.k) - lb)
	}
	return -ll
}

// fitBetaBinom fits (α, β) by maximum likelihood on customers with at least one order.
func fitBetaBinom(obs []orderObs) (*Params, error) {
	data := groupOrders(obs)
	var n, k float64
	for _, d := range data {
		n += d.w * d.n
		k += d.w * d.k
	}
	mean := math.Min(math.Max(k/n, 0.01), 0.99)
	start := []float64{2 * mean, 2 * (1 - mean)}
	return fitMLE([]string{"alpha", "beta"}, func(lp []float64) float64 { return betaBinomNLL(lp, data) }, nil, start)
}

// returnMean is the posterior mean return probability after n orders with k returns.
func returnMean(p *Params, n, k float64) float64 {
	a, b := p.Values[0], p.Values[1]
	return (a + k) / (a + b + n)
}

// returnAny is the posterior probability that at least one of the next h orders is returned:
// 1 − B(α+k, β+n−k+h)/B(α+k, β+n−k).
func returnAny(p *Params, n, k, h float64) float64 {
	a, b := p.Values[0]+k, p.Values[1]+n-k
	return 1 - math.Exp(mathext.Lbeta(a, b+h)-mathext.Lbeta(a, b))
}
