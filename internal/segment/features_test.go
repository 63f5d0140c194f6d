package segment

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// TestActiveDaysDistinctAndBounded: days count once, only the last MaxRecentDays are kept, a
// late day older than those counts only as a new first day, and a merge counts shared days once.
func TestActiveDaysDistinctAndBounded(t *testing.T) {
	var a predict.Activity
	for d := int64(100); d < 140; d++ {
		addDay(&a, d)
		addDay(&a, d) // same day again
	}
	if a.Count != 40 || a.First != 100 || len(a.Recent) != predict.MaxRecentDays || a.Recent[0] != 140-predict.MaxRecentDays || a.Recent[len(a.Recent)-1] != 139 {
		t.Fatalf("after 40 days: %+v", a)
	}
	addDay(&a, 101) // older than the kept days, not a new first day: cannot tell, not counted
	addDay(&a, 90)  // a new first day
	if a.Count != 41 || a.First != 90 {
		t.Fatalf("late days: %+v", a)
	}
	b := predict.Activity{}
	for _, d := range []int64{80, 138, 139, 150} {
		addDay(&b, d)
	}
	mergeDays(&a, &b)
	if a.Count != 41+4-2 || a.First != 80 || a.Recent[len(a.Recent)-1] != 150 || len(a.Recent) != predict.MaxRecentDays {
		t.Fatalf("merged: %+v", a)
	}
	if !slices.IsSorted(a.Recent) {
		t.Fatalf("recent days not ascending: %v", a.Recent)
	}
}

func predTrait(t *testing.T, id, key, kind string, p *segmentdef.Prediction) *ComputedTrait {
	t.Helper()
	tr := &ComputedTrait{ID: id, Key: key, Name: key, Kind: kind, Prediction: p, Version: 1}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestPredictionProfileFromEvents: the features of each predictive kind come from the
// profile's events as the stage applies them: goal days, spend all time and within the
// horizon, orders and returns, products viewed and bought (also products[].product_id);
// a redelivered event counts once.
func TestPredictionProfileFromEvents(t *testing.T) {
	traits := []*ComputedTrait{
		predTrait(t, "c1", "buy", KindPurchaseLikelihood, nil),
		predTrait(t, "c2", "ltv", KindPredictedLTV, &segmentdef.Prediction{HorizonDays: 10}),
		predTrait(t, "c3", "ret", KindReturnLikelihood, &segmentdef.Prediction{HorizonDays: 10}),
		predTrait(t, "c4", "nbp", KindNextBestProduct, &segmentdef.Prediction{HorizonDays: 10}),
		predTrait(t, "c5", "churn", KindChurnLikelihood, nil),
	}
	cat, err := NewCatalog(traits, nil)
	if err != nil {
		t.Fatal(err)
	}
	cat.shareCounts(DefaultTimelineRetention)
	now := t0
	st := NewState("p")
	var evs []Event
	ev := func(id, name string, daysAgo float64, props string) {
		evs = append(evs, Event{ID: id, Type: "track", Name: name, T: now.Add(-time.Duration(daysAgo * float64(24*time.Hour))), P: []byte(props)})
	}
	ev("o1", "Order Completed", 40, `{"revenue":100,"products":[{"product_id":"a"},{"product_id":"b"}]}`)
	ev("o2", "Order Completed", 40.1, `{"revenue":20,"product_id":"c"}`)
	ev("o3", "Order Completed", 2, `{"revenue":30.5,"products":[{"product_id":"d"}]}`)
	ev("r1", "Order Refunded", 1, `{"order_id":"o3"}`)
	ev("v1", "Product Viewed", 3, `{"product_id":"z"}`)
	ev("v2", "Product Viewed", 3, `{"product_id":"a"}`)
	for _, id := range []string{"o1", "o2", "o3", "r1", "v1", "v2", "o3"} { // o3 redelivered
		for i := range evs {
			if evs[i].ID == id {
				cat.addEvents(st, evs[i:i+1], now)
			}
		}
	}
	day := func(ago float64) int64 { return predict.Day(now.Add(-time.Duration(ago * float64(24*time.Hour)))) }
	buy := cat.PredictionProfile(st, cat.Trait("buy"), now)
	wantDays := []int64{day(40.1), day(40), day(2)}
	slices.Sort(wantDays)
	wantDays = slices.Compact(wantDays)
	if buy.Goal.Count != int64(len(wantDays)) || buy.Goal.First != wantDays[0] || !slices.Equal(buy.Goal.Recent, wantDays) {
		t.Fatalf("goal days: %+v, want %v", buy.Goal, wantDays)
	}
	ltv := cat.PredictionProfile(st, cat.Trait("ltv"), now)
	if ltv.Spend != (predict.Spend{Count: 3, Sum: 150.5}) || ltv.RecentSpend != (predict.Spend{Count: 1, Sum: 30.5}) {
		t.Fatalf("spend: %+v %+v", ltv.Spend, ltv.RecentSpend)
	}
	ret := cat.PredictionProfile(st, cat.Trait("ret"), now)
	if ret.Orders != 3 || ret.Returns != 1 || ret.RecentOrders != 1 || ret.RecentReturns != 1 {
		t.Fatalf("returns: %+v", ret)
	}
	nbp := cat.PredictionProfile(st, cat.Trait("nbp"), now)
	if fmt.Sprint(nbp.Viewed, nbp.Bought, nbp.RecentBought) != "[a z] [a b c d] [d]" {
		t.Fatalf("products: viewed %v bought %v recent %v", nbp.Viewed, nbp.Bought, nbp.RecentBought)
	}
	churn := cat.PredictionProfile(st, cat.Trait("churn"), now)
	// churn's activity is every track event but the returns (a refund follows an order,
	// whether or not the customer is still active): the refund's day 1 does not count.
	if churn.Goal.Count != int64(len(slices.Compact([]int64{day(40.1), day(40), day(3), day(2)}))) || churn.Goal.Recent[len(churn.Goal.Recent)-1] != day(2) {
		t.Fatalf("activity days: %+v", churn.Goal)
	}
	if buy.Spend.Count != 0 || buy.Viewed != nil || ltv.Orders != 0 {
		t.Fatalf("features of other kinds filled in: %+v %+v", buy, ltv)
	}
	// A new goal event re-scores the trait: the catalog indexes it by every event it reads.
	for _, name := range []string{"Order Completed", "Order Refunded", "Product Viewed"} {
		keys := map[string]bool{evKey("track", name): true}
		if len(cat.affectedTraits(keys)) == 0 {
			t.Fatalf("%s affects no predictive trait", name)
		}
	}
}
