//go:build integration

package replay

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/store/ru"
)

// BenchmarkReplay: one job replaying a day of 24 archive objects of 500 events each (a folder
// archive) with the job store on DynamoDB Local, metered with the RU model of
// internal/store/ru: request units and time per event replayed, per target. The streams are
// fakes (a Kinesis PUT payload unit per record on AWS); the block list is a cached checker's
// (no request per event); the destination target looks each user's profile up once per run.
//
//	go test -tags integration -run '^$' -bench Replay ./internal/replay
func BenchmarkReplay(b *testing.B) {
	a := newArchive(b)
	const users, perObject = 200, 500
	for h := range 24 {
		at := day1.Add(time.Duration(h) * time.Hour)
		ms := make([]any, 0, perObject)
		for i := range perObject {
			ms = append(ms, msg(fmt.Sprintf("m%02d-%03d", h, i), fmt.Sprintf("u%d", i%users), "Order Completed", at))
		}
		a.put("src_web", at, "o", ms...)
	}
	events := float64(24 * perObject)
	for _, target := range []string{TargetPipeline, TargetDestination} {
		b.Run(target, func(b *testing.B) {
			c := testenv.Clients(b)
			m := ru.NewMeter(c.DynamoDB)
			e := newEnv(b, a)
			e.opts.Jobs = NewDynamoStore(m, testenv.Table(b, c.DynamoDB))
			for i := range users {
				e.profs.of[fmt.Sprintf("user_id:u%d", i)] = fmt.Sprintf("prof_%d", i)
			}
			in := Input{From: day1, To: day2, Target: Target{Type: target, DestinationID: "dst_1"}}
			if target == TargetPipeline {
				in.Target.DestinationID = ""
			}
			m.Take()
			b.ResetTimer()
			for range b.N {
				j, err := NewJob(in, time.Now())
				if err == nil {
					err = e.opts.Jobs.Create(context.Background(), j)
				}
				if err == nil {
					j, err = NewRunner(e.opts).RunOne(context.Background(), j.ID)
				}
				if err != nil || j.Status != StatusCompleted || j.Counts.Sent != int64(events) {
					b.Fatalf("%+v %v", j.Counts, err)
				}
			}
			b.StopTimer()
			u := m.Take()
			n := float64(b.N) * events
			b.ReportMetric(u.Read/n, "RRU/event")
			b.ReportMetric(u.Write/n, "WRU/event")
			b.ReportMetric(u.Read/float64(b.N), "RRU/job")
			b.ReportMetric(u.Write/float64(b.N), "WRU/job")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/n, "ms/event")
		})
	}
}
