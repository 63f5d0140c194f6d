package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/httpapi"
	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/segment"
)

// predAPI is an admin API with two computed traits, a churn_likelihood one (ct_churn) with a
// published model, and an event_count one (ct_orders); POST …/train queues a run (or answers
// the API's refusal, refuse).
type predAPI struct {
	mu     sync.Mutex
	run    *segment.Training
	refuse string
	trains int
}

var predTraits = []map[string]any{
	{"id": "ct_churn", "key": "churn_risk", "name": "Churn risk", "kind": "churn_likelihood", "status": "live",
		"prediction": map[string]any{"horizonDays": 14}},
	{"id": "ct_orders", "key": "orders", "name": "Orders", "kind": "event_count", "status": "live",
		"event": map[string]any{"name": "Order Completed"}},
}

func (a *predAPI) serve(_ context.Context, req httpapi.Request) (httpapi.Response, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	answer := func(status int, v any) (httpapi.Response, error) {
		b, _ := json.Marshal(v)
		return httpapi.Response{StatusCode: status, Body: string(b)}, nil
	}
	m, p := req.RequestContext.HTTP.Method, req.RawPath
	switch {
	case m == "GET" && p == traitsAPI:
		return answer(200, map[string]any{"computedTraits": predTraits})
	case m == "GET" && p == traitsAPI+"/ct_churn":
		return answer(200, predTraits[0])
	case m == "GET" && p == traitsAPI+"/ct_churn/quality":
		return answer(200, segment.QualityView{TraitID: "ct_churn", Key: "churn_risk", Kind: "churn_likelihood",
			TrainedAt: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC), Training: a.run,
			Params:  []predict.Params{{Names: []string{"r", "alpha", "a", "b"}, Values: []float64{0.25, 4.5, 0.8, 2.4}, StdErr: []float64{0.01, 0.3, 0.1, 0.4}}},
			Quality: &predict.Quality{Profiles: 5000, Positives: 1400, Negatives: 3600, AUC: 0.8312, LiftTop: 2.41, LogLoss: 0.4711, BaseRate: 0.28, CalibrationError: 0.0123, Label: "Good"}})
	case m == "POST" && p == traitsAPI+"/ct_churn/train":
		a.trains++
		if a.refuse != "" {
			return answer(400, map[string]string{"code": "invalid_request", "message": a.refuse})
		}
		if a.run == nil || a.run.Status == segment.TrainPublished || a.run.Status == segment.TrainRefused {
			a.run = &segment.Training{TraitID: "ct_churn", RunID: "run_2", Status: segment.TrainQueued, Trigger: "api",
				QueuedAt: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
		}
		return answer(202, a.run)
	case m == "GET" && p == traitsAPI+"/ct_orders/quality":
		return answer(400, map[string]string{"code": "invalid_request", "message": "kind: event_count is not predictive"})
	}
	return answer(404, map[string]string{"code": "not_found", "message": "no such thing"})
}

