package predict

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
)

// BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a
// customer transacts as a Poisson process of rate λ ~ Gamma(r, α); after each repeat
// transaction it drops out with probability p ~ Beta(a, b). A customer is summarised by
// x (repeat transactions), t_x (time of the last, since the first) and T (time observed since
// the first), in days; a transaction is an active day.

// summary is one customer's (x, t_x, T) and, when grouped, how many customers share it.
type summary struct {
	x, tx, T float64
	n        float64
}

// bgParams are BG/NBD parameters.
type bgParams struct{ r, alpha, a, b float64 }

func bgFrom(p *Params) bgParams {
	return bgParams{r: p.Values[0], alpha: p.Values[1], a: p.Values[2], b: p.Values[3]}
}

// groupSummaries merges identical (x, t_x, T) triples (daily data has many), sorted by x, so
// a likelihood evaluation costs O(distinct triples).
func groupSummaries(ss []summary) []summary {
	type key struct{ x, tx, T float64 }
	idx := make(map[key]int, len(ss)/4+1)
	var out []summary
	for _, s := range ss {
		k := key{s.x, s.tx, s.T}
		if i, ok := idx[k]; ok {
			out[i].n++
			continue
		}
		idx[k] = len(out)
		out = append(out, summary{x: s.x, tx: s.tx, T: s.T, n: 1})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].x < out[j].x })
	return out
}

// bgnbdNLL is the negative log-likelihood of grouped summaries at log-parameters
// lp = (log r, log α, log a, log b).
func bgnbdNLL(lp []float64, data []summary) float64 {
	r, alpha, a, b := math.Exp(lp[0]), math.Exp(lp[1]), math.Exp(lp[2]), math.Exp(lp[3])
	lgR, lgAB, lgB := lgamma(r), lgamma(a+b), lgamma(b)
	logAlpha, logA := math.Log(alpha), math.Log(a)
	ll := 0.0
	lastX := -1.0
	var lnA1, lnA2 float64
	for _, d := range data {
		if d.x != lastX { // the x-only terms, once per distinct x (data is sorted by x)
			lastX = d.x
			lnA1 = lgamma(r+d.x) - lgR + r*logAlpha
			lnA2 = lgAB + lgamma(b+d.x) - lgB - lgamma(a+b+d.x)
		}
		v := -(r + d.x) * math.Log(alpha+d.T)
		if d.x > 0 {
			v = logAddExp(v, logA-math.Log(b+d.x-1)-(r+d.x)*math.Log(alpha+d.tx))
		}
		ll += d.n * (lnA1 + lnA2 + v)
	}
	return -ll
}

// bgnbdGrad is the gradient of bgnbdNLL with respect to the log-parameters. With w₄ the
// posterior weight of "dropped out after t_x" (0 when x = 0) and w₃ = 1 − w₄, per customer
//
//	∂ℓ/∂r = ψ(r+x) − ψ(r) + ln α − w₃ ln(α+T) − w₄ ln(α+t_x)
//	∂ℓ/∂α = r/α − (r+x)(w₃/(α+T) + w₄/(α+t_x))
//	∂ℓ/∂a = ψ(a+b) − ψ(a+b+x) + w₄/a
//	∂ℓ/∂b = ψ(a+b) + ψ(b+x) − ψ(b) − ψ(a+b+x) − w₄/(b+x−1)
//
// and ∂/∂log θ = θ·∂/∂θ.
func bgnbdGrad(g, lp []float64, data []summary) {
	r, alpha, a, b := math.Exp(lp[0]), math.Exp(lp[1]), math.Exp(lp[2]), math.Exp(lp[3])
	psiR, psiAB, psiB := mathext.Digamma(r), mathext.Digamma(a+b), mathext.Digamma(b)
	logAlpha, logA := math.Log(alpha), math.Log(a)
	var dr, dal, da, db float64
	lastX := -1.0
	var psiRX, psiBX, psiABX float64
	for _, d := range data {
		if d.x != lastX {
			lastX = d.x
			psiRX, psiBX, psiABX = mathext.Digamma(r+d.x), mathext.Digamma(b+d.x), mathext.Digamma(a+b+d.x)
		}
		lT, lt := math.Log(alpha+d.T), math.Log(alpha+d.tx)
		w4 := 0.0
		if d.x > 0 {
			v3 := -(r + d.x) * lT
			v4 := logA - math.Log(b+d.x-1) - (r+d.x)*lt
			w4 = 1 / (1 + math.Exp(v3-v4))
		}
		w3 := 1 - w4
		dr += d.n * (psiRX - psiR + logAlpha - w3*lT - w4*lt)
		dal += d.n * (r/alpha - (r+d.x)*(w3/(alpha+d.T)+w4/(alpha+d.tx)))
		da += d.n * (psiAB - psiABX)
		db += d.n * (psiAB + psiBX - psiB - psiABX)
		if d.x > 0 {
			da += d.n * w4 / a
			db -= d.n * w4 / (b + d.x - 1)
		}
	}
	g[0], g[1], g[2], g[3] = -dr*r, -dal*alpha, -da*a, -db*b
}

