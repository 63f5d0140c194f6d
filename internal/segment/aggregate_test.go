package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/change"
)

// accOf is the accumulator of spec fed with events at now.
func accOf(s *aggSpec, evs []Event, now time.Time) *Acc {
	a := &Acc{}
	for i := range evs {
		if s.matches(&evs[i]) {
			a.add(s, &evs[i], now)
		}
	}
	return a
}

// computeEvents is a computed trait's value at now after the events.
func computeEvents(c *ComputedTrait, evs []Event, now time.Time) any {
	s := traitSpec(c)
	return Compute(c, accOf(s, evs, now).at(s, now), now)
}

// withAggs builds the accumulators of a condition's event nodes from the state's legacy events
// (as the upgrade of a stored event log does).
func withAggs(t testing.TB, st *State, cond *Condition, now time.Time) *State {
	t.Helper()
	c := &Catalog{specs: map[string]*aggSpec{}}
	cond.Walk(func(n *Condition) {
		if n.Event != nil {
			s := condSpec(n.Event)
			c.specs[s.sig] = s
		}
	})
	cp := *st
	cp.Aggs = nil
	if _, err := c.ensureAggs(context.Background(), &cp, nil, now); err != nil {
		t.Fatal(err)
	}
	return &cp
}

// orderRecs are n "Order Completed" events on p1 spread evenly over span before end, each with a
// revenue in cents 1..99999 (so the exact sum is known in integer cents).
func orderRecs(n int, span time.Duration, end time.Time) ([]change.Record, int64) {
	var recs []change.Record
	var cents int64
	for i := range n {
		c := int64(1 + (i*7919)%99999)
		cents += c
		at := end.Add(-span + time.Duration(i)*(span/time.Duration(n)))
		props := fmt.Sprintf(`{"revenue":%d.%02d}`, c/100, c%100)
		recs = append(recs, chg("p1", int64(i+1), `{}`, track(fmt.Sprintf("o%d", i), "Order Completed", at, props)))
	}
	return recs, cents
}

// TestAllTimeSumExactOverTwoYears: 5,000 orders over two years give an exact all-time sum and
// count (the event log kept 2,000 events / 400 days, so it counted only part of them).
func TestAllTimeSumExactOverTwoYears(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, ct := range []ComputedTrait{
		{Name: "Spend", Kind: KindSum, Event: EventFilter{Name: "Order Completed"}, Property: "revenue"},
		{Name: "Orders", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}},
		{Name: "First order", Kind: KindFirst, Event: EventFilter{Name: "Order Completed"}},
	} {
		if _, err := e.sv.SaveTrait(ctx, ct); err != nil {
			t.Fatal(err)
		}
	}
	recs, cents := orderRecs(5000, 2*365*day, t0)
	for i := 0; i < len(recs); i += 250 {
		if resp := e.send(t, recs[i:i+250]...); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("batch %d: %+v", i, resp.BatchItemFailures)
		}
	}
	pv, err := e.sv.Profile(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d.%02d", cents/100, cents%100)
	if got := string(pv.ComputedTraits["spend"]); got != strings.TrimRight(strings.TrimRight(want, "0"), ".") {
		t.Errorf("spend %s, want %s", got, want)
	}
	if got := string(pv.ComputedTraits["orders"]); got != "5000" {
		t.Errorf("orders %s, want 5000", got)
	}
	if got, want := string(pv.ComputedTraits["first_order"]), `"`+t0.Add(-2*365*day).Format(time.RFC3339Nano)+`"`; got != want {
		t.Errorf("first order %s, want %s", got, want)
	}
}