func newPredConsole(t *testing.T, api *predAPI) *segServer {
	t.Helper()
	none := func(context.Context, httpapi.Request) (httpapi.Response, error) {
		return httpapi.Response{StatusCode: 404}, nil
	}
	s, err := New(Options{Admin: api.serve, Profile: none, SpaceID: "default",
		Verify: func(_ context.Context, tok string) (bool, error) { return tok == admintest.Token, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return &segServer{t: t, s: s}
}

// TestPredictionFormToSpec: the form's prediction fields make the API's prediction for a
// predictive kind (empty ones left to the defaults), none for other kinds, a clear error for
// a horizon that is not a number; a stored prediction comes back to the same fields.
func TestPredictionFormToSpec(t *testing.T) {
	v := url.Values{"name": {"Churn risk"}, "kind": {"churn_likelihood"}, "evtype": {"track"}, "horizon": {"14"},
		"viewevent": {"Product Viewed"}}
	spec, err := traitFormFrom(v).spec()
	if err != nil || spec.Prediction == nil || spec.Prediction.HorizonDays != 14 || spec.Prediction.K != 0 ||
		spec.Prediction.ViewEvent == nil || spec.Prediction.ViewEvent.Name != "Product Viewed" || spec.Prediction.ReturnEvent != nil {
		t.Fatalf("churn spec: %+v %v", spec.Prediction, err)
	}
	b, _ := json.Marshal(spec)
	if !strings.Contains(string(b), `"prediction":{"horizonDays":14,"viewEvent":{"name":"Product Viewed"}}`) || strings.Contains(string(b), `"event"`) {
		t.Fatalf("the API body: %s", b)
	}
	back := predictionFormOf(spec.Prediction)
	if back.Horizon != "14" || back.ViewEvent != "Product Viewed" || back.K != "" {
		t.Fatalf("stored prediction back to the form: %+v", back)
	}
	v.Set("kind", "event_count")
	if spec, err := traitFormFrom(v).spec(); err != nil || spec.Prediction != nil {
		t.Fatalf("event_count with prediction fields: %+v %v", spec.Prediction, err)
	}
	v.Set("kind", "next_best_product")
	for _, bad := range []string{"two", "0", "-3"} {
		v.Set("k", bad)
		if _, err := traitFormFrom(v).spec(); err == nil || !strings.Contains(err.Error(), "prediction.k") {
			t.Errorf("k %q: %v", bad, err)
		}
	}
	v.Set("k", "5")
	v.Set("kind", "purchase_likelihood")
	v.Set("horizon", "")
	if spec, err := traitFormFrom(v).spec(); err != nil || spec.Prediction == nil || spec.Prediction.HorizonDays != 0 || spec.Prediction.K != 5 {
		t.Fatalf("empty horizon: %+v %v", spec.Prediction, err)
	}
	form := newTraitFormPage(t)
	for _, k := range []string{"purchase_likelihood", "churn_likelihood", "predicted_ltv", "return_likelihood", "next_best_product"} {
		if !strings.Contains(form, `<option value="`+k+`"`) {
			t.Errorf("the form offers no %s", k)
		}
	}
}

// newTraitFormPage is the new computed trait form.
func newTraitFormPage(t *testing.T) string {
	t.Helper()
	e := newPredConsole(t, &predAPI{})
	w := e.get("/console/traits/new")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `name="horizon"`) {
		t.Fatalf("new trait form: %d", w.Code)
	}
	return w.Body.String()
}

// TestTraitsListShowsModels: the list shows a predictive trait's model (label, AUC, latest
// run) with a link to its model page, nothing for other kinds; it refreshes itself while a
// run is queued.
func TestTraitsListShowsModels(t *testing.T) {
	api := &predAPI{}
	e := newPredConsole(t, api)
	body := e.get("/console/traits").Body.String()
	churn := row(t, body, "churn_risk")
	if !strings.Contains(churn, ">Good<") || !strings.Contains(churn, "AUC 0.831") || !strings.Contains(churn, "/console/traits/ct_churn/quality") {
		t.Fatalf("churn row: %s", churn)
	}
	if orders := row(t, body, "orders"); strings.Contains(orders, "/quality") || strings.Contains(orders, "unreadable") {
		t.Fatalf("orders row shows a model: %s", orders)
	}
	if strings.Contains(body, `hx-trigger="every 2s"`) {
		t.Fatal("the list refreshes with nothing under way")
	}
	api.run = &segment.Training{Status: segment.TrainCollecting, Profiles: 1200}
	body = e.get("/console/traits/table").Body.String()
	if !strings.Contains(body, `hx-trigger="every 2s"`) || !strings.Contains(row(t, body, "churn_risk"), "collecting") {
		t.Fatalf("with a run collecting: %s", body)
	}
}

// row is the list's table row of one trait key.
func row(t *testing.T, body, key string) string {
	t.Helper()
	i := strings.Index(body, `<tr data-trait="`+key+`">`)
	if i < 0 {
		t.Fatalf("no row %s in %s", key, body)
	}
	j := strings.Index(body[i:], "</tr>")
	return body[i : i+j]
}

// TestModelPageAndTrainNow: the model page shows the backtest's numbers and the fitted
// parameters; Train now needs the CSRF token, asks the API once, and shows the queued run
// (htmx: the page part, refreshing itself; without script: a redirect to the page); the API's
// refusal is shown and changes nothing.
func TestModelPageAndTrainNow(t *testing.T) {
	api := &predAPI{}
	e := newPredConsole(t, api)
	w := e.get("/console/traits/ct_churn/quality")
	body := w.Body.String()
	for _, want := range []string{`id="model-label">Good<`, `id="q-auc">0.831<`, `id="q-lift">2.41×<`, `id="q-counts">1400 / 3600<`,
		`id="q-cal">0.0123<`, `<code>alpha</code>`, "horizon 14 days", `id="no-run"`, `id="train-now"`, "churn_risk.percentile ≥ 80"} {
		if !strings.Contains(body, want) {
			t.Errorf("model page lacks %s", want)
		}
	}
	if w.Code != 200 || strings.Contains(body, `hx-trigger="every 2s"`) {
		t.Fatalf("model page: %d, refreshing with no run", w.Code)
	}

	r := httptest.NewRequest("POST", "/console/traits/ct_churn/train", nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: admintest.Token})
	if w := do(e.s, r); w.Code != http.StatusForbidden || api.trains != 0 {
		t.Fatalf("train without CSRF: %d, %d calls", w.Code, api.trains)
	}
	w = e.post("/console/traits/ct_churn/train", url.Values{}, false)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/traits/ct_churn/quality?done=train" || api.trains != 1 {
		t.Fatalf("train (plain form): %d %q, %d calls", w.Code, w.Header().Get("Location"), api.trains)
	}
	body = e.post("/console/traits/ct_churn/train", url.Values{}, true).Body.String()
	for _, want := range []string{"Training queued", `id="run-status">queued<`, `hx-trigger="every 2s"`, `id="train-now" disabled`} {
		if !strings.Contains(body, want) {
			t.Errorf("after Train now (htmx) the page lacks %s", want)
		}
	}

	api.run.Status, api.run.Reason = segment.TrainRefused, "not enough data to train: 37 positives (want 100)"
	body = e.get("/console/traits/ct_churn/quality").Body.String()
	if !strings.Contains(body, `id="run-status">refused<`) || !strings.Contains(body, "37 positives (want 100)") || strings.Contains(body, `hx-trigger="every 2s"`) {
		t.Fatalf("refused run: %s", body)
	}
	api.refuse = "kind: event_count is not predictive"
	body = e.post("/console/traits/ct_churn/train", url.Values{}, true).Body.String()
	if !strings.Contains(body, "Not queued: kind: event_count is not predictive") || !strings.Contains(body, `id="run-status">refused<`) {
		t.Fatalf("refused train: %s", body)
	}
	if w := e.get("/console/traits/ct_nope/quality"); w.Code != http.StatusNotFound {
		t.Fatalf("unknown trait's model page: %d", w.Code)
	}
}