// fitBGNBD fits BG/NBD by maximum likelihood.
func fitBGNBD(ss []summary) (*Params, error) {
	data := groupSummaries(ss)
	// Start from the method-of-moments-ish guess: rate from the mean repeat frequency.
	var sx, sT, n float64
	for _, d := range data {
		sx += d.n * d.x
		sT += d.n * d.T
		n += d.n
	}
	rate := math.Max(sx/math.Max(sT, 1), 1e-4)
	start := []float64{0.5, 0.5 / rate, 1, 2}
	return fitMLE([]string{"r", "alpha", "a", "b"}, func(lp []float64) float64 { return bgnbdNLL(lp, data) },
		func(g, lp []float64) { bgnbdGrad(g, lp, data) }, start)
}

// deadOdds is a/(b+x−1)·((α+T)/(α+t_x))^(r+x): the odds of having dropped out (0 when x = 0).
func (m bgParams) deadOdds(s summary) float64 {
	if s.x <= 0 {
		return 0
	}
	return math.Exp(math.Log(m.a/(m.b+s.x-1)) + (m.r+s.x)*math.Log((m.alpha+s.T)/(m.alpha+s.tx)))
}

// pAlive is P(alive at T | x, t_x, T).
func (m bgParams) pAlive(s summary) float64 {
	return 1 / (1 + m.deadOdds(s))
}

// pNone is P(no transaction in (T, T+t] | x, t_x, T) = 1 − P(alive) + P(alive)·((α+T)/(α+T+t))^(r+x):
// given alive, λ's posterior is Gamma(r+x, α+T), and dropout only follows a transaction.
func (m bgParams) pNone(s summary, t float64) float64 {
	pa := m.pAlive(s)
	return 1 - pa + pa*math.Exp((m.r+s.x)*math.Log((m.alpha+s.T)/(m.alpha+s.T+t)))
}

// expected is E[X(T, T+t) | x, t_x, T], the expected transactions in the next t days:
// (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))] · P(alive),
// with the bracket's ₂F₁ rewritten by Pfaff's transformation as
// ₂F₁(r+x, a−1; a+b+x−1; −t/(α+T)), which cancels the power and stays well conditioned.
func (m bgParams) expected(s summary, t float64) float64 {
	a := m.a
	if math.Abs(a-1) < 1e-7 {
		a = 1 + 1e-7 // the formula's removable singularity
	}
	c := m.a + m.b + s.x - 1
	h := mathext.Hypergeo(m.r+s.x, a-1, c, -t/(m.alpha+s.T))
	v := c / (a - 1) * (1 - h) * m.pAlive(s)
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		// Fall back to the alive customer's Poisson mean, an upper bound.
		return m.pAlive(s) * (m.r + s.x) / (m.alpha + s.T) * t
	}
	return v
}
