package predict

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const (
	simCustomers = 5000
	simSeed      = 1
	horizon      = 30
)

// within2SE checks fitted parameters against the truth: |fit − truth| ≤ 2 standard errors.
func within2SE(t *testing.T, p *Params, truth []float64) {
	t.Helper()
	if len(p.StdErr) != len(truth) {
		t.Fatalf("%v: no standard errors", p.Names)
	}
	for i, v := range p.Values {
		z := (v - truth[i]) / p.StdErr[i]
		t.Logf("%s: fit %.4g ± %.3g, truth %.4g (z = %+.2f)", p.Names[i], v, p.StdErr[i], truth[i], z)
		if math.Abs(z) > 2 {
			t.Errorf("%s = %.4g is %.2f standard errors from the truth %.4g", p.Names[i], v, z, truth[i])
		}
	}
}

// The "Done when": on 5,000 simulated customers the fitted BG/NBD and Gamma-Gamma
// parameters are within two standard errors of the truth, and the mean dropout a/(a+b) within
// 10 %; LTV calibration error is reported.
func TestParametersRecovered(t *testing.T) {
	d := simulate(t, simCustomers, simSeed, horizon)
	m := train(t, KindLTV, horizon, d.goal, d.now)
	c := d.cfg
	within2SE(t, m.BGNBD, []float64{c.R, c.Alpha, c.A, c.B})
	within2SE(t, m.GammaGamma, []float64{c.P, c.Q, c.Gamma})
	bg := bgFrom(m.BGNBD)
	fit, truth := bg.a/(bg.a+bg.b), c.A/(c.A+c.B)
	t.Logf("mean dropout a/(a+b): fit %.4f, truth %.4f", fit, truth)
	if math.Abs(fit-truth) > 0.1*truth {
		t.Errorf("mean dropout %.4f is more than 10%% from the truth %.4f", fit, truth)
	}
	q := m.Quality
	t.Logf("predicted_ltv backtest: calibration error %.3f (Σ predicted vs Σ actual holdout spend), AUC %.3f, lift %.2f, %d profiles",
		q.CalibrationError, q.AUC, q.LiftTop, q.Profiles)
	if !(q.CalibrationError > 0 && q.CalibrationError < 0.25) {
		t.Errorf("LTV calibration error %v, want in (0, 0.25)", q.CalibrationError)
	}
}

// The "Done when": purchase and churn AUC on the holdout within 0.03 of the
// Bayes-optimal AUC, the one from the TRUE population parameters on each customer's observed
// calibration history.
func TestAUCNearBayesOptimal(t *testing.T) {
	d := simulate(t, simCustomers, simSeed, horizon)
	c := d.cfg
	cutoff := CutoffDay(d.now, horizon)
	k := 1 + c.ViewsPerOrder
	cases := []struct {
		kind     string
		profiles []Profile
		optimal  func(s summary) float64
	}{
		{KindPurchase, d.goal, func(s summary) float64 {
			return 1 - bgParams{c.R, c.Alpha, c.A, c.B}.pNone(s, horizon)
		}},
		{KindChurn, d.activity, func(s summary) float64 {
			return bayesNone(c.R, c.Alpha/k, c.A, c.B, 1/k, s, horizon)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			m := train(t, tc.kind, horizon, tc.profiles, d.now)
			bt := collectBacktest(tc.profiles, cutoff)
			scores, labels := make([]float64, len(bt.rows)), make([]bool, len(bt.rows))
			for i, r := range bt.rows {
				scores[i] = tc.optimal(r.s)
				labels[i] = (r.after > 0) == (tc.kind == KindPurchase)
			}
			opt := AUC(scores, labels)
			q := m.Quality
			t.Logf("%s: backtest AUC %.4f, Bayes-optimal %.4f; lift %.2f, log loss %.4f, calibration error %.4f, base rate %.3f, %d+%d profiles, %s",
				tc.kind, q.AUC, opt, q.LiftTop, q.LogLoss, q.CalibrationError, q.BaseRate, q.Positives, q.Negatives, q.Label)
			if q.AUC < opt-0.03 {
				t.Errorf("AUC %.4f is more than 0.03 below the Bayes-optimal %.4f", q.AUC, opt)
			}
			if q.Positives+q.Negatives != len(bt.rows) {
				t.Errorf("quality counts %d+%d, backtest has %d profiles", q.Positives, q.Negatives, len(bt.rows))
			}
		})
	}
}

