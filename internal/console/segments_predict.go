package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// The predictive computed traits on the Computed traits page: the form's prediction fields
// (horizon, K, revenue and product properties, return and view events), each predictive
// trait's model in the list (label, AUC, latest run), and its model page
// (/console/traits/{id}/quality): the published model's backtest quality, fitted parameters and
// the latest training run (status, reason, progress, cost), with a "Train now" button (the admin
// API's POST /admin/v1/computed-traits/{id}/train). The page refreshes itself while a run is
// queued or under way.

// predictiveTraitKinds are the predictive kinds, explained (the form's kind choices).
var predictiveTraitKinds = []option{
	{segmentdef.KindPurchaseLikelihood, "purchase_likelihood: probability of the goal event (default Order Completed) within the horizon"},
	{segmentdef.KindChurnLikelihood, "churn_likelihood: probability of no activity within the horizon"},
	{segmentdef.KindPredictedLTV, "predicted_ltv: expected spend within the horizon"},
	{segmentdef.KindReturnLikelihood, "return_likelihood: probability that an order is returned"},
	{segmentdef.KindNextBestProduct, "next_best_product: top K products to recommend"},
}

// predictionForm is the form's prediction fields (predictive kinds only).
type predictionForm struct {
	Horizon, K, RevenueProperty, ReturnEvent, ViewEvent, ProductProperty string
}

// predictionFormOf is the form of a stored prediction (nil: empty).
func predictionFormOf(p *segmentdef.Prediction) predictionForm {
	if p == nil {
		return predictionForm{}
	}
	f := predictionForm{RevenueProperty: p.RevenueProperty, ProductProperty: p.ProductProperty}
	if p.HorizonDays != 0 {
		f.Horizon = strconv.Itoa(p.HorizonDays)
	}
	if p.K != 0 {
		f.K = strconv.Itoa(p.K)
	}
	if p.ReturnEvent != nil {
		f.ReturnEvent = p.ReturnEvent.Name
	}
	if p.ViewEvent != nil {
		f.ViewEvent = p.ViewEvent.Name
	}
	return f
}

// predictionFormFrom reads the submitted prediction fields.
func predictionFormFrom(v url.Values) predictionForm {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return predictionForm{Horizon: g("horizon"), K: g("k"), RevenueProperty: g("revenueproperty"),
		ReturnEvent: g("returnevent"), ViewEvent: g("viewevent"), ProductProperty: g("productproperty")}
}

// prediction is the API's Prediction of a predictive kind's form (nil for other kinds, or
// when every field is empty: the defaults apply); an error is a field that is not a number.
func (f predictionForm) prediction(kind string) (*segmentdef.Prediction, error) {
	if !segmentdef.IsPredictive(kind) || f == (predictionForm{}) {
		return nil, nil
	}
	p := &segmentdef.Prediction{RevenueProperty: f.RevenueProperty, ProductProperty: f.ProductProperty}
	var err error
	if p.HorizonDays, err = wholeNumber("horizon", f.Horizon); err != nil {
		return nil, err
	}
	if p.K, err = wholeNumber("k", f.K); err != nil {
		return nil, err
	}
	if f.ReturnEvent != "" {
		p.ReturnEvent = &segmentdef.EventFilter{Name: f.ReturnEvent}
	}
	if f.ViewEvent != "" {
		p.ViewEvent = &segmentdef.EventFilter{Name: f.ViewEvent}
	}
	return p, nil
}

// wholeNumber reads an optional whole number field (empty: 0, the default).
func wholeNumber(field, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("prediction.%s: must be a whole number, 1 or more (got %q)", field, s)
	}
	return n, nil
}

// modelView is a predictive trait's model as the console shows it: the admin API's
// QualityView, or why it could not be read.
type modelView struct {
	*segment.QualityView
	Err string
}

// Active reports whether a training run is queued or under way (the view refreshes itself).
func (m *modelView) Active() bool {
	if m == nil || m.QualityView == nil || m.Training == nil {
		return false
	}
	switch m.Training.Status {
	case segment.TrainQueued, segment.TrainCollecting, segment.TrainFitting:
		return true
	}
	return false
}

// Published reports whether a model is published (its quality is known).
func (m *modelView) Published() bool {
	return m != nil && m.QualityView != nil && m.Quality != nil
}

// Likelihood reports whether the model's scores are probabilities (AUC, lift, log loss).
func (m *modelView) Likelihood() bool {
	return m.Kind != segmentdef.KindPredictedLTV && m.Kind != segmentdef.KindNextBestProduct
}

// Elapsed is the latest run's time spent, rounded.
func (m *modelView) Elapsed() string {
	if m.Training == nil {
		return "—"
	}
	return m.Training.Elapsed.Round(time.Millisecond).String()
}

// qualityPath is the admin API's quality or train path of a computed trait.
func qualityPath(id, what string) string {
	return traitsAPI + "/" + url.PathEscape(id) + "/" + what
}

// loadModels reads the model of each predictive trait of the list (one API call each).
func (s *Server) loadModels(r *http.Request, p *segPage) {
	for i := range p.Traits {
		t := &p.Traits[i]
		if !segmentdef.IsPredictive(t.Kind) {
			continue
		}
		m := &modelView{QualityView: &segment.QualityView{}}
		if err := s.call(r, http.MethodGet, qualityPath(t.ID, "quality"), nil, m.QualityView); err != nil {
			m = &modelView{Err: err.Error()}
		}
		t.Model = m
		p.Computing = p.Computing || m.Active()
	}
}

// modelPage is the data of a predictive trait's model page.
type modelPage struct {
	Trait traitView
	Model *modelView
	Flash string
	Err   string
}

// traitModel serves a predictive trait's model page (and, for htmx, the same page: the page
// selects its #model part).
func (s *Server) traitModel(w http.ResponseWriter, r *http.Request) {
	s.renderModel(w, r, modelPage{Flash: trainMessage(r.URL.Query().Get("done"))})
}

func trainMessage(done string) string {
	if done == "train" {
		return "Training queued: the schedule runs it within a minute; this page follows it."
	}
	return ""
}

// renderModel reads the trait and its model and shows the model page.
func (s *Server) renderModel(w http.ResponseWriter, r *http.Request, p modelPage) {
	id := r.PathValue("id")
	if err := s.call(r, http.MethodGet, traitsAPI+"/"+url.PathEscape(id), nil, &p.Trait); err != nil {
		status := http.StatusBadGateway
		if IsNotFound(err) {
			status = http.StatusNotFound
		}
		v := segError("Model", "traits", err)
		s.answerPage(w, r, "traits", v, status)
		return
	}
	p.Model = &modelView{QualityView: &segment.QualityView{}}
	if err := s.call(r, http.MethodGet, qualityPath(id, "quality"), nil, p.Model.QualityView); err != nil {
		p.Model = &modelView{Err: err.Error()}
	}
	s.render(w, r, "traits", view{Title: "Model: " + p.Trait.Name, Active: "traits", Data: segPage{Mode: "model", Model: &p}})
}

// trainTrait asks the admin API for a training run now and shows the model page with it.
func (s *Server) trainTrait(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.call(r, http.MethodPost, qualityPath(id, "train"), nil, nil); err != nil {
		s.renderModel(w, r, modelPage{Err: "Not queued: " + err.Error()})
		return
	}
	if r.Header.Get("HX-Request") != "" {
		s.renderModel(w, r, modelPage{Flash: trainMessage("train")})
		return
	}
	http.Redirect(w, r, Prefix+"/traits/"+url.PathEscape(id)+"/quality?done=train", http.StatusSeeOther)
}
