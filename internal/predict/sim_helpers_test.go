package predict

import (
	"math"
	"testing"
	"time"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mathext"
)

// simData is a simulated population and its profiles at the end of the history.
type simData struct {
	cfg       SimConfig
	customers []Customer
	now       time.Time
	goal      []Profile // Profile (orders)
	activity  []Profile // ChurnProfile (orders and views)
}

func simulate(t testing.TB, n int, seed uint64, horizon int) simData {
	t.Helper()
	cfg := SimConfig{Seed: seed, Customers: n}.WithDefaults()
	d := simData{cfg: cfg, customers: Simulate(cfg), now: cfg.Now()}
	d.goal, d.activity = make([]Profile, n), make([]Profile, n)
	for i := range d.customers {
		d.goal[i] = d.customers[i].Profile(d.now, horizon)
		d.activity[i] = d.customers[i].ChurnProfile(d.now, horizon)
	}
	return d
}

func train(t testing.TB, kind string, horizon int, profiles []Profile, now time.Time) *Model {
	t.Helper()
	m, err := Train(Config{Kind: kind, HorizonDays: horizon, K: 5}, profiles, now)
	if err != nil {
		t.Fatalf("Train(%s): %v", kind, err)
	}
	return m
}

// bayesNone is the Bayes-optimal P(no event in (T, T+t]) for a process whose events arrive
// at rate λ ~ Gamma(r, alpha) while alive and end it with probability c·p after each repeat
// event, p ~ Beta(a, b) — BG/NBD when c = 1; the simulator's activity (orders and views) has
// c = 1/(1+ViewsPerOrder). λ is integrated out in closed form, p numerically.
func bayesNone(r, alpha, a, b, c float64, s summary, t float64) float64 {
	// E[g(p)] under Beta(a, b), with p = u^(1/a) to remove the density's singularity at 0.
	lb := mathext.Lbeta(a, b)
	expect := func(g func(p float64) float64) float64 {
		return quad.Fixed(func(u float64) float64 {
			p := math.Pow(u, 1/a)
			return g(p) * math.Pow(1-p, b-1) / a
		}, 0, 1, 256, quad.Legendre{}, 0) / math.Exp(lb)
	}
	alive := math.Log(expect(func(p float64) float64 { return math.Pow(1-c*p, s.x) }))
	dead := math.Inf(-1)
	if s.x > 0 {
		dead = math.Log(expect(func(p float64) float64 { return c * p * math.Pow(1-c*p, s.x-1) }))
		dead -= (r + s.x) * math.Log(alpha+s.tx)
	}
	num := logAddExp(alive-(r+s.x)*math.Log(alpha+s.T+t), dead)
	den := logAddExp(alive-(r+s.x)*math.Log(alpha+s.T), dead)
	return math.Exp(num - den)
}
