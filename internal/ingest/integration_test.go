//go:build integration

package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/ingest"
	"github.com/serverless-cdp/cdp/internal/stream"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func batchOf(n int, prefix string) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"type":"track","messageId":"%s-%03d","userId":"u%d","event":"e"}`, prefix, i, i%5)
	}
	return `{"batch":[` + strings.Join(items, ",") + `]}`
}

// TestPartialPutFailuresThroughTheHandler drives the real handler and publisher against
// kinesis-mock, with PutRecords entries rejected at the client boundary.
func TestPartialPutFailuresThroughTheHandler(t *testing.T) {
	c := testenv.Clients(t)
	name := testenv.Stream(t, c.Kinesis, "events", 2)

	t.Run("transient failures are retried and land exactly once", func(t *testing.T) {
		flaky := &testenv.FlakyKinesis{Real: c.Kinesis, Reject: func(call int, data []byte) bool {
			return call <= 2 && strings.Contains(string(data), `"messageId":"ok-0`) // the first 100 of 150, twice
		}}
		h := newIntegrationHandler(flaky, name)
		resp, _ := h.Handle(context.Background(), post("/v1/batch", batchOf(150, "ok"), "authorization", basic("good-key:")))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, resp.Body)
		}
		got := countByID(t, testenv.ReadStream(t, c.Kinesis, name, 150, 10*time.Second))
		if len(got) != 150 {
			t.Fatalf("%d distinct messages in the stream, want 150", len(got))
		}
		for id, n := range got {
			if n != 1 {
				t.Fatalf("%s landed %d times", id, n)
			}
		}
	})

	t.Run("a record that never lands makes the request 503", func(t *testing.T) {
		flaky := &testenv.FlakyKinesis{Real: c.Kinesis, Reject: func(_ int, data []byte) bool {
			return strings.Contains(string(data), `"messageId":"bad-007"`)
		}}
		h := newIntegrationHandler(flaky, name)
		resp, _ := h.Handle(context.Background(), post("/v1/batch", batchOf(20, "bad"), "authorization", basic("good-key:")))
		if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" {
			t.Fatalf("status %d %v, want 503 with Retry-After", resp.StatusCode, resp.Headers)
		}
		if flaky.Calls() != 3 {
			t.Fatalf("%d PutRecords calls, want 3 attempts", flaky.Calls())
		}
		got := countByID(t, testenv.ReadStream(t, c.Kinesis, name, 150+19, 10*time.Second))
		if _, ok := got["bad-007"]; ok {
			t.Fatal("the rejected record is in the stream")
		}
	})
}

func newIntegrationHandler(api stream.PutRecordsAPI, streamName string) *ingest.Handler {
	pub := stream.NewPublisher(api, streamName, stream.WithRetry(3, time.Millisecond, 5*time.Millisecond))
	return ingest.New(keys{"good-key": {ID: "src_web", Enabled: true}}, pub, ingest.Config{})
}

func countByID(t *testing.T, recs []kinesisRecord) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range recs {
		var rec tracking.Record
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			t.Fatal(err)
		}
		out[rec.Message.MessageID]++
	}
	return out
}

type kinesisRecord = kinesistypes.Record
