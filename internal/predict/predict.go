// Package predict is the models behind the predictive computed traits: purchase and churn
// likelihood (BG/NBD), predicted lifetime value (BG/NBD × Gamma-Gamma), return likelihood
// (beta-binomial) and next best product (item-to-item co-occurrence), their training with a
// backtest on a calibration/holdout split, their quality measures and a seeded simulator of
// customers drawn from known processes.
//
// It is pure: no storage, no clock. The segments stage (package segment) keeps the features
// as per-profile aggregates, hands them to Train as Profiles and stores the Model it returns;
// it scores a profile with Model.Score whenever the profile changes.
//
// Time is in days: an active day is a UTC day number (days since the Unix epoch) on which the
// profile had at least one event of the model's goal (for churn: of any activity). A BG/NBD
// "transaction" is an active day, as is usual for daily data.
package predict

import (
	"errors"
	"time"
)

// Kinds of models (the computed trait kinds of the same names).
const (
	KindPurchase = "purchase_likelihood" // P(at least one goal event within the horizon)
	KindChurn    = "churn_likelihood"    // P(no activity within the horizon)
	KindLTV      = "predicted_ltv"       // expected spend within the horizon
	KindReturn   = "return_likelihood"   // P(an order is returned)
	KindProduct  = "next_best_product"   // top-K product ids
)

// Limits.
const (
	// MaxRecentDays is how many of its most recent active days a profile keeps (Activity.Recent).
	MaxRecentDays = 32
	// MinPositives and MinNegatives are the backtest's least counts of profiles with and
	// without the outcome: below either, Train refuses to publish (as Segment does).
	MinPositives = 100
	MinNegatives = 100
	// HistoryFactor: the data must span at least HistoryFactor × the horizon (oldest first
	// active day to now), so the calibration period is at least twice the holdout.
	HistoryFactor = 3
	// MaxProducts bounds the products a next-best-product model keeps neighbours for (the
	// most popular ones); MaxNeighbors the neighbours kept per product.
	MaxProducts  = 1000
	MaxNeighbors = 20
)

// ErrInsufficient wraps why Train refused to fit: too few positives or negatives, too short a
// history, no profile with the goal event. Its message says which counts fell short.
var ErrInsufficient = errors.New("not enough data to train")

// Activity is one profile's distinct active days as the segments stage keeps them: how many in
// all, the first, and the most recent ones (ascending, at most MaxRecentDays). Count is 0 for a
// profile with none.
type Activity struct {
	Count  int64   `json:"n"`
	First  int64   `json:"f"`
	Recent []int64 `json:"r,omitempty"`
}

// Spend is a count and sum of order values.
type Spend struct {
	Count int64   `json:"n"`
	Sum   float64 `json:"s"`
}

// Profile is what training reads of one profile: its features now, and the part of them that
// fell within the last horizon (the backtest's holdout; the rest is its calibration period).
// "Within the horizon" means on a UTC day after CutoffDay(now, HorizonDays), i.e. the last
// HorizonDays days up to and including now's day. Goal is the goal event's active days
// (Order Completed for purchase_likelihood, predicted_ltv, return_likelihood and
// next_best_product, where it also dates the history) or, for churn_likelihood, the activity's.
// Viewed, Bought and RecentBought are sorted product ids, at most 100 (the smallest, as the
// unique_list accumulator keeps them).
type Profile struct {
	Goal          Activity `json:"g"`            // goal (churn: activity) active days, all time
	Spend         Spend    `json:"s,omitzero"`   // order values, all time (predicted_ltv)
	RecentSpend   Spend    `json:"rs,omitzero"`  // order values within the horizon
	Orders        int64    `json:"o,omitempty"`  // orders, all time (return_likelihood)
	Returns       int64    `json:"x,omitempty"`  // returns, all time
	RecentOrders  int64    `json:"ro,omitempty"` // orders within the horizon
	RecentReturns int64    `json:"rx,omitempty"` // returns within the horizon
	Viewed        []string `json:"v,omitempty"`  // product ids viewed, all time (next_best_product)
	Bought        []string `json:"b,omitempty"`  // product ids bought, all time
	RecentBought  []string `json:"rb,omitempty"` // product ids bought within the horizon
}

