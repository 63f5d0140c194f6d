package segments_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/admin"
	"github.com/serverless-cdp/cdp/internal/admin/admintest"
	"github.com/serverless-cdp/cdp/internal/admin/segments"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// predServer is the computed-trait routes over the segments service on the in-memory store,
// with a churn_likelihood trait and an event_count one.
func predServer(t *testing.T) (h http.Handler, churn, orders string) {
	t.Helper()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	svc := segment.NewService(segment.NewMemStore(), func() time.Time { return now })
	r := admin.NewRouter(admintest.OneToken{}, nil)
	segments.Register(r, svc)
	ctx := context.Background()
	o, err := svc.SaveTrait(ctx, segment.ComputedTrait{Name: "Orders", Kind: segmentdef.KindCount,
		Event: segmentdef.EventFilter{Name: "Order Completed"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.SaveTrait(ctx, segment.ComputedTrait{Name: "Churn risk", Kind: segmentdef.KindChurnLikelihood,
		Prediction: &segmentdef.Prediction{HorizonDays: 14}})
	if err != nil {
		t.Fatal(err)
	}
	return r, c.ID, o.ID
}

// TestPredictionRoutes: POST …/train answers 202 with the queued run, and the same run when
// asked again (a retried request starts nothing twice); GET …/quality answers that run and no
// quality before a model is published; an unknown trait is 404, a trait that is not
// predictive 400 naming its kind, and neither changes anything.
func TestPredictionRoutes(t *testing.T) {
	h, churn, orders := predServer(t)
	base := admin.Prefix + "/computed-traits/"
	st, body := admintest.Call(t, h, "GET", base+churn+"/quality", "")
	var q segment.QualityView
	if err := json.Unmarshal([]byte(body), &q); st != 200 || err != nil || q.Key != "churn_risk" || q.Kind != segmentdef.KindChurnLikelihood ||
		q.Quality != nil || q.Training != nil {
		t.Fatalf("quality before training: %d %s", st, body)
	}
	st, body = admintest.Call(t, h, "POST", base+churn+"/train", "")
	var tr segment.Training
	if err := json.Unmarshal([]byte(body), &tr); st != http.StatusAccepted || err != nil || tr.TraitID != churn || tr.RunID == "" ||
		tr.Status != segment.TrainQueued || tr.Trigger != "api" {
		t.Fatalf("train: %d %s", st, body)
	}
	st, again := admintest.Call(t, h, "POST", base+churn+"/train", "")
	var tr2 segment.Training
	if err := json.Unmarshal([]byte(again), &tr2); st != http.StatusAccepted || err != nil || tr2.RunID != tr.RunID {
		t.Fatalf("train again: %d %s, want the run %s", st, again, tr.RunID)
	}
	st, body = admintest.Call(t, h, "GET", base+churn+"/quality", "")
	q = segment.QualityView{}
	if err := json.Unmarshal([]byte(body), &q); st != 200 || err != nil || q.Training == nil || q.Training.RunID != tr.RunID ||
		q.Training.Status != segment.TrainQueued || q.Quality != nil {
		t.Fatalf("quality with a queued run: %d %s", st, body)
	}
	for _, r := range [][2]string{{"POST", "/train"}, {"GET", "/quality"}} {
		if st, body := admintest.Call(t, h, r[0], base+"ct_nope"+r[1], ""); st != 404 || !strings.Contains(body, `"not_found"`) {
			t.Errorf("%s ct_nope%s: %d %s, want 404", r[0], r[1], st, body)
		}
		if st, body := admintest.Call(t, h, r[0], base+orders+r[1], ""); st != 400 || !strings.Contains(body, "event_count") {
			t.Errorf("%s (event_count)%s: %d %s, want 400 naming the kind", r[0], r[1], st, body)
		}
	}
	if _, body := admintest.Call(t, h, "GET", base+orders, ""); strings.Contains(body, "run_") {
		t.Errorf("a refused train touched the trait: %s", body)
	}
	if st, _ := admintest.Call(t, h, "GET", base+churn+"/train", ""); st != http.StatusMethodNotAllowed {
		t.Errorf("GET …/train: %d, want 405", st)
	}
}
