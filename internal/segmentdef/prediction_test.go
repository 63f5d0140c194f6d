package segmentdef_test

import (
	"errors"
	"testing"

	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// TestPredictionDefaults: a predictive trait gets its goal event and every prediction default;
// churn's goal is any track event.
func TestPredictionDefaults(t *testing.T) {
	tr := segmentdef.ComputedTrait{Name: "Will buy", Kind: segmentdef.KindPurchaseLikelihood}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	p := tr.Prediction
	if tr.Event.Name != segmentdef.DefaultPurchaseEvent || p == nil || p.HorizonDays != 30 || p.K != 5 ||
		p.RevenueProperty != "revenue" || p.ProductProperty != "product_id" ||
		p.ReturnEvent == nil || p.ReturnEvent.Name != "Order Refunded" || p.ViewEvent == nil || p.ViewEvent.Name != "Product Viewed" {
		t.Fatalf("defaults: %+v %+v", tr, p)
	}
	churn := segmentdef.ComputedTrait{Name: "Churn", Kind: segmentdef.KindChurnLikelihood,
		Prediction: &segmentdef.Prediction{HorizonDays: 60}}
	if err := churn.Validate(); err != nil || churn.Event.Name != "*" || churn.Prediction.HorizonDays != 60 {
		t.Fatalf("churn: %+v %v", churn, err)
	}
	nbp := segmentdef.ComputedTrait{Name: "Next", Kind: segmentdef.KindNextBestProduct, Event: segmentdef.EventFilter{Name: "Purchased"}}
	if err := nbp.Validate(); err != nil || nbp.Event.Name != "Purchased" {
		t.Fatalf("explicit goal event: %+v %v", nbp, err)
	}
}

// TestPredictionRefusals: fields a predictive trait does not take, out-of-range settings and a
// prediction on another kind are refused with the field named.
func TestPredictionRefusals(t *testing.T) {
	pred := func(p segmentdef.Prediction) *segmentdef.Prediction { return &p }
	for _, c := range []struct {
		tr    segmentdef.ComputedTrait
		field string
	}{
		{segmentdef.ComputedTrait{Kind: segmentdef.KindPredictedLTV, Property: "revenue"}, "property"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindChurnLikelihood, Window: segmentdef.Window{Days: 30}}, "window"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindReturnLikelihood, Thresholds: []float64{1, 2, 3, 4}}, "thresholds"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindPurchaseLikelihood, Prediction: pred(segmentdef.Prediction{HorizonDays: 6})}, "prediction.horizonDays"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindPurchaseLikelihood, Prediction: pred(segmentdef.Prediction{HorizonDays: 366})}, "prediction.horizonDays"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindNextBestProduct, Prediction: pred(segmentdef.Prediction{K: 21})}, "prediction.k"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindNextBestProduct, Prediction: pred(segmentdef.Prediction{K: -1})}, "prediction.k"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindReturnLikelihood, Prediction: pred(segmentdef.Prediction{ReturnEvent: &segmentdef.EventFilter{Name: " "}})}, "prediction.returnEvent.name"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindNextBestProduct, Prediction: pred(segmentdef.Prediction{ViewEvent: &segmentdef.EventFilter{Name: "v", Type: "bad"}})}, "prediction.viewEvent.type"},
		{segmentdef.ComputedTrait{Kind: segmentdef.KindCount, Event: segmentdef.EventFilter{Name: "x"}, Prediction: &segmentdef.Prediction{}}, "prediction"},
	} {
		c.tr.Name = "P"
		var ve *segmentdef.ValidationError
		if err := c.tr.Validate(); !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: %v, want a ValidationError on %s", c.tr.Kind, err, c.field)
		}
	}
}
