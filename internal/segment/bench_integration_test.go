//go:build integration

package segment

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// BenchmarkHandleChanges pushes change records through Handler.Handle against DynamoDB Local
// and kinesis-mock, with the definitions `make bench` creates (two 30-day computed traits, three
// audiences), and reports request units per change by AWS's rules (ruMeter), DynamoDB calls
// per change and handler time per change. Each change carries one event (a third of them
// "Order Completed", the others "Product Viewed"; every tenth one new traits); a Kinesis batch
// holds one change each of batchProfiles profiles. history is the number of events each profile
// has before the measurement.
//
//	go test -tags integration -run '^$' -bench HandleChanges -benchtime 200x ./internal/segment
func BenchmarkHandleChanges(b *testing.B) {
	for _, history := range []int{10, 100} {
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) { benchHandle(b, history, false) })
	}
	// privacy: every change carries the profile's consent and the handler checks an erased-
	// profile list (in memory, as blocklist.Checker is), to show they cost no request unit.
	b.Run("history=10/privacy", func(b *testing.B) { benchHandle(b, 10, true) })
}

const batchProfiles = 10

func benchHandle(b *testing.B, history int, priv bool) {
	c := testenv.Clients(b)
	m := &ruMeter{Client: c.DynamoDB}
	st := NewStore(m, testenv.Table(b, c.DynamoDB))
	name := testenv.Stream(b, c.Kinesis, "activations", 1)
	clk := &clock{t: t0}
	pub := &timedPub{p: stream.NewPublisher(c.Kinesis, name)}
	opt := Options{Clock: clk.Now}
	if priv {
		opt.Erased = erasedSet{"bench-erased": true}
	}
	h := NewHandler(st, pub, opt)
	sv := NewService(st, clk.Now)
	ctx := context.Background()
	benchDefinitions(b, sv)
	mustB(b, h.RunBackfills(ctx))

	wl := &benchLoad{consent: priv}
	// History: one change record per profile carrying `history` events, in the past.
	var warm []change.Record
	for p := range batchProfiles {
		var evs []tracking.Message
		for i := range history {
			evs = append(evs, wl.event(p, t0.Add(-time.Duration(history-i)*time.Hour)))
		}
		warm = append(warm, wl.change(p, evs...))
	}
	if resp, err := h.Handle(ctx, wl.batch(warm)); err != nil || len(resp.BatchItemFailures) != 0 {
		b.Fatalf("history: %v %v", err, resp.BatchItemFailures)
	}

	before, puts := m.usage(), pub.n.Load()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clk.Add(time.Minute)
		recs := make([]change.Record, 0, batchProfiles)
		for p := range batchProfiles {
			recs = append(recs, wl.change(p, wl.event(p, clk.Now())))
		}
		resp, err := h.Handle(ctx, wl.batch(recs))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("batch %d: %v %v", i, err, resp.BatchItemFailures)
		}
	}
	b.StopTimer()
	u, changes := m.usage(), float64(b.N*batchProfiles)
	b.ReportMetric((u.WRU-before.WRU)/changes, "WRU/change")
	b.ReportMetric((u.GSIWRU-before.GSIWRU)/changes, "GSI-WRU/change")
	b.ReportMetric((u.RRU-before.RRU)/changes, "RRU/change")
	b.ReportMetric(float64(u.Calls-before.Calls)/changes, "calls/change")
	b.ReportMetric(float64(u.TxCalls-before.TxCalls)/changes, "tx/change")
	if n := u.Puts - before.Puts; n > 0 {
		b.ReportMetric(float64(u.PutBytes-before.PutBytes)/float64(n), "bytes/put")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/changes, "ms/change")
	b.ReportMetric(float64(pub.d.Load())/1e6/float64(pub.n.Load()), "ms/put")
	b.ReportMetric(float64(pub.n.Load()-puts)/changes, "puts/change")
	b.ReportMetric(float64(m.d.Load())/1e6/float64(u.Calls), "ms/dbcall")
}