// The "Done when": next-best-product hit rate at 5 at least 1.5× the popularity baseline.
func TestNextBestProductBeatsPopularity(t *testing.T) {
	d := simulate(t, simCustomers, simSeed, horizon)
	m := train(t, KindProduct, horizon, d.goal, d.now)
	q := m.Quality
	t.Logf("hit rate at %d: %.3f, popularity %.3f (%.2f×) over %d profiles with a holdout purchase; %s",
		q.K, q.HitRate, q.BaselineHitRate, q.HitRate/q.BaselineHitRate, q.Positives, q.Label)
	if q.HitRate < 1.5*q.BaselineHitRate || q.BaselineHitRate == 0 {
		t.Errorf("hit rate %.3f, want ≥ 1.5 × the baseline %.3f", q.HitRate, q.BaselineHitRate)
	}
	// A profile's recommendation leaves out what it bought and has K products.
	for _, p := range d.goal[:200] {
		got := m.Score(p, d.now).Products
		if len(got) != 5 {
			t.Fatalf("%d products, want 5", len(got))
		}
		if anyIn(got, p.Bought) {
			t.Fatalf("recommended %v includes a bought product of %v", got, p.Bought)
		}
	}
	empty := m.Score(Profile{}, d.now).Products
	if strings.Join(empty, ",") != strings.Join(m.Popular[:5], ",") {
		t.Errorf("a profile with no history gets %v, want the most popular %v", empty, m.Popular[:5])
	}
}

// The normalisation Train uses is the best of those measured (hit rate at 5 on the simulator).
func TestNormalisations(t *testing.T) {
	d := simulate(t, simCustomers, simSeed, horizon)
	inputs := make([][]string, len(d.goal))
	for i, p := range d.goal {
		inputs[i] = union(p.Viewed, minus(p.Bought, p.RecentBought))
	}
	names := []string{"raw", "cosine", "jaccard", "lift"}
	hits := make([]float64, len(names))
	for norm, name := range names {
		var base float64
		hits[norm], base = productBacktest(d.goal, inputs, 5, norm)
		t.Logf("%-7s hit rate at 5: %.3f (popularity %.3f)", name, hits[norm], base)
	}
	for norm := range names {
		if hits[norm] > hits[defaultNorm] {
			t.Errorf("%s (%.3f) beats the default %s (%.3f)", names[norm], hits[norm], names[defaultNorm], hits[defaultNorm])
		}
	}
}

func TestReturnLikelihood(t *testing.T) {
	const h = 90 // 5,000 customers have too few holdout returns within 30 days (or 90)
	d := simulate(t, 2*simCustomers, simSeed, h)
	m := train(t, KindReturn, h, d.goal, d.now)
	q := m.Quality
	t.Logf("return_likelihood (90 days): alpha %.3g ± %.2g, beta %.3g ± %.2g; AUC %.3f, lift %.2f, log loss %.3f, calibration error %.3f, %d+%d, %s",
		m.Beta.Values[0], m.Beta.StdErr[0], m.Beta.Values[1], m.Beta.StdErr[1], q.AUC, q.LiftTop, q.LogLoss, q.CalibrationError, q.Positives, q.Negatives, q.Label)
	within2SE(t, m.Beta, []float64{d.cfg.ReturnA, d.cfg.ReturnB})
	// Smoothing: one order with one return scores far below 1; many such orders approach 1.
	one := m.Score(Profile{Orders: 1, Returns: 1}, d.now).Value
	many := m.Score(Profile{Orders: 50, Returns: 50}, d.now).Value
	none := m.Score(Profile{}, d.now).Value
	if !(none < one && one < 0.5 && many > 0.8) {
		t.Errorf("scores: no orders %.3f, 1 of 1 returned %.3f, 50 of 50 %.3f", none, one, many)
	}
}

func TestRefusals(t *testing.T) {
	small := simulate(t, 300, simSeed, horizon)
	_, err := Train(Config{Kind: KindPurchase, HorizonDays: horizon}, small.goal, small.now)
	if !errors.Is(err, ErrInsufficient) || !strings.Contains(err.Error(), "with a goal event in the holdout") ||
		!strings.Contains(err.Error(), "at least 100 and 100 needed") {
		t.Errorf("300 customers: %v, want ErrInsufficient naming the counts", err)
	}
	short := SimConfig{Seed: simSeed, Customers: 2000, HistoryDays: 80, AcquisitionDays: 20}.WithDefaults()
	var ps []Profile
	for _, c := range Simulate(short) {
		ps = append(ps, c.Profile(short.Now(), horizon))
	}
	_, err = Train(Config{Kind: KindChurn, HorizonDays: horizon}, ps, short.Now())
	if !errors.Is(err, ErrInsufficient) || !strings.Contains(err.Error(), "fewer than 90 (3 × the 30-day horizon)") {
		t.Errorf("80 days of history: %v, want ErrInsufficient naming the span", err)
	}
	_, err = Train(Config{Kind: KindPurchase, HorizonDays: horizon}, []Profile{{Viewed: []string{"a"}}}, short.Now())
	if !errors.Is(err, ErrInsufficient) || !strings.Contains(err.Error(), "none of the 1 profiles has the goal event") {
		t.Errorf("no goal events: %v", err)
	}
	if _, err = Train(Config{Kind: "nope", HorizonDays: horizon}, ps, short.Now()); err == nil || errors.Is(err, ErrInsufficient) {
		t.Errorf("unknown kind: %v", err)
	}
}
