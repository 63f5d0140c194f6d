package segment

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEvaluatePerChange measures one change (a new "Order Completed" event) on a profile
// with 50 past events (kept as accumulators), with 10, 100 and 1,000 defined audiences of which only 3 reference what
// changed. With the index, the cost should stay flat as irrelevant audiences are added.
func BenchmarkEvaluatePerChange(b *testing.B) {
	for _, total := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("audiences=%d", total), func(b *testing.B) {
			traits := []string{
				`{"name":"orders 30d","kind":"event_count","event":{"name":"Order Completed"},"window":{"days":30}}`,
				`{"name":"ltv","kind":"lifetime_value"}`,
			}
			auds := []*Audience{
				aud(b, "r1", "Recent buyers", `{"event":{"name":"Order Completed","within":{"days":30}}}`),
				aud(b, "r2", "Big", `{"computedTrait":{"key":"ltv","op":"gte","value":500}}`),
				aud(b, "r3", "Loyal", `{"and":[{"audience":{"id":"r1"}},{"computedTrait":{"key":"orders_30d","op":"gte","value":3}}]}`),
			}
			for i := len(auds); i < total; i++ {
				cond := fmt.Sprintf(`{"event":{"name":"Other %d","count":{"op":"at_least","n":2},"within":{"days":7}}}`, i)
				if i%2 == 1 {
					cond = fmt.Sprintf(`{"and":[{"trait":{"key":"t%d","op":"eq","value":"x"}},{"not":{"event":{"name":"Other %d"}}}]}`, i, i)
				}
				auds = append(auds, aud(b, fmt.Sprintf("x%d", i), fmt.Sprintf("Irrelevant %d", i), cond))
			}
			cat := catalog(b, traits, auds...)
			st := NewState("p")
			st.Ver = 1
			for i := range 50 {
				name := "Page Viewed"
				if i%5 == 0 {
					name = "Order Completed"
				}
				cat.addEvents(st, []Event{ev(fmt.Sprintf("old%d", i), name, time.Duration(50-i)*time.Hour, `{"revenue":20}`)}, t0)
			}
			cat.Evaluate(st, Input{All: true}, t0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				now := t0.Add(time.Duration(i) * time.Second)
				added := cat.addEvents(st, []Event{{ID: fmt.Sprintf("n%d", i), Name: "Order Completed", T: now, P: []byte(`{"revenue":20}`)}}, now)
				res := cat.Evaluate(st, Input{NewEvents: added}, now)
				if res.Evaluated > 3 {
					b.Fatalf("evaluated %d audiences, want at most the 3 relevant ones", res.Evaluated)
				}
			}
		})
	}
}
