package predict

import (
	"math"

	"gonum.org/v1/gonum/mathext"
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
	return fitMLE([]string{"p", "q", "gamma"}, func(lp []float64) float64 { return ggNLL(lp, obs, lnM, lnX) },
		func(g, lp []float64) { ggGrad(g, lp, obs, lnM, lnX) }, start)
}

// ggGrad is the gradient of ggNLL with respect to the log-parameters: per customer
//
//	∂ℓ/∂p = x(ψ(px+q) − ψ(px) + ln m + ln x − ln(γ+mx))
//	∂ℓ/∂q = ψ(px+q) − ψ(q) + ln γ − ln(γ+mx)
//	∂ℓ/∂γ = q/γ − (px+q)/(γ+mx)
func ggGrad(g, lp []float64, obs []spendObs, lnM, lnX []float64) {
	p, q, gm := math.Exp(lp[0]), math.Exp(lp[1]), math.Exp(lp[2])
	psiQ, lnG := mathext.Digamma(q), math.Log(gm)
	var dp, dq, dg float64
	lastX := -1.0
	var psiPXQ, psiPX float64
	for i, o := range obs {
		px := p * o.x
		if o.x != lastX {
			lastX = o.x
			psiPXQ, psiPX = mathext.Digamma(px+q), mathext.Digamma(px)
		}
		den := gm + o.m*o.x
		lden := math.Log(den)
		dp += o.x * (psiPXQ - psiPX + lnM[i] + lnX[i] - lden)
		dq += psiPXQ - psiQ + lnG - lden
		dg += q/gm - (px+q)/den
	}
	g[0], g[1], g[2] = -dp*p, -dq*q, -dg*gm
}

// conditionalSpend is E[M | x, m] = (pγ + p·x·m)/(px + q − 1): the customer's mean order value
// shrunk towards the population's pγ/(q−1).
func (g ggParams) conditionalSpend(x, m float64) float64 {
	if g.q <= 1 && x == 0 {
		return math.NaN()
	}
	return (g.p*g.gamma + g.p*x*m) / (g.p*x + g.q - 1)
}
