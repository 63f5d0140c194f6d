package predict

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"gonum.org/v1/gonum/diff/fd"
)

// mcCustomer simulates one BG/NBD customer in continuous time from 0 over (0, T] and (T, T+t]:
// its summary at T, whether it is alive at T, and its transactions in (T, T+t].
func mcCustomer(rng *rand.Rand, m bgParams, T, t float64) (s summary, alive bool, future int) {
	lambda := gammaRand(rng, m.r) / m.alpha
	p := betaRand(rng, m.a, m.b)
	s.T = T
	alive = true
	for now := 0.0; ; {
		now += rng.ExpFloat64() / lambda
		if now > T+t {
			break
		}
		if now <= T {
			s.x++
			s.tx = now
		} else {
			future++
		}
		if rng.Float64() < p {
			alive = now > T
			break
		}
	}
	return s, alive, future
}

// gammaRand is a Gamma(shape, 1) draw (Marsaglia–Tsang, boosted for shape < 1).
func gammaRand(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		return gammaRand(rng, shape+1) * math.Pow(rng.Float64(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		if u := rng.Float64(); math.Log(u) < x*x/2+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}

func betaRand(rng *rand.Rand, a, b float64) float64 {
	x, y := gammaRand(rng, a), gammaRand(rng, b)
	return x / (x + y)
}

// A Monte-Carlo check of P(alive), P(no purchase in the horizon) and E[X(horizon)]: over
// customers simulated from the model, within each decile of the prediction, the mean
// prediction matches what happened.
func TestBGNBDFormulasMonteCarlo(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	m := bgParams{r: 0.243, alpha: 30.9, a: 0.793, b: 2.426}
	const T, h = 200.0, 30.0
	rng := rand.New(rand.NewPCG(7, 7))
	pa, pn, ex := make([]float64, n), make([]float64, n), make([]float64, n)
	alive, none, count := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		s, al, fut := mcCustomer(rng, m, T, h)
		pa[i], pn[i], ex[i] = m.pAlive(s), m.pNone(s, h), m.expected(s, h)
		alive[i], none[i], count[i] = b2f(al), b2f(fut == 0), float64(fut)
	}
	tol := 0.02
	if testing.Short() {
		tol = 0.04
	}
	checkDeciles(t, "P(alive)", pa, alive, tol)
	checkDeciles(t, "P(no purchase)", pn, none, tol)
	checkDeciles(t, "E[X]", ex, count, 0.05)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// checkDeciles compares mean predicted and mean observed within deciles of the prediction.
func checkDeciles(t *testing.T, name string, pred, obs []float64, tol float64) {
	t.Helper()
	idx := sortedOrder(pred)
	for d := range 10 {
		lo, hi := d*len(idx)/10, (d+1)*len(idx)/10
		var sp, so float64
		for _, k := range idx[lo:hi] {
			sp += pred[k]
			so += obs[k]
		}
		sp /= float64(hi - lo)
		so /= float64(hi - lo)
		if math.Abs(sp-so) > tol*math.Max(1, so) {
			t.Errorf("%s decile %d: predicted %.4f, simulated %.4f", name, d, sp, so)
		}
	}
}

// The closed-form P(no purchase) agrees with the numerical integral over p (which the
// Bayes-optimal churn score uses with c < 1).
func TestPNoneMatchesIntegral(t *testing.T) {
	m := bgParams{r: 0.243, alpha: 30.9, a: 0.793, b: 2.426}
	for _, s := range []summary{{0, 0, 10, 1}, {1, 5, 100, 1}, {12, 300, 400, 1}, {60, 150, 500, 1}} {
		got, want := bayesNone(m.r, m.alpha, m.a, m.b, 1, s, 30), m.pNone(s, 30)
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%+v: integral %.8f, closed form %.8f", s, got, want)
		}
	}
}

func trainedModels(t *testing.T) (map[string]*Model, simData) {
	t.Helper()
	d := simulate(t, simCustomers, simSeed, horizon)
	ms := map[string]*Model{}
	for _, k := range []string{KindPurchase, KindLTV, KindProduct} {
		ms[k] = train(t, k, horizon, d.goal, d.now)
	}
	ms[KindChurn] = train(t, KindChurn, horizon, d.activity, d.now)
	ms[KindReturn] = &Model{Kind: KindReturn, Beta: &Params{Names: []string{"alpha", "beta"}, Values: []float64{1, 8}},
		Cuts: percentileCuts([]float64{0.05, 0.1, 0.2})}
	return ms, d
}

func TestScoreAndPercentileEdges(t *testing.T) {
	ms, d := trainedModels(t)
	nowDay := Day(d.now)
	m := ms[KindPurchase]
	if got := m.Score(Profile{}, d.now); got.Value != m.NoHistory || got.Percentile < 0 || got.Percentile > 99 {
		t.Errorf("no history: %+v, want NoHistory %v", got, m.NoHistory)
	}
	// One active day, today: alive for sure; P(purchase) = 1 − (α/(α+H))^r.
	one := Profile{Goal: Activity{Count: 1, First: nowDay, Recent: []int64{nowDay}}}
	bg := bgFrom(m.BGNBD)
	want := 1 - math.Pow(bg.alpha/(bg.alpha+horizon), bg.r)
	if got := m.Score(one, d.now).Value; math.Abs(got-want) > 1e-12 {
		t.Errorf("one day: %v, want %v", got, want)
	}
	if got := ms[KindChurn].Score(one, d.now).Value; math.Abs(got-(1-want)) > 0.5 || got <= 0 || got >= 1 {
		t.Errorf("one day churn: %v", got)
	}
	// Percentile: 0 below every cut, 99 above, monotone, and ≥ 80 for about the top 20 %.
	if m.Percentile(-1) != 0 || m.Percentile(2) != 99 || (&Model{}).Percentile(0.5) != 0 {
		t.Errorf("Percentile(-1) = %d, Percentile(2) = %d", m.Percentile(-1), m.Percentile(2))
	}
	for _, kind := range []string{KindPurchase, KindChurn, KindLTV} {
		ps := d.goal
		if kind == KindChurn {
			ps = d.activity
		}
		top, last := 0, -1
		vals := make([]float64, len(ps))
		for i, p := range ps {
			vals[i] = ms[kind].Score(p, d.now).Value
		}
		sort.Float64s(vals)
		for _, v := range vals {
			pc := ms[kind].Percentile(v)
			if pc < last {
				t.Fatalf("%s: Percentile not monotone at %v", kind, v)
			}
			last = pc
			if pc >= 80 {
				top++
			}
		}
		share := float64(top) / float64(len(ps))
		t.Logf("%s: %.1f %% of profiles have percentile ≥ 80", kind, 100*share)
		if share < 0.15 || share > 0.25 {
			t.Errorf("%s: %.3f of profiles have percentile ≥ 80, want about 0.2", kind, share)
		}
	}
}

// A stored model (JSON, as the segments stage keeps it) scores as the trained one.
func TestModelJSONRoundTrip(t *testing.T) {
	ms, d := trainedModels(t)
	for kind, m := range ms {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Model
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		for _, p := range d.goal[:300] {
			a, z := m.Score(p, d.now), back.Score(p, d.now)
			if a.Value != z.Value || a.Percentile != z.Percentile || len(a.Products) != len(z.Products) {
				t.Fatalf("%s: scores %+v before and %+v after JSON", kind, a, z)
			}
		}
	}
}

// randomProfile is any profile, sane or not.
func randomProfile(rng *rand.Rand, nowDay int64) Profile {
	n := rng.Int64N(400) - 5
	first := nowDay - rng.Int64N(2000) + 50
	var recent []int64
	for range rng.IntN(MaxRecentDays + 2) {
		recent = append(recent, first+rng.Int64N(3000)-100)
	}
	sort.Slice(recent, func(i, j int) bool { return recent[i] < recent[j] })
	sums := []float64{0, -5, 1e-300, 1e300, 42.5, math.Inf(1)}
	return Profile{
		Goal:    Activity{Count: n, First: first, Recent: recent},
		Spend:   Spend{Count: rng.Int64N(500) - 3, Sum: sums[rng.IntN(len(sums))]},
		Orders:  rng.Int64N(100) - 3,
		Returns: rng.Int64N(150) - 3,
		Viewed:  []string{"c00p000", "x", "c03p001"}[:rng.IntN(4)],
		Bought:  []string{"c01p002", "c00p000"}[:rng.IntN(3)],
	}
}

// Score never returns NaN or ±Inf, likelihoods stay in [0, 1] and percentiles in [0, 99],
// whatever the profile.
func TestScoreAlwaysFinite(t *testing.T) {
	ms, d := trainedModels(t)
	rng := rand.New(rand.NewPCG(3, 4))
	nowDay := Day(d.now)
	for range 20_000 {
		p := randomProfile(rng, nowDay)
		for kind, m := range ms {
			checkScore(t, kind, m.Score(p, d.now), p)
		}
	}
}

func checkScore(t *testing.T, kind string, s Score, p Profile) {
	t.Helper()
	bad := math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || s.Value < 0 || s.Percentile < 0 || s.Percentile > 99
	if kind != KindLTV && s.Value > 1 {
		bad = true
	}
	if bad {
		t.Fatalf("%s: %+v for %+v", kind, s, p)
	}
}

func FuzzScore(f *testing.F) {
	f.Add(int64(3), int64(-10), int64(-1), int64(2), 12.5, int64(4), int64(1))
	f.Add(int64(0), int64(0), int64(0), int64(0), 0.0, int64(0), int64(0))
	f.Add(int64(1), int64(5), int64(5), int64(-1), math.NaN(), int64(-1), int64(9))
	models := map[string]*Model{
		KindPurchase: {Kind: KindPurchase, HorizonDays: 30, BGNBD: &Params{Values: []float64{0.24, 31, 0.79, 2.4}}, Cuts: []float64{0.1, 0.5}},
		KindChurn:    {Kind: KindChurn, HorizonDays: 365, BGNBD: &Params{Values: []float64{2, 0.5, 1, 1e-3}}},
		KindLTV: {Kind: KindLTV, HorizonDays: 7, BGNBD: &Params{Values: []float64{0.24, 31, 1, 2.4}},
			GammaGamma: &Params{Values: []float64{6, 0.5, 15}}, MeanSpend: 30},
		KindReturn: {Kind: KindReturn, Beta: &Params{Values: []float64{1, 8}}},
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nowDay := Day(now)
	f.Fuzz(func(t *testing.T, n, first, last, spendN int64, sum float64, orders, returns int64) {
		p := Profile{Goal: Activity{Count: n, First: nowDay + first, Recent: []int64{nowDay + last}},
			Spend: Spend{Count: spendN, Sum: sum}, Orders: orders, Returns: returns}
		for kind, m := range models {
			s := m.Score(p, now)
			if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) || s.Percentile < 0 || s.Percentile > 99 {
				t.Fatalf("%s: %+v for %+v", kind, s, p)
			}
		}
	})
}

// The BG/NBD likelihood's analytic gradient agrees with finite differences.
func TestBGNBDGradient(t *testing.T) {
	d := simulate(t, 2000, simSeed, horizon)
	var ss []summary
	for _, p := range d.goal {
		ss = append(ss, allTime(p.Goal, Day(d.now)))
	}
	data := groupSummaries(ss)
	for _, lp := range [][]float64{{-1.4, 3.4, -0.2, 0.9}, {0.3, 1, 0.5, -1}, {-3, 5, 1.5, 2}} {
		got, want := make([]float64, 4), make([]float64, 4)
		bgnbdGrad(got, lp, data)
		fd.Gradient(want, func(x []float64) float64 { return bgnbdNLL(x, data) }, lp, &fd.Settings{Formula: fd.Central})
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-4*math.Max(1, math.Abs(want[i])) {
				t.Errorf("at %v: ∂/∂lp[%d] = %.6g, finite differences %.6g", lp, i, got[i], want[i])
			}
		}
	}
}

