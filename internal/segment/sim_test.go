package segment

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// simRecords are simulated customers' change records (one per customer, its events in time
// order), with profile ids c0000, c0001, ….
func simRecords(t testing.TB, cs []predict.Customer) []change.Record {
	t.Helper()
	out := make([]change.Record, 0, len(cs))
	for i, c := range cs {
		pid := fmt.Sprintf("c%04d", i)
		evs := make([]tracking.Message, 0, len(c.Events))
		for k, e := range c.Events {
			props, err := json.Marshal(e.Properties)
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, track(fmt.Sprintf("%s-%d", pid, k), e.Name, e.Time, string(props)))
		}
		out = append(out, chg(pid, 1, `{}`, evs...))
	}
	return out
}

// sendAll sends records through the handler, batch records a time.
func (e *env) sendAll(t *testing.T, recs []change.Record, batch int) {
	t.Helper()
	for lo := 0; lo < len(recs); lo += batch {
		if resp := e.send(t, recs[lo:min(lo+batch, len(recs))]...); len(resp.BatchItemFailures) > 0 {
			t.Fatalf("batch failures: %v", resp.BatchItemFailures)
		}
	}
}

// TestPredictionProfileMatchesSimulator: the features the stage keeps from a simulated
// customer's events, applied through the handler, are exactly the simulator's Profile (what
// training and the models expect): goal days, activity days, spend, orders, returns and
// products, all time and within the horizon.
func TestPredictionProfileMatchesSimulator(t *testing.T) {
	cfg := predict.SimConfig{Seed: 3, Customers: 150}
	cs := predict.Simulate(cfg)
	e := newEnv(t)
	e.clock.Add(cfg.Now().Sub(e.clock.Now()))
	now := e.clock.Now()
	kinds := map[string]string{"buy": KindPurchaseLikelihood, "churn": KindChurnLikelihood, "ltv": KindPredictedLTV,
		"ret": KindReturnLikelihood, "nbp": KindNextBestProduct}
	for key, kind := range kinds {
		_, err := e.sv.SaveTrait(bg, ComputedTrait{Name: key, Key: key, Kind: kind})
		must(t, err)
	}
	must(t, e.h.RunBackfills(bg))
	e.sendAll(t, simRecords(t, cs), 25)
	cat, err := e.h.catalog(bg)
	must(t, err)
	for i := range cs {
		l := load(t, e.st, fmt.Sprintf("c%04d", i))
		now := now.Add(time.Duration(i%3) * 5 * time.Hour) // at midnight, and within a day
		for key, kind := range kinds {
			got := cat.PredictionProfile(l.State, cat.Trait(key), now)
			want := cs[i].Profile(now, 30)
			if kind == KindChurnLikelihood {
				want = cs[i].ChurnProfile(now, 30)
			}
			if !sameFeatures(kind, got, want) {
				t.Fatalf("customer %d, %s:\n got  %+v\n want %+v", i, kind, got, want)
			}
		}
	}
}

// sameFeatures compares the features a kind reads (sums to a cent).
func sameFeatures(kind string, a, b predict.Profile) bool {
	if a.Goal.Count != b.Goal.Count || a.Goal.First != b.Goal.First || !slices.Equal(a.Goal.Recent, b.Goal.Recent) {
		return false
	}
	spend := func(x, y predict.Spend) bool { return x.Count == y.Count && math.Abs(x.Sum-y.Sum) < 0.01 }
	switch kind {
	case KindPredictedLTV:
		return spend(a.Spend, b.Spend) && spend(a.RecentSpend, b.RecentSpend)
	case KindReturnLikelihood:
		return a.Orders == b.Orders && a.Returns == b.Returns && a.RecentOrders == b.RecentOrders && a.RecentReturns == b.RecentReturns
	case KindNextBestProduct:
		return slices.Equal(a.Viewed, b.Viewed) && slices.Equal(a.Bought, b.Bought) && slices.Equal(a.RecentBought, b.RecentBought)
	}
	return true
}
