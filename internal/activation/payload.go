package activation

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/serverless-cdp/cdp/internal/activations"
	"sort"
	"strings"
	"time"

	"github.com/serverless-cdp/cdp/internal/destination"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Segment event names of audience transitions.
const (
	EventAudienceEntered = "Audience Entered"
	EventAudienceExited  = "Audience Exited"
)

// WebhookID is the webhook-id of one record sent to one destination: stable across retries and
// redrives, so receivers can dedupe.
func WebhookID(recordID, destinationID string) string {
	h := sha256.Sum256([]byte(destinationID + "\x00" + recordID))
	return "msg_" + base64.RawURLEncoding.EncodeToString(h[:18])
}

// batchWebhookID is the webhook-id of a batch request: derived from its members, so the same
// batch retried keeps its id. Each member also carries its own messageId.
func batchWebhookID(destinationID string, recordIDs []string) string {
	ids := append([]string(nil), recordIDs...)
	sort.Strings(ids)
	h := sha256.Sum256([]byte(destinationID + "\x00" + strings.Join(ids, "\x00")))
	return "msg_" + base64.RawURLEncoding.EncodeToString(h[:18])
}

// Payload builds what a destination receives for a record, in Segment's shape, or ok=false when
// the destination does not subscribe to it:
//   - audience_entered / audience_exited: track "Audience Entered" / "Audience Exited" with
//     properties.audience_key, properties.<key> true|false, and context.personas;
//   - traits_changed: identify with the (subscribed) changed traits;
//   - event: the message as received.
//
// Each carries the profile's userId, anonymousId and email (traits.email for identify,
// context.traits.email otherwise) where known. messageId is the record ID (the event's own
// messageId for forwarded events).
func Payload(rec activations.Record, d destination.Destination, spaceID string) (json.RawMessage, bool, error) {
	switch rec.Kind {
	case activations.KindAudienceEntered, activations.KindAudienceExited:
		if rec.Audience == nil || !d.Subscriptions.WantsAudience(rec.Audience.ID, rec.Audience.Key) {
			return nil, false, nil
		}
		return audiencePayload(rec, spaceID)
	case activations.KindTraitsChanged:
		traits := d.Subscriptions.WantedTraits(rec.Traits)
		if len(traits) == 0 {
			return nil, false, nil
		}
		return traitsPayload(rec, traits, spaceID)
	case activations.KindEvent:
		if !d.Subscriptions.WantsEvent(rec.Event) {
			return nil, false, nil
		}
		return eventPayload(rec)
	default:
		return nil, false, fmt.Errorf("unknown record kind %q", rec.Kind)
	}
}

// audiencePayload: track "Audience Entered" / "Audience Exited" in Segment's shape.
func audiencePayload(rec activations.Record, spaceID string) (json.RawMessage, bool, error) {
	entered := rec.Kind == activations.KindAudienceEntered
	name := EventAudienceExited
	if entered {
		name = EventAudienceEntered
	}
	ctx := map[string]any{"personas": map[string]any{
		"computation_key": rec.Audience.Key, "computation_id": rec.Audience.ID,
		"computation_class": "audience", "space_id": spaceID,
	}}
	if rec.Email != "" {
		ctx["traits"] = map[string]any{"email": rec.Email}
	}
	props := map[string]any{"audience_key": rec.Audience.Key, rec.Audience.Key: entered}
	if rec.Audience.Name != "" {
		props["audience_name"] = rec.Audience.Name
	}
	return encode(segmentMessage{
		Type: tracking.TypeTrack, Event: name, MessageID: rec.ID, UserID: rec.UserID,
		AnonymousID: rec.AnonymousID, Properties: props, Context: ctx, Timestamp: rec.OccurredAt.UTC(),
	})
}

// traitsPayload: identify with the subscribed changed traits (and the email where known).
func traitsPayload(rec activations.Record, traits map[string]json.RawMessage, spaceID string) (json.RawMessage, bool, error) {
	all := make(map[string]any, len(traits)+1)
	for k, v := range traits {
		all[k] = v
	}
	if _, ok := all["email"]; !ok && rec.Email != "" {
		all["email"] = rec.Email
	}
	return encode(segmentMessage{
		Type: tracking.TypeIdentify, MessageID: rec.ID, UserID: rec.UserID, AnonymousID: rec.AnonymousID,
		Traits: all, Context: map[string]any{"personas": map[string]any{"computation_class": "trait", "space_id": spaceID}},
		Timestamp: rec.OccurredAt.UTC(),
	})
}

// eventPayload: the event as received, with the profile's ids and email filled in.
func eventPayload(rec activations.Record) (json.RawMessage, bool, error) {
	m := *rec.Event
	if m.UserID == "" {
		m.UserID = rec.UserID
	}
	if m.AnonymousID == "" {
		m.AnonymousID = rec.AnonymousID
	}
	if rec.Email != "" {
		var err error
		if m.Context, err = withEmail(m.Context, rec.Email); err != nil {
			return nil, false, err
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, false, fmt.Errorf("encode event %s: %w", m.MessageID, err)
	}
	return b, true, nil
}

type segmentMessage struct {
	Type        string         `json:"type"`
	Event       string         `json:"event,omitempty"`
	MessageID   string         `json:"messageId"`
	UserID      string         `json:"userId,omitempty"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	Context     map[string]any `json:"context,omitempty"`
	Timestamp   time.Time      `json:"timestamp"`
}

func encode(m segmentMessage) (json.RawMessage, bool, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, false, fmt.Errorf("encode %s: %w", m.MessageID, err)
	}
	return b, true, nil
}

// withEmail sets context.traits.email unless the context already has one.
func withEmail(raw json.RawMessage, email string) (json.RawMessage, error) {
	ctx := map[string]json.RawMessage{}
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &ctx); err != nil {
			return raw, nil // not an object: leave it as received
		}
	}
	traits := map[string]json.RawMessage{}
	if t, ok := ctx["traits"]; ok {
		if err := json.Unmarshal(t, &traits); err != nil {
			return raw, nil
		}
	}
	if _, ok := traits["email"]; ok {
		return raw, nil
	}
	e, _ := json.Marshal(email)
	traits["email"] = e
	tb, err := json.Marshal(traits)
	if err != nil {
		return nil, fmt.Errorf("encode context traits: %w", err)
	}
	ctx["traits"] = tb
	out, err := json.Marshal(ctx)
	if err != nil {
		return nil, fmt.Errorf("encode context: %w", err)
	}
	return out, nil
}

// requestBody is the body of one request: the payload itself for a single message, or
// {"batch":[…]} for several (destinations with batchSize > 1).
func requestBody(payloads []json.RawMessage, batched bool) ([]byte, error) {
	if !batched {
		return payloads[0], nil
	}
	b, err := json.Marshal(struct {
		Batch []json.RawMessage `json:"batch"`
	}{payloads})
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return b, nil
}
