//go:build integration

package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/blocklist"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// benchTraffic imitates the benchmark's workload (internal/bench.Generate, which this package
// cannot import): persons with 1–3 devices (25% visitors who never sign in), a few anonymous
// pages per device, an identify per signed-in device, then Pareto-distributed activity (at
// least 4, at most 400 events) of pages and track events as the user; messages in event-time
// order across persons with ~2% redelivered some messages later. Messages carry the context
// an analytics library sends.
func benchTraffic(r *rand.Rand, persons int) []tracking.Record {
	type timed struct {
		rec tracking.Record
		at  time.Duration
	}
	var all []timed
	seq := 0
	ctxJSON := json.RawMessage(`{"library":{"name":"analytics-go","version":"3.3.0"},"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"}`)
	for i := 0; i < persons; i++ {
		visitor := r.Float64() < 0.25
		uid := ""
		devices := []string{fmt.Sprintf("anon-%05d-0", i)}
		if !visitor {
			uid = fmt.Sprintf("user-%05d", i)
			for d := 1; d < 1+r.IntN(3); d++ {
				devices = append(devices, fmt.Sprintf("anon-%05d-%d", i, d))
			}
		}
		at := time.Duration(r.Int64N(int64(36 * time.Hour)))
		n := max(4, int(math.Min(400, 6/math.Pow(1-r.Float64(), 1/1.3))))
		step := (72*time.Hour - at) / time.Duration(n+len(devices)+1)
		add := func(m tracking.Message) {
			seq++
			at += time.Duration(r.Int64N(int64(step))) + time.Second
			m.MessageID, m.Context = fmt.Sprintf("bench-%07d", seq), ctxJSON
			m.Timestamp = t0.Add(at)
			m.ReceivedAt = m.Timestamp
			all = append(all, timed{tracking.Record{SourceID: "src-bench", Message: m}, at})
		}
		for _, d := range devices {
			for k := 0; k < 1+r.IntN(max(1, n/(3*len(devices)))); k++ {
				add(tracking.Message{Type: "page", AnonymousID: d, Name: "Home"})
			}
			if uid != "" {
				add(tracking.Message{Type: "identify", UserID: uid, AnonymousID: d,
					Traits: json.RawMessage(fmt.Sprintf(`{"email":"person%05d@example.com","name":"Person %d","plan":"pro"}`, i, i))})
			}
		}
		for k := 0; k < n; k++ {
			d := devices[r.IntN(len(devices))]
			switch x := r.Float64(); {
			case x < 0.45:
				add(tracking.Message{Type: "page", UserID: uid, AnonymousID: d, Name: "Pricing"})
			case x < 0.9:
				add(tracking.Message{Type: "track", UserID: uid, AnonymousID: d, Event: "Product Viewed", Properties: json.RawMessage(`{"product":"shoes"}`)})
			default:
				add(tracking.Message{Type: "track", UserID: uid, AnonymousID: d, Event: "Order Completed", Properties: json.RawMessage(fmt.Sprintf(`{"product":"hat","revenue":%d}`, 10+r.IntN(191)))})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	var out, pending []tracking.Record
	for i, t := range all {
		out = append(out, t.rec)
		if r.Float64() < 0.02 {
			pending = append(pending, t.rec)
		}
		if len(pending) > 0 && (i%37 == 0 || i == len(all)-1) {
			out = append(out, pending...)
			pending = nil
		}
	}
	return out
}

// benchSuppressions is the suppression list as deployed: blocklist's checker on the metered
// table, holding one unrelated person, so its reads are counted with the stage's.
func benchSuppressions(t testing.TB, e *env, meter *ruMeter) Suppressions {
	t.Helper()
	h := blocklist.NewHasher([]byte("bench-privacy-key-0123456789"))
	list := blocklist.NewStore(meter, e.data.(dynamoData).table, h, blocklist.Options{})
	if err := list.Suppress(context.Background(), "bench", []string{"email:someone@example.com"}, []string{"email:s…@e….com"}); err != nil {
		t.Fatal(err)
	}
	return blocklist.NewChecker(list, h, blocklist.CheckerOptions{})
}

// TestRequestUnitsBenchTraffic measures request units and handler time per delivered event on
// benchTraffic, through one Handler (a warm Lambda) in Kinesis batches of 1–5 records, and logs
// the units per event by item kind.
func TestRequestUnitsBenchTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	r := rand.New(rand.NewPCG(3, 3))
	d := benchTraffic(r, 60)
	e, meter := newMeteredEnv(t)
	sup := benchSuppressions(t, e, meter)
	base := meter.usage()
	h := NewHandler(HandlerConfig{Processor: e.proc, Store: e.store, Changes: &memPublisher{}, DeadLetters: &recordingDeadLetters{}, Suppressions: sup})
	start := time.Now()
	for s := 0; s < len(d); {
		n := min(1+r.IntN(5), len(d)-s)
		resp, err := h.Handle(context.Background(), kinesisEvent(t, anys(d[s:s+n])...))
		if err != nil || len(resp.BatchItemFailures) > 0 {
			t.Fatalf("batch at %d: %v %+v", s, err, resp.BatchItemFailures)
		}
		s += n
	}
	elapsed := time.Since(start)
	rules, _ := Compile(Rules{})
	g := snapshot(t, e)
	checkInvariants(t, g, rules)
	checkStampsOf(t, g, true) // one warm Lambda: every redelivery is known, no stamp is void
	u := meter.usage()
	u.ModelReadUnits -= base.ModelReadUnits // the list's set-up is not the stage's
	u.ModelWriteUnits -= base.ModelWriteUnits
	u.Requests -= base.Requests
	delete(u.WriteByKind, "blocklist")
	n := float64(len(d))
	t.Logf("bench traffic: %d events, per event: AWS model %.2f RRU + %.2f WRU (%.2f WRU without the GSI); %.2f requests; %.2f ms handler time",
		len(d), u.ModelReadUnits/n, u.ModelWriteUnits/n, (u.ModelWriteUnits-u.WriteByKind["gsi"])/n, float64(u.Requests)/n, float64(elapsed.Microseconds())/1000/n)
	t.Logf("by kind, per event: %s", u.breakdown(n))
}

// BenchmarkHandlerBenchTraffic runs benchTraffic through one warm Handler in Kinesis batches of
// 1–5 records against DynamoDB Local and reports handler time and request units (AWS-rule
// model, GSI writes included) per delivered event. Profile it with -cpuprofile.
func BenchmarkHandlerBenchTraffic(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	d := benchTraffic(r, 60)
	var batches [][]any
	for s := 0; s < len(d); {
		n := min(1+r.IntN(5), len(d)-s)
		batches = append(batches, anys(d[s:s+n]))
		s += n
	}
	var elapsed time.Duration
	var u usage
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e, meter := newMeteredEnv(b)
		sup := benchSuppressions(b, e, meter)
		base := meter.usage()
		h := NewHandler(HandlerConfig{Processor: e.proc, Store: e.store, Changes: &memPublisher{}, DeadLetters: &recordingDeadLetters{}, Suppressions: sup})
		evs := make([]events.KinesisEvent, len(batches))
		for k, bt := range batches {
			evs[k] = kinesisEvent(nil, bt...)
		}
		b.StartTimer()
		start := time.Now()
		for _, ev := range evs {
			if resp, err := h.Handle(context.Background(), ev); err != nil || len(resp.BatchItemFailures) > 0 {
				b.Fatalf("batch: %v %+v", err, resp.BatchItemFailures)
			}
		}
		elapsed += time.Since(start)
		u = meter.usage()
		u.ModelReadUnits -= base.ModelReadUnits
		u.ModelWriteUnits -= base.ModelWriteUnits
	}
	n := float64(len(d))
	b.ReportMetric(float64(elapsed.Nanoseconds())/n/float64(b.N), "ns/event")
	b.ReportMetric(u.ModelWriteUnits/n, "WRU/event")
	b.ReportMetric(u.ModelReadUnits/n, "RRU/event")
}
