//go:build integration

package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/bench"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/monitor"
)

// TestMonitorWritesDoNotGrowWithEvents measures the write units the monitor's counts cost on
// DynamoDB Local: 20 s of traffic from two sources (one request per event, and 10 with a bad
// write key) in one container, at 50 events/s and at 500 events/s. The writes are the same:
// they grow with containers × sources × minutes (one flush per 10 s) and with rejections (at
// most MaxRejections samples per flush), never with events.
func TestMonitorWritesDoNotGrowWithEvents(t *testing.T) {
	c := testenv.Clients(t)
	table := testenv.Table(t, c.DynamoDB)
	wru := func(rate int) (float64, int) {
		meter := bench.NewMeter()
		db := dynamodb.NewFromConfig(c.AWS, append(awsenv.DynamoDBOptions(), meter.DynamoDB("ingest"))...)
		clk := time.Now().UTC().Truncate(time.Minute)
		rec := monitor.NewRecorder(monitor.NewStore(db, table), monitor.RecorderOptions{Now: func() time.Time { return clk }})
		h := ingest.New(keys{"key-a": {ID: "src_a", Enabled: true}, "key-b": {ID: "src_b", Enabled: true}}, &memPub{},
			ingest.Config{AllowedOrigins: []string{"*"}, Monitor: rec})
		events := 20 * rate
		for i := range events {
			key := []string{"key-a", "key-b"}[i%2]
			if i%(events/10) == events/10-1 { // 10 bad requests in either run
				key = "wk_bad"
			}
			body := fmt.Sprintf(`{"type":"track","event":"E","userId":"u%d","messageId":"m%d"}`, i, i)
			if _, err := h.Handle(context.Background(), post("/v1/track", body, "authorization", basic(key+":"))); err != nil {
				t.Fatal(err)
			}
			clk = clk.Add(time.Second / time.Duration(rate))
		}
		rec.Flush(context.Background())
		return meter.Snapshot()["ingest"].ModelWRU, events
	}
	slow, n1 := wru(50)
	fast, n2 := wru(500)
	t.Logf("monitor counts: %.1f WRU for %d events at 50/s (%.2f WRU per 1,000), %.1f WRU for %d events at 500/s",
		slow, n1, slow*1000/float64(n1), fast, n2)
	if slow == 0 || fast > slow+2 || fast < slow-2 {
		t.Fatalf("writes grew with events: %.1f WRU at 50/s, %.1f at 500/s", slow, fast)
	}
}
