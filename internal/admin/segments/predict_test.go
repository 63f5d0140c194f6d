package segments

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// stubPredictions answers like the segments service: ErrNotFound for an unknown trait, a
// ValidationError for one that is not predictive, and one queued run per trait.
type stubPredictions struct {
	kinds map[string]string // trait id → kind
	runs  map[string]*segment.Training
}

func (p *stubPredictions) trait(_ context.Context, id string) (*segment.ComputedTrait, error) {
	kind, ok := p.kinds[id]
	switch {
	case !ok:
		return nil, segment.ErrNotFound
	case kind != segmentdef.KindChurnLikelihood:
		return nil, &segment.ValidationError{Field: "kind", Message: kind + " is not a predictive kind"}
	}
	return &segment.ComputedTrait{ID: id, Key: "churn", Kind: kind}, nil
}

func (p *stubPredictions) Train(ctx context.Context, id string) (*segment.Training, error) {
	if _, err := p.trait(ctx, id); err != nil {
		return nil, err
	}
	if p.runs[id] == nil {
		p.runs[id] = &segment.Training{TraitID: id, RunID: "run_1", Status: segment.TrainQueued, Trigger: "api",
			QueuedAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	}
	return p.runs[id], nil
}

func (p *stubPredictions) Quality(ctx context.Context, id string) (*segment.QualityView, error) {
	t, err := p.trait(ctx, id)
	if err != nil {
		return nil, err
	}
	return &segment.QualityView{TraitID: id, Key: t.Key, Kind: t.Kind, Training: p.runs[id],
		Quality: &predict.Quality{Profiles: 300, Positives: 120, Negatives: 180, AUC: 0.81, Label: "Good"}}, nil
}

// predServer is the computed-trait routes with one predictive trait (churn) and one that is
// not (orders).
func predServer(t *testing.T, withTraining bool) (h http.Handler, churn, orders string) {
	t.Helper()
	svc := segment.NewService(segment.NewMemStore(), nil)
	r := admin.NewRouter(admintest.OneToken{}, nil)
	churn, orders = "ct_churn", "ct_orders"
	var pred predictions
	if withTraining {
		pred = &stubPredictions{kinds: map[string]string{churn: segmentdef.KindChurnLikelihood, orders: segmentdef.KindCount},
			runs: map[string]*segment.Training{}}
	}
	register(r, svc, pred)
	return r, churn, orders
}

// TestPredictionRoutes: POST …/train answers 202 with the queued run, again the same run
// when asked twice; GET …/quality answers the quality and that run; an unknown trait is 404
// and a trait that is not predictive 400, naming the kind.
func TestPredictionRoutes(t *testing.T) {
	h, churn, orders := predServer(t, true)
	base := admin.Prefix + "/computed-traits/"
	st, body := admintest.Call(t, h, "POST", base+churn+"/train", "")
	var tr segment.Training
	if err := json.Unmarshal([]byte(body), &tr); st != http.StatusAccepted || err != nil || tr.TraitID != churn || tr.Status != segment.TrainQueued {
		t.Fatalf("train: %d %s", st, body)
	}
	st, again := admintest.Call(t, h, "POST", base+churn+"/train", "")
	if st != http.StatusAccepted || again != body {
		t.Fatalf("train again: %d %s, want the same run %s", st, again, body)
	}
	st, body = admintest.Call(t, h, "GET", base+churn+"/quality", "")
	var q segment.QualityView
	if err := json.Unmarshal([]byte(body), &q); st != 200 || err != nil || q.Kind != segmentdef.KindChurnLikelihood ||
		q.Training == nil || q.Training.RunID != tr.RunID || q.Quality == nil || q.Quality.Label != "Good" {
		t.Fatalf("quality: %d %s", st, body)
	}
	for _, path := range []string{base + "ct_nope/train", base + "ct_nope/quality"} {
		method := "GET"
		if strings.HasSuffix(path, "/train") {
			method = "POST"
		}
		if st, body := admintest.Call(t, h, method, path, ""); st != 404 || !strings.Contains(body, `"not_found"`) {
			t.Errorf("%s %s: %d %s, want 404", method, path, st, body)
		}
		path = strings.Replace(path, "ct_nope", orders, 1)
		if st, body := admintest.Call(t, h, method, path, ""); st != 400 || !strings.Contains(body, "event_count") {
			t.Errorf("%s %s (event_count): %d %s, want 400 naming the kind", method, path, st, body)
		}
	}
	if st, _ := admintest.Call(t, h, "GET", base+churn+"/train", ""); st != http.StatusMethodNotAllowed {
		t.Errorf("GET …/train: %d, want 405", st)
	}
}

// TestPredictionRoutesWithoutTraining: a service that cannot train says so (501), it does not
// pretend (no 2xx, no 500).
func TestPredictionRoutesWithoutTraining(t *testing.T) {
	h, churn, _ := predServer(t, false)
	for _, m := range [][2]string{{"POST", "/train"}, {"GET", "/quality"}} {
		if st, body := admintest.Call(t, h, m[0], admin.Prefix+"/computed-traits/"+churn+m[1], ""); st != http.StatusNotImplemented || !strings.Contains(body, "does not train") {
			t.Errorf("%s %s: %d %s", m[0], m[1], st, body)
		}
	}
}
