package segment

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestUndecodableChangeGoesToDeadLetters: a change record that can never be processed is kept in
// the dead-letter store and acknowledged, so the shard moves on without losing
// it; the valid record beside it is processed.
func TestUndecodableChangeGoesToDeadLetters(t *testing.T) {
	e := newEnv(t)
	dl := e.dl
	e.h.opt.DeadLetters = dl

	good := e.send(t, chg("p1", 1, `{"plan":"pro"}`))
	if len(good.BatchItemFailures) != 0 {
		t.Fatalf("valid record failed: %v", good.BatchItemFailures)
	}
	ev := events.KinesisEvent{Records: []events.KinesisEventRecord{{EventID: "shardId-0:99"}, {EventID: "shardId-0:100"}}}
	ev.Records[0].Kinesis.Data, ev.Records[0].Kinesis.SequenceNumber = []byte(`{"profileId":`), "99"
	ev.Records[1].Kinesis.Data, ev.Records[1].Kinesis.SequenceNumber = []byte(`{"version":3}`), "100"
	resp, err := e.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("undecodable records must be acknowledged once kept: %v %v", resp.BatchItemFailures, err)
	}
	got, _, err := dl.List(context.Background(), Stage, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d dead letters, want 2: %+v", len(got), got)
	}
	for _, d := range got {
		if d.Kind != "change" || d.Reason != "decode" || d.Meta["sequenceNumber"] == "" || len(d.Payload) == 0 {
			t.Fatalf("dead letter %+v", d)
		}
	}
}
