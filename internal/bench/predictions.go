package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
)

// Predictions workload: customers from the seeded simulator (known BG/NBD, Gamma-Gamma, return
// and product processes), trained in process with every predictive model.
const (
	PredictCustomers = 5000 // the population for accuracy
	PredictHorizon   = 30   // days
	PredictReturns   = 90   // days: returns are rarer, so their horizon is longer …
	PredictReturnsX  = 2    // … and their population twice as large (100 positives needed)
)

// PredictionKind is one model's training on the simulated customers.
type PredictionKind struct {
	Kind    string          `json:"kind"`
	Quality predict.Quality `json:"quality"`
	// Fitted parameters next to the simulator's true ones (where the model has them).
	Params []predict.Params   `json:"params,omitempty"`
	Truth  map[string]float64 `json:"truth,omitempty"`
	FitMs  float64            `json:"fit_ms"`
	Error  string             `json:"error,omitempty"`
}

// PredictionsReport is the predictions section of the report.
type PredictionsReport struct {
	Customers int              `json:"customers"`
	Horizon   int              `json:"horizon_days"`
	Kinds     []PredictionKind `json:"kinds"`
}

// predictions trains every predictive kind on simulated customers and records quality,
// parameters against the truth and fit time.
func predictions(seed uint64, rep *Report, say func(string, ...any)) {
	cfg := predict.SimConfig{Seed: seed, Customers: PredictCustomers}.WithDefaults()
	say("predictions: simulating %d customers (seed %d)", cfg.Customers, seed)
	customers := predict.Simulate(cfg)
	now := cfg.Now()
	out := &PredictionsReport{Customers: len(customers), Horizon: PredictHorizon}
	for _, kind := range []string{predict.KindPurchase, predict.KindChurn, predict.KindLTV, predict.KindReturn, predict.KindProduct} {
		horizon, customers := PredictHorizon, customers
		if kind == predict.KindReturn {
			big := cfg
			big.Customers *= PredictReturnsX
			horizon, customers = PredictReturns, predict.Simulate(big)
		}
		profiles := make([]predict.Profile, len(customers))
		for i := range customers {
			if kind == predict.KindChurn {
				profiles[i] = customers[i].ChurnProfile(now, horizon)
			} else {
				profiles[i] = customers[i].Profile(now, horizon)
			}
		}
		pk := PredictionKind{Kind: kind, Truth: truthOf(kind, cfg)}
		start := time.Now()
		m, err := predict.Train(predict.Config{Kind: kind, HorizonDays: horizon, K: predict.DefaultK}, profiles, now)
		pk.FitMs = float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			pk.Error = err.Error()
		} else {
			pk.Quality, pk.Params = m.Quality, m.Parameters()
		}
		say("predictions: %s %s in %.0f ms", kind, pk.Quality.Label, pk.FitMs)
		out.Kinds = append(out.Kinds, pk)
	}
	rep.Predictions = out
}

// truthOf is the simulator's true parameters of a kind's model, by parameter name.
func truthOf(kind string, cfg predict.SimConfig) map[string]float64 {
	switch kind {
	case predict.KindPurchase:
		return map[string]float64{"r": cfg.R, "alpha": cfg.Alpha, "a": cfg.A, "b": cfg.B}
	case predict.KindLTV:
		return map[string]float64{"r": cfg.R, "alpha": cfg.Alpha, "a": cfg.A, "b": cfg.B, "p": cfg.P, "q": cfg.Q, "gamma": cfg.Gamma}
	case predict.KindReturn:
		return map[string]float64{"alpha": cfg.ReturnA, "beta": cfg.ReturnB}
	}
	return nil
}

func (r *Report) predictionsTable(b *strings.Builder) {
	p := r.Predictions
	if p == nil {
		return
	}
	fmt.Fprintf(b, "\nPredictions on %d simulated customers (horizon %d days; returns: %d customers, %d days):\n\n",
		p.Customers, p.Horizon, p.Customers*PredictReturnsX, PredictReturns)
	b.WriteString("| model | label | AUC | lift top 10 % | calibration error | hit rate at K (popularity) | positives / negatives | fit ms | parameters (truth) |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range p.Kinds {
		if k.Error != "" {
			fmt.Fprintf(b, "| %s | refused: %s | | | | | | %.0f | |\n", k.Kind, k.Error, k.FitMs)
			continue
		}
		q := k.Quality
		scores := fmt.Sprintf("%.3f | %.2f | %.3f | –", q.AUC, q.LiftTop, q.CalibrationError)
		if q.K > 0 {
			scores = fmt.Sprintf("– | – | – | %.3f (%.3f)", q.HitRate, q.BaselineHitRate)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d / %d | %.0f | %s |\n", k.Kind, q.Label, scores,
			q.Positives, q.Negatives, k.FitMs, paramsText(k.Params, k.Truth))
	}
}

// paramsText lists fitted parameters ± standard error, with the truth where known.
func paramsText(ps []predict.Params, truth map[string]float64) string {
	var parts []string
	for _, p := range ps {
		for i, n := range p.Names {
			s := fmt.Sprintf("%s %.3g", n, p.Values[i])
			if i < len(p.StdErr) {
				s += fmt.Sprintf(" ± %.2g", p.StdErr[i])
			}
			if v, ok := truth[n]; ok {
				s += fmt.Sprintf(" (%.3g)", v)
			}
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}
