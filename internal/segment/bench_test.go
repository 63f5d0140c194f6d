package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/change"
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

// BenchmarkChangeByHistory measures one change (a new order) through the handler on a profile
// with 10 … 10,000 past events, and reports the stored state's size and the write request units
// it costs (a DynamoDB write costs one WRU per started KB of the item).
func BenchmarkChangeByHistory(b *testing.B) {
	for _, past := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("events=%d", past), func(b *testing.B) {
			ctx := context.Background()
			st := NewMemStore()
			clk := &clock{t: t0}
			h := NewHandler(st, &MemPublisher{}, Options{Clock: clk.Now, DefCacheTTL: time.Hour})
			sv := NewService(st, clk.Now)
			for _, ct := range []ComputedTrait{
				{Name: "LTV", Kind: KindLifetimeValue},
				{Name: "Orders 30d", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}, Window: Window{Days: 30}},
				{Name: "Top category", Kind: KindMostFrequent, Event: EventFilter{Name: "Order Completed"}, Property: "category"},
			} {
				if _, err := sv.SaveTrait(ctx, ct); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := sv.SaveAudience(ctx, *aud(b, "", "Recent buyers", `{"event":{"name":"Order Completed","within":{"days":30}}}`)); err != nil {
				b.Fatal(err)
			}
			e := &env{h: h, hist: NewMemHistory(), stamps: map[string]change.Stamp{}, seqs: map[string]int64{}}
			ver := int64(0)
			order := func(i int, at time.Time) change.Record {
				ver++
				return chg("p1", ver, "", track(fmt.Sprintf("o%d", i), "Order Completed", at, fmt.Sprintf(`{"revenue":%d,"category":"c%d","sku":"sku-%d"}`, 10+i%90, i%7, i)))
			}
			for i := 0; i < past; i += 500 {
				var recs []change.Record
				for j := i; j < min(past, i+500); j++ {
					recs = append(recs, order(j, t0.Add(-2*365*day+time.Duration(j)*(2*365*day/time.Duration(past)))))
				}
				e.sendB(b, recs...)
			}
			i := past
			for b.Loop() {
				clk.Add(time.Second)
				e.sendB(b, order(i, clk.Now()))
				i++
			}
			l, err := st.Load(ctx, "p1", true)
			if err != nil {
				b.Fatal(err)
			}
			enc, err := encodeState(l.State)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(enc)), "state-bytes")
			b.ReportMetric(float64((len(enc)+1023)/1024), "state-WRU/change")
		})
	}
}

func (e *env) sendB(b *testing.B, recs ...change.Record) {
	var ev events.KinesisEvent
	for _, r := range recs {
		e.stampAll(&r)
		data, _ := json.Marshal(r)
		e.seq++
		var kr events.KinesisEventRecord
		kr.Kinesis.Data, kr.Kinesis.SequenceNumber = data, fmt.Sprint(e.seq)
		ev.Records = append(ev.Records, kr)
	}
	resp, err := e.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		b.Fatalf("handle: %v %+v", err, resp.BatchItemFailures)
	}
}
