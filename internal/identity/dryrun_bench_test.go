package identity_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/serverless-cdp/cdp/internal/identity"
	"github.com/serverless-cdp/cdp/internal/idrules"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// BenchmarkDryRun: a dry run of 8,400 records (the three kinds of people of dryHistory) under
// email limit 1. Reports ms per 1,000 events and the live heap the two in-memory runs hold per
// 1,000 events (measured after a GC when the history's last record is read: what bounds
// maxEvents in a Lambda). A dry run makes no DynamoDB request but the read of the rules in
// force: 0 RU per event.
func BenchmarkDryRun(b *testing.B) {
	h := dryHistory{a: 1200, b: 1200, c: 1200}
	recs := h.records()
	var base, live uint64
	hist := func(yield func(tracking.Record) error) error {
		for i, r := range recs {
			if i == len(recs)-1 {
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				live = ms.HeapAlloc - min(ms.HeapAlloc, base)
			}
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base = ms.HeapAlloc
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := identity.DryRun(context.Background(), hist, idrules.DefaultRules(), emailLimit(1), identity.DryRunOptions{})
		if err != nil || rep.Splits != h.a {
			b.Fatalf("%v %+v", err, rep)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N)/float64(len(recs))*1000, "ms/1k-events")
	b.ReportMetric(float64(live)/float64(len(recs))*1000/(1<<20), "MB-live/1k-events")
	b.ReportMetric(0, "RU/event")
}