// TestWindowEdges: a windowed count and sum count an event until the end of its bucket plus
// the window (a UTC day for windows in days, an hour for windows with hours), exactly: in just
// before that instant, out at it, and NextChange is that instant.
func TestWindowEdges(t *testing.T) {
	for _, tc := range []struct {
		window string
		edge   time.Time // of an event at t0 (12:00 UTC): its bucket's end plus the window
	}{
		{`{"days":7}`, t0.Truncate(day).Add(day + 7*day)},
		{`{"hours":5}`, t0.Truncate(time.Hour).Add(time.Hour + 5*time.Hour)},
		{`{"days":1,"hours":1}`, t0.Truncate(time.Hour).Add(time.Hour + 25*time.Hour)},
	} {
		t.Run(tc.window, func(t *testing.T) {
			cat := catalog(t, []string{
				`{"name":"n","kind":"event_count","event":{"name":"Order Completed"},"window":` + tc.window + `}`,
				`{"name":"s","kind":"sum","event":{"name":"Order Completed"},"property":"revenue","window":` + tc.window + `}`,
			}, aud(t, "a", "A", `{"event":{"name":"Order Completed","within":`+tc.window+`}}`))
			st := NewState("p1")
			in := Input{NewEvents: cat.addEvents(st, []Event{ev("m1", "Order Completed", -30*time.Minute, `{"revenue":2.5}`)}, t0)}
			cat.Evaluate(st, in, t0)
			st.Ver = 1
			if !st.NextAt.Equal(tc.edge) {
				t.Fatalf("next change %v, want %v", st.NextAt, tc.edge)
			}
			cat.Evaluate(st, Input{All: true}, tc.edge.Add(-time.Nanosecond))
			if string(st.Computed["n"]) != "1" || string(st.Computed["s"]) != "2.5" || !st.Members["a"].In {
				t.Fatalf("just inside: %s %s %+v", st.Computed["n"], st.Computed["s"], st.Members["a"])
			}
			cat.Evaluate(st, Input{All: true}, tc.edge)
			if string(st.Computed["n"]) != "0" || st.Computed["s"] != nil || st.Members["a"].In || !st.NextAt.IsZero() {
				t.Fatalf("at the edge: %s %s %+v next %v", st.Computed["n"], st.Computed["s"], st.Members["a"], st.NextAt)
			}
			// An event already out of its window when it arrives counts nothing.
			old := ev("m0", "Order Completed", tc.edge.Sub(t0)+time.Hour, `{"revenue":1}`)
			later := tc.edge.Add(2 * time.Hour)
			cat.Evaluate(st, Input{NewEvents: cat.addEvents(st, []Event{old}, later)}, later)
			if string(st.Computed["n"]) != "0" {
				t.Fatalf("late event: %s", st.Computed["n"])
			}
		})
	}
}

// allTimeTraits are all-time computed traits of every kind over a bounded set of values.
var allTimeTraits = []string{
	`{"name":"orders","kind":"event_count","event":{"name":"Order Completed"}}`,
	`{"name":"spend","kind":"sum","event":{"name":"Order Completed"},"property":"revenue"}`,
	`{"name":"avg","kind":"avg","event":{"name":"Order Completed"},"property":"revenue"}`,
	`{"name":"lo","kind":"min","event":{"name":"Order Completed"},"property":"revenue"}`,
	`{"name":"hi","kind":"max","event":{"name":"Order Completed"},"property":"revenue"}`,
	`{"name":"fav","kind":"most_frequent","event":{"name":"*"},"property":"category"}`,
	`{"name":"cats","kind":"unique_list","event":{"name":"*"},"property":"category"}`,
	`{"name":"ncats","kind":"unique_count","event":{"name":"*"},"property":"category"}`,
	`{"name":"first","kind":"first","event":{"name":"Order Completed"},"property":"category"}`,
	`{"name":"last","kind":"last","event":{"name":"Order Completed"},"property":"category"}`,
	`{"name":"r","kind":"rfm_recency"}`,
	`{"name":"f","kind":"rfm_frequency"}`,
	`{"name":"m","kind":"rfm_monetary"}`,
	`{"name":"ltv","kind":"lifetime_value"}`,
}

