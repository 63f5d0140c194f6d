//go:build integration

package privacy

import (
	"testing"
	"time"
)

// BenchmarkDeleteFollowUp: the request store's cost of a delete's follow-up on DynamoDB
// Local: the schedule's 20 one-minute runs while it is not due (each reads the pending index)
// and the run that leases, runs and saves it (fake holders: their own costs are theirs).
// Reports request units per request, beyond the delete itself; lag=0 (no follow-up: the
// schedule's 21 runs find nothing) is the baseline.
func BenchmarkDeleteFollowUp(b *testing.B) {
	for _, lag := range []time.Duration{0, 20 * time.Minute} {
		b.Run("lag="+lag.String(), func(b *testing.B) { benchFollowUp(b, lag) })
	}
}

func benchFollowUp(b *testing.B, lag time.Duration) {
	w, m, _ := dynamoWorld(b)
	a := &fakeArchive{lag: lag}
	rn := w.runner(withArchive(a))
	b.ResetTimer()
	var rd, wr float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := w.submit(TypeDelete, "email:ann@example.com")
		if got, err := rn.RunOne(ctx, r.ID); err != nil || (len(got.FollowUps) == 1) != (lag > 0) {
			b.Fatalf("%+v %v", got, err)
		}
		m.Take()
		b.StartTimer()
		for range 21 {
			w.clock.advance(time.Minute)
			if err := rn.Run(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		u := m.Take()
		rd, wr = rd+u.Read, wr+u.Write
		if got, _ := w.store.Get(ctx, r.ID); !got.Settled() {
			b.Fatalf("follow-up not done: %+v", got.FollowUps)
		}
	}
	b.ReportMetric(rd/float64(b.N), "RRU/request")
	b.ReportMetric(wr/float64(b.N), "WRU/request")
}
