//go:build integration

package identity

import (
	"context"
	"fmt"
	"testing"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// BenchmarkProcessBatch100 runs batches of 100 new events through the processor against
// DynamoDB Local: 10 users per batch, each with two devices browsing anonymously, signing in on
// both (a merge), then tracking as the user. Reports time and request units per event (AWS-rule
// model and DynamoDB Local's reported figures; see usage).
func BenchmarkProcessBatch100(b *testing.B) {
	e, meter := newMeteredEnv(b)
	batch := func(i int) []tracking.Record {
		recs := make([]tracking.Record, 0, 100)
		for u := 0; u < 10; u++ {
			uid := fmt.Sprintf("bu-%d-%d", i, u)
			a0, a1 := uid+"-d0", uid+"-d1"
			id := func(k int) string { return fmt.Sprintf("bm-%d-%d-%d", i, u, k) }
			k := 0
			add := func(typ string, f map[string]string) {
				recs = append(recs, rec(typ, id(k), k, f))
				k++
			}
			for j := 0; j < 3; j++ {
				add("page", map[string]string{"aid": a0})
				add("page", map[string]string{"aid": a1})
			}
			add("identify", map[string]string{"uid": uid, "aid": a0, "traits": fmt.Sprintf(`{"email":"%s@example.com","plan":"pro"}`, uid)})
			add("identify", map[string]string{"uid": uid, "aid": a1})
			add("track", map[string]string{"uid": uid, "aid": a0, "event": "Product Viewed"})
			add("track", map[string]string{"uid": uid, "aid": a1, "event": "Order Completed"})
		}
		return recs
	}
	ctx := context.Background()
	_, _, _ = e.proc.Process(ctx, batch(-1)) // warm the rules cache and connections
	before := meter.usage()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		recs := batch(i)
		b.StartTimer()
		res, _, err := e.proc.Process(ctx, recs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Outcome == Failed {
				b.Fatalf("record failed: %v", r.Err)
			}
		}
	}
	b.StopTimer()
	u := meter.usage()
	n := float64(b.N * 100)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/event")
	b.ReportMetric((u.ModelWriteUnits-before.ModelWriteUnits)/n, "WRU/event")
	b.ReportMetric((u.ModelReadUnits-before.ModelReadUnits)/n, "RRU/event")
	b.ReportMetric((u.WriteUnits-before.WriteUnits)/n, "local-WRU/event")
	b.ReportMetric((u.ReadUnits-before.ReadUnits)/n, "local-RRU/event")
}
