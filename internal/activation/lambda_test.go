package activation

import (
	"context"
	"encoding/json"
	"github.com/serverless-cdp/cdp/internal/activations"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/webhook"
)

func TestInvokeDispatchesKinesisAndSchedule(t *testing.T) {
	e := newEnv(t, webhook.Policy{AllowLoopback: true})
	r := newReceiver(t)
	e.dest(r, destination.Spec{})
	raw, _ := json.Marshal(kinesisEvent(t, audienceRecord("rec_1", activations.KindAudienceEntered)))
	out, err := e.d.Invoke(context.Background(), raw)
	if _, ok := out.(events.KinesisEventResponse); err != nil || !ok || len(r.requests()) != 1 {
		t.Fatalf("kinesis: %T %v, %d requests", out, err, len(r.requests()))
	}
	out, err = e.d.Invoke(context.Background(), json.RawMessage(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`))
	if _, ok := out.(Result); err != nil || !ok {
		t.Fatalf("schedule: %T %v", out, err)
	}
	if _, err := e.d.Invoke(context.Background(), json.RawMessage(`{"foo":1}`)); err == nil {
		t.Fatal("unknown event accepted")
	}
}
