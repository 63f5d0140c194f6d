package segment

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestWindowedCountSharesSumBuckets: a windowed count and a windowed sum over the same events
// keep one set of buckets when the window is within the timeline's retention (two when it is
// not), and the count stays right when the sum is defined after the events: its accumulator is
// built from the timeline.
func TestWindowedCountSharesSumBuckets(t *testing.T) {
	for _, tc := range []struct {
		days int
		accs int
	}{{30, 1}, {120, 2}} {
		t.Run(fmt.Sprintf("%d days", tc.days), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			w := Window{Days: tc.days}
			save := func(ct ComputedTrait) {
				t.Helper()
				if _, err := e.sv.SaveTrait(ctx, ct); err != nil {
					t.Fatal(err)
				}
				if err := e.h.RunBackfills(ctx); err != nil {
					t.Fatal(err)
				}
			}
			save(ComputedTrait{Name: "Orders", Key: "orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}, Window: w})
			for i, rev := range []int{10, 20, 30} {
				m := track(fmt.Sprint("o", i), "Order Completed", e.clock.Now().Add(-time.Minute), fmt.Sprintf(`{"revenue":%d}`, rev))
				e.send(t, chg("p1", int64(i+1), "", m))
				e.clock.Add(time.Minute)
			}
			save(ComputedTrait{Name: "Spend", Key: "spend", Kind: KindSum, Event: EventFilter{Name: "Order Completed"}, Property: "revenue", Window: w})
			m := track("o3", "Order Completed", e.clock.Now().Add(-time.Minute), `{"revenue":40}`)
			e.send(t, chg("p1", 4, "", m))
			l, err := e.st.Load(ctx, "p1", true)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(l.State.Aggs); got != tc.accs {
				t.Errorf("%d accumulators, want %d", got, tc.accs)
			}
			pv, err := e.sv.Profile(ctx, "p1")
			if err != nil {
				t.Fatal(err)
			}
			if o, s := string(pv.ComputedTraits["orders"]), string(pv.ComputedTraits["spend"]); o != "4" || s != "100" {
				t.Errorf("orders %s spend %s, want 4 and 100", o, s)
			}
		})
	}
}
