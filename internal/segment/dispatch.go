package segment

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// Invoke serves both triggers of the segments Lambda: a Kinesis event (it has Records) goes to
// Handle, an EventBridge scheduled event ("source":"aws.events") to Tick.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe struct {
		Records []json.RawMessage `json:"Records"`
		Source  string            `json:"source"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, fmt.Errorf("segments: unreadable event: %w", err)
	}
	switch {
	case probe.Records != nil:
		var ev events.KinesisEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("segments: kinesis event: %w", err)
		}
		return h.Handle(ctx, ev)
	case probe.Source == "aws.events":
		return h.Tick(ctx)
	}
	return nil, fmt.Errorf("segments: unknown event (neither Kinesis records nor an EventBridge schedule)")
}
