package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/ingest"
)

var update = flag.Bool("update", false, "rewrite events/identity/kinesis-event.json from events/ingest/*.json")

// TestSampleEvents keeps events/ honest: every sample API Gateway request is accepted by the real
// handler, and the sample Kinesis event for the identity function is exactly what they produce.
func TestSampleEvents(t *testing.T) {
	files, _ := filepath.Glob("../../events/ingest/*.json")
	if len(files) < 8 {
		t.Fatalf("found %d samples", len(files))
	}
	sort.Strings(files)
	pub := &memPub{}
	h := ingest.New(keys{"sample-write-key": {ID: "src_sample", Enabled: true}}, pub, ingest.Config{Now: func() time.Time { return now }})
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		resp, _ := h.Handle(context.Background(), req)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", f, resp.StatusCode, resp.Body)
		}
	}
	ev := events.KinesisEvent{}
	for i, r := range pub.recs {
		seq := "4959" + string(rune('0'+i/10)) + string(rune('0'+i%10))
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			AwsRegion: "us-east-1", EventID: "shardId-000000000000:" + seq, EventName: "aws:kinesis:record",
			EventSource: "aws:kinesis", EventSourceArn: "arn:aws:kinesis:us-east-1:123456789012:stream/events", EventVersion: "1.0",
			InvokeIdentityArn: "arn:aws:iam::123456789012:role/identity",
			Kinesis: events.KinesisRecord{Data: r.Data, PartitionKey: r.PartitionKey, SequenceNumber: seq, KinesisSchemaVersion: "1.0",
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: now}},
		})
	}
	got, _ := json.MarshalIndent(ev, "", "  ")
	path := "../../events/identity/kinesis-event.json"
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
		t.Fatalf("%s is stale (err %v): run go test ./internal/ingest -run TestSampleEvents -update", path, err)
	}
}
