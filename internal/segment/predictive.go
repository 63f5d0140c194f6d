package segment

import (
	"math"
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// ScoreValue is the value of a likelihood or predicted_ltv trait on a profile.
type ScoreValue struct {
	Score      float64 `json:"score"`
	Percentile int     `json:"percentile"`
}

// ProductsValue is the value of a next_best_product trait on a profile.
type ProductsValue struct {
	Products []string `json:"products"`
}

// SetModels gives the catalog the published models (by trait id) its predictive traits score
// with; a trait without one (or with one of another kind or horizon) has no value.
func (c *Catalog) SetModels(models map[string]*predict.Model) { c.models = models }

// model is the published model of a predictive trait, if it fits the definition.
func (c *Catalog) model(t *ComputedTrait) *predict.Model {
	m := c.models[t.ID]
	if m == nil || m.Kind != t.Kind || t.Prediction == nil || m.HorizonDays != t.Prediction.HorizonDays {
		return nil
	}
	return m
}

// predictive is a predictive trait's value at now (nil: no published model).
func (c *Catalog) predictive(st *State, t *ComputedTrait, now time.Time) any {
	m := c.model(t)
	if m == nil {
		return nil
	}
	sc := m.Score(c.PredictionProfile(st, t, now), now)
	if t.Kind == KindNextBestProduct {
		if sc.Products == nil {
			sc.Products = []string{}
		}
		return ProductsValue{Products: sc.Products}
	}
	v := sc.Value
	if t.Kind == KindPredictedLTV {
		v = math.Round(v*100) / 100 // an amount: cents
	} else {
		v = math.Round(v*1e4) / 1e4 // a probability: four decimals (no trait change for noise)
	}
	return ScoreValue{Score: v, Percentile: sc.Percentile}
}

// Predictive kinds (package segmentdef).
const (
	KindPurchaseLikelihood = segmentdef.KindPurchaseLikelihood
	KindChurnLikelihood    = segmentdef.KindChurnLikelihood
	KindPredictedLTV       = segmentdef.KindPredictedLTV
	KindReturnLikelihood   = segmentdef.KindReturnLikelihood
	KindNextBestProduct    = segmentdef.KindNextBestProduct
)
