//go:build integration

package stream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// BenchmarkPutAgainstKinesisMock is one ingest request's PutRecords (15 events of 600 bytes,
// the bench's shape at 150 events/s) against kinesis-mock, on a shard already holding 0, 2,500
// or 5,000 records. kinesis-mock's cost per PutRecords grows with the records already in the
// shards it touches (it hashes each touched shard's whole record vector), so the local
// pipeline slows down as its streams fill; on AWS a put costs the same at any size.
func BenchmarkPutAgainstKinesisMock(b *testing.B) {
	c := testenv.Clients(b)
	data := []byte(strings.Repeat("x", 600))
	for _, held := range []int{0, 2500, 5000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			name := testenv.Stream(b, c.Kinesis, "putbench", 1)
			pub := stream.NewPublisher(c.Kinesis, name)
			ctx := context.Background()
			for filled := 0; filled < held; filled += stream.MaxRecordsPerPut {
				if err := pub.Put(ctx, batch(stream.MaxRecordsPerPut, data)); err != nil {
					b.Fatal(err)
				}
			}
			recs := batch(15, data)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := pub.Put(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/put")
		})
	}
}

func batch(n int, data []byte) []stream.Record {
	recs := make([]stream.Record, n)
	for i := range recs {
		recs[i] = stream.Record{PartitionKey: fmt.Sprintf("user-%d", i), Data: data}
	}
	return recs
}
