package identity

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/change"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

func kinesisEvent(t *testing.T, recs ...any) events.KinesisEvent {
	var ev events.KinesisEvent
	for i, r := range recs {
		var data []byte
		switch v := r.(type) {
		case []byte:
			data = v
		default:
			data, _ = json.Marshal(v)
		}
		ev.Records = append(ev.Records, events.KinesisEventRecord{EventID: fmt.Sprintf("shard-0:%d", i),
			Kinesis: events.KinesisRecord{Data: data, SequenceNumber: fmt.Sprint(1000 + i), PartitionKey: "k"}})
	}
	return ev
}

func TestSplitChange(t *testing.T) {
	c := change.Record{ProfileID: "use_x", Traits: map[string]json.RawMessage{"a": json.RawMessage(`1`)}}
	for i := 0; i < 50; i++ {
		c.Events = append(c.Events, tracking.Message{MessageID: fmt.Sprint(i), Properties: json.RawMessage(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)})
	}
	parts, err := SplitChange(c, 10<<10)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for i, p := range parts {
		if len(p) > 10<<10 {
			t.Fatalf("part %d is %d bytes", i, len(p))
		}
		var r change.Record
		_ = json.Unmarshal(p, &r)
		if r.Part != i+1 || r.Parts != len(parts) || r.ProfileID != "use_x" {
			t.Fatalf("part header %+v", r)
		}
		seen += len(r.Events)
	}
	if seen != 50 || len(parts) < 5 {
		t.Fatalf("%d events in %d parts", seen, len(parts))
	}
}
