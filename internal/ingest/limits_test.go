package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/serverless-cdp/cdp/internal/tracking"
)

// A batch with one key too long or not UTF-8, or one timestamp out of range, is a client error
// (400 naming the item and field), never a 503 the SDK would retry forever, and publishes nothing.
func TestKeyAndTimestampLimitsAre400AndPublishNothing(t *testing.T) {
	long := strings.Repeat("x", 3000)
	batch := func(bad string) string {
		items := make([]string, 60)
		for i := range items {
			items[i] = fmt.Sprintf(`{"type":"track","event":"e","userId":"u%d","messageId":"m%d"}`, i, i)
		}
		items[17] = bad
		return `{"batch":[` + strings.Join(items, ",") + `]}`
	}
	cases := []struct{ name, path, body, code, msg string }{
		{"long messageId", "/v1/batch", batch(`{"type":"track","event":"e","userId":"u","messageId":"` + long + `"}`), tracking.CodeInvalidField, "batch[17]: messageId is 3000 bytes; the limit is 512"},
		{"long userId", "/v1/batch", batch(`{"type":"track","event":"e","userId":"` + long + `"}`), tracking.CodeInvalidField, "batch[17]: userId is 3000 bytes"},
		{"userId u\\xff", "/v1/track", "{\"event\":\"e\",\"userId\":\"u\xff\"}", tracking.CodeInvalidField, "userId is not valid UTF-8"},
		{"userId u\\xfe", "/v1/track", "{\"event\":\"e\",\"userId\":\"u\xfe\"}", tracking.CodeInvalidField, "userId is not valid UTF-8"},
		{"lone surrogate", "/v1/identify", `{"userId":"u\udc00"}`, tracking.CodeInvalidField, "userId is not valid UTF-8"},
		{"year 10000 in UTC", "/v1/track", `{"event":"e","userId":"u","timestamp":"9999-12-31T23:59:59-23:59"}`, tracking.CodeInvalidTimestamp, "timestamp"},
		{"year 0 in UTC", "/v1/track", `{"event":"e","userId":"u","timestamp":"0000-01-01T00:00:00+01:00"}`, tracking.CodeInvalidTimestamp, "timestamp"},
		{"sentAt pushes out of range", "/v1/batch", batch(`{"type":"track","event":"e","userId":"u","timestamp":"2026-11-23T00:00:00Z","sentAt":"9999-01-01T00:00:00Z"}`), tracking.CodeInvalidTimestamp, "batch[17]: the corrected timestamp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := &memPub{}
			resp, _ := newHandler(pub).Handle(context.Background(), post(tc.path, tc.body, "authorization", basic("good-key:")))
			var body struct{ Code, Message string }
			_ = json.Unmarshal([]byte(resp.Body), &body)
			if resp.StatusCode != 400 || body.Code != tc.code || !strings.Contains(body.Message, tc.msg) {
				t.Fatalf("got %d %s %q, want 400 %s containing %q", resp.StatusCode, body.Code, body.Message, tc.code, tc.msg)
			}
			if len(pub.recs) != 0 {
				t.Fatalf("published %d records of a refused request", len(pub.recs))
			}
		})
	}
}

// Ids up to the limit are accepted; the ones Kinesis could not take as partition keys are
// hashed, the same way for every event of that user.
func TestLongIDsGetAStableHashedPartitionKey(t *testing.T) {
	pub := &memPub{}
	id := strings.Repeat("é", 250) // 500 bytes: within the 512-byte limit, over Kinesis's 256
	for i := 0; i < 2; i++ {
		body := fmt.Sprintf(`{"event":"e%d","userId":%q}`, i, id)
		resp, _ := newHandler(pub).Handle(context.Background(), post("/v1/track", body, "authorization", basic("good-key:")))
		if resp.StatusCode != 200 {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
	}
	recs := pub.messages(t)
	if len(pub.recs) != 2 || pub.recs[0].PartitionKey != pub.recs[1].PartitionKey || len(pub.recs[0].PartitionKey) > 256 {
		t.Fatalf("partition keys %q", []string{pub.recs[0].PartitionKey, pub.recs[1].PartitionKey})
	}
	if recs[0].Message.UserID != id {
		t.Fatal("the stored userId must stay as sent")
	}
}
