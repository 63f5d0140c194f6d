package predict

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkTrain trains each kind on 10,000 and 100,000 simulated profiles (30-day horizon;
// return_likelihood 90 days, as 30 leaves too few holdout returns). ns/profile is the time per
// profile, so the growth with the number of profiles reads directly.
func BenchmarkTrain(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		d := simulate(b, n, simSeed, horizon)
		long := simulate(b, n, simSeed, 90)
		for _, kind := range []string{KindPurchase, KindChurn, KindLTV, KindReturn, KindProduct} {
			ps, h := d.goal, horizon
			switch kind {
			case KindChurn:
				ps = d.activity
			case KindReturn:
				ps, h = long.goal, 90
			}
			b.Run(fmt.Sprintf("%s/profiles=%d", kind, n), func(b *testing.B) {
				b.ReportAllocs()
				start := time.Now()
				for b.Loop() {
					if _, err := Train(Config{Kind: kind, HorizonDays: h, K: 5}, ps, d.now); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/float64(n), "ns/profile")
			})
		}
	}
}

// BenchmarkScore is one profile's score with a trained model.
func BenchmarkScore(b *testing.B) {
	d := simulate(b, simCustomers, simSeed, horizon)
	for _, kind := range []string{KindPurchase, KindLTV, KindProduct} {
		m := train(b, kind, horizon, d.goal, d.now)
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Score(d.goal[i%len(d.goal)], d.now)
				i++
			}
		})
	}
}
