package activation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// Invoke is the Lambda entry point serving both triggers of functions/activation: a Kinesis
// batch of the activations stream ({"Records":[…]}) and the EventBridge schedule
// ({"source":"aws.events",…}), which drains the retry queue.
func (d *Deliverer) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Records []json.RawMessage `json:"Records"`
		Source  string            `json:"source"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("activation: event is not a JSON object: %w", err)
	}
	switch {
	case probe.Records != nil:
		var ev events.KinesisEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("activation: decode Kinesis event: %w", err)
		}
		return d.HandleKinesis(ctx, ev)
	case probe.Source == "aws.events" || probe.Source == "cdp.local":
		return d.Tick(ctx)
	default:
		return nil, errors.New("activation: unknown event (want a Kinesis batch or an EventBridge schedule)")
	}
}