// stateAfter is a profile's state after n stamped events (orders and views) over two years.
func stateAfter(t testing.TB, cat *Catalog, n int) *State {
	st := NewState("p1")
	cats := []string{"shoes", "hats", "socks", "bags", "belts"}
	for i := range n {
		at := t0.Add(-2*365*day + time.Duration(i)*(2*365*day/time.Duration(n)))
		name := "Page Viewed"
		if i%2 == 0 {
			name = "Order Completed"
		}
		e := Event{ID: fmt.Sprintf("m%d", i), Type: "track", Name: name, T: at,
			P:     json.RawMessage(fmt.Sprintf(`{"revenue":%d,"category":%q}`, 10+i%50, cats[i%len(cats)])),
			Stamp: &change.Stamp{Profile: "p1", Seq: int64(i + 1)}}
		cat.addEvents(st, []Event{e}, t0)
	}
	cat.Evaluate(st, Input{All: true}, t0)
	return st
}

// TestStateSizeIndependentOfHistory: with all-time traits of every kind, the encoded state after
// 10, 100, 1,000 and 10,000 events is the same size within a few bytes.
func TestStateSizeIndependentOfHistory(t *testing.T) {
	cat := catalog(t, allTimeTraits)
	sizes := map[int]int{}
	for _, n := range []int{10, 100, 1000, 10000} {
		b, err := encodeState(stateAfter(t, cat, n))
		if err != nil {
			t.Fatal(err)
		}
		sizes[n] = len(b)
	}
	t.Logf("encoded state bytes by events: %v", sizes)
	if d := sizes[10000] - sizes[10]; d > 24 || d < -24 {
		t.Fatalf("state grew with history: %v", sizes)
	}
}

// BenchmarkStateBytesByHistory reports the encoded state's size after 10 … 10,000 events.
func BenchmarkStateBytesByHistory(b *testing.B) {
	cat := catalog(b, allTimeTraits)
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			st := stateAfter(b, cat, n)
			var size int
			for b.Loop() {
				enc, err := encodeState(st)
				if err != nil {
					b.Fatal(err)
				}
				size = len(enc)
			}
			b.ReportMetric(float64(size), "bytes/state")
		})
	}
}

// TestManyDefinitionsStayUnderLimit: 40 computed traits of every kind (all time and windowed)
// and 40 audiences, over 20,000 events with 5,000 distinct values in two years, keep the state
// well under MaxStateBytes.
func TestManyDefinitionsStayUnderLimit(t *testing.T) {
	var traits []string
	kinds := []string{"sum", "most_frequent", "unique_list", "unique_count", "first", "last", "avg", "max"}
	for i := range 40 {
		w := []string{``, `,"window":{"days":30}`, `,"window":{"days":90}`, `,"window":{"hours":48}`}[i%4]
		traits = append(traits, fmt.Sprintf(`{"name":"t%d","kind":%q,"event":{"name":"E%d"},"property":"v"%s}`, i, kinds[i%len(kinds)], i%5, w))
	}
	var auds []*Audience
	for i := range 40 {
		auds = append(auds, aud(t, fmt.Sprintf("a%d", i), fmt.Sprintf("A%d", i), fmt.Sprintf(`{"event":{"name":"E%d","within":{"days":%d}}}`, i%5, 1+i)))
	}
	cat := catalog(t, traits, auds...)
	st := NewState("p1")
	const n = 20000
	now := t0
	for i := range n {
		now = t0.Add(-2*365*day + time.Duration(i)*(2*365*day/n))
		e := Event{ID: fmt.Sprintf("m%d", i), Type: "track", Name: fmt.Sprintf("E%d", i%5), T: now,
			P:     json.RawMessage(fmt.Sprintf(`{"v":"value-%d"}`, (i*7919)%5000)),
			Stamp: &change.Stamp{Profile: "p1", Seq: int64(i + 1)}}
		cat.addEvents(st, []Event{e}, now)
	}
	cat.Evaluate(st, Input{All: true}, now)
	b, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("40 traits, 40 audiences, %d events: state %d bytes (limit %d)", n, len(b), MaxStateBytes)
	if len(b) > MaxStateBytes/2 {
		t.Fatalf("state of %d bytes, want at most half of %d", len(b), MaxStateBytes)
	}
}
