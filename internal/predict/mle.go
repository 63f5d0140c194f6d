package predict

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// maxLogParam bounds the log-parameters the optimiser may try (e^±30 covers any sane value).
const maxLogParam = 30

// fitMLE maximises a likelihood over the logarithms of positive parameters: nll is the negative
// log-likelihood of the log-parameters, grad (nil: none) its gradient, start the first guess
// (natural scale). With a gradient it runs BFGS, else Nelder–Mead polished by BFGS on a
// central-difference gradient (Nelder–Mead stalls short of the optimum on the flat ridges of
// these likelihoods). It returns the estimates and their standard errors, from the inverse of
// the numerical Hessian of nll at the optimum (delta method back to the natural scale:
// se(θ) = θ·se(log θ)).
func fitMLE(names []string, nll func(lp []float64) float64, grad func(g, lp []float64), start []float64) (*Params, error) {
	x0 := make([]float64, len(start))
	for i, v := range start {
		x0[i] = math.Log(v)
	}
	f := func(lp []float64) float64 {
		for _, v := range lp {
			if math.Abs(v) > maxLogParam {
				return math.Inf(1)
			}
		}
		v := nll(lp)
		if math.IsNaN(v) {
			return math.Inf(1)
		}
		return v
	}
	res, err := minimize(f, grad, x0)
	if err != nil {
		return nil, err
	}
	out := &Params{Names: names, Values: make([]float64, len(x0))}
	for i, v := range res.X {
		out.Values[i] = math.Exp(v)
	}
	out.StdErr = stdErrors(f, res.X, out.Values)
	return out, nil
}

// minimize finds f's minimum from x0 (see fitMLE).
func minimize(f func([]float64) float64, grad func(g, x []float64), x0 []float64) (*optimize.Result, error) {
	var res *optimize.Result
	if grad == nil {
		r, err := optimize.Minimize(optimize.Problem{Func: f}, x0, &optimize.Settings{
			Converger:       &optimize.FunctionConverge{Absolute: 1e-9, Relative: 1e-12, Iterations: 60},
			MajorIterations: 4000,
		}, &optimize.NelderMead{})
		if r == nil {
			return nil, fmt.Errorf("maximum likelihood: %w", err)
		}
		res, x0 = r, r.X
		grad = func(g, x []float64) { fd.Gradient(g, f, x, &fd.Settings{Formula: fd.Central}) }
	}
	p := optimize.Problem{Func: f, Grad: grad}
	r, _ := optimize.Minimize(p, x0, &optimize.Settings{
		Converger:       &optimize.FunctionConverge{Absolute: 1e-10, Relative: 1e-12, Iterations: 20},
		MajorIterations: 500,
	}, &optimize.BFGS{})
	if r != nil && !math.IsInf(r.F, 0) && !math.IsNaN(r.F) && (res == nil || r.F <= res.F) {
		res = r
	}
	if res == nil || math.IsInf(res.F, 0) || math.IsNaN(res.F) {
		return nil, errors.New("maximum likelihood: no finite likelihood")
	}
	return res, nil
}

// stdErrors is the delta-method standard errors of exp(x) from the inverse Hessian of f at x
// (nil when the Hessian is not positive definite: the optimum is not a proper maximum).
func stdErrors(f func([]float64) float64, x, values []float64) []float64 {
	var h mat.SymDense
	fd.Hessian(&h, f, x, &fd.Settings{Formula: fd.Central})
	var chol mat.Cholesky
	if !chol.Factorize(&h) {
		return nil
	}
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		return nil
	}
	se := make([]float64, len(x))
	for i := range x {
		v := inv.At(i, i)
		if !(v >= 0) {
			return nil
		}
		se[i] = values[i] * math.Sqrt(v)
	}
	return se
}

// logAddExp is log(e^a + e^b) without overflow.
func logAddExp(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(b, -1) {
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// lgamma is log Γ(x) for x > 0.
func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}