// Config is what a training run is asked for.
type Config struct {
	Kind        string
	HorizonDays int // the prediction window N (purchase, churn, LTV, and the backtest's holdout)
	K           int // next_best_product: how many products (default 5)
}

// Params are fitted parameters with their standard errors (same order), from the inverse of
// the observed information at the maximum of the likelihood.
type Params struct {
	Names  []string  `json:"names"`
	Values []float64 `json:"values"`
	StdErr []float64 `json:"stdErr,omitempty"`
}

// Quality is a model's backtest: fitted on the calibration period, scored at its end, compared
// with what happened in the holdout (the last horizon).
type Quality struct {
	Profiles  int `json:"profiles"`  // profiles in the backtest
	Positives int `json:"positives"` // with the outcome in the holdout
	Negatives int `json:"negatives"`
	// Skipped counts the profiles left out of the backtest: with no goal day by the cutoff, or
	// whose last day before the cutoff fell out of Activity.Recent.
	Skipped int `json:"skipped,omitempty"`
	// AUC, lift in the top decile and log loss of the likelihoods (0 when not applicable).
	AUC      float64 `json:"auc,omitempty"`
	LiftTop  float64 `json:"liftTopDecile,omitempty"`
	LogLoss  float64 `json:"logLoss,omitempty"`
	BaseRate float64 `json:"baseRate,omitempty"`
	// CalibrationError: likelihoods, the mean over score deciles of |mean predicted − observed
	// rate|; predicted_ltv, |Σ predicted − Σ actual| / Σ actual over the holdout.
	CalibrationError float64 `json:"calibrationError"`
	// HitRate and BaselineHitRate: next_best_product, the share of backtest profiles with a
	// holdout purchase among their top K, for the model and for the most popular products.
	HitRate         float64 `json:"hitRateAtK,omitempty"`
	BaselineHitRate float64 `json:"baselineHitRateAtK,omitempty"`
	K               int     `json:"k,omitempty"`
	// Label is Poor, Fair, Good or Excellent (thresholds in README, "Predictions").
	Label string `json:"label"`
}

// Model is a trained model, as stored and as used to score.
type Model struct {
	Kind        string    `json:"kind"`
	HorizonDays int       `json:"horizonDays"`
	K           int       `json:"k,omitempty"`
	TrainedAt   time.Time `json:"trainedAt"`
	// BGNBD: r, alpha, a, b (purchase, churn, LTV); GammaGamma: p, q, gamma (LTV); Beta:
	// alpha, beta (return).
	BGNBD      *Params `json:"bgnbd,omitempty"`
	GammaGamma *Params `json:"gammaGamma,omitempty"`
	Beta       *Params `json:"beta,omitempty"`
	// NoHistory is the score of a profile without the goal event (e.g. the observed purchase
	// rate of such profiles in the backtest).
	NoHistory float64 `json:"noHistory"`
	// MeanSpend is the population's mean order value (LTV of a profile with no order yet).
	MeanSpend float64 `json:"meanSpend,omitempty"`
	// Cuts are the 99 ascending percentiles of the scores of the profiles trained on, scored
	// at TrainedAt: Percentile places a score among them.
	Cuts []float64 `json:"cuts,omitempty"`
	// Popular are product ids by descending popularity (at most MaxProducts); Neighbors[id]
	// the products most often seen with id, best first (at most MaxNeighbors each), with
	// Weights[id] their scores.
	Popular   []string             `json:"popular,omitempty"`
	Neighbors map[string][]string  `json:"neighbors,omitempty"`
	Weights   map[string][]float64 `json:"weights,omitempty"`
	Quality   Quality              `json:"quality"`
}

// Score is a profile's prediction: Value (a probability, or an amount for predicted_ltv) and
// its Percentile (0–100) among the profiles trained on; or Products for next_best_product.
type Score struct {
	Value      float64  `json:"score"`
	Percentile int      `json:"percentile"`
	Products   []string `json:"products,omitempty"`
}