// TestPredictiveTraitThroughTheRealAPI: over the real admin API (in memory), the form's draft
// of a churn_likelihood trait is valid with the defaults filled in, a property is refused as
// the API refuses it, saving stores the prediction, the edit form shows it, and Train now on
// the model page queues a run that the page then shows (and follows).
func TestPredictiveTraitThroughTheRealAPI(t *testing.T) {
	e := newSegServer(t)
	f := url.Values{"name": {"Churn risk"}, "kind": {"churn_likelihood"}, "evtype": {"track"}, "whereop": {"eq"}, "windowunit": {"days"}, "horizon": {"14"}}
	body := e.post("/console/traits/draft", f, true).Body.String()
	if !strings.Contains(body, `id="draft-ok"`) || !strings.Contains(body, `&#34;horizonDays&#34;: 14`) {
		t.Fatalf("draft: %s", body)
	}
	f.Set("property", "revenue")
	if body := e.post("/console/traits/draft", f, true).Body.String(); !strings.Contains(body, `id="draft-error"`) || !strings.Contains(body, "property") {
		t.Fatalf("draft with a property: %s", body)
	}
	f.Del("property")
	if w := e.post("/console/traits/save", f, false); w.Code != http.StatusSeeOther {
		t.Fatalf("save: %d %s", w.Code, w.Body.String())
	}
	traits, err := e.svc.Traits(context.Background())
	if err != nil || len(traits) != 1 || traits[0].Prediction == nil || traits[0].Prediction.HorizonDays != 14 {
		t.Fatalf("stored: %+v %v", traits, err)
	}
	id := traits[0].ID
	if edit := e.get("/console/traits/" + id).Body.String(); !strings.Contains(edit, `name="horizon" value="14"`) {
		t.Fatal("the edit form does not show the horizon")
	}
	if row := row(t, e.get("/console/traits").Body.String(), "churn_risk"); !strings.Contains(row, "no model yet") {
		t.Fatalf("list row: %s", row)
	}
	page := e.get("/console/traits/" + id + "/quality").Body.String()
	if !strings.Contains(page, `id="no-model"`) || !strings.Contains(page, `id="no-run"`) {
		t.Fatalf("model page before training: %s", page)
	}
	page = e.post("/console/traits/"+id+"/train", url.Values{}, true).Body.String()
	if !strings.Contains(page, `id="run-status">queued<`) || !strings.Contains(page, `hx-trigger="every 2s"`) {
		t.Fatalf("model page after Train now: %s", page)
	}
	q, err := e.svc.Quality(context.Background(), id)
	if err != nil || q.Training == nil || q.Training.Status != segment.TrainQueued || q.Training.Trigger != "api" {
		t.Fatalf("the service's run: %+v %v", q, err)
	}
}
