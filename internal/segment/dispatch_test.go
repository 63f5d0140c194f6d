package segment

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestInvokeRejectsUnknownEvents(t *testing.T) {
	h := NewHandler(nil, nil, Options{})
	for _, p := range []string{`{"foo":1}`, `not json`} {
		if _, err := h.Invoke(context.Background(), []byte(p)); err == nil || !strings.Contains(err.Error(), "segments:") {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestInvokeRoutesKinesisAndSchedule(t *testing.T) {
	e := newEnv(t)
	out, err := e.h.Invoke(context.Background(), []byte(`{"Records":[{"kinesis":{"sequenceNumber":"1","data":"bm90IGpzb24="}}]}`))
	if _, ok := out.(events.KinesisEventResponse); !ok || err != nil {
		t.Fatalf("kinesis: %T %v", out, err)
	}
	out, err = e.h.Invoke(context.Background(), []byte(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`))
	if _, ok := out.(TickResult); !ok || err != nil {
		t.Fatalf("schedule: %T %v", out, err)
	}
}
