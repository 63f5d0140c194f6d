// Package activations is the record format of the `activations` Kinesis stream: what the
// segments stage tells the activation stage to deliver (audience transitions, computed-trait
// changes, forwarded events). Both stages import it; neither imports the other.
package activations

import (
	"encoding/json"
	"time"

	"github.com/serverless-cdp/cdp/internal/consent"
	"github.com/serverless-cdp/cdp/internal/tracking"
)

// Kinds of activation records.
const (
	KindAudienceEntered = "audience_entered" // delivered as track "Audience Entered"
	KindAudienceExited  = "audience_exited"  // delivered as track "Audience Exited"
	KindTraitsChanged   = "traits_changed"   // computed traits changed: delivered identify-style
	KindEvent           = "event"            // an event forwarded as received
)

// Audience names the audience of an entered/exited record.
type Audience struct {
	ID   string `json:"id"`
	Key  string `json:"key"` // snake_case key used as properties.audience_key and properties.<key>
	Name string `json:"name"`
}

// Record is one thing to deliver about one profile. Partition key: ProfileID, so one profile's
// records stay in order.
type Record struct {
	// ID is stable for the same logical record: derived from its input (profile, audience,
	// transition sequence; or the event's messageId), never random, so a redelivered record has
	// the same ID and receivers can dedupe by the webhook-id built from it. It starts with one
	// of ProfilePrefixes of a profile of the person it is about (the profile, or for a
	// forwarded event the profile it was committed to), so deliveries can be found by profile.
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	ProfileID string `json:"profileId"`
	// Identifiers of the profile known when the record was made, for the payload.
	UserID      string `json:"userId,omitempty"`
	AnonymousID string `json:"anonymousId,omitempty"`
	Email       string `json:"email,omitempty"`
	// Audience is set for entered/exited records.
	Audience *Audience `json:"audience,omitempty"`
	// Traits holds the changed computed traits (KindTraitsChanged) with their new values.
	Traits map[string]json.RawMessage `json:"traits,omitempty"`
	// Event is the forwarded message (KindEvent).
	Event *tracking.Message `json:"event,omitempty"`
	// Consent is the profile's stored consent when the record was made (audience and trait
	// records; nil: the profile holds no preferences). A forwarded event is checked against
	// its own context.consent instead.
	Consent consent.Preferences `json:"consent,omitempty"`
	// OccurredAt is when the transition or change happened (event time, or the evaluation time
	// for time-based exits).
	OccurredAt time.Time `json:"occurredAt"`
	// DestinationID, when set, names the one destination the record is for (a replay of
	// archived events into one destination, internal/replay): no other destination receives
	// it. That destination still receives it only if it subscribes to it, and consent gates it
	// as any record. Empty: every subscribed destination.
	DestinationID string `json:"destinationId,omitempty"`
}

// ProfilePrefixes are the prefixes of the IDs of records about profileID: audience
// transitions ("aud-<profile>-…"), computed-trait changes ("ct-<profile>-…") and forwarded
// events ("evt-<profile>-…", the profile the event was committed to). Profile ids have a fixed
// length, so no profile's prefix is another's.
func ProfilePrefixes(profileID string) []string {
	return []string{"aud-" + profileID + "-", "ct-" + profileID + "-", "evt-" + profileID + "-"}
}