func mustB(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// benchDefinitions are those internal/bench creates.
func benchDefinitions(b *testing.B, sv *Service) {
	ctx := context.Background()
	w := Window{Days: 30}
	for _, t := range []ComputedTrait{
		{Key: "order_count", Name: "Order count", Kind: KindCount, Event: EventFilter{Name: "Order Completed"}, Window: w},
		{Key: "total_revenue", Name: "Total revenue", Kind: KindSum, Event: EventFilter{Name: "Order Completed"}, Property: "revenue", Window: w},
	} {
		if _, err := sv.SaveTrait(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	for _, a := range []*Audience{
		aud(b, "", "Buyers", `{"event":{"name":"Order Completed","count":{"op":"at_least","n":1},"within":{"days":30}}}`),
		aud(b, "", "Repeat buyers", `{"event":{"name":"Order Completed","count":{"op":"at_least","n":3},"within":{"days":30}}}`),
		aud(b, "", "Big spenders", `{"computedTrait":{"key":"total_revenue","op":"gte","value":300}}`),
	} {
		if _, err := sv.SaveAudience(ctx, *a); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLoad generates change records as the identity stage emits them.
type benchLoad struct {
	consent bool // every change carries consent preferences
	n       int
	ver     map[int]int64
	stamps  map[int]int64 // events stamped per profile
	seq     int
}

func (l *benchLoad) event(p int, at time.Time) tracking.Message {
	l.n++
	id := fmt.Sprintf("m%d", l.n)
	if l.n%3 == 0 {
		return tracking.Message{Type: tracking.TypeTrack, MessageID: id, Event: "Order Completed", Timestamp: at, ReceivedAt: at,
			UserID: fmt.Sprintf("user-%d", p), Properties: json.RawMessage(fmt.Sprintf(`{"revenue":%d,"product":"shoes"}`, 10+l.n%50))}
	}
	return tracking.Message{Type: tracking.TypeTrack, MessageID: id, Event: "Product Viewed", Timestamp: at, ReceivedAt: at,
		UserID: fmt.Sprintf("user-%d", p), Properties: json.RawMessage(`{"product":"shoes","price":40}`)}
}

func (l *benchLoad) change(p int, evs ...tracking.Message) change.Record {
	if l.ver == nil {
		l.ver, l.stamps = map[int]int64{}, map[int]int64{}
	}
	l.ver[p]++
	pid := fmt.Sprintf("bench-%d", p)
	r := change.Record{ProfileID: pid, Version: l.ver[p], Events: evs, Part: 1, Parts: 1,
		Identifiers: []change.Identifier{{Type: "user_id", Value: fmt.Sprintf("user-%d", p)}, {Type: "email", Value: fmt.Sprintf("u%d@example.com", p)}}}
	for range evs {
		l.stamps[p]++
		r.Stamps = append(r.Stamps, change.Stamp{Profile: pid, Seq: l.stamps[p]})
	}
	if l.consent {
		r.Consent = &consent.Profile{Categories: map[string]consent.Category{
			"advertising": {Granted: l.ver[p]%2 == 0, At: t0}, "analytics": {Granted: true, At: t0}}}
	}
	if l.ver[p]%10 == 1 {
		r.Traits = map[string]json.RawMessage{"plan": json.RawMessage(fmt.Sprintf(`"plan-%d"`, l.ver[p]/10)), "name": json.RawMessage(`"Ada"`)}
	}
	return r
}

func (l *benchLoad) batch(recs []change.Record) events.KinesisEvent {
	var ev events.KinesisEvent
	for _, r := range recs {
		data, _ := json.Marshal(r)
		l.seq++
		var kr events.KinesisEventRecord
		kr.Kinesis.Data, kr.Kinesis.SequenceNumber, kr.Kinesis.PartitionKey = data, fmt.Sprint(l.seq), r.ProfileID
		ev.Records = append(ev.Records, kr)
	}
	return ev
}

type timedPub struct {
	p    Publisher
	n, d atomic.Int64
}

func (t *timedPub) Put(ctx context.Context, recs []stream.Record) error {
	start := time.Now()
	defer func() { t.n.Add(1); t.d.Add(int64(time.Since(start))) }()
	return t.p.Put(ctx, recs)
}
