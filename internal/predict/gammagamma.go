package predict

import (
	"math"
)

// Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves for customer
// base analysis"): a customer's order values are Gamma(p, ν) with ν ~ Gamma(q, γ) across
// customers, independent of the transaction process. Unlike the paper (repeat transactions
// only) it is fitted on all of a customer's orders: x = Spend.Count, m = Spend.Sum/Spend.Count.

// spendObs is one customer's order count and mean order value.
type spendObs struct{ x, m float64 }

// ggParams are Gamma-Gamma parameters.
type ggParams struct{ p, q, gamma float64 }

func ggFrom(p *Params) ggParams {
	return ggParams{p: p.Values[0], q: p.Values[1], gamma: p.Values[2]}
}

// ggNLL is the negative log-likelihood of lp = (log p, log q, log γ): per customer
// lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + (px−1) ln m + px ln x − (px+q) ln(γ+mx).
func ggNLL(lp []float64, obs []spendObs, lnM, lnX []float64) float64 {
	p, q, g := math.Exp(lp[0]), math.Exp(lp[1]), math.Exp(lp[2])
	lgQ, lnG := lgamma(q), math.Log(g)
	ll := 0.0
	lastX := -1.0
	var lgTerms float64
	for i, o := range obs {
		px := p * o.x
		if o.x != lastX { // obs is sorted by x
			lastX = o.x
			lgTerms = lgamma(px+q) - lgamma(px) - lgQ + q*lnG
		}
		ll += lgTerms + (px-1)*lnM[i] + px*lnX[i] - (px+q)*math.Log(g+o.m*o.x)
	}
	return -ll
}

// fitGammaGamma fits Gamma-Gamma by maximum likelihood on customers with orders of positive
// value (obs sorted by x).
func fitGammaGamma(obs []spendObs) (*Params, error) {
	lnM, lnX := make([]float64, len(obs)), make([]float64, len(obs))
	var sum float64
	for i, o := range obs {
		lnM[i], lnX[i] = math.Log(o.m), math.Log(o.x)
		sum += o.m
	}
	mean := sum / float64(len(obs))
	// Start at p = 2, q = 3 and the γ that matches the mean order value (E[M] = pγ/(q−1)).
	start := []float64{2, 3, mean}
	return fitMLE([]string{"p", "q", "gamma"}, func(lp []float64) float64 { return ggNLL(lp, obs, lnM, lnX) }, start)
}

// conditionalSpend is E[M | x, m] = (pγ + p·x·m)/(px + q − 1): the customer's mean order value
// shrunk towards the population's pγ/(q−1).
func (g ggParams) conditionalSpend(x, m float64) float64 {
	if g.q <= 1 && x == 0 {
		return math.NaN()
	}
	return (g.p*g.gamma + g.p*x*m) / (g.p*x + g.q - 1)
}
