package stream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/stream"
)

// TestPollerHonoursBatchItemFailures: like a Lambda event source mapping with
// ReportBatchItemFailures, a reported failure is retried from that record on, and nothing before
// it is delivered again.
func TestPollerHonoursBatchItemFailures(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "poll", 1)
	recs := make([]stream.Record, 10)
	for i := range recs {
		recs[i] = stream.Record{PartitionKey: "k", Data: []byte(fmt.Sprintf("r%d", i))}
	}
	if err := stream.NewPublisher(c.Kinesis, name).Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := map[string]bool{}
	failedOnce := false
	ctx, cancel := context.WithCancel(context.Background())
	p := &stream.Poller{
		Client: c.Kinesis, Stream: name, BatchSize: 100, Interval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			var resp events.KinesisEventResponse
			for _, r := range ev.Records {
				d := string(r.Kinesis.Data)
				seen[d]++
				if d == "r5" && !failedOnce {
					failedOnce = true
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
					continue
				}
				done[d] = true
			}
			if len(done) == 10 {
				cancel()
			}
			return resp, nil
		},
	}
	go p.Run(ctx)
	select {
	case <-ctx.Done():
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("not every record was processed")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < 10; i++ {
		want := 1
		if i >= 5 {
			want = 2 // redelivered from the failed record on, as Lambda does
		}
		if got := seen[fmt.Sprintf("r%d", i)]; got != want {
			t.Fatalf("r%d delivered %d times, want %d (all: %v)", i, got, want, seen)
		}
	}
}