// The Gamma-Gamma likelihood's analytic gradient agrees with finite differences.
func TestGammaGammaGradient(t *testing.T) {
	obs := []spendObs{{1, 20}, {1, 35.5}, {2, 12}, {3, 80}, {7, 33}}
	lnM, lnX := make([]float64, len(obs)), make([]float64, len(obs))
	for i, o := range obs {
		lnM[i], lnX[i] = math.Log(o.m), math.Log(o.x)
	}
	for _, lp := range [][]float64{{1.8, 1.3, 2.7}, {0, 0.2, 1}, {3, 2, 5}} {
		got, want := make([]float64, 3), make([]float64, 3)
		ggGrad(got, lp, obs, lnM, lnX)
		fd.Gradient(want, func(x []float64) float64 { return ggNLL(x, obs, lnM, lnX) }, lp, &fd.Settings{Formula: fd.Central})
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-4*math.Max(1, math.Abs(want[i])) {
				t.Errorf("at %v: ∂/∂lp[%d] = %.6g, finite differences %.6g", lp, i, got[i], want[i])
			}
		}
	}
}

func TestParameters(t *testing.T) {
	m := &Model{BGNBD: &Params{Names: []string{"r"}}, GammaGamma: &Params{Names: []string{"p"}}}
	if got := m.Parameters(); len(got) != 2 || got[0].Names[0] != "r" || got[1].Names[0] != "p" {
		t.Errorf("Parameters() = %+v", got)
	}
	if got := (&Model{Kind: KindProduct}).Parameters(); got != nil {
		t.Errorf("next_best_product: %+v, want none", got)
	}
}

// TestLTVCountsOrdersNotDays: BG/NBD counts active days, so a profile that placed two orders on
// each of its active days is expected to spend two Gamma-Gamma order values per expected active
// day; fewer valued orders than days (orders without a value) never scale it below one.
func TestLTVCountsOrdersNotDays(t *testing.T) {
	ms, d := trainedModels(t)
	m, nowDay := ms[KindLTV], Day(d.now)
	goal := Activity{Count: 3, First: nowDay - 60, Recent: []int64{nowDay - 60, nowDay - 30, nowDay - 2}}
	days := bgFrom(m.BGNBD).expected(allTime(goal, nowDay), float64(m.HorizonDays))
	gg := ggFrom(m.GammaGamma)
	for _, c := range []struct {
		orders int64
		perDay float64
	}{{3, 1}, {6, 2}, {2, 1}} {
		want := days * c.perDay * gg.conditionalSpend(float64(c.orders), 50)
		got := m.Score(Profile{Goal: goal, Spend: Spend{Count: c.orders, Sum: 50 * float64(c.orders)}}, d.now).Value
		if want <= 0 || math.Abs(got-want) > 1e-9*want {
			t.Errorf("%d orders on 3 days: %v, want %v", c.orders, got, want)
		}
	}
}
