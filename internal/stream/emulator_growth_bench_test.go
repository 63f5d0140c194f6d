//go:build integration

package stream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
)

// BenchmarkEmulatorPutAsStreamGrows measures kinesis-mock itself, not our code: the put rate
// of 500-record PutRecords calls (an import batch's worth, ~600-byte records, 8 shards, no
// consumer) as the stream fills up to 50,000 records. It explains why the local stack cannot
// take a 100,000-row import in reasonable time: kinesis-mock's PutRecords costs time in
// proportion to the records the stream already holds (measured: ~1,900 records/s into an
// empty stream, ~76/s once it holds 92,000), so a large import is quadratic locally. Real
// Kinesis takes 1,000 records/s per shard whatever the stream holds.
func BenchmarkEmulatorPutAsStreamGrows(b *testing.B) {
	c := testenv.Clients(b)
	ctx := context.Background()
	payload := []byte(`{"sourceId":"src","message":{"type":"track","userId":"u1"},"pad":"` + strings.Repeat("x", 500) + `"}`)
	for b.Loop() {
		name := testenv.Stream(b, c.Kinesis, "growth", 8)
		var first, last float64
		for round := 0; round < 25; round++ {
			start := time.Now()
			for call := 0; call < 4; call++ {
				recs := make([]types.PutRecordsRequestEntry, 500)
				for i := range recs {
					recs[i] = types.PutRecordsRequestEntry{Data: payload, PartitionKey: aws.String(fmt.Sprintf("k%d-%d-%d", round, call, i))}
				}
				if _, err := c.Kinesis.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(name), Records: recs}); err != nil {
					b.Fatal(err)
				}
			}
			rate := 2000 / time.Since(start).Seconds()
			if round == 0 {
				first = rate
			}
			last = rate
		}
		b.ReportMetric(first, "records/s_empty")
		b.ReportMetric(last, "records/s_at_48k")
		b.ReportMetric(first/last, "slowdown")
	}
}
