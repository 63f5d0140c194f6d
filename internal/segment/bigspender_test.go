package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/activations"
)

// TestWindowedSumSurvivesStorage: a windowed sum adds up across changes stored in between, and an
// audience on it is entered when the sum crosses its threshold (the benchmark's "big spenders").
// A bucket's start once had the JSON name of the sum it embeds, and the sum was dropped on every
// write.
func TestWindowedSumSurvivesStorage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.sv.SaveTrait(ctx, ComputedTrait{Name: "Total revenue", Key: "total_revenue", Kind: KindSum,
		Event: EventFilter{Name: "Order Completed"}, Property: "revenue", Window: Window{Days: 30}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sv.SaveAudience(ctx, Audience{Name: "Big spenders", Key: "big_spenders",
		Condition: Condition{ComputedTrait: &Predicate{Key: "total_revenue", Op: OpGte, Value: json.RawMessage(`300`)}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.h.RunBackfills(ctx); err != nil {
		t.Fatal(err)
	}
	for i, rev := range []int{100, 150, 100} {
		m := track(fmt.Sprint("o", i), "Order Completed", e.clock.Now().Add(-time.Minute), fmt.Sprintf(`{"revenue":%d}`, rev))
		e.send(t, chg("p1", int64(i+1), "", m))
		e.clock.Add(time.Minute)
	}
	pv, err := e.sv.Profile(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(pv.ComputedTraits["total_revenue"]); got != "350" {
		t.Errorf("total_revenue = %s, want 350", got)
	}
	entered := 0
	for _, r := range e.read(5, time.Second) {
		if r.Kind == activations.KindAudienceEntered {
			entered++
		}
	}
	if entered != 1 {
		t.Errorf("%d Audience Entered records, want 1", entered)
	}
}
